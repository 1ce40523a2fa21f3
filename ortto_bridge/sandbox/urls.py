from django.urls import include, path

urlpatterns = [
    path("bigcommerce/", include("ortto_bridge.sandbox.bigcommerce.urls")),
    path("ortto/", include("ortto_bridge.sandbox.ortto.urls")),
]
