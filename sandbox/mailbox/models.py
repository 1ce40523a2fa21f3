from django.db import models


class Message(models.Model):
    """One e-mail the bridge sent while the sandbox runs (settings.EMAIL_BACKEND is sandbox.mailbox.backend)."""

    sent_at = models.DateTimeField(auto_now_add=True)
    from_email = models.CharField(max_length=255)
    to = models.TextField(help_text="Recipients, one per line (To, then Cc and Bcc).")
    subject = models.CharField(max_length=998)
    body = models.TextField()

    class Meta:
        ordering = ["-sent_at", "-id"]

    def __str__(self):
        return self.subject
