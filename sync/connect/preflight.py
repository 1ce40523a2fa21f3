"""The preflight an operator runs against a real Ortto account before connecting a store:
`manage.py ortto_check` and the Ortto account admin's "Check against Ortto" action both call
ortto_account_check. It makes only the calls a connection makes (docs/ortto-contract.md), reads
before it writes, and creates nothing unless asked (apply=True)."""

from __future__ import annotations

from dataclasses import dataclass, field

from sync.connect.accounts import ortto_key_region_find
from sync.engine import mapping, organizations
from sync.models import OrttoAccount
from sync.ortto.client import (
    MAX_CUSTOM_FIELDS,
    OrttoAccountBlocked,
    OrttoAuthError,
    OrttoClient,
    OrttoError,
    api_base,
    computed_field_id,
    find_custom_field,
)
from sync.ortto.schema import ALL_SPECS


@dataclass
class PreflightReport:
    account: OrttoAccount
    lines: list[str] = field(default_factory=list)
    ready: bool = False
    verdict: str = ""


def ortto_account_find(*, reference: str) -> OrttoAccount | None:
    """An account by id, or else by instance name or business name (exactly one)."""
    if reference.isdigit():
        found = OrttoAccount.objects.filter(pk=int(reference)).first()
        if found:
            return found
    for lookup in ("name", "business_name"):
        matches = list(OrttoAccount.objects.filter(**{f"{lookup}__iexact": reference})[:2])
        if len(matches) == 1:
            return matches[0]
    return None


def ortto_account_check(*, account: OrttoAccount, apply: bool = False, client_for=None) -> PreflightReport:
    """Check the account's key and region, list the custom fields the bridge needs (existing or to be
    created), the activity definitions and the organizations' account fields; with apply=True create what is missing, as a connection
    would. Ends with a verdict: report.ready and report.verdict."""
    client_for = client_for or (lambda region: OrttoClient(api_key=account.api_key, region=region))
    report = PreflightReport(account=account)
    say = report.lines.append
    say(f"Ortto account: {account.business_name} ({account.name}), region {account.region} ({api_base(account.region)})")
    client = client_for(account.region)
    try:
        fields = client.custom_fields()
    except OrttoAccountBlocked as exc:
        return _verdict(report, False, f"Ortto refused access to the account ({exc.status}): it may have expired, "
                                       "been suspended or reached a plan limit. The key itself is fine.")
    except OrttoAuthError as exc:
        elsewhere = ortto_key_region_find(except_region=account.region, client_for=client_for)
        if elsewhere:
            return _verdict(report, False, f"the key is rejected in region {account.region} ({exc.status}) but "
                                           f"accepted in region {elsewhere}: fix the account's region.")
        return _verdict(report, False, f"Ortto rejected the API key ({exc.status}): copy the private key of the "
                                       "account's Custom API data source again.")
    except OrttoError as exc:
        return _verdict(report, False, f"Ortto could not be reached ({exc}). Try again later.")
    say(f"Key accepted; {len(fields)} custom person field(s) exist.")

    missing = []
    problems = []
    for name, field_type, _default in mapping.CUSTOM_FIELDS.values():
        found = find_custom_field(fields, name=name, field_type=field_type)
        wanted = computed_field_id(name=name, field_type=field_type)
        if found is None:
            missing.append((name, field_type))
            say(f"  field {name!r}: will be created as {wanted}")
        elif found.split(":", 1)[0] != wanted.split(":", 1)[0]:
            problems.append(f"field {name!r} exists as {found}, not of type {field_type}")
            say(f"  field {name!r}: exists as {found} — wrong type, expected {wanted}")
        else:
            say(f"  field {name!r}: exists ({found})")
    if len(fields) + len(missing) > MAX_CUSTOM_FIELDS:
        problems.append(f"the account would need {len(fields) + len(missing)} custom fields; Ortto allows "
                        f"{MAX_CUSTOM_FIELDS}")
    definitions = [mapping.placed_order_definition()] + [spec.definition() for spec in ALL_SPECS]
    for definition in definitions:
        say(f"  activity {definition['name']!r} (icon {definition['icon_id']}): Ortto cannot list definitions; "
            "it is created on connect and an existing one is used as is.")
    for name, field_type in organizations.AGGREGATE_FIELDS.values():
        say(f"  organization field {name!r} ({field_type}): created by the first run that meets a company; "
            "an existing one is used as is.")
    if problems:
        return _verdict(report, False, "; ".join(problems) + ".")

    if not apply:
        todo = f"{len(missing)} field(s) and the activity definitions will be created on connect" if missing else \
            "every field exists; the activity definitions are created on connect if missing"
        return _verdict(report, True, f"{todo}. Nothing was changed (run with --apply to create them now).")
    try:
        for name, field_type in missing:
            field_id = client.create_custom_field(name=name, field_type=field_type, existing=fields)
            say(f"  created field {name!r}: {field_id}")
        say(f"  activity definition 'Placed order' ready: "
            f"{client.create_activity_definition(mapping.placed_order_definition())}")
        for spec in ALL_SPECS:
            answer = client.activity_definition_create(spec.definition(), fallback_icons=spec.fallback_icons())
            say(f"  activity definition {spec.name!r} ready: {answer.activity_id} (icon {answer.icon_id})")
        for name, field_type in organizations.AGGREGATE_FIELDS.values():
            field_id = client.create_account_field(name=name, field_type=field_type)
            say(f"  organization field {name!r} ready: {field_id}")
    except OrttoError as exc:
        return _verdict(report, False, f"Ortto refused to create the schema: {exc}")
    return _verdict(report, True, "fields, activity definitions and organization fields are in place.")


def _verdict(report: PreflightReport, ready: bool, text: str) -> PreflightReport:
    report.ready = ready
    report.verdict = f"{'READY' if ready else 'NOT READY'}: {text}"
    return report
