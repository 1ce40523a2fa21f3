from django.conf import settings


class FrameAncestorsMiddleware:
    """Lets BigCommerce's control panel (and only it) frame the pages marked `xframe_options_exempt`.

    Django 5.2 has no CSP support; X-Frame-Options cannot express an allow-list, so framed views are
    exempted from it and get a `frame-ancestors` policy instead. Every other page stays DENY.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if getattr(response, "xframe_options_exempt", False) and "Content-Security-Policy" not in response:
            sources = " ".join(["'self'", *settings.BIGCOMMERCE_FRAME_ANCESTORS])
            response["Content-Security-Policy"] = f"frame-ancestors {sources}"
        return response


WEBHOOK_PATH = "/bigcommerce/webhooks/"  # stores.urls "bigcommerce:webhooks"; a test keeps the two in step


class WebhookIntakeMiddleware:
    """Hands BigCommerce webhook deliveries straight to their view, past what only browser pages need.

    A delivery carries no cookie, session, user or CSRF token, and its view is csrf_exempt; sessions,
    CSRF, auth, messages and URL resolution were a third of a delivery's CPU. It sits after the
    security and X-Frame-Options middleware, so the response headers are the same as before, and it
    still validates the Host header against ALLOWED_HOSTS (400 otherwise) and sets Content-Length, as
    CommonMiddleware did.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path_info != WEBHOOK_PATH:
            return self.get_response(request)
        from .webhooks import receive

        request.get_host()  # raises DisallowedHost (answered 400) for a host not in ALLOWED_HOSTS
        response = receive(request)
        if not response.has_header("Content-Length"):  # as CommonMiddleware sets it (no chunked empty body)
            response.headers["Content-Length"] = str(len(response.content))
        return response
