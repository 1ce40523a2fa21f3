"""BigCommerce's official OpenAPI specs as a validator: `assert_allowed_by_spec(request)` fails unless the spec of
the request's API allows it. Shared by the contract tests of the BigCommerce client and of the tracking script.

Specs: tests/contracts/specs/ (copied unchanged from bigcommerce/docs; the repo depends on nothing outside it).
Known defects of the specs are patched in memory below, each with its reason; the files stay unchanged.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
import yaml
from openapi_core import OpenAPI
from openapi_core.contrib.requests import RequestsOpenAPIRequest
from rfc3339_validator import validate_rfc3339

REPO_ROOT = Path(__file__).resolve().parents[2]
VENDORED_SPECS = REPO_ROOT / "tests" / "contracts" / "specs"

API = "https://api.bigcommerce.com"  # the specs' server URL, so openapi-core matches servers exactly
STORE = "abc123"


def spec_dir() -> Path:
    return VENDORED_SPECS


# --- spec loading and the known spec defects ----------------------------------------------------

SPEC_FILES = {
    "customers": "customers.v3.yml",
    "subscribers": "subscribers.v3.yml",
    "orders": "orders.v2.oas2.yml",
    "scripts": "scripts.v3.yml",
    "webhooks": "webhooks.v3.yml",
    "carts": "carts.v3.yml",
    "catalog": "products_catalog.v3.yml",
}


def _patch_subscribers(spec: dict) -> None:
    params = spec["components"]["parameters"]
    # Defect listed in the specs' README: GET /customers/subscribers marks the `id` filter required;
    # it is optional (the list endpoint works without it).
    assert params["IdParam"]["name"] == "id" and params["IdParam"]["required"] is True, "spec changed: re-check"
    params["IdParam"]["required"] = False
    # Same family of defect, not in the README: `id:in` declares no style, so OpenAPI's default
    # (form, explode=true: id:in=4&id:in=5) applies, while its own description and the API use a
    # comma list (`id:in=4,5,6`), as customers.v3.yml declares with explode: false.
    assert "explode" not in params["IdInParam"], "spec changed: re-check"
    params["IdInParam"]["style"] = "form"
    params["IdInParam"]["explode"] = False


def _patch_orders(spec: dict) -> None:
    sort = spec["components"]["parameters"]["sort"]["schema"]
    # Defect listed in the specs' README: `sort` lists bare field names while the parameter's own
    # description and the docs allow `field:asc` / `field:desc`. Add the suffixed forms.
    assert "id" in sort["enum"] and "id:asc" not in sort["enum"], "spec changed: re-check"
    sort["enum"] = sort["enum"] + [f"{name}:{direction}" for name in sort["enum"] for direction in ("asc", "desc")]


PATCHES: dict[str, Callable[[dict], None]] = {"subscribers": _patch_subscribers, "orders": _patch_orders}


@functools.cache
def load_spec(name: str) -> tuple[dict, OpenAPI]:
    with open(spec_dir() / SPEC_FILES[name], encoding="utf-8") as handle:
        spec = yaml.safe_load(handle)
    spec = copy.deepcopy(spec)
    if name in PATCHES:
        PATCHES[name](spec)
    return spec, OpenAPI.from_dict(spec)


def deref(spec: dict, node: Any) -> Any:
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        assert ref.startswith("#/"), f"only local refs expected, got {ref}"
        node = spec
        for part in ref[2:].split("/"):
            node = node[part]
    return node


def declared_properties(spec: dict, schema: Any) -> set[str] | None:
    """Top-level property names a body schema declares (through $ref / allOf); None if free-form."""
    schema = deref(spec, schema)
    if not isinstance(schema, dict):
        return None
    names: set[str] = set(schema.get("properties", {}))
    for part in schema.get("allOf", []):
        more = declared_properties(spec, part)
        if more is None:
            return None
        names |= more
    if not names or schema.get("additionalProperties") not in (None, False):
        return None
    return names


# --- the validator ------------------------------------------------------------------------------

SPEC_BY_PREFIX = [  # longest prefix first: /v3/customers/subscribers before /v3/customers
    ("/v3/customers/subscribers", "subscribers"),
    ("/v3/customers", "customers"),
    ("/v2/orders", "orders"),
    ("/v3/content/scripts", "scripts"),
    ("/v3/hooks", "webhooks"),
    ("/v3/carts", "carts"),
    ("/v3/catalog/products", "catalog"),
]


def match_template(spec: dict, path: str) -> str:
    candidates = []
    for template in spec["paths"]:
        pattern = "^" + re.sub(r"\{[^/]+\}", "[^/]+", template) + "$"
        if re.match(pattern, path):
            candidates.append(template)
    assert candidates, f"no spec path matches {path}"
    return min(candidates, key=lambda t: t.count("{"))  # a literal segment wins over a variable


def assert_allowed_by_spec(request: requests.PreparedRequest) -> None:
    """Fail unless BigCommerce's spec allows this request."""
    url = urlsplit(request.url)
    found = re.fullmatch(rf"/stores/{STORE}(?P<api_path>/v[23]/.*)", url.path)
    assert found, f"not a store API URL: {url.path}"
    api_path = found["api_path"]
    name = next((n for prefix, n in SPEC_BY_PREFIX if api_path == prefix or api_path.startswith(prefix + "/")), None)
    assert name, f"no spec for {api_path}"
    spec, openapi = load_spec(name)

    # Types, enums, formats, required parameters, security and the body schema.
    openapi.validate_request(RequestsOpenAPIRequest(request))

    # openapi-core accepts query parameters the operation does not declare; BigCommerce may ignore
    # or reject them, so any we send must be declared.
    template = match_template(spec, api_path[3:])  # servers end in /v2 or /v3
    path_item = spec["paths"][template]
    operation = path_item[request.method.lower()]
    declared = {
        deref(spec, p)["name"]
        for p in path_item.get("parameters", []) + operation.get("parameters", [])
        if deref(spec, p)["in"] == "query"
    }
    query = parse_qs(url.query, keep_blank_values=True)
    assert set(query) <= declared, f"{request.method} {template}: undeclared query parameters {sorted(set(query) - declared)}"

    # The specs' README: date filters are meant as date-time (some parameters, like customers'
    # `date_modified:min` and orders' `min_date_modified`, are typed plain string): hold every date
    # filter we send to a full RFC 3339 timestamp.
    for name, values in query.items():
        if "date" in name:
            assert all(validate_rfc3339(v) for v in values), f"{name}={values} is not an RFC 3339 date-time"

    # OpenAPI 3 tells validators to ignore Accept/Content-Type parameters: check them here.
    assert request.headers.get("Accept") == "application/json"
    if request.body:
        assert request.headers.get("Content-Type") == "application/json"
        body = json.loads(request.body)
        schema = deref(spec, operation["requestBody"])["content"]["application/json"]["schema"]
        properties = declared_properties(spec, schema)
        if properties is not None and isinstance(body, dict):
            assert set(body) <= properties, f"{template}: undeclared body fields {sorted(set(body) - properties)}"
    else:
        assert "requestBody" not in operation or not deref(spec, operation["requestBody"]).get("required")
