from django.urls import path

from . import health

urlpatterns = [path("", health.healthz, name="healthz")]
