from django.conf import settings
from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path
from django.utils.functional import lazy
from django.views.generic import RedirectView

from stores import urls as stores_urls
from sync import bigcommerce_urls as sync_bigcommerce_urls
from sync.admin.login import ThrottledAdminLoginForm
from sync.consent import instant as consent_instant

# The admin login counts guesses like the connect sign-in, apart from it: failures there never refuse an admin here.
admin.site.login_form = ThrottledAdminLoginForm

urlpatterns = [
    path("admin/", admin.site.urls),
    # BigCommerce's callbacks (stores) and what sync serves beside them: one "bigcommerce" namespace.
    path("bigcommerce/", include((stores_urls.urlpatterns + sync_bigcommerce_urls.urlpatterns, "bigcommerce"))),
    path("connect/", include("sync.connect.urls")),
    path("healthz", include("sync.health.urls")),
    # The storefront script's endpoints (back-in-stock form, signed-in product views): sync/catalog/storefront.py.
    path("storefront/", include("sync.catalog.urls")),
    # The store's Ortto unsubscribe journey posts here (Send to webhook): sync/consent/instant.py.
    path("ortto/unsubscribed/<str:store_hash>/", consent_instant.ortto_unsubscribed, name="ortto-unsubscribed"),
    # Browsers ask for /favicon.ico on pages that name no icon (JSON answers, error pages). The icon's URL
    # is looked up on first use, once collectstatic has written the manifest; a temporary redirect, as a
    # hashed name changes with the file.
    path("favicon.ico", RedirectView.as_view(url=lazy(static, str)("favicon.ico"), permanent=False)),
]

if settings.SANDBOX:
    # The emulated BigCommerce and Ortto; never mounted in production.
    urlpatterns.append(path("sandbox/", include("sandbox.urls")))
    urlpatterns.append(path("", include("sandbox.home_urls")))
