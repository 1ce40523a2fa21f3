"""The support admin: every page answers, support accounts can look and queue syncs but not edit,
secrets never show, and the big lists cost a fixed number of queries."""

import re
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.db import connection as db_connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from stores.models import Store, StoreUser, WebhookEvent
from sync.models import CartLedger, Connection, OrttoAccount, SyncEvent, SyncRun

pytestmark = pytest.mark.django_db

MARKUP_NAME = '<script>alert("x")</script> Acme & Co'


# --- fixtures --------------------------------------------------------------------------------------

def make_run(store, connection, *, kind=SyncRun.Kind.INCREMENTAL, status=SyncRun.Status.SUCCEEDED, ago=0,
             people=10, failed=0, **fields):
    created = timezone.now() - timedelta(minutes=ago)
    run = SyncRun.objects.create(
        store=store, connection=connection, kind=kind, status=status, people_synced=people, failed=failed,
        processed=people + failed, total=people + failed,
        counters={"customers": {"fetched": people, "created": people, "failed": failed},
                  "orders": {"fetched": 3, "created": 3, "failed": 0}},
        **fields,
    )
    finished = None if status in SyncRun.ACTIVE_STATUSES else created + timedelta(seconds=90)
    SyncRun.objects.filter(pk=run.pk).update(created_at=created, started_at=created, finished_at=finished)
    run.refresh_from_db()
    return run


@pytest.fixture
def shop(make_account, make_connection, make_store):
    """A connected store with a history of runs, a failed record and a webhook delivery."""
    store = make_store("abc123", name=MARKUP_NAME, webhook_secret="whsec-very-secret-value")
    account = make_account(api_key="key-acme-us-secret-value")
    connection = make_connection(store, account, merge_strategy=2)
    Connection.objects.filter(pk=connection.pk).update(
        tracking_enabled=True, tracking_changed_at=timezone.now(), tracking_changed_by="owner@acme.example"
    )
    make_run(store, connection, kind=SyncRun.Kind.INITIAL, ago=300, people=120)
    make_run(store, connection, status=SyncRun.Status.FAILED, ago=200, people=0,
             error_summary="Ortto answered 503 after retries")
    partial = make_run(store, connection, status=SyncRun.Status.PARTIAL, ago=100, people=40, failed=2)
    SyncEvent.objects.create(run=partial, resource="customers", bc_id=77, email="bad@shopper.example",
                             message="Ortto rejected str::email: not a valid email <b>x</b>")
    SyncEvent.objects.create(run=partial, level=SyncEvent.Level.WARNING, resource="orders", bc_id=9001,
                             email="ok@shopper.example", message="Order without items")
    WebhookEvent.objects.create(
        store=store, dedup_key="d" * 64, scope="store/customer/updated", resource="customers", resource_id=77,
        payload={"data": {"id": 77}}, bc_created_at=timezone.now(),
    )
    CartLedger.objects.create(connection=connection, cart_id="0b8f4c52-6c1e-4d53-9a55-1c2f3e4d5a6b", token="t" * 32,
                              email="cart@shopper.example", value="237.00", currency="USD",
                              outcome=CartLedger.Outcome.SENT, abandoned_at=timezone.now())
    return store


@pytest.fixture
def stalled_run(shop):
    connection = shop.connections.get()
    run = make_run(shop, connection, status=SyncRun.Status.RUNNING, ago=30, people=5)
    SyncRun.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now() - timedelta(minutes=20))
    return run


@pytest.fixture
def support_user():
    user = get_user_model().objects.create_user(username="support", email="support@bridge.example",
                                                password="pw-support-123", is_staff=True)
    user.groups.add(Group.objects.get(name="Support"))
    return user


@pytest.fixture
def support_client(client, support_user):
    client.force_login(support_user)
    return client


@pytest.fixture
def queued_tasks(monkeypatch, django_capture_on_commit_callbacks):
    """Record what would go to django-q2 instead of running it."""
    calls = []
    monkeypatch.setattr("django_q.tasks.async_task", lambda func, *args, **kwargs: calls.append((func, args)))
    return calls


def changelist(model):
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")


def change(obj):
    return reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])


ADMIN_MODELS = [Store, WebhookEvent, OrttoAccount, Connection, SyncRun, SyncEvent, CartLedger]
SEARCHES = {
    Store: ["abc123", "Acme", "user1001@example.com"],
    WebhookEvent: ["abc123", "customer", "77"],
    OrttoAccount: ["acme", "Acme (US)"],
    Connection: ["abc123", "Acme"],
    SyncRun: ["abc123", "Acme", "1", "#1", "admin:support"],
    SyncEvent: ["bad@shopper.example", "valid email", "abc123", "77"],
    CartLedger: ["cart@shopper.example", "0b8f4c52-6c1e-4d53-9a55-1c2f3e4d5a6b", "abc123", "Acme"],
}


# --- smoke: every registered model, as superuser ------------------------------------------------------

@pytest.mark.parametrize("model", ADMIN_MODELS, ids=lambda m: m.__name__)
def test_changelist_search_filters_and_detail_answer(admin_client, shop, stalled_run, model):
    response = admin_client.get(changelist(model))
    assert response.status_code == 200
    assert response.context["cl"].result_count >= 1

    for term in SEARCHES[model]:
        assert admin_client.get(changelist(model), {"q": term}).status_code == 200, term

    specs = response.context["cl"].filter_specs
    assert specs, "every list has filters"
    for spec in specs:
        for choice in spec.choices(response.context["cl"]):
            filtered = admin_client.get(changelist(model) + choice["query_string"])
            assert filtered.status_code == 200, (spec.title, choice["display"])

    obj = model.objects.order_by("pk").first()
    detail = admin_client.get(change(obj))
    assert detail.status_code == 200


def test_search_finds_a_person_s_failed_records_by_email(admin_client, shop):
    response = admin_client.get(changelist(SyncEvent), {"q": "bad@shopper.example"})
    assert [event.email for event in response.context["cl"].result_list] == ["bad@shopper.example"]
    assert b"not a valid email &lt;b&gt;x&lt;/b&gt;" in response.content


def test_date_hierarchy_and_store_filter_narrow_the_run_list(make_account, make_connection, make_store, admin_client,
                                                             shop):
    other = make_store("zzz999", name="Other")
    make_run(other, make_connection(other, make_account(name="other", business_name="Other")), people=1)
    now = timezone.localtime()
    response = admin_client.get(changelist(SyncRun), {"store": shop.pk, "created_at__year": now.year})
    assert response.status_code == 200
    assert {run.store_id for run in response.context["cl"].result_list} == {shop.pk}
    # The drill-down comes from the first and last dates only, not from a DISTINCT over every run.
    hierarchy = admin_client.get(changelist(SyncRun)).context["light_date_hierarchy"]
    assert hierarchy["show"] and hierarchy["choices"]


# --- what support sees --------------------------------------------------------------------------------

def test_store_page_summarises_connection_runs_and_failures(support_client, shop, stalled_run):
    response = support_client.get(change(shop))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Acme (US)" in html                                       # account business name
    assert "Import and overwrite any records that exist" in html     # merge strategy
    assert "owner@acme.example" in html                              # tracking changed by
    assert "stalled" in html and f"Run #{stalled_run.pk}" in html    # a run is stuck right now
    assert "bad@shopper.example" in html and "not a valid email" in html  # which records failed and why
    assert "<svg" in html and 'class="failure-mark"' in html          # the chart, failures in red
    for label in ("Sync now", "Resync failed records", "Full resync"):
        assert label in html


def test_store_page_tools_sit_above_the_sync_panel_not_over_it(support_client, shop):
    html = support_client.get(change(shop)).content.decode()
    assert html.count('class="object-tools"') == 1 and html.count('class="historylink"') == 1
    assert html.index('class="object-tools"') < html.index('class="sync-panel"')
    for tool in ("Connections", "Sync runs", "Failed records", "Webhooks", "History"):
        assert f">{tool}</a></li>" in html


def test_store_name_with_markup_is_escaped_everywhere(admin_client, shop):
    for url in (changelist(Store), change(shop), changelist(Connection)):
        html = admin_client.get(url).content.decode()
        assert '<script>alert("x")</script>' not in html, url
    assert "&lt;script&gt;" in admin_client.get(change(shop)).content.decode()


def test_secrets_are_never_shown_only_a_masked_hint(admin_client, shop):
    account = OrttoAccount.objects.get()
    pages = [admin_client.get(url).content.decode()
             for url in (change(shop), changelist(Store), change(account), changelist(OrttoAccount))]
    for html in pages:
        for secret in ("tok-abc123", "whsec-very-secret-value", "key-acme-us-secret-value"):
            assert secret not in html
    assert "whs…lue" in pages[0] and "key…lue" in pages[2]
    form = admin_client.get(change(shop)).context["adminform"].form
    assert "access_token" not in form.fields and "webhook_secret" not in form.fields


def test_stalled_runs_are_flagged_and_filterable(admin_client, shop, stalled_run):
    response = admin_client.get(changelist(SyncRun))
    assert b">stalled</span>" in response.content
    stalled = admin_client.get(changelist(SyncRun), {"health": "stalled"})
    assert [run.pk for run in stalled.context["cl"].result_list] == [stalled_run.pk]


def test_a_healthy_running_run_is_not_stalled(admin_client, shop):
    run = make_run(shop, shop.connections.get(), status=SyncRun.Status.RUNNING, ago=1)
    SyncRun.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now())
    response = admin_client.get(changelist(SyncRun), {"health": "stalled"})
    assert list(response.context["cl"].result_list) == []


def test_run_page_shows_only_the_latest_events_and_links_to_all(admin_client, shop):
    run = make_run(shop, shop.connections.get(), status=SyncRun.Status.PARTIAL, failed=80)
    SyncEvent.objects.bulk_create(
        [SyncEvent(run=run, resource="customers", bc_id=i, email=f"p{i}@x.example", message=f"bad {i}")
         for i in range(80)]
    )
    response = admin_client.get(change(run))
    formset = response.context["inline_admin_formsets"][0].formset
    assert len(formset.forms) == 50
    assert f"run__id__exact={run.pk}".encode() in response.content


# --- permissions ----------------------------------------------------------------------------------

def test_support_group_is_view_only_plus_run_sync():
    codenames = set(Group.objects.get(name="Support").permissions.values_list("codename", flat=True))
    assert "run_sync" in codenames
    assert {"view_store", "view_storeuser", "view_webhookevent", "view_orttoaccount", "view_connection",
            "view_syncrun", "view_syncevent", "view_cartledger"} <= codenames
    assert not any(code.startswith(("add_", "change_", "delete_")) for code in codenames)
    assert Permission.objects.get(codename="run_sync").content_type.model_class() is SyncRun


def test_support_group_may_forget_an_email_and_read_the_erasure_audit():
    codenames = set(Group.objects.get(name="Support").permissions.values_list("codename", flat=True))
    assert {"forget_email", "view_erasurerecord"} <= codenames


@pytest.mark.parametrize("model", ADMIN_MODELS, ids=lambda m: m.__name__)
def test_support_can_view_but_not_add_change_or_delete(support_client, shop, model):
    obj = model.objects.order_by("pk").first()
    assert support_client.get(changelist(model)).status_code == 200
    assert support_client.get(change(obj)).status_code == 200
    opts = model._meta
    add_url = reverse(f"admin:{opts.app_label}_{opts.model_name}_add")
    delete_url = reverse(f"admin:{opts.app_label}_{opts.model_name}_delete", args=[obj.pk])
    assert support_client.post(add_url, {}).status_code == 403
    assert support_client.post(change(obj), {"name": "changed", "state": "disconnected"}).status_code == 403
    assert support_client.post(delete_url, {"post": "yes"}).status_code == 403
    assert model.objects.filter(pk=obj.pk).exists()
    bulk_delete = support_client.post(changelist(model), {"action": "delete_selected", "_selected_action": [obj.pk],
                                                          "post": "yes"})
    assert model.objects.filter(pk=obj.pk).exists() and bulk_delete.status_code in (200, 302)


def test_non_staff_user_is_sent_to_the_login_page(client, shop):
    user = get_user_model().objects.create_user(username="shopper", password="pw-12345678")
    client.force_login(user)
    for url in (changelist(Store), change(shop), changelist(SyncRun)):
        response = client.get(url)
        assert response.status_code == 302 and response.url.startswith(reverse("admin:login"))


def test_staff_without_run_sync_gets_no_actions_and_403_on_the_button(client, shop):
    user = get_user_model().objects.create_user(username="viewer", password="pw-12345678", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_store"))
    client.force_login(user)
    response = client.get(change(shop))
    assert response.status_code == 200 and b"Full resync" not in response.content
    blocked = client.post(reverse("admin:stores_store_run_sync", args=[shop.pk]), {"kind": SyncRun.Kind.MANUAL})
    assert blocked.status_code == 403
    listing = client.get(changelist(Store))
    assert b'value="sync_now"' not in listing.content


def test_superuser_keeps_full_rights(admin_client, shop):
    store_change = admin_client.get(change(shop))
    assert store_change.context["has_change_permission"]
    assert admin_client.get(reverse("admin:stores_store_delete", args=[shop.pk])).status_code == 200


# --- the three actions, end to end -------------------------------------------------------------------

@pytest.mark.parametrize("action,kind", [
    ("sync_now", SyncRun.Kind.MANUAL),
    ("resync_failed", SyncRun.Kind.RETRY_FAILED),
    ("full_resync", SyncRun.Kind.FULL),
])
def test_support_runs_an_action_from_the_store_list(support_client, shop, queued_tasks,
                                                    django_capture_on_commit_callbacks, action, kind):
    with django_capture_on_commit_callbacks(execute=True):
        response = support_client.post(changelist(Store), {"action": action, "_selected_action": [shop.pk]},
                                       follow=True)
    run = SyncRun.objects.get(store=shop, status=SyncRun.Status.QUEUED)
    assert run.kind == kind and run.requested_by == "admin:support"
    assert queued_tasks == [("sync.tasks.run_sync", (run.pk,))]
    text = " ".join(str(m) for m in response.context["messages"])
    assert "queued for" in text and "abc123" in text


def test_change_page_buttons_queue_a_run_then_say_one_is_already_active(support_client, shop, queued_tasks,
                                                                       django_capture_on_commit_callbacks):
    url = reverse("admin:stores_store_run_sync", args=[shop.pk])
    with django_capture_on_commit_callbacks(execute=True):
        first = support_client.post(url, {"kind": SyncRun.Kind.FULL})
    assert first.status_code == 302 and first.url == change(shop)
    assert SyncRun.objects.filter(store=shop, kind=SyncRun.Kind.FULL, status=SyncRun.Status.QUEUED).count() == 1

    with django_capture_on_commit_callbacks(execute=True):
        second = support_client.post(url, {"kind": SyncRun.Kind.MANUAL}, follow=True)
    text = " ".join(str(m) for m in second.context["messages"])
    assert "already active" in text
    assert SyncRun.objects.filter(store=shop, status__in=SyncRun.ACTIVE_STATUSES).count() == 1
    assert len(queued_tasks) == 1
    assert support_client.get(url).status_code == 405


def test_action_on_several_stores_reports_each_outcome(make_account, make_connection, make_store, admin_client, shop,
                                                       stalled_run, queued_tasks, django_capture_on_commit_callbacks):
    fresh = make_store("fresh01", name="Fresh")
    make_connection(fresh, make_account(name="fresh", business_name="Fresh"))
    unconnected = make_store("lonely1", name="Lonely")
    broken = make_store("broken1", name="Broken")
    make_connection(broken, make_account(name="broken", business_name="Broken"),
                    state=Connection.State.NEEDS_RECONNECT)
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            changelist(Store),
            {"action": "sync_now", "_selected_action": [shop.pk, fresh.pk, unconnected.pk, broken.pk]}, follow=True,
        )
    text = " ".join(str(m) for m in response.context["messages"])
    assert "already active for abc123" in text
    assert "fresh01" in text and "queued for" in text
    assert "lonely1 (not connected" in text and "broken1 (Ortto refused" in text
    assert SyncRun.objects.filter(store=fresh, kind=SyncRun.Kind.MANUAL).count() == 1
    assert not SyncRun.objects.filter(store__in=[unconnected, broken]).exists()
    assert len(queued_tasks) == 1


# --- query counts do not grow with rows ----------------------------------------------------------------

@pytest.fixture
def populate(make_store, make_account, make_connection):
    """populate(stores, runs_per_store): that many more connected stores, each with its runs and a few events."""

    def add(stores: int, runs_per_store: int):
        start = Store.objects.count()
        for index in range(start, start + stores):
            store = make_store(f"bulk{index:03d}", name=f"Bulk {index}", owner_id=2000 + index)
            connection = make_connection(store, make_account(name=f"acct{index}", business_name=f"Account {index}"))
            SyncRun.objects.bulk_create([
                SyncRun(store=store, connection=connection, kind=SyncRun.Kind.INCREMENTAL,
                        status=SyncRun.Status.FAILED if n % 7 == 0 else SyncRun.Status.SUCCEEDED,
                        people_synced=n, processed=n, failed=n % 3, counters={"customers": {"fetched": n}})
                for n in range(runs_per_store)
            ])
            run = SyncRun.objects.filter(store=store).first()
            SyncEvent.objects.bulk_create(
                [SyncEvent(run=run, resource="customers", bc_id=n, email=f"e{n}@x.example", message="bad")
                 for n in range(5)]
            )
            CartLedger.objects.bulk_create(
                [CartLedger(connection=connection, cart_id=f"cart-{index}-{n}", email=f"c{n}@x.example",
                            outcome=CartLedger.Outcome.SENT, abandoned_at=timezone.now()) for n in range(3)]
            )

    return add


def _queries(client, url, params=None) -> int:
    with CaptureQueriesContext(db_connection) as captured:
        assert client.get(url, params or {}).status_code == 200
    return len(captured)


@pytest.mark.parametrize("url_name,params", [
    ("admin:sync_syncrun_changelist", {}),
    ("admin:sync_syncrun_changelist", {"status__exact": "failed"}),
    ("admin:sync_syncrun_changelist", {"health": "problems", "q": "bulk001"}),
    ("admin:sync_syncevent_changelist", {}),
    ("admin:stores_store_changelist", {}),
    ("admin:sync_connection_changelist", {}),
    ("admin:sync_cartledger_changelist", {}),
    ("admin:sync_syncevent_changelist", {"rows": "all"}),
])
def test_lists_cost_the_same_queries_with_200_runs_as_with_a_few(support_client, django_assert_max_num_queries,
                                                                  populate, url_name, params):
    url = reverse(url_name)
    populate(2, 3)
    few = _queries(support_client, url, params)
    populate(10, 20)  # 200 more runs across 10 more stores
    with django_assert_max_num_queries(14):
        many = _queries(support_client, url, params)
    assert many == few


def test_store_page_cost_does_not_grow_with_its_runs(support_client, django_assert_max_num_queries, populate):
    populate(1, 5)
    store = Store.objects.get()
    few = _queries(support_client, change(store))
    connection = store.connections.get()
    SyncRun.objects.bulk_create([SyncRun(store=store, connection=connection, kind=SyncRun.Kind.INCREMENTAL,
                                         status=SyncRun.Status.SUCCEEDED, people_synced=n) for n in range(200)])
    with django_assert_max_num_queries(16):
        many = _queries(support_client, change(store))
    assert many == few


def test_run_page_cost_does_not_grow_with_its_events(support_client, shop, django_assert_max_num_queries):
    run = SyncRun.objects.filter(store=shop).first()
    few = _queries(support_client, change(run))
    SyncEvent.objects.bulk_create([SyncEvent(run=run, resource="orders", bc_id=n, message="x") for n in range(300)])
    with django_assert_max_num_queries(12):
        assert _queries(support_client, change(run)) == few


def test_store_users_are_an_inline_on_the_store(admin_client, shop):
    StoreUser.objects.create(store=shop, bc_user_id=1002, email="staff@acme.example")
    response = admin_client.get(change(shop))
    assert b"staff@acme.example" in response.content


def test_a_run_is_named_by_its_store(make_account, make_connection, make_store, admin_client):
    store = make_store("abc123", name="Acme Outdoor Co.")
    run = make_run(store, make_connection(store, make_account()), kind=SyncRun.Kind.INITIAL)
    assert str(run) == f"Acme Outdoor Co. · initial import run #{run.pk}"
    assert f"Acme Outdoor Co. · initial import run #{run.pk}" in admin_client.get(change(run)).content.decode()


def test_run_page_shows_counters_and_totals_as_tables_not_json(admin_client, shop):
    run = SyncRun.objects.filter(store=shop).first()
    SyncRun.objects.filter(pk=run.pk).update(totals={"customers": 120, "orders": 3})
    html = admin_client.get(change(run)).content.decode()
    assert '<table class="sync-counters">' in html
    assert "<th>customers</th><th>orders</th>" in html and "<td>120</td><td>3</td>" in html
    assert '{"customers"' not in html and "{&quot;customers&quot;" not in html


def test_webhook_events_filter_by_every_resource_the_intake_stores(admin_client, shop):
    WebhookEvent.objects.create(
        store=shop, dedup_key="c" * 64, scope="store/cart/abandoned", resource="carts", resource_id=0,
        payload={"data": {"id": "a1b2", "cartId": "a1b2"}}, bc_created_at=timezone.now(),
    )
    assert 'href="?resource=carts"' in admin_client.get(changelist(WebhookEvent)).content.decode()  # offered
    html = admin_client.get(changelist(WebhookEvent) + "?resource=carts").content.decode()
    assert "store/cart/abandoned" in html and "store/customer/updated" not in html


# --- what support reads: scales, columns, names, words ------------------------------------------------

def _chart_bars(html: str, kind: str) -> dict[int, float]:
    """The chart's bars of one measure: {value: height}."""
    return {int(value): float(height) for value, height in
            re.findall(rf'<rect class="bar-{kind}[^"]*" data-value="(\d+)"[^>]* height="([\d.]+)"', html)}


@pytest.fixture
def acme(make_account, make_connection, make_store):
    store = make_store("acme42", name="Acme Outdoor Co.")
    return store, make_connection(store, make_account(name="acme", business_name="Acme (US)"))


def test_runs_chart_gives_failed_records_a_scale_of_their_own(support_client, acme):
    store, connection = acme
    make_run(store, connection, ago=20, people=140)
    make_run(store, connection, status=SyncRun.Status.PARTIAL, ago=10, people=0, failed=3)
    make_run(store, connection, status=SyncRun.Status.PARTIAL, ago=5, people=70, failed=1)
    html = support_client.get(change(store)).content.decode()
    start = html.index('<svg class="sync-runs-chart"')
    chart = html[start:html.index("</svg>", start)]
    people, failed = _chart_bars(chart, "people"), _chart_bars(chart, "failed")
    assert set(people) == {140, 70} and set(failed) == {3, 1}
    # Each measure on its own scale: 3 failures are the top of theirs, and shorter than 140 people.
    assert people[70] == pytest.approx(people[140] / 2, abs=0.2)
    assert failed[1] == pytest.approx(failed[3] / 3, abs=0.2)
    assert failed[3] < people[140]
    # Each panel says what it counts and its top value.
    assert "People synced per run" in chart and "Failed records per run" in chart
    assert re.findall(r'class="axis-peak"[^>]*>(\d+)<', chart) == ["140", "3"]


def test_lists_name_their_useful_columns_in_few_words(support_client, shop):
    def headers(model):
        html = support_client.get(changelist(model)).content.decode()
        return [re.sub(r"<[^>]+>", "", h).strip() for h in re.findall(r'<th scope="col"[^>]*>(.*?)</th>', html, re.S)]

    runs = headers(SyncRun)
    assert [h for h in runs if h] == ["Run", "Store", "Account", "Status", "Created", "Duration", "People", "Failed",
                                      "Requested by"]
    stores = headers(Store)
    assert [h for h in stores if h] == ["Store", "Owner email", "Installed", "Ortto account", "Connection",
                                        "Last sync"]
    events = headers(SyncEvent)
    assert "Store" in events and "Resolved" in events and len([h for h in events if h]) <= 9


def test_rows_name_the_store_by_name_with_the_hash_under_it(support_client, acme):
    store, connection = acme
    run = make_run(store, connection, status=SyncRun.Status.PARTIAL, failed=1)
    SyncEvent.objects.create(run=run, resource="customers", bc_id=5, email="x@shopper.example", message="refused")
    WebhookEvent.objects.create(store=store, dedup_key="e" * 64, scope="store/customer/updated", resource="customers",
                                resource_id=5, payload={}, bc_created_at=timezone.now())
    CartLedger.objects.create(connection=connection, cart_id="c1", email="x@shopper.example",
                              outcome=CartLedger.Outcome.SENT, abandoned_at=timezone.now())
    named = 'Acme Outdoor Co.</a> <span class="store-hash">acme42</span>'
    for model in (SyncRun, SyncEvent, Connection, WebhookEvent, CartLedger):
        html = support_client.get(changelist(model)).content.decode()
        assert named in html, model.__name__
    store_list = support_client.get(changelist(Store)).content.decode()
    assert 'Acme Outdoor Co. <span class="store-hash">acme42</span></a>' in store_list


def test_resolved_mark_and_words_agree(support_client, shop):
    run = SyncRun.objects.filter(store=shop, status=SyncRun.Status.PARTIAL).get()
    unresolved = SyncEvent.objects.get(run=run, bc_id=77)
    resolved = SyncEvent.objects.create(run=run, resource="customers", bc_id=78, message="refused", resolved=True)
    warning = SyncEvent.objects.get(run=run, level=SyncEvent.Level.WARNING)
    page = support_client.get(change(unresolved)).content.decode()
    assert "Not yet: no later run has re-sent it successfully" in page
    assert "Re-sent successfully by a later run" not in page and "icon-no.svg" not in page
    assert "Yes: a later run re-sent it successfully" in support_client.get(change(resolved)).content.decode()
    assert "Not yet" not in support_client.get(change(warning)).content.decode()  # nothing to resolve
    listing = support_client.get(changelist(SyncEvent), {"rows": "all"}).content.decode()
    assert "Yes, re-sent" in listing and "Not yet" in listing and "icon-no.svg" not in listing


def test_failed_records_show_one_row_per_record_unless_asked_for_every_run(support_client, acme, shop):
    store, connection = acme
    runs = [make_run(store, connection, status=SyncRun.Status.PARTIAL, ago=30 - 10 * n, failed=2) for n in range(3)]
    for run in runs:
        SyncEvent.objects.create(run=run, resource="customers", bc_id=77, email="p77@shopper.example",
                                 message=f"refused in run {run.pk}")
        SyncEvent.objects.create(run=run, resource="carts", email="cart@shopper.example",
                                 message=f"Abandoned cart not sent in run {run.pk}")
    SyncEvent.objects.create(run=runs[0], resource="orders", message="An order without an id or email")

    def rows(**params):
        response = support_client.get(changelist(SyncEvent), {"store": store.pk, **params})
        return [(e.resource, e.bc_id, e.email, e.run_id) for e in response.context["cl"].result_list]

    latest = rows()
    assert sorted(latest) == sorted([("customers", 77, "p77@shopper.example", runs[2].pk),
                                     ("carts", None, "cart@shopper.example", runs[2].pk),
                                     ("orders", None, "", runs[0].pk)])
    assert len(rows(rows="all")) == 7
    assert len(rows(run__id__exact=runs[0].pk)) == 3  # a run's own events, all of them
    # The same BigCommerce id in another store is another record.
    assert any(e.bc_id == 77 for e in support_client.get(changelist(SyncEvent)).context["cl"].result_list
               if e.run.store_id == shop.pk)
    html = support_client.get(changelist(SyncEvent)).content.decode()
    assert "Latest per record" in html and "Every run&#x27;s rows" in html


def test_runs_and_records_are_described_in_support_staff_s_words(support_client, acme):
    store, connection = acme
    run = make_run(store, connection, kind=SyncRun.Kind.INITIAL, requested_by="connect:ann@acme.example")
    SyncRun.objects.filter(pk=run.pk).update(counters={"orders": {"fetched": 60, "created": 50, "summarized": 10}})
    make_run(store, connection, ago=5, requested_by="schedule")
    event = SyncEvent.objects.create(run=run, resource="customers", bc_id=3, email="c3@shopper.example",
                                     message="Ortto refused the email")
    pages = {
        "runs": support_client.get(changelist(SyncRun)).content.decode(),
        "store": support_client.get(change(store)).content.decode(),
    }
    for name, html in pages.items():
        assert "connect:ann" not in html and "ann@acme.example, on connecting" in html, name
        assert ">schedule<" not in html and "Scheduled sweep" in html, name
    run_page = support_client.get(change(run)).content.decode()
    assert "summarized" not in run_page and "Totals only" in run_page
    event_page = support_client.get(change(event)).content.decode()
    assert "customers 3:" not in event_page and "Customer #3 (c3@shopper.example): Ortto refused" in event_page
    assert str(event) == "Customer #3 (c3@shopper.example): Ortto refused the email"


def test_abandoned_carts_have_a_read_only_page(support_client, shop, django_assert_max_num_queries):
    cart = CartLedger.objects.get()
    CartLedger.objects.filter(pk=cart.pk).update(order_id=9001, recovered_at=timezone.now())
    html = support_client.get(changelist(CartLedger)).content.decode()
    for text in ("Abandoned", "Shopper", "Value", "What the bridge did", "Recovered", "cart@shopper.example",
                 "237.00 USD", "Abandoned cart sent", "order #9001"):
        assert text in html, text
    recovered = support_client.get(changelist(CartLedger), {"recovered": "no"})
    assert list(recovered.context["cl"].result_list) == []
    detail = support_client.get(change(cart)).content.decode()
    assert "0b8f4c52-6c1e-4d53-9a55-1c2f3e4d5a6b" in detail and "t" * 32 not in detail  # the token stays out


def test_the_failed_records_list_counts_no_further_than_its_cap(support_client, acme, monkeypatch):
    # One row per record checks each row for a later one: numbering the pages stops at the cap.
    monkeypatch.setattr("stores.admin_toolkit.CappedCountPaginator.cap", 2)
    store, connection = acme
    run = make_run(store, connection, status=SyncRun.Status.PARTIAL, failed=4)
    SyncEvent.objects.bulk_create([SyncEvent(run=run, resource="customers", bc_id=n, message="refused")
                                   for n in range(4)])
    response = support_client.get(changelist(SyncEvent))
    assert len(response.context["cl"].result_list) == 4
    assert "2+ sync events" in re.sub(r"\s+", " ", response.content.decode())


def test_boolean_filters_read_in_the_product_s_words_and_filter(admin_client, make_store, make_account,
                                                                 make_connection):
    installed, gone = make_store("inst1"), make_store("gone1")
    gone.is_installed = False
    gone.save(update_fields=["is_installed"])
    html = admin_client.get(reverse("admin:stores_store_changelist")).content.decode()
    assert "By installation" in html and "Uninstalled" in html and "By is installed" not in html
    only_gone = admin_client.get(reverse("admin:stores_store_changelist"), {"is_installed": "0"}).content.decode()
    assert "gone1" in only_gone and "inst1" not in only_gone

    connection = make_connection(installed, make_account())
    connection.tracking_enabled = True
    connection.save(update_fields=["tracking_enabled"])
    html = admin_client.get(reverse("admin:sync_connection_changelist")).content.decode()
    assert "By website tracking" in html and "By tracking enabled" not in html
    assert admin_client.get(reverse("admin:sync_connection_changelist"),
                            {"tracking_enabled": "0"}).context["cl"].result_count == 0


def test_an_abandoned_cart_page_says_where_a_refused_cart_recovered_stands(admin_client, shop):
    cart = CartLedger.objects.get(connection__store=shop)
    cart.recovery = CartLedger.Recovery.FAILED
    cart.save(update_fields=["recovery"])
    html = admin_client.get(reverse("admin:sync_cartledger_change", args=[cart.pk])).content.decode()
    assert "Cart recovered not sent" in html
