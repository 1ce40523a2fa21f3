"""An e-mail backend that keeps messages in the sandbox's table, shown at /sandbox/mailbox/."""

from django.core.mail.backends.base import BaseEmailBackend

from .models import Message


class EmailBackend(BaseEmailBackend):
    def send_messages(self, email_messages):
        sent = 0
        for message in email_messages:
            Message.objects.create(from_email=message.from_email, to="\n".join(message.recipients()),
                                   subject=message.subject, body=message.body)
            sent += 1
        return sent
