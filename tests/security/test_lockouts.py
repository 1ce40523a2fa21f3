"""Issue 24, medium finding 4, over real HTTP: a stranger's wrong passwords cannot lock the rightful user
out. Attempts are counted per (form, account, IP); an account or an IP with many failures is slowed to one
attempt a minute per pair, never locked. The clients' IPs are told apart as behind the documented TLS proxy
(the proxy's X-Forwarded-For entry)."""

import pytest
from django.contrib.auth import get_user_model

from sync import throttle

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live]

STRANGER, RIGHTFUL = "198.51.100.66", "203.0.113.9"


@pytest.fixture
def behind_proxy(settings):
    settings.BEHIND_TLS_PROXY = True


def post_from(person, ip: str, path: str, data: dict):
    return person.post(path, data, headers={"X-Forwarded-For": ip})


def test_a_strangers_failures_do_not_lock_the_rightful_user_on_another_ip(make_user, browser, behind_proxy):
    make_user("victim@example.com", password="the-right-password")
    stranger = browser()
    stranger.get("/connect/signin/")
    statuses = [post_from(stranger, STRANGER, "/connect/signin/", {"email": "victim@example.com",
                                                                    "password": f"guess-{n}"}).status_code
                for n in range(throttle.SIGNIN_ACCOUNT.limit + 10)]
    assert statuses[:throttle.SIGNIN_PAIR.limit] == [400] * throttle.SIGNIN_PAIR.limit
    assert set(statuses[throttle.SIGNIN_PAIR.limit:]) == {429}  # the stranger's own pair is refused
    # Even the right password, from the stranger's IP, is refused now.
    assert post_from(stranger, STRANGER, "/connect/signin/", {"email": "victim@example.com",
                                                              "password": "the-right-password"}).status_code == 429

    victim = browser()
    victim.get("/connect/signin/")
    right = post_from(victim, RIGHTFUL, "/connect/signin/", {"email": "victim@example.com",
                                                             "password": "the-right-password"})
    assert right.status_code == 302


def test_many_ips_guessing_one_account_are_slowed_not_the_account_locked(make_user, browser, behind_proxy,
                                                                          monkeypatch):
    monkeypatch.setattr(throttle, "SIGNIN_ACCOUNT", throttle.Rule("signin-account", limit=6, window_seconds=900))
    make_user("victim@example.com", password="the-right-password")
    botnet = browser()
    botnet.get("/connect/signin/")
    guesses = [post_from(botnet, f"192.0.2.{n}", "/connect/signin/", {"email": "victim@example.com",
                                                                      "password": "guess"}).status_code
               for n in range(1, 9)]
    assert guesses[:6] == [400] * 6
    assert guesses[6:] == [400, 400]  # over the account's limit: each IP still gets its one a minute...
    again = [post_from(botnet, f"192.0.2.{n}", "/connect/signin/", {"email": "victim@example.com",
                                                                    "password": "guess"}) for n in (7, 8)]
    assert [r.status_code for r in again] == [429, 429]  # ...and no second one
    assert "Wait a minute" in again[0].text

    victim = browser()
    victim.get("/connect/signin/")
    assert post_from(victim, RIGHTFUL, "/connect/signin/", {"email": "victim@example.com",
                                                            "password": "the-right-password"}).status_code == 302


def test_brute_force_from_one_ip_at_many_accounts_is_slowed(make_user, browser, behind_proxy, monkeypatch):
    monkeypatch.setattr(throttle, "SIGNIN_IP", throttle.Rule("signin-ip", limit=4, window_seconds=900))
    attacker = browser()
    attacker.get("/connect/signin/")
    first = [post_from(attacker, STRANGER, "/connect/signin/", {"email": f"user{n}@example.com",
                                                                "password": "guess"}).status_code
             for n in range(8)]
    assert first == [400] * 8  # the 5th to 8th are over the IP's limit: one each a minute
    second = [post_from(attacker, STRANGER, "/connect/signin/", {"email": f"user{n}@example.com",
                                                                 "password": "guess"}).status_code
              for n in range(4, 8)]
    assert second == [429] * 4


def test_the_rightful_users_admin_sign_in_works_after_connect_form_failures(browser, behind_proxy):
    get_user_model().objects.create_user(username="support@example.com", email="support@example.com",
                                         password="the-right-password", is_staff=True)
    stranger = browser()
    stranger.get("/connect/signin/")
    for n in range(throttle.SIGNIN_ACCOUNT.limit + 5):
        post_from(stranger, STRANGER, "/connect/signin/", {"email": "support@example.com", "password": f"g{n}"})
    support = browser()
    support.get("/admin/login/")
    right = post_from(support, RIGHTFUL, "/admin/login/", {"username": "support@example.com",
                                                           "password": "the-right-password", "next": "/admin/"})
    assert right.status_code == 302 and right.headers["Location"] == "/admin/"
