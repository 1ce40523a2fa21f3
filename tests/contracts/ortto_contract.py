"""The Ortto contract's JSON Schemas (docs/ortto-contract/), loaded once, and a recorder of the
bridge's Ortto traffic over real HTTP, so tests can validate both directions of every call."""

from __future__ import annotations

import functools
import json
import threading
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import requests
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

CONTRACT_DIR = Path(__file__).resolve().parents[2] / "docs" / "ortto-contract"

# Every Ortto endpoint the bridge calls -> its schema file (without .schema.json).
ENDPOINTS = {
    "/v1/person/merge": "person-merge",
    "/v1/activities/create": "activities-create",
    "/v1/person/custom-field/get": "custom-field-get",
    "/v1/person/custom-field/create": "custom-field-create",
    "/v1/definitions/activity/create": "activity-definition-create",
    # Organizations (Ortto "accounts"): docs/ortto-contract.md ("Organizations")
    "/v1/accounts/merge": "accounts-merge",
    "/v1/accounts/contacts/add": "accounts-contacts",
    "/v1/accounts/contacts/remove": "accounts-contacts",
    "/v1/accounts/custom-field/create": "accounts-custom-field-create",
    # Consent both ways and erasure: docs/ortto-contract.md ("Consent both ways and erasure")
    "/v1/person/get": "person-get",
    "/v1/person/archive": "person-archive",
    "/v1/person/delete": "person-archive",
}
# Called by a sweep (person/get) or an erasure, not by an initial sync.
CONSENT_ENDPOINTS = {"/v1/person/get", "/v1/person/archive", "/v1/person/delete"}
# The endpoints of a person-only sync (the seeded stores have no companies).
PEOPLE_ENDPOINTS = {path for path in ENDPOINTS if not path.startswith("/v1/accounts/")} - CONSENT_ENDPOINTS


def schema_files() -> list[Path]:
    return sorted(CONTRACT_DIR.glob("*.schema.json"))


@functools.cache
def registry() -> Registry:
    resources = []
    for path in schema_files():
        schema = json.loads(path.read_text())
        resources.append((schema["$id"], Resource.from_contents(schema)))
    return Registry().with_resources(resources)


@functools.cache
def validator(ref: str) -> Draft202012Validator:
    return Draft202012Validator({"$ref": ref}, registry=registry())


def problems(ref: str, instance) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
            for e in sorted(validator(ref).iter_errors(instance), key=lambda e: list(e.absolute_path))]


def request_problems(endpoint: str, body) -> list[str]:
    return problems(f"urn:ortto-contract:{endpoint}#/$defs/request", body)


def response_problems(endpoint: str, status: int, body) -> list[str]:
    if status == 429:
        return problems("urn:ortto-contract:common#/$defs/rate_limit", body)
    if status >= 400:
        return problems("urn:ortto-contract:common#/$defs/error", body)
    return problems(f"urn:ortto-contract:{endpoint}#/$defs/response", body)


@dataclass
class Exchange:
    path: str
    request: dict
    status: int
    response: object
    headers: dict


class OrttoRecorder:
    """A stand-in for sync.ortto.client.thread_session: per-thread sessions whose response hook records
    every Ortto call (request body, status, response body) that went over the wire."""

    def __init__(self):
        self.exchanges: list[Exchange] = []
        self._local = threading.local()
        self._lock = threading.Lock()

    def __call__(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
            session.hooks["response"].append(self._record)
        return session

    def _record(self, response, *args, **kwargs):
        path = urlsplit(response.request.url).path
        path = path[path.index("/v1/"):] if "/v1/" in path else path
        try:
            answer = response.json()
        except ValueError:
            answer = response.text
        with self._lock:
            self.exchanges.append(Exchange(path, json.loads(response.request.body or b"{}"), response.status_code,
                                           answer, dict(response.request.headers)))

    def calls(self, path: str) -> list[Exchange]:
        return [e for e in self.exchanges if e.path == path]

    def violations(self) -> list[str]:
        """Every way a recorded exchange breaks the contract, in both directions."""
        found = []
        for number, exchange in enumerate(self.exchanges):
            endpoint = ENDPOINTS.get(exchange.path)
            if endpoint is None:
                found.append(f"#{number} {exchange.path}: not an endpoint of the contract")
                continue
            for problem in request_problems(endpoint, exchange.request):
                found.append(f"#{number} request to {exchange.path}: {problem}")
            for problem in response_problems(endpoint, exchange.status, exchange.response):
                found.append(f"#{number} answer {exchange.status} from {exchange.path}: {problem}")
            if exchange.headers.get("Content-Type") != "application/json" or not exchange.headers.get("X-Api-Key"):
                found.append(f"#{number} {exchange.path}: X-Api-Key and Content-Type: application/json are required")
        return found
