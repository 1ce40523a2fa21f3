"""Organizations in the support admin and in the run counters the app page and the store page show."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.urls import reverse
from django.utils import timezone

from sync.connect.selectors import app_state
from sync.models import OrganizationLedger, OrganizationMember, SyncRun

pytestmark = pytest.mark.django_db


@pytest.fixture
def organization(make_account, make_connection, make_store):
    store = make_store("org123", name="B2B <b>Outdoor</b>")
    connection = make_connection(store, make_account(api_key="key-orgs"), merge_strategy=2)
    org = OrganizationLedger.objects.create(connection=connection, key="acme ltd", name="ACME <i>Ltd</i>",
                                            ortto_account_id="1069b3c0aa11223344556600", created_in_ortto=True,
                                            synced_at=timezone.now())
    for email in ("a@acme.test", "b@acme.test"):
        OrganizationMember.objects.create(connection=connection, email=email, organization=org,
                                          linked_organization=org)
    SyncRun.objects.create(store=store, connection=connection, kind=SyncRun.Kind.INITIAL,
                           status=SyncRun.Status.SUCCEEDED, finished_at=timezone.now(), counters={
                               "customers": {"fetched": 2, "created": 2},
                               "organizations": {"fetched": 3, "created": 1, "updated": 1, "unchanged": 1,
                                                 "failed": 0}})
    return org


def _url(name, *args):
    return reverse(f"admin:sync_organizationledger_{name}", args=args)


def test_changelist_search_and_detail_answer(admin_client, organization):
    response = admin_client.get(_url("changelist"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "ACME &lt;i&gt;Ltd&lt;/i&gt;" in html and "<i>Ltd</i>" not in html
    for term in ("acme", "org123", "1069b3c0", "Outdoor"):
        found = admin_client.get(_url("changelist"), {"q": term})
        assert found.status_code == 200 and "1069b3c0aa11223344556600" in found.content.decode(), term
    detail = admin_client.get(_url("change", organization.pk))
    assert detail.status_code == 200 and ">2<" in detail.content.decode().replace(" ", "")


def test_organization_errors_can_be_filtered_in_the_event_list(admin_client, organization):
    from sync.models import SyncEvent

    run = SyncRun.objects.get(connection=organization.connection)
    SyncEvent.objects.create(run=run, resource="organizations", message="Ortto refused the organization 'X'")
    response = admin_client.get(reverse("admin:sync_syncevent_changelist"), {"resource": "organizations"})
    assert response.status_code == 200 and "Ortto refused the organization" in response.content.decode()


def test_support_can_view_organizations_but_not_change_them(client, organization):
    user = get_user_model().objects.create_user(username="support", password="pw-support-123", is_staff=True)
    user.groups.add(Group.objects.get(name="Support"))
    client.force_login(user)
    assert client.get(_url("changelist")).status_code == 200
    assert client.get(_url("change", organization.pk)).status_code == 200
    assert client.post(_url("change", organization.pk), {"name": "x"}).status_code == 403
    assert client.post(_url("delete", organization.pk), {"post": "yes"}).status_code == 403


def test_run_counters_list_organizations_after_the_people(organization):
    state = app_state(store=organization.connection.store)
    rows = [row["resource"] for row in state["last_run"]["counters"]]
    assert rows == ["customers", "organizations"]
    counts = state["last_run"]["counters"][1]
    assert (counts["created"], counts["updated"], counts["unchanged"], counts["failed"]) == (1, 1, 1, 0)


def test_the_organization_page_counts_people_linked_in_ortto_against_the_cap(admin_client, organization):
    html = admin_client.get(_url("change", organization.pk)).content.decode()
    assert "Linked in Ortto" in html and "2 of 3,000" in html
