from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from stores import urls as stores_urls
from sync import bigcommerce_urls as sync_bigcommerce_urls
from sync.admin_login import ThrottledAdminLoginForm

# The admin login counts guesses like the connect sign-in, apart from it: failures there never refuse an admin here.
admin.site.login_form = ThrottledAdminLoginForm

urlpatterns = [
    path("admin/", admin.site.urls),
    # BigCommerce's callbacks (stores) and what sync serves beside them: one "bigcommerce" namespace.
    path("bigcommerce/", include((stores_urls.urlpatterns + sync_bigcommerce_urls.urlpatterns, "bigcommerce"))),
    path("connect/", include("sync.urls")),
    path("healthz", include("sync.health_urls")),
]

if settings.SANDBOX:
    # The emulated BigCommerce and Ortto; never mounted in production.
    urlpatterns.append(path("sandbox/", include("sandbox.urls")))
    urlpatterns.append(path("", include("sandbox.home_urls")))
