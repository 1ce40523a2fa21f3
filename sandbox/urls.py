from django.urls import include, path

urlpatterns = [
    path("bigcommerce/", include("sandbox.bigcommerce.urls")),
    path("ortto/", include("sandbox.ortto.urls")),
    path("mailbox/", include("sandbox.mailbox.urls")),
]
