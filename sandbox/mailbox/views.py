from django.shortcuts import render
from django.views.decorators.http import require_GET

from .models import Message


@require_GET
def mailbox(request):
    """Every message the bridge sent, newest first, with its text."""
    return render(request, "sandbox/mailbox/mailbox.html", {"messages_sent": Message.objects.all()[:200]})
