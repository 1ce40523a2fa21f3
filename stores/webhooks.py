"""BigCommerce webhook deliveries arrive here: a thin view over sync.webhooks.webhook_event_receive."""

from django.http import HttpResponse, HttpResponseNotAllowed
from django.views.decorators.csrf import csrf_exempt

MAX_BODY_BYTES = 64 * 1024


@csrf_exempt
def receive(request):
    """Answer BigCommerce at once with an empty body: 200 stored/duplicate/ignored, 4xx refused."""
    from sync.webhooks import SECRET_HEADER, webhook_event_receive

    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return HttpResponse(status=400)
    if declared > MAX_BODY_BYTES:
        return HttpResponse(status=413)
    receipt = webhook_event_receive(body=request.body, secret=request.headers.get(SECRET_HEADER))
    return HttpResponse(status=receipt.status_code)
