"""The sandbox's mailbox: `make run` sends the bridge's e-mail here and shows it at /sandbox/mailbox/."""

import pytest
from django.core.mail import EmailMessage

pytestmark = pytest.mark.django_db


def test_the_backend_keeps_messages_and_the_page_lists_them_with_their_text(client, settings):
    settings.EMAIL_BACKEND = "sandbox.mailbox.backend.EmailBackend"
    assert client.get("/sandbox/mailbox/").content.decode().count('id="mailbox-empty"') == 1
    EmailMessage("Ortto Bridge: A sync stalled for Acme", "Hello,\n\n<b>not markup</b>", "bridge@localhost",
                 ["owner@acme.example"], bcc=["support@bridge.example"]).send()
    page = client.get("/sandbox/mailbox/").content.decode()
    assert "Ortto Bridge: A sync stalled for Acme" in page and "owner@acme.example" in page
    assert "support@bridge.example" in page and "&lt;b&gt;not markup&lt;/b&gt;" in page


def test_make_run_uses_the_mailbox_unless_email_url_says_otherwise():
    # Tests swap in Django's locmem backend; the setting the sandbox starts with is read from the module.
    from ortto_bridge import settings as module

    assert module.EMAIL_BACKEND == "sandbox.mailbox.backend.EmailBackend"
