"""Organizations: the store's companies become Ortto accounts (Ortto's API name; formerly "organizations").

Where a company comes from (pure, see `customer_company` / `guest_order_company`): the customer's
`company`, else the company on the customer's first address that has one (v3 customers carry no default
flag; the bridge reads them with `include=addresses`), else, for a guest order (customer_id 0), the
billing address's company; once the customer's own field has named the company, a blank one means cleared
(`cleared_companies`: addresses keep the company they were entered with). Names are normalized
(`clean_company_name`, `company_key`) so "ACME Ltd" and "Acme  Ltd " are one organization per store.

How it reaches Ortto (docs/ortto-contract.md ("Organizations") has every source):
- pages only record who belongs where (`members_commit`, in the page's transaction; no HTTP);
- at the end of a run `organizations_flush` sends what changed in merges of 100 by name
  (`POST /v1/accounts/merge`, merge_by `str:o:name`; `plan_organization_merges`: what the store says of a
  company follows the Merge page's strategy, the bridge's counts are overwritten as people's order
  aggregates are), then moves people whose company changed:
  one `PUT /v1/accounts/contacts/remove` per organization that loses people and one
  `PUT /v1/accounts/contacts/add` per organization that gains people (the add call takes one account and
  a list of person ids, so that is the fewest the API allows);
- everything it learned (account ids, fingerprints, links) is committed in one transaction after the
  calls. Re-sending after a crash is harmless: merges go by name, adding a member twice changes nothing.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
from collections import Counter
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone
from django.utils.html import strip_tags

from sync.db import rows_update
from sync.engine import mapping
from sync.engine.batches import send_resolving
from sync.engine.context import send_all
from sync.engine.orders import records
from sync.models import Connection, MergeStrategy, OrganizationLedger, OrganizationMember, PersonLedger, SyncEvent
from sync.ortto.client import OrttoRequestError

MERGE_BATCH = 100  # accounts per /v1/accounts/merge (Ortto: ≤100 records per payload)
# "You can add up to 3000 people per account" (https://help.ortto.com/a-231-adding-and-removing-people-from-organizations).
MAX_PEOPLE_PER_ACCOUNT = 3000
NAME_LIMIT = mapping.STRING_LIMIT  # Ortto string fields: 255 unicode characters (help.ortto.com/a-235-rate-limits)
NONE_NAMES = {"n/a", "na", "none", "-"}
# Free mail providers: their domain says nothing about the company.
WEBMAIL_DOMAINS = {
    "gmail.com", "googlemail.com", "yahoo.com", "hotmail.com", "outlook.com", "live.com", "msn.com", "aol.com",
    "icloud.com", "me.com", "mail.com", "gmx.com", "gmx.de", "web.de", "proton.me", "protonmail.com",
    "yandex.com", "qq.com", "163.com", "example.com", "example.org", "example.net",
}
# Custom account fields the bridge creates (ids "<prefix>:oc:<kebab name>").
AGGREGATE_FIELDS = {"buyers": ("Buyers", "integer"), "orders": ("Orders", "integer"),
                    "total_spent": ("Total spent", "currency")}
DEFAULT_AGGREGATE_IDS = {"buyers": "int:oc:buyers", "orders": "int:oc:orders", "total_spent": "int:oc:total-spent"}
SCHEMA_KEY = "organization_fields"
# An organization's counter when it had several merges in one run: the highest of these wins.
OUTCOME_RANK = ("unchanged", "updated", "created", "failed")
# How an accounts merge answers one account. Recorded: "created" and "merged", each with the account id
# (docs/ortto-contract.md, "Organizations"); what strategy 3 (Ignore) answers for an account Ortto already
# has is not public. Any other status without an error ("ignored", "unchanged", ...), or the id alone, is an
# account Ortto has; these statuses are refusals.
REFUSED_ACCOUNT_STATUSES = {"invalid", "error", "failed", "rejected"}
# A merge that only names the account (Append only, the name alone): it writes nothing to an account that
# exists, and its answer carries the account id when the first merge's did not.
LOOKUP = "lookup"


def account_accepted(answer: dict) -> bool:
    """Ortto has the account, whatever the wording of the answer."""
    if answer.get("error") or answer.get("status") in REFUSED_ACCOUNT_STATUSES:
        return False
    return bool(answer.get("status") or answer.get("account_id"))

_SPACES = re.compile(r"\s+")
_WORD = re.compile(r"\w")


# --- Normalization (pure) --------------------------------------------------------------------------


def clean_company_name(value) -> str:
    """The company name to show: markup removed, spaces collapsed, at most Ortto's 255 characters;
    "" when there is no company (blank, "n/a", "-", or no letter or digit at all)."""
    if not isinstance(value, str):
        return ""
    text = html.unescape(strip_tags(value))
    text = _SPACES.sub(" ", text).strip()
    if text.casefold() in NONE_NAMES or not _WORD.search(text):
        return ""
    return text[:NAME_LIMIT].rstrip()


def company_key(name: str) -> str:
    """One key per company per store: case and spacing do not make a second organization. Cut again
    after case folding, which can lengthen a name ("ß" → "ss") past the column's 255 characters."""
    return _key(clean_company_name(name))


def _key(clean_name: str) -> str:
    return clean_name.casefold()[:NAME_LIMIT]


def email_domain(email: str) -> str:
    domain = mapping.clean_email(email).rpartition("@")[2]
    return "" if not domain or domain in WEBMAIL_DOMAINS else domain[:NAME_LIMIT]


CUSTOMER, ADDRESS, ORDER = "customer", "address", "order"  # where a company came from (OrganizationMember.source)


@dataclass(frozen=True)
class Company:
    key: str
    name: str
    fields: dict = field(default_factory=dict)  # what the record says of the company (no name, no aggregates)
    source: str = ""  # CUSTOMER, ADDRESS or ORDER


def _address_fields(*, address1="", address2="", city="", region="", country="", postal="") -> dict:
    fields = {}
    street = _SPACES.sub(" ", f"{address1 or ''} {address2 or ''}").strip()
    if street:
        fields["str:o:address"] = street[:NAME_LIMIT]
    for field_id, value in (("geo:o:city", city), ("geo:o:region", region), ("geo:o:country", country)):
        if value and str(value).strip():
            fields[field_id] = {"name": str(value).strip()[:NAME_LIMIT]}
    if postal and str(postal).strip():
        fields["str:o:postal"] = str(postal).strip()[:NAME_LIMIT]
    return fields


def _company(name: str, email: str, address: dict, *, source: str) -> Company | None:
    clean = clean_company_name(name)
    if not clean:
        return None
    fields = dict(address)
    domain = email_domain(email)
    if domain:
        fields["str:o:website"] = domain
    return Company(key=_key(clean), name=clean, fields=fields, source=source)


def customer_company(customer: dict) -> Company | None:
    """The customer's company, else the first address's that has one; None when the store names none."""
    addresses = [a for a in customer.get("addresses") or [] if isinstance(a, dict)]
    name, address, source = customer.get("company"), addresses[0] if addresses else {}, CUSTOMER
    if not clean_company_name(name):
        address = next((a for a in addresses if clean_company_name(a.get("company"))), {})
        name, source = address.get("company"), ADDRESS
    return _company(name, customer.get("email") or "", source=source, address=_address_fields(
        address1=address.get("address1"), address2=address.get("address2"), city=address.get("city"),
        region=address.get("state_or_province"), country=address.get("country"), postal=address.get("postal_code")))


def guest_order_company(order: dict) -> Company | None:
    """A guest order's billing company; registered customers' companies come from their customer record."""
    if order.get("customer_id"):
        return None
    billing = order.get("billing_address") or {}
    return _company(billing.get("company"), billing.get("email") or "", source=ORDER, address=_address_fields(
        address1=billing.get("street_1"), address2=billing.get("street_2"), city=billing.get("city"),
        region=billing.get("state"), country=billing.get("country"), postal=billing.get("zip")))


def merged_source_fields(old: dict, new: dict) -> dict:
    """What a record says of its company fills what the bridge does not know yet; known values stay.
    Members of one company have different addresses and email domains: taking the latest would make
    the organization flip (and cost a merge) whenever any of its people is read again."""
    return {**new, **old}


def organization_fields(*, name: str, source_fields: dict, buyers: int, orders: int, total_spent,
                        field_ids: dict | None = None) -> dict:
    return {**store_fields(name=name, source_fields=source_fields),
            **aggregate_fields(name=name, buyers=buyers, orders=orders, total_spent=total_spent, field_ids=field_ids)}


def store_fields(*, name: str, source_fields: dict) -> dict:
    """What the store says of the company: the Merge page's strategy applies to these."""
    return {"str:o:name": name, **source_fields}


def aggregate_fields(*, name: str, buyers: int, orders: int, total_spent, field_ids: dict | None = None) -> dict:
    """The bridge's own counts (custom account fields): overwritten, as people's order aggregates are."""
    ids = field_ids or DEFAULT_AGGREGATE_IDS
    return {
        "str:o:name": name,
        ids["buyers"]: int(buyers),
        ids["orders"]: int(orders),
        ids["total_spent"]: mapping.money_to_int(total_spent),
    }


@dataclass
class OrganizationState:
    """One organization as merge planning needs it: what the store says now and what Ortto last took."""

    pk: int
    known: bool  # Ortto gave it an account id
    created_in_ortto: bool
    store: dict  # store_fields()
    aggregates: dict  # aggregate_fields()
    store_fingerprint: str = ""
    aggregates_fingerprint: str = ""


@dataclass
class OrganizationMerge:
    strategy: int
    pk: int
    fields: dict
    parts: tuple  # ("store",), ("aggregates",) or both


def plan_organization_merges(states: list[OrganizationState], *, connection_strategy: int) -> list[OrganizationMerge]:
    """The first round of account merges (pure). A new organization is one merge with all its fields and
    the connection's strategy; a known one sends only the part that changed: its store fields with the
    strategy (`merge_strategy_for`; Ignore never touches one that existed before the bridge), its counts
    with Overwrite. Both parts under Overwrite share one merge. Unchanged organizations cost nothing."""
    merges = []
    for state in states:
        if not state.known and state.store_fingerprint and (
                fingerprint(state.store), fingerprint(state.aggregates)) == (
                state.store_fingerprint, state.aggregates_fingerprint):
            # Ortto took it (an earlier answer without the account id) and nothing changed since: only its
            # id is still needed, for the links.
            merges.append(lookup_merge(state))
            continue
        if not state.known:
            merges.append(OrganizationMerge(connection_strategy, state.pk, {**state.store, **state.aggregates},
                                            ("store", "aggregates")))
            continue
        strategy = merge_strategy_for(connection_strategy=connection_strategy, known=True,
                                      created_in_ortto=state.created_in_ortto)
        if strategy is None:
            continue
        store_changed = fingerprint(state.store) != state.store_fingerprint
        counts_changed = fingerprint(state.aggregates) != state.aggregates_fingerprint
        if store_changed and counts_changed and strategy == MergeStrategy.OVERWRITE:
            merges.append(OrganizationMerge(strategy, state.pk, {**state.store, **state.aggregates},
                                            ("store", "aggregates")))
            continue
        if store_changed:
            merges.append(OrganizationMerge(strategy, state.pk, state.store, ("store",)))
        if counts_changed:
            merges.append(OrganizationMerge(MergeStrategy.OVERWRITE, state.pk, state.aggregates, ("aggregates",)))
    return merges


def lookup_merge(state: OrganizationState) -> OrganizationMerge:
    """Ask for an account's id by merging its name alone under Append only: the name is the merge key, so an
    existing account gets nothing written (a-278: Append only fills empty fields only)."""
    return OrganizationMerge(MergeStrategy.APPEND_ONLY, state.pk, {"str:o:name": state.store["str:o:name"]},
                             (LOOKUP,))


def plan_counts_overwrite(merge: OrganizationMerge, answer: dict, state: OrganizationState, *,
                          connection_strategy: int) -> OrganizationMerge | None:
    """Append only: a new-to-the-bridge organization that Ortto already had kept its old counts; they are
    the bridge's, so overwrite them (a second round, as for people found in Ortto). Ignore leaves it alone."""
    if (account_accepted(answer) and answer.get("status") != "created" and "aggregates" in merge.parts and merge.strategy == MergeStrategy.APPEND_ONLY
            and not state.known and connection_strategy == MergeStrategy.APPEND_ONLY):
        return OrganizationMerge(MergeStrategy.OVERWRITE, state.pk, state.aggregates, ("aggregates",))
    return None


def fingerprint(fields: dict) -> str:
    return hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()


def merge_strategy_for(*, connection_strategy: int, known: bool, created_in_ortto: bool) -> int | None:
    """The Merge page's strategy, as for people: Append only fills empty fields, Overwrite replaces them,
    Ignore creates new organizations and never changes one that existed in Ortto before the bridge (those
    it created itself get their later data appended). None: no call."""
    if connection_strategy != MergeStrategy.IGNORE or not known:
        return connection_strategy
    return MergeStrategy.APPEND_ONLY if created_in_ortto else None


def chunks(items: list, size: int):
    for start in range(0, len(items), size):
        yield items[start:start + size]


# --- Pages: who belongs where (no HTTP) ------------------------------------------------------------


def customer_members(customers: list[dict], sent_emails) -> dict:
    """email → Company (or None: the customer names no company now) for the customers sent to Ortto."""
    members = {}
    for customer in customers:
        email = mapping.clean_email(customer.get("email"))
        if email and email in sent_emails:
            members[email] = customer_company(customer)
    return members


def guest_order_members(orders: list[dict], sent_emails) -> dict:
    """email → Company for guest orders with a billing company (an order without one changes nothing)."""
    members = {}
    for order in orders:
        company = guest_order_company(order)
        email = records.order_email(order)
        if company and email in sent_emails:
            members[email] = company
    return members


def cleared_companies(members: dict, sources: dict) -> dict:
    """`members` with the companies a customer cleared taken out (pure): a customer whose own company field
    named their company (`sources[email]` is CUSTOMER) and is now blank has no company, even where an
    address still names one (addresses keep the company they were entered with)."""
    return {email: None if company is not None and company.source == ADDRESS and sources.get(email) == CUSTOMER
            else company for email, company in members.items()}


def members_commit(*, connection, members: dict) -> None:
    """Record a page's companies and memberships (inside the page's transaction)."""
    if not members:
        return
    existing = {m.email: m for m in OrganizationMember.objects.filter(connection=connection, email__in=members)}
    members = cleared_companies(members, {email: row.source for email, row in existing.items()})
    companies: dict[str, Company] = {}
    for company in members.values():
        if company is not None:
            known = companies.get(company.key)
            companies[company.key] = company if known is None else Company(
                company.key, known.name, merged_source_fields(known.fields, company.fields), company.source)
    organizations = {o.key: o for o in OrganizationLedger.objects.filter(connection=connection, key__in=companies)}
    changed = []
    for key, company in companies.items():
        row = organizations.get(key)
        if row is None:
            organizations[key] = OrganizationLedger.objects.create(
                connection=connection, key=key, name=company.name, source_fields=company.fields)
            continue
        merged = merged_source_fields(row.source_fields or {}, company.fields)
        if merged != row.source_fields:
            row.source_fields = merged
            changed.append(row)
    rows_update(OrganizationLedger, changed, ["source_fields"])

    new_rows, moved = [], []
    for email, company in members.items():
        organization = organizations[company.key] if company else None
        row = existing.get(email)
        if row is None:
            if organization is not None:
                new_rows.append(OrganizationMember(connection=connection, email=email, organization=organization,
                                                   source=company.source))
            continue
        # A cleared company keeps its source: the customer's own field stays the one that counts.
        source = company.source if company else row.source
        if row.organization_id != (organization.pk if organization else None) or row.source != source:
            row.organization, row.source = organization, source
            moved.append(row)
    OrganizationMember.objects.bulk_create(new_rows)
    rows_update(OrganizationMember, moved, ["organization", "source"])


# --- End of run: organizations and links to Ortto --------------------------------------------------


@dataclass
class FlushResult:
    counters: dict = field(default_factory=lambda: dict(fetched=0, created=0, updated=0, unchanged=0, failed=0))
    organizations: list = field(default_factory=list)  # OrganizationLedger rows changed
    members: list = field(default_factory=list)  # OrganizationMember rows whose link changed
    events: list = field(default_factory=list)
    schema: dict | None = None  # the connection's organization field ids, when just created


def organization_field_ids(ctx) -> tuple[dict, dict | None]:
    """The custom account field ids of the connection, creating the fields the first time (or taking them from
    another connection on the same Ortto account, which created them: no "already exists" 4xx then)."""
    known = (ctx.connection.ortto_schema or {}).get(SCHEMA_KEY)
    if known:
        return known, None
    siblings = (Connection.objects.filter(account_id=ctx.connection.account_id)
                .exclude(pk=ctx.connection.pk).order_by("-pk").values_list("ortto_schema", flat=True))
    lent = next((schema[SCHEMA_KEY] for schema in siblings if (schema or {}).get(SCHEMA_KEY)), None)
    if lent:
        return lent, lent
    ids = {key: ctx.ortto.create_account_field(name=name, field_type=field_type)
           for key, (name, field_type) in AGGREGATE_FIELDS.items()}
    return ids, ids


def _aggregates(connection, members: list[OrganizationMember]) -> tuple[dict, dict]:
    """Per organization id: (buyers, orders, total spent) of its members; and email → Ortto person id."""
    # A subquery, not a list of emails: a big B2B store has more members than SQLite allows parameters.
    member_emails = OrganizationMember.objects.filter(connection=connection).values("email")
    ledger = {row[0]: row[1:] for row in PersonLedger.objects.filter(
        connection=connection, email__in=member_emails
    ).values_list("email", "ortto_person_id", "order_count", "total_spent")}
    totals: dict[int, list] = {}
    for member in members:
        if member.organization_id is None or member.email not in ledger:
            continue
        _, order_count, total_spent = ledger[member.email]
        entry = totals.setdefault(member.organization_id, [0, 0, 0])
        entry[0] += 1 if order_count else 0
        entry[1] += order_count or 0
        entry[2] += total_spent or 0
    return totals, {email: values[0] for email, values in ledger.items()}


def _event(ctx, message: str, *, email: str = "") -> SyncEvent:
    return SyncEvent(run=ctx.run, resource="organizations", email=email[:255], message=message[:2000],
                     level=SyncEvent.Level.ERROR)


def organizations_push(ctx) -> FlushResult:
    """Send changed organizations and move changed memberships (HTTP only; nothing is written).

    The independent calls of one step go out together on the run's pool (context.send_all, up to
    ORTTO_CONCURRENCY in flight). Removals all finish before any addition starts."""
    result = FlushResult()
    connection = ctx.connection
    organizations = {o.pk: o for o in OrganizationLedger.objects.filter(connection=connection)}
    if not organizations:
        return result
    members = list(OrganizationMember.objects.filter(connection=connection))
    totals, person_ids = _aggregates(connection, members)
    field_ids, result.schema = organization_field_ids(ctx)

    # 1. Merges: only what changed since Ortto last took it, 100 per call, a wave per strategy.
    now = timezone.now()
    states: dict[int, OrganizationState] = {}
    for org in organizations.values():
        if org.pk not in totals and not org.ortto_account_id:
            continue  # no member sent to Ortto (yet): nothing to show
        buyers, orders, spent = totals.get(org.pk, (0, 0, 0))
        states[org.pk] = OrganizationState(
            pk=org.pk, known=bool(org.ortto_account_id), created_in_ortto=org.created_in_ortto,
            store=store_fields(name=org.name, source_fields=org.source_fields or {}),
            aggregates=aggregate_fields(name=org.name, buyers=buyers, orders=orders, total_spent=spent,
                                        field_ids=field_ids),
            store_fingerprint=org.fingerprint, aggregates_fingerprint=org.aggregates_fingerprint)
    result.counters["fetched"] = len(states)
    outcome: dict[int, str] = {}  # pk -> created | updated | failed
    pending = plan_organization_merges(list(states.values()), connection_strategy=connection.merge_strategy)
    while pending:
        by_strategy: dict[int, list[OrganizationMerge]] = {}
        for merge in pending:
            by_strategy.setdefault(merge.strategy, []).append(merge)
        batches = [(strategy, batch) for strategy, merges in sorted(by_strategy.items())
                   for batch in chunks(merges, MERGE_BATCH)]
        # Calls of one strategy run together; two calls about one account never do (group_of).
        all_answers = send_all(
            lambda ctx, job: _merge_safely(ctx, [{"fields": m.fields} for m in job[1]], job[0]), ctx, batches,
            group_of=lambda job: job[0])
        pending = []
        for (_, batch), answers in zip(batches, all_answers):
            for merge, answer in zip(batch, answers):
                org, state = organizations[merge.pk], states[merge.pk]
                if not account_accepted(answer):
                    outcome[org.pk] = "failed"  # the highest rank: stays failed whatever else went through
                    result.events.append(_event(ctx, f"Ortto refused the organization {org.name!r}: "
                                                     f"{answer.get('error') or answer.get('status') or 'no detail'}"))
                    continue
                follow_up = plan_counts_overwrite(merge, answer, state, connection_strategy=connection.merge_strategy)
                if follow_up:
                    pending.append(follow_up)
                created = answer.get("status") == "created" and not state.known
                # Ignore (3) leaves an organization Ortto already had as it was; a lookup writes nothing.
                kind = ("created" if created else "unchanged"
                        if merge.strategy == MergeStrategy.IGNORE or LOOKUP in merge.parts else "updated")
                outcome[org.pk] = max(outcome.get(org.pk, "unchanged"), kind, key=OUTCOME_RANK.index)
                org.created_in_ortto = org.created_in_ortto or created
                if answer.get("account_id"):
                    org.ortto_account_id = answer["account_id"]
                elif LOOKUP not in merge.parts and not org.ortto_account_id:
                    pending.append(lookup_merge(state))  # Ortto took it without naming it: ask for the id
                elif not org.ortto_account_id:
                    result.events.append(SyncEvent(
                        run=ctx.run, resource="organizations", level=SyncEvent.Level.INFO, message=(
                            f"Ortto took the organization {org.name!r} without giving its account id "
                            f"({answer.get('status') or 'no status'}): its people are linked by a later run "
                            f"that gets the id.")[:2000]))
                if "store" in merge.parts:
                    org.fingerprint = fingerprint(state.store)
                if "aggregates" in merge.parts and not follow_up:
                    org.aggregates_fingerprint = fingerprint(state.aggregates)
                org.synced_at = now
                result.organizations.append(org)
    result.organizations = list({org.pk: org for org in result.organizations}.values())
    for pk in states:
        result.counters[outcome.get(pk, "unchanged")] += 1

    # 2. Links: one remove per organization losing people, then one add per organization gaining people.
    removals: dict[int, list] = {}
    additions: dict[int, list] = {}
    for member in members:
        if member.organization_id == member.linked_organization_id or not person_ids.get(member.email):
            continue
        old = organizations.get(member.linked_organization_id)
        new = organizations.get(member.organization_id)
        if new is not None and not new.ortto_account_id:
            continue  # its organization did not reach Ortto: try again next run
        if old is not None and old.ortto_account_id:
            removals.setdefault(old.pk, []).append(member)
        elif new is None:
            member.linked_organization = None
            result.members.append(member)
        if new is not None:
            additions.setdefault(new.pk, []).append(member)
    done_removing = set()
    jobs = [(organizations[org_id], group) for org_id, group in removals.items()]
    for (org, group), error in zip(jobs, send_all(
            lambda ctx, job: _link(ctx, job[0], job[1], person_ids, add=False), ctx, jobs)):
        if error:
            result.events.append(_event(ctx, error))
        else:
            done_removing.update(m.pk for m in group)
    # Ortto holds at most MAX_PEOPLE_PER_ACCOUNT people per account: count who is linked after the removals,
    # and leave the people beyond the cap unlinked (no call Ortto would refuse), with a warning.
    linked = Counter(m.linked_organization_id for m in members if m.linked_organization_id is not None)
    for group in removals.values():
        linked.subtract(m.linked_organization_id for m in group if m.pk in done_removing)
    jobs = []
    for org_id, group in additions.items():
        ready = [m for m in group if m.linked_organization_id is None or m.pk in done_removing]
        room = max(MAX_PEOPLE_PER_ACCOUNT - linked[org_id], 0)
        if len(ready) > room:
            org, left = organizations[org_id], len(ready) - room
            result.counters["not_linked"] = result.counters.get("not_linked", 0) + left
            result.events.append(SyncEvent(
                run=ctx.run, resource="organizations", level=SyncEvent.Level.WARNING, message=(
                    f"{org.name!r} has {linked[org_id] + room:,} people linked in Ortto, Ortto's limit of "
                    f"{MAX_PEOPLE_PER_ACCOUNT:,} per organization: {left:,} more not linked.")[:2000]))
            ready = ready[:room]
        if ready:
            jobs.append((organizations[org_id], ready))
    for (org, ready), error in zip(jobs, send_all(
            lambda ctx, job: _link(ctx, job[0], job[1], person_ids, add=True), ctx, jobs)):
        if error:
            result.events.append(_event(ctx, error))
            continue
        for member in ready:
            member.linked_organization_id = org.pk
            result.members.append(member)
    for org_id, group in removals.items():
        for member in group:
            if member.organization_id is None and member.pk in done_removing:
                member.linked_organization = None
                result.members.append(member)
    return result


def _merge_safely(ctx, accounts: list[dict], strategy: int) -> list[dict]:
    """One merge; a refused batch costs a few requests, not one per organization (sync/engine/batches.py:
    Ortto bans the calling IP after 15 bad requests in 15 s)."""
    return send_resolving(lambda batch: ctx.ortto.merge_accounts(batch, merge_strategy=strategy), accounts,
                          log=ctx.log, what="accounts merge",
                          missing={"status": "error", "error": "missing from Ortto's answer"})


# How a removal may say that the link it undoes is not there (the person, the account or the membership):
# Ortto documents the call's success only (https://help.ortto.com/a-231-adding-and-removing-people-from-organizations),
# so each plausible wording of "nothing to remove" counts as removed.
_ABSENT_WORDS = ("not found", "not a member", "not in account", "not in the account", "not linked",
                 "not associated", "no such", "does not exist", "unknown", "known person", "not known")


def removal_found_nothing(exc: OrttoRequestError) -> bool:
    """A 400/404 to a removal that says there was nothing to remove: the person is unlinked either way."""
    return exc.status in (400, 404) and any(word in (exc.message or "").lower() for word in _ABSENT_WORDS)


def _link(ctx, org: OrganizationLedger, group: list, person_ids: dict, *, add: bool) -> str | None:
    """Add (or remove) these members to (from) one account; the refusal's message, or None."""
    call = ctx.ortto.add_account_people if add else ctx.ortto.remove_account_people
    for batch in chunks(group, MAX_PEOPLE_PER_ACCOUNT):
        try:
            call(account_id=org.ortto_account_id, person_ids=[person_ids[m.email] for m in batch])
        except OrttoRequestError as exc:
            if not add and removal_found_nothing(exc):
                ctx.log.info("unlinking %d person(s) from %r: Ortto has no such link (%s)", len(batch), org.name,
                             exc.message)
                continue
            verb = "link people to" if add else "unlink people from"
            return f"Ortto refused to {verb} the organization {org.name!r}: {exc.message}"
    return None


def organizations_flush(ctx, *, check_lease) -> None:
    """End of a run: send the organizations and links, then commit what Ortto accepted (lease checked)."""
    result = organizations_push(ctx)
    run = ctx.run
    with transaction.atomic():
        check_lease(run, timezone.now())
        rows_update(OrganizationLedger, result.organizations,
                    ["ortto_account_id", "fingerprint", "aggregates_fingerprint", "created_in_ortto", "synced_at"])
        rows_update(OrganizationMember, list({m.pk: m for m in result.members}.values()), ["linked_organization"])
        SyncEvent.objects.bulk_create(result.events)
        if result.schema:
            connection = ctx.connection
            connection.ortto_schema = {**(connection.ortto_schema or {}), SCHEMA_KEY: result.schema}
            type(connection).objects.filter(pk=connection.pk).update(ortto_schema=connection.ortto_schema)
        if result.counters["fetched"] or result.events:
            run.counters = {**(run.counters or {}), "organizations": result.counters}
            run.failed += result.counters["failed"]
            run.save(update_fields=["counters", "failed"])
    # Memberships that point nowhere and are linked nowhere are history, except a customer's cleared company
    # field: it keeps an address's company from standing in for the one the customer removed.
    OrganizationMember.objects.filter(connection=ctx.connection, organization__isnull=True,
                                      linked_organization__isnull=True).exclude(source=CUSTOMER).delete()
