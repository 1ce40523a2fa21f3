from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from sync.admin_login import ThrottledAdminLoginForm

# The admin login counts guesses with the connect sign-in: an account locked there is locked here too.
admin.site.login_form = ThrottledAdminLoginForm

urlpatterns = [
    path("admin/", admin.site.urls),
    path("bigcommerce/", include("stores.urls")),
    path("connect/", include("sync.urls")),
    path("healthz", include("sync.health_urls")),
]

if settings.SANDBOX:
    # The emulated BigCommerce and Ortto; never mounted in production.
    urlpatterns.append(path("sandbox/", include("sandbox.urls")))
    urlpatterns.append(path("", include("sandbox.home_urls")))
