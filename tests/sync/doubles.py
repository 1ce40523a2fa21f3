"""Test doubles for the sync engine: BigCommerce and Ortto as plain objects (`FakeOrtto`) or behind their HTTP
shapes on `responses` (`FakeBigCommerce`, `HttpOrtto`), and builders of BigCommerce records. The `env` fixture
(tests/sync/conftest.py) puts a small store on them."""

import copy
import json
import re
from urllib.parse import parse_qs, urlparse

import responses

from sync.engine import mapping

BC = "https://bc.test"
ORTTO = "https://ortto.test/{region}"
LONG_AGO = "2024-01-10T10:00:00Z"
LONG_AGO_V2 = "Wed, 10 Jan 2024 10:00:00 +0000"


def subscriber(id, email, consents, modified=LONG_AGO):
    return {"id": id, "email": email, "first_name": email[0].upper(), "last_name": "S", "consents": consents,
            "source": "storefront", "date_created": modified, "date_modified": modified}


def customer(id, email, first, modified=LONG_AGO):
    return {"id": id, "email": email, "first_name": first, "last_name": "C", "phone": "", "addresses": [],
            "date_created": modified, "date_modified": modified}


def order(id, email, *, customer_id=0, opt_in=False, total="10.00", status_id=11, modified=LONG_AGO_V2):
    return {"id": id, "customer_id": customer_id, "status_id": status_id, "status": "Awaiting Fulfillment",
            "total_inc_tax": total, "currency_code": "USD", "items_total": 1, "is_email_opt_in": opt_in,
            "date_created": modified, "date_modified": modified,
            "billing_address": {"first_name": "B", "last_name": "Buyer", "email": email, "country": "Canada"}}


class FakeBigCommerce:
    """Serves subscribers (page-based), customers (cursor), orders (min_id or page, 204) like BigCommerce."""

    def __init__(self, rsps, store_hash, *, subscribers=(), customers=(), orders=(), products=()):
        self.subscribers, self.customers, self.orders = list(subscribers), list(customers), list(orders)
        self.products = list(products)  # v3 catalog products (the catalog mirror, sync/catalog/mirror.py)
        self.fail_next = []  # statuses to answer before serving normally
        self.requests = []
        base = re.escape(f"{BC}/stores/{store_hash}")
        rsps.add_callback(responses.GET, re.compile(base + r"/v3/customers/subscribers.*"), self.on_subscribers)
        rsps.add_callback(responses.GET, re.compile(base + r"/v3/customers(\?.*)?$"), self.on_customers)
        rsps.add_callback(responses.GET, re.compile(base + r"/v2/orders/count.*"), self.on_orders_count)
        rsps.add_callback(responses.GET, re.compile(base + r"/v2/orders/\d+(\?.*)?$"), self.on_order)
        rsps.add_callback(responses.GET, re.compile(base + r"/v2/orders(\?.*)?$"), self.on_orders)
        rsps.add_callback(responses.GET, re.compile(base + r"/v3/catalog/products(\?.*)?$"), self.on_products)
        self.hooks = []
        rsps.add_callback(responses.POST, re.compile(base + r"/v3/hooks$"), self.on_hook_create)

    def on_products(self, request):
        self.requests.append(request.url)
        query = self._query(request)
        items = self.products
        if query.get("id:in"):
            wanted = {int(x) for x in query["id:in"].split(",")}
            items = [p for p in items if p["id"] in wanted]
        limit, page = int(query.get("limit", 250)), int(query.get("page", 1))
        chunk = items[(page - 1) * limit: page * limit]
        pages = -(-len(items) // limit)
        return (200, {}, json.dumps({"data": chunk, "meta": {"pagination": {
            "total": len(items), "count": len(chunk), "per_page": limit, "current_page": page, "total_pages": pages}}}))

    def _fault(self):
        if self.fail_next:
            status = self.fail_next.pop(0)
            return (status, {"X-Rate-Limit-Time-Reset-Ms": "1"}, json.dumps({"title": "fault"}))
        return None

    @staticmethod
    def _query(request):
        return {k: v[0] for k, v in parse_qs(urlparse(request.url).query).items()}

    @staticmethod
    def _filter(items, query, key, date_key):
        if query.get(key):
            since = mapping.parse_bc_datetime(query[key])
            items = [i for i in items if mapping.parse_bc_datetime(i["date_modified"]) >= since]
        if query.get("id:in"):
            wanted = {int(x) for x in query["id:in"].split(",")}
            items = [i for i in items if i["id"] in wanted]
        return items

    def on_subscribers(self, request):
        self.requests.append(request.url)
        if fault := self._fault():
            return fault
        q = self._query(request)
        items = self._filter(self.subscribers, q, "date_modified:min", "date_modified")
        page, limit = int(q.get("page", 1)), int(q.get("limit", 50))
        pages = max(1, -(-len(items) // limit))
        data = items[(page - 1) * limit: page * limit]
        meta = {"pagination": {"total": len(items), "count": len(data), "per_page": limit, "current_page": page,
                               "total_pages": pages}}
        return (200, {}, json.dumps({"data": data, "meta": meta}))

    def on_customers(self, request):
        self.requests.append(request.url)
        if fault := self._fault():
            return fault
        q = self._query(request)
        items = sorted(self._filter(self.customers, q, "date_modified:min", "date_modified"),
                       key=lambda c: (c["date_modified"], c["id"]))
        start, limit = int(q.get("after", 0)), int(q.get("limit", 50))
        data = items[start: start + limit]
        more = start + limit < len(items)
        meta = {"pagination": {"total": len(items)},
                "cursor_pagination": {"end_cursor": str(start + limit), "links": {"next": "?after=x"} if more else {}}}
        return (200, {}, json.dumps({"data": data, "meta": meta}))

    def _orders(self, q):
        items = sorted(self.orders, key=lambda o: o["id"])
        if q.get("min_date_modified"):
            since = mapping.parse_bc_datetime(q["min_date_modified"])
            items = [o for o in items if mapping.parse_bc_datetime(o["date_modified"]) >= since]
        return items

    def on_orders(self, request):
        self.requests.append(request.url)
        if fault := self._fault():
            return fault
        q = self._query(request)
        page, limit = int(q.get("page", 1)), int(q.get("limit", 50))
        items = [o for o in self._orders(q)
                 if int(q.get("min_id", 0)) <= o["id"] <= int(q.get("max_id", 10**9))][(page - 1) * limit: page * limit]
        return (200, {}, json.dumps(items)) if items else (204, {}, "")

    def on_orders_count(self, request):
        return (200, {}, json.dumps({"count": len(self._orders(self._query(request)))}))

    def on_hook_create(self, request):
        hook = {**json.loads(request.body), "id": len(self.hooks) + 1, "is_active": True}
        self.hooks.append(hook)
        return (200, {}, json.dumps({"data": hook, "meta": {}}))

    def on_order(self, request):
        self.requests.append(request.url)
        order_id = int(urlparse(request.url).path.rsplit("/", 1)[1])
        found = [o for o in self.orders if o["id"] == order_id]
        return (200, {}, json.dumps(found[0])) if found else (404, {}, "[]")


class FakeOrtto:
    """Ortto's merge semantics: new people default to bol::p true; 1 fills empties, 2 overwrites, 3 ignores."""

    def __init__(self, people=None):
        self.people = copy.deepcopy(people or {})
        self.calls = []
        self.activities = []
        # What a strategy-3 merge answers for an existing person (not public): "merged", "ignored",
        # "unchanged" or "none" (the person id only).
        self.ignore_status = "merged"

    def merge_people(self, people, *, merge_strategy, merge_by=("str::email",), async_=False):
        assert 0 < len(people) <= 100
        self.calls.append((merge_strategy, copy.deepcopy(people)))
        results = []
        for person in people:
            fields = person["fields"]
            email = fields["str::email"]
            record = self.people.get(email)
            if record is None:
                self.people[email] = {"bol::p": True, **fields}
                results.append({"status": "created", "person_id": f"id-{email}"})
                continue
            if merge_strategy == 1:
                for key, value in fields.items():
                    if record.get(key) in (None, ""):
                        record[key] = value
            elif merge_strategy == 2:  # Overwrite: null clears the field
                record.update(fields)
                for key in [k for k, v in fields.items() if v is None]:
                    del record[key]
            if merge_strategy == 3 and self.ignore_status != "merged":
                results.append({"person_id": f"id-{email}"} if self.ignore_status == "none"
                               else {"status": self.ignore_status, "person_id": f"id-{email}"})
                continue
            results.append({"status": "merged", "person_id": f"id-{email}"})
        return results

    def create_activities(self, activities, *, merge_by=("str::email",)):
        assert len(activities) <= 100
        self.activities += activities
        return [{"status": "ingested"} for _ in activities]


class HttpOrtto(FakeOrtto):
    """FakeOrtto behind Ortto's HTTP shapes; activities are de-duplicated on their key."""

    def __init__(self, rsps, people=None):
        super().__init__(people)
        self.fail_next = []  # (status, body) to answer before serving normally
        self.refuse_keys = set()  # activity keys answered with a per-activity error
        self.raise_on_call = None  # number of the merge call that blows up (a simulated crash)
        self.merge_count = 0
        self.schema_calls = []
        self.definitions_exist = False
        base = re.escape(ORTTO.format(region="default"))
        rsps.add_callback(responses.POST, re.compile(base + r"/v1/person/merge"), self.on_merge)
        rsps.add_callback(responses.POST, re.compile(base + r"/v1/activities/create"), self.on_activities)
        rsps.add_callback(responses.POST, re.compile(base + r"/v1/person/custom-field/get"), self.on_field_list)
        rsps.add_callback(responses.POST, re.compile(base + r"/v1/person/custom-field/create"), self.on_field)
        rsps.add_callback(responses.POST, re.compile(base + r"/v1/definitions/activity/create"), self.on_definition)

    def _fault(self):
        if self.fail_next:
            status, body = self.fail_next.pop(0)
            return (status, {}, json.dumps(body))
        return None

    def on_merge(self, request):
        if fault := self._fault():
            return fault
        self.merge_count += 1
        if self.raise_on_call == self.merge_count:
            raise RuntimeError("worker killed")
        body = json.loads(request.body)
        bad = [p for p in body["people"] if "@" not in p["fields"]["str::email"]]
        if bad:
            return (400, {}, json.dumps({"code": 400, "error": "No valid contacts provided",
                                         "details": [{"status": "invalid", "error": "bad email"}]}))
        return (200, {}, json.dumps({"people": self.merge_people(body["people"],
                                                                 merge_strategy=body["merge_strategy"])}))

    def on_activities(self, request):
        if fault := self._fault():
            return fault
        body = json.loads(request.body)
        keys = {a.get("key") for a in self.activities}
        self.activities += [a for a in body["activities"] if a.get("key") not in keys | self.refuse_keys]
        return (200, {}, json.dumps({"activities": [
            {"status": "error", "error": "activity refused"} if a.get("key") in self.refuse_keys
            else {"status": "ingested"} for a in body["activities"]]}))

    def on_field_list(self, request):
        self.schema_calls.append(("field-list", json.loads(request.body)))
        return (200, {}, json.dumps({"fields": []}))

    def on_field(self, request):
        body = json.loads(request.body)
        self.schema_calls.append(("field", body))
        prefix = {"integer": "int", "decimal": "int", "date": "dtz", "text": "str"}[body["type"]]
        return (200, {}, json.dumps({"field_id": f"{prefix}:cm:" + body["name"].lower().replace(" ", "-")}))

    def on_definition(self, request):
        """A fresh account: the definition is created, with the ids Ortto gives its attributes (the
        recorded `custom_activity.attributes[].field_id`). `definitions_exist` answers 409 instead, as an
        account that has them already; eleven of those in a row meet the bad-request budget's 15 s wait."""
        body = json.loads(request.body)
        self.schema_calls.append(("activity", body))
        if self.definitions_exist:
            return (409, {}, json.dumps({"error": "exists"}))
        prefix = {"text": "str", "integer": "int", "price": "int", "link": "str"}
        attributes = [{"name": a["name"], "display_type": a.get("display_type"),
                       "field_id": f"{prefix.get(a.get('display_type'), 'str')}:cm:{a['name']}"}
                      for a in body.get("attributes") or []]
        name = re.sub(r"[^a-z0-9]+", "-", body["name"].lower()).strip("-")
        return (200, {}, json.dumps({"custom_activity": {"activity_field_id": f"act:cm:{name}",
                                                         "attributes": attributes}}))
