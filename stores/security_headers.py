"""Headers for the bridge's own pages: a Content-Security-Policy, and no caching of pages that carry
tokens (the app page holds an app-context token and a connect link; the connect flow is signed in).

Only the product's pages get them (BigCommerce's callbacks and app page under /bigcommerce/, the
connect flow under /connect/); the admin and the sandbox keep Django's defaults. Templates carry no
inline script or style attribute, so the policy allows none: scripts and styles come from our static
files only. Framed pages (xframe_options_exempt) may be framed by BigCommerce's control panel, all
others by nobody.
"""

from django.conf import settings
from django.utils.cache import add_never_cache_headers

PRODUCT_PREFIXES = ("/bigcommerce/", "/connect/")

POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
          "font-src 'self'; form-action 'self'; base-uri 'none'; object-src 'none'")


def content_security_policy(*, framed: bool) -> str:
    ancestors = " ".join(["'self'", *settings.BIGCOMMERCE_FRAME_ANCESTORS]) if framed else "'none'"
    return f"{POLICY}; frame-ancestors {ancestors}"


class ProductPageHeadersMiddleware:
    """Last in MIDDLEWARE, so it sees the response first: FrameAncestorsMiddleware then finds the
    policy set and leaves it alone."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if not request.path_info.startswith(PRODUCT_PREFIXES):
            return response
        if "Content-Security-Policy" not in response:
            framed = getattr(response, "xframe_options_exempt", False)
            response["Content-Security-Policy"] = content_security_policy(framed=framed)
        add_never_cache_headers(response)
        return response
