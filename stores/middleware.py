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
