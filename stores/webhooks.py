"""BigCommerce webhook deliveries arrive here: a thin view over sync.webhooks.webhook_event_receive."""

import logging

from django.http import HttpResponse, HttpResponseNotAllowed
from django.views.decorators.csrf import csrf_exempt

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024


def _refused(request, status: int, outcome: str, size) -> HttpResponse:
    # Never the body or the secret header: only what an operator needs to spot a misconfigured hook or a probe.
    logger.warning("webhook delivery refused: %s (HTTP %d, %s bytes, from %s)", outcome, status, size,
                   request.META.get("REMOTE_ADDR", "-"))
    return HttpResponse(status=status)


@csrf_exempt
def receive(request):
    """Answer BigCommerce at once with an empty body: 200 stored/duplicate/ignored, 4xx refused."""
    from sync.webhooks import SECRET_HEADER, webhook_event_receive

    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return _refused(request, 400, "bad Content-Length", "?")
    if declared > MAX_BODY_BYTES:
        return _refused(request, 413, "too_large", declared)
    receipt = webhook_event_receive(body=request.body, secret=request.headers.get(SECRET_HEADER))
    if receipt.status_code >= 400:
        return _refused(request, receipt.status_code, receipt.outcome, len(request.body))
    return HttpResponse(status=receipt.status_code)
