"""Issue 16, items 1, 2 and 7: one throttle for every password form, counted before the check, so that
parallel guesses cannot beat it; the admin login shares the connect sign-in's lock; sign-up refuses
weak and over-long input and answers a double submit with "already exists"."""

import pytest
from django.contrib.auth import get_user_model

from sync import throttle
from sync.models import ThrottleCounter

from .harness import in_parallel

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live]

GUESSES = 30


def test_parallel_guesses_cannot_beat_the_sign_in_lock(make_user, browser):
    make_user("victim@example.com", password="the-right-password")
    attacker = browser()
    attacker.get("/connect/signin/")
    guess = lambda n: lambda: attacker.post("/connect/signin/", {"email": "victim@example.com",  # noqa: E731
                                                                  "password": f"guess-{n}"}).status_code
    statuses = in_parallel([guess(n) for n in range(GUESSES)])
    # Only as many guesses as the limit ever reached the password check; all others were refused unchecked.
    assert statuses.count(400) <= throttle.SIGNIN_PAIR.limit, statuses
    assert statuses.count(429) >= GUESSES - throttle.SIGNIN_PAIR.limit
    right = attacker.post("/connect/signin/", {"email": "victim@example.com", "password": "the-right-password"})
    assert right.status_code == 429 and "Too many attempts" in right.text


def test_the_admin_login_is_throttled_apart_from_the_connect_form(browser):
    get_user_model().objects.create_user(username="staff@example.com", email="staff@example.com",
                                         password="the-right-password", is_staff=True)
    attacker = browser()
    attacker.get("/admin/login/")
    for n in range(throttle.SIGNIN_PAIR.limit):
        wrong = attacker.post("/admin/login/", {"username": "staff@example.com", "password": f"guess-{n}"})
        assert wrong.status_code == 200 and "correct username and password" in wrong.text
    right = attacker.post("/admin/login/", {"username": "staff@example.com", "password": "the-right-password"})
    assert right.status_code == 200 and "Too many attempts" in right.text  # not the 302 into the admin
    assert "sessionid" not in attacker.session.cookies

    # Anyone can fail at the public connect form with a support e-mail, from the admin's very own IP: the
    # admin's sign-in is not refused for it (issue 24, medium finding 4).
    get_user_model().objects.create_user(username="boss@example.com", email="boss@example.com",
                                         password="the-right-password", is_staff=True, is_superuser=True)
    other = browser()
    other.get("/connect/signin/")
    for n in range(throttle.SIGNIN_ACCOUNT.limit + 5):
        other.post("/connect/signin/", {"email": "boss@example.com", "password": f"guess-{n}"})
    admin = browser()
    admin.get("/admin/login/")
    right = admin.post("/admin/login/", {"username": "boss@example.com", "password": "the-right-password",
                                         "next": "/admin/"})
    assert right.status_code == 302 and right.headers["Location"] == "/admin/"


def test_the_admin_login_still_works(browser):
    get_user_model().objects.create_user(username="staff@example.com", email="staff@example.com",
                                         password="the-right-password", is_staff=True)
    staff = browser()
    staff.get("/admin/login/")
    assert staff.post("/admin/login/", {"username": "staff@example.com", "password": "nope"}).status_code == 200
    right = staff.post("/admin/login/", {"username": "staff@example.com", "password": "the-right-password",
                                         "next": "/admin/"})
    assert right.status_code == 302 and right.headers["Location"] == "/admin/"
    assert staff.get("/admin/").status_code == 200


def test_sign_up_refuses_a_password_like_the_email_and_an_over_long_email(browser):
    person = browser()
    person.get("/connect/signup/")
    same = person.post("/connect/signup/", {"email": "jane.doe@example.com", "password": "jane.doe@example.com"})
    assert same.status_code == 400 and "too similar" in same.text.lower()
    contains = person.post("/connect/signup/", {"email": "jane.doe@example.com", "password": "xXjane.doe@example.com99"})
    assert contains.status_code == 400
    long_email = "a" * 250 + "@example.com"
    too_long = person.post("/connect/signup/", {"email": long_email, "password": "a-fine-password-1"})
    assert too_long.status_code == 400 and "at most 150 characters" in too_long.text
    assert not get_user_model().objects.exists()


def test_identical_sign_ups_at_once_answer_already_exists(browser):
    people = [browser() for _ in range(8)]
    for person in people:
        person.get("/connect/signup/")
    sign_up = lambda person: lambda: person.post(  # noqa: E731
        "/connect/signup/", {"email": "twin@example.com", "password": "a-fine-password-1"})
    responses = in_parallel([sign_up(person) for person in people], threads=8)
    statuses = [r.status_code for r in responses]
    assert 500 not in statuses, statuses
    assert statuses.count(302) == 1
    assert all("already a sign-in for this email" in r.text for r in responses if r.status_code != 302)
    assert get_user_model().objects.filter(username="twin@example.com").count() == 1


def test_sign_ups_from_one_ip_are_throttled(browser):
    statuses = []
    for n in range(throttle.SIGNUP_IP.limit + 2):
        person = browser()  # a fresh session each time: only the IP ties the sign-ups together
        person.get("/connect/signup/")
        statuses.append(person.post("/connect/signup/", {"email": f"bot{n}@example.com",
                                                         "password": "a-fine-password-1"}).status_code)
    assert statuses[:throttle.SIGNUP_IP.limit] == [302] * throttle.SIGNUP_IP.limit
    assert statuses[throttle.SIGNUP_IP.limit:] == [429, 429]


def test_add_an_ortto_account_is_throttled(make_user, browser):
    make_user("owner@example.com", password="the-right-password")
    person = browser()
    person.get("/connect/signin/")
    assert person.post("/connect/signin/", {"email": "owner@example.com", "password": "the-right-password"}
                       ).status_code == 302
    person.get("/connect/accounts/add/")
    form = {"business_name": "Acme", "name": "acme-us", "region": "default", "api_key": "wrong-key"}
    statuses = [person.post("/connect/accounts/add/", form).status_code
                for _ in range(throttle.ACCOUNT_ADD_USER.limit + 1)]
    assert 429 not in statuses[:-1] and statuses[-1] == 429


def test_counters_are_atomic_under_threads():
    from django.db import close_old_connections

    def hit():
        try:
            return throttle.throttle_hit(rule=throttle.SIGNIN_PAIR, subject="race@example.com")
        finally:
            close_old_connections()

    counts = in_parallel([hit] * 24, threads=8)
    # Each caller reads the count after its own increment: the k-th smallest answer is at least k, so
    # no more than `limit` callers can ever see a count within the limit.
    assert all(count >= rank for rank, count in enumerate(sorted(counts), start=1)), counts
    assert ThrottleCounter.objects.get().count == 24


def test_behind_the_tls_proxy_attempts_are_counted_by_the_forwarded_client(rf, settings):
    request = rf.post("/connect/signin/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.9")
    settings.BEHIND_TLS_PROXY = False
    assert throttle.client_ip(request) == "10.0.0.2"
    settings.BEHIND_TLS_PROXY = True  # the proxy appended the real client; the first entry is the client's claim
    assert throttle.client_ip(request) == "203.0.113.9"


def test_closed_windows_are_purged():
    from datetime import timedelta

    from django.utils import timezone

    throttle.throttle_hit(rule=throttle.SIGNUP_IP, subject="1.2.3.4")
    ThrottleCounter.objects.update(window_ends_at=timezone.now() - timedelta(seconds=1))
    assert throttle.throttle_purge() == 1
