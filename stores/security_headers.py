"""Security headers for every page the bridge serves: a Permissions-Policy everywhere, a
Content-Security-Policy everywhere, and no caching of pages that carry tokens (the app page holds an
app-context token and a connect link; the connect flow is signed in).

The product's pages (BigCommerce's callbacks and app page under /bigcommerce/, the connect flow under
/connect/) carry no inline script or style attribute, so their policy allows none: scripts and styles
come from our static files only. The admin and the sandbox get a policy as strict for scripts (static
files, or an inline block carrying this response's nonce, `request.csp_nonce`); their <style> blocks carry
the nonce too, and only their style *attributes* are allowed inline (style-src-attr): Django's admin and
our charts set widths and colours there, and an attribute can run no script. Framed pages
(xframe_options_exempt) may be framed by BigCommerce's control panel, all others by nobody.
"""

import secrets

from django.conf import settings
from django.utils.cache import add_never_cache_headers

PRODUCT_PREFIXES = ("/bigcommerce/", "/connect/")

POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
          "font-src 'self'; form-action 'self'; base-uri 'none'; object-src 'none'")

# Powerful browser features the bridge, its admin and its sandbox never use: denied to the page and to
# anything it frames. Only features Chromium knows, so the header itself logs no console warning.
PERMISSIONS_POLICY = ", ".join(f"{feature}=()" for feature in (
    "accelerometer", "autoplay", "camera", "display-capture", "encrypted-media", "fullscreen", "geolocation",
    "gyroscope", "hid", "idle-detection", "magnetometer", "microphone", "midi", "payment", "picture-in-picture",
    "publickey-credentials-get", "screen-wake-lock", "serial", "usb", "xr-spatial-tracking",
))


def content_security_policy(*, framed: bool) -> str:
    ancestors = " ".join(["'self'", *settings.BIGCOMMERCE_FRAME_ANCESTORS]) if framed else "'none'"
    return f"{POLICY}; frame-ancestors {ancestors}"


# The one inline <style> block of Django's own admin templates (admin/change_list.html, for a list without
# actions), allowed by its hash; tests/browser/test_content_security_policy.py sees the admin break no rule.
DJANGO_ADMIN_STYLE_HASHES = ("'sha256-blvLUW3UscWqsXGByNOqdBboM+ShWAuugp2mC/wbafU='",)


def support_page_policy(*, nonce: str, third_party_scripts: bool = False) -> str:
    """The admin's and the sandbox's policy: the sandbox's control panel frames the app (same origin).

    third_party_scripts: the sandbox's storefront, which stands for a merchant's storefront and runs the
    scripts the store installed through the Scripts API (Ortto's tracking code loads Ortto's script and sends
    to Ortto's capture API): those scripts carry the nonce, what they load is trusted through them
    ('strict-dynamic'), and they may talk to any https origin.
    """
    scripts = f"'self' 'nonce-{nonce}'" + (" 'strict-dynamic' https:" if third_party_scripts else "")
    remote = " https:" if third_party_scripts else ""
    styles = " ".join(("'self'", f"'nonce-{nonce}'", *DJANGO_ADMIN_STYLE_HASHES))
    return (f"default-src 'self'; script-src {scripts}; style-src-elem {styles}; "
            f"style-src-attr 'unsafe-inline'; img-src 'self' data:{remote}; connect-src 'self'{remote}; "
            "font-src 'self'; frame-src 'self'; form-action 'self'; base-uri 'none'; object-src 'none'; "
            "frame-ancestors 'self'")


class SecurityHeadersMiddleware:
    """Last in MIDDLEWARE, so it sees the response first: FrameAncestorsMiddleware then finds the
    policy set and leaves it alone."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.csp_nonce = secrets.token_urlsafe(16)
        response = self.get_response(request)
        response.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        if "Content-Security-Policy" in response:
            return response
        if request.path_info.startswith(PRODUCT_PREFIXES):
            framed = getattr(response, "xframe_options_exempt", False)
            response["Content-Security-Policy"] = content_security_policy(framed=framed)
            add_never_cache_headers(response)
        elif not getattr(response, "xframe_options_exempt", False):
            response["Content-Security-Policy"] = support_page_policy(nonce=request.csp_nonce)
        return response
