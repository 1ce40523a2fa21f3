from django.urls import path

from sync.health import probes as health

urlpatterns = [path("", health.healthz, name="healthz")]
