"""The emulated Ortto's accounts (formerly "organizations"): merge, linking people, custom account fields.

Contract (docs/ortto-contract.md ("Organizations") has the sources):
- `POST /v1/accounts/merge` {"accounts": [{"fields"}] (1-100), "merge_by": ["str:o:name"], "merge_strategy",
  "find_strategy", "async"} → {"accounts": [{"account_id", "status": "created"|"merged"}]}, one per input,
  in order; an unusable item is {"status": "invalid", "error"}; none usable → 400. Under strategy 3 an
  existing account is answered as the instance's `account_ignore_status` says (no public record).
  https://help.ortto.com/a-278-create-or-update-one-or-more-organizations-merge ; recorded responses
  phpdevkits/ortto-sdk tests/Fixtures/Saloon/accounts/merge_accounts_{create,merge}.json
- `PUT /v1/accounts/contacts/add` and `/remove` {"inclusion_ids": [person ids], "account_id"} → `{}`;
  at most 3,000 people per account. https://help.ortto.com/a-280-manage-organization-association-add-remove ,
  https://help.ortto.com/a-231-adding-and-removing-people-from-organizations ; recorded `{}`:
  phpdevkits/ortto-sdk tests/Fixtures/Saloon/accounts/add_contacts_to_account.json
- `POST /v1/accounts/custom-field/create` {"name","type"} → {"name","field_id":"<prefix>:oc:<kebab>","display_type"}
  (recorded: phpdevkits/ortto-sdk tests/Fixtures/Saloon/accounts/custom-field/create.json); exists → 409.
"""

from django.utils import timezone

from . import schema
from .engine import bad_request, error_body
from .models import Account, AccountCustomField, Person

MAX_ACCOUNTS = 100
MAX_PEOPLE_PER_ACCOUNT = 3000
NAME_FIELD = "str:o:name"

# Built-in account fields (the merge page's example body) with the labels the account pages show.
BUILTIN_ACCOUNT_FIELDS = {
    "str:o:name": "Name",
    "int:o:employees": "Employees",
    "str:o:industry": "Industry",
    "str:o:website": "Website",
    "str:o:address": "Address",
    "geo:o:city": "City",
    "geo:o:region": "Region",
    "geo:o:country": "Country",
    "str:o:postal": "Postal code",
    "str:o:source": "Source",
}


def account_field_ids(instance) -> frozenset:
    custom = AccountCustomField.objects.filter(instance=instance).values_list("field_id", flat=True)
    return frozenset(BUILTIN_ACCOUNT_FIELDS) | frozenset(custom)


def _problem(fields, known) -> str | None:
    if not isinstance(fields, dict):
        return "fields must be an object"
    for field_id, value in fields.items():
        if field_id not in known:
            return schema.unknown_field_error(field_id)
        problem = schema.value_error(field_id, value)
        if problem:
            return problem
    name = fields.get(NAME_FIELD)
    if not isinstance(name, str) or not name.strip():
        return f"{NAME_FIELD} is required to merge an account"
    return None


def _apply(account: Account, fields: dict, strategy: int) -> bool:
    """Ortto's merge strategies, as for people: 1 fills absent/empty fields, 2 overwrites (null clears), 3 none."""
    changed = False
    for field_id, value in fields.items():
        current = account.fields.get(field_id)
        if strategy == 1 and current not in (None, ""):
            continue
        if strategy == 3:
            continue
        if value is None:
            if field_id in account.fields:
                del account.fields[field_id]
                changed = True
        elif current != value:
            account.fields[field_id] = value
            changed = True
    return changed


def accounts_merge(instance, body: dict):
    items = body.get("accounts")
    if not isinstance(items, list) or not items:
        return bad_request("accounts must be a non-empty list")
    if len(items) > MAX_ACCOUNTS:
        return bad_request(f"at most {MAX_ACCOUNTS} accounts per request, got {len(items)}")
    merge_by = body.get("merge_by") if body.get("merge_by") is not None else [NAME_FIELD]
    if merge_by != [NAME_FIELD]:
        # Only the name is emulated as an account merge key.
        return bad_request(f'merge_by must be ["{NAME_FIELD}"] in the sandbox')
    strategy = body.get("merge_strategy", 2)
    if strategy not in (1, 2, 3):
        return bad_request("merge_strategy must be 1, 2 or 3")
    known = account_field_ids(instance)
    names = [i.get("fields", {}).get(NAME_FIELD) for i in items if isinstance(i, dict) and isinstance(i.get("fields"), dict)]
    existing = {a.name: a for a in Account.objects.filter(instance=instance, name__in=[n for n in names if isinstance(n, str)])}
    results, details, now = [], [], timezone.now()
    for item in items:
        fields = item.get("fields") if isinstance(item, dict) else None
        problem = _problem(fields, known)
        if problem:
            results.append({"status": "invalid", "error": problem})
            details.append({"status": "invalid", "error": problem})
            continue
        name = fields[NAME_FIELD]
        account = existing.get(name)
        if account is None:
            account = Account.objects.create(instance=instance, name=name,
                                             fields={k: v for k, v in fields.items() if v is not None})
            existing[name] = account
            results.append({"account_id": account.account_id, "status": "created"})
            continue
        if _apply(account, fields, strategy):
            account.updated_at = now
            account.save(update_fields=["fields", "updated_at"])
        if strategy != 3 or instance.account_ignore_status == "merged":
            results.append({"account_id": account.account_id, "status": "merged"})
        elif instance.account_ignore_status == "ignored-no-id":
            # What Ortto answers under Ignore for an account it has is not public: the instance says.
            results.append({"status": "ignored"})
        elif instance.account_ignore_status == "none":
            results.append({"account_id": account.account_id})
        else:
            results.append({"account_id": account.account_id, "status": instance.account_ignore_status})
    if not any(r.get("account_id") or r.get("status") == "ignored" for r in results):
        return 400, {**error_body(400, f"No valid accounts provided ({details[0]['error']})"), "details": details}
    return 200, {"accounts": results}


def _membership_request(instance, body: dict):
    account_id = body.get("account_id")
    ids = body.get("inclusion_ids")
    if not isinstance(account_id, str) or not account_id:
        return None, None, bad_request("account_id is required")
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
        return None, None, bad_request("inclusion_ids must be a non-empty list of person ids")
    account = Account.objects.filter(instance=instance, account_id=account_id).first()
    if account is None:
        return None, None, bad_request(f"account {account_id} not found")
    people = list(Person.objects.filter(instance=instance, person_id__in=ids))
    if not people:
        return None, None, bad_request("none of inclusion_ids is a known person")
    return account, people, None


def accounts_contacts_add(instance, body: dict):
    account, people, problem = _membership_request(instance, body)
    if problem:
        return problem
    current = set(account.people.values_list("pk", flat=True))
    new = [p for p in people if p.pk not in current]
    if len(current) + len(new) > MAX_PEOPLE_PER_ACCOUNT:
        return bad_request(f"an account holds at most {MAX_PEOPLE_PER_ACCOUNT} people")
    account.people.add(*new)
    return 200, {}


def accounts_contacts_remove(instance, body: dict):
    account, people, problem = _membership_request(instance, body)
    if problem:
        return problem
    members = set(account.people.values_list("pk", flat=True))
    absent = [p for p in people if p.pk not in members]
    if absent and instance.remove_absent == "refuse":
        # Whether Ortto refuses to remove someone who is not in the account is not public: the emulator can.
        return bad_request(f"person {absent[0].person_id} is not a member of account {account.account_id}")
    account.people.remove(*people)
    return 200, {}


def account_custom_field_create(instance, body: dict):
    name = body.get("name")
    field_type = body.get("type")
    if not isinstance(name, str) or not schema.kebab(name):
        return bad_request("name is required")
    if field_type not in schema.CUSTOM_FIELD_PREFIXES:
        return bad_request(f"unknown type {field_type!r}; one of {', '.join(schema.CUSTOM_FIELD_PREFIXES)}")
    field_id = f"{schema.CUSTOM_FIELD_PREFIXES[field_type]}:oc:{schema.kebab(name)}"
    fields = AccountCustomField.objects.filter(instance=instance)
    if fields.filter(field_id=field_id).exists():
        return 409, error_body(409, f"custom field {field_id} already exists")
    if fields.count() >= schema.MAX_CUSTOM_FIELDS:
        return bad_request(f"custom field limit reached ({schema.MAX_CUSTOM_FIELDS})")
    AccountCustomField.objects.create(instance=instance, field_id=field_id, name=name.strip(), display_type=field_type)
    return 200, {"name": name.strip(), "field_id": field_id, "display_type": field_type}


def account_custom_field_get(instance, body: dict):
    return 200, {"fields": [
        {"field": {"id": f.field_id, "name": f.name, "display_type": f.display_type}}
        for f in AccountCustomField.objects.filter(instance=instance)
    ]}


ENDPOINTS = {
    "accounts/merge": accounts_merge,
    "accounts/contacts/add": accounts_contacts_add,
    "accounts/contacts/remove": accounts_contacts_remove,
    "accounts/custom-field/create": account_custom_field_create,
    "accounts/custom-field/get": account_custom_field_get,
}
# Ortto documents the membership calls as PUT; everything else is POST.
METHODS = {"accounts/contacts/add": "PUT", "accounts/contacts/remove": "PUT"}
