"""Issue 25: a correct key with the wrong region got the same message as a wrong key, and the key field was
emptied. "Add an Ortto account" now names the region that accepts the key (the same rule as
`manage.py ortto_check`) and keeps the key for the second try. Against the sandbox's Ortto over HTTP."""

import re

import pytest

from sandbox.ortto.seed import seed_ortto_instances
from sync.models import OrttoAccount

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live]

EU_KEY = "sbx-eu-acmeeu-0002"


def add(client, **fields):
    form = {"business_name": "Acme EU", "name": "acme-eu", "region": "default", "api_key": EU_KEY,
            "tracking_key": "", **fields}
    return client.post("/connect/accounts/add/", form)


def test_a_key_from_another_region_names_that_region_and_stays_in_the_field(sandbox_live, make_user, client):
    seed_ortto_instances()
    client.force_login(make_user())
    response = add(client)
    page = response.content.decode()
    assert response.status_code == 400
    assert "This key belongs to an Ortto account in the Europe region, not Default (US and rest of world)." in page
    key_input = re.search(r'<input[^>]*name="api_key"[^>]*>', page).group(0)
    assert f'value="{EU_KEY}"' in key_input, "the key field was emptied"
    assert not OrttoAccount.objects.exists()
    assert add(client, region="eu").status_code == 302
    assert OrttoAccount.objects.get().region == "eu"


def test_a_key_no_region_accepts_is_a_wrong_key_and_is_not_echoed(sandbox_live, make_user, client):
    seed_ortto_instances()
    client.force_login(make_user())
    response = add(client, api_key="sbx-eu-not-a-key")
    page = response.content.decode()
    assert response.status_code == 400 and "did not accept this API key in the Default" in page
    assert "sbx-eu-not-a-key" not in page
