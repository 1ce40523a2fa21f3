from django.urls import path

from . import views

# ortto_bridge/urls.py mounts these under bigcommerce/ together with sync's (sync/bigcommerce_urls.py),
# in the one "bigcommerce" namespace.
urlpatterns = [
    path("auth/", views.auth_callback, name="auth"),
    path("load/", views.load_callback, name="load"),
    path("uninstall/", views.uninstall_callback, name="uninstall"),
    path("remove-user/", views.remove_user_callback, name="remove-user"),
]
