"""manage.py ortto_check and the Ortto account admin's check, against the emulated Ortto over HTTP."""

import pytest
from django.core.management import call_command
from django.urls import reverse

from sandbox.ortto import services as ortto_control
from sandbox.ortto.models import ActivityDefinition, CustomField, Instance, RequestLog
from sandbox.ortto.seed import seed_ortto_instances

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live]

US_KEY = "sbx-default-acmeus-0001"


@pytest.fixture
def account(make_account, sandbox_live):
    seed_ortto_instances()
    return make_account(name="acme-us", business_name="Acme Outdoor (US)", api_key=US_KEY)


def check(*args):
    from io import StringIO

    out = StringIO()
    try:
        call_command("ortto_check", *args, stdout=out)
        code = 0
    except SystemExit as exc:
        code = exc.code
    return code, out.getvalue()


def test_a_fresh_account_is_ready_and_nothing_is_created_without_apply(account):
    code, out = check("acme-us")
    assert code == 0
    assert out.strip().splitlines()[-1].startswith("READY: 4 field(s)")
    assert "will be created as int:cm:bigcommerce-order-count" in out
    assert not CustomField.objects.exists() and not ActivityDefinition.objects.exists()
    assert not RequestLog.objects.exclude(path="person/custom-field/get").exists()


def test_apply_creates_what_is_missing_and_a_second_check_finds_it(account):
    code, out = check(str(account.pk), "--apply")
    assert code == 0 and "created field" in out
    assert CustomField.objects.count() == 4 and ActivityDefinition.objects.count() == 11
    assert {d.name for d in ActivityDefinition.objects.all()} == {
        "Placed order", "Ordered product", "Fulfilled order", "Cancelled order", "Refunded order", "Abandoned cart",
        "Cart recovered", "Added to cart", "Viewed product", "Waiting on stock", "Back in stock"}
    assert "organization field 'Buyers' ready" in out
    code, out = check("Acme Outdoor (US)")
    assert code == 0 and out.count(": exists (") == 4
    assert "every field exists" in out.strip().splitlines()[-1]


def test_a_key_in_the_wrong_region_is_named(account):
    account.region = "eu"
    account.save()
    code, out = check("acme-us")
    assert code == 1
    assert out.strip().splitlines()[-1] == (
        "NOT READY: the key is rejected in region eu (401) but accepted in region default: fix the account's region.")


def test_an_expired_account_is_not_ready_and_the_key_is_not_blamed(account):
    ortto_control.instance_set_contract(Instance.objects.get(name="acme-us"), expired=True)
    code, out = check("acme-us")
    assert code == 1 and "403" in out and "The key itself is fine" in out


def test_a_field_of_the_wrong_type_is_not_ready(account):
    CustomField.objects.create(instance=Instance.objects.get(name="acme-us"), field_id="str:cm:bigcommerce-order-count",
                               name="BigCommerce order count", display_type="text")
    code, out = check("acme-us")
    assert code == 1 and "wrong type" in out


def test_support_runs_the_same_check_from_the_admin(account, admin_client):
    response = admin_client.post(reverse("admin:sync_orttoaccount_changelist"),
                                 {"action": "check_against_ortto", "_selected_action": [account.pk]}, follow=True)
    assert response.status_code == 200
    assert "READY: 4 field(s)" in response.content.decode()
    assert not CustomField.objects.exists()
