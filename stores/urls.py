from django.urls import path

from . import views, webhooks

app_name = "bigcommerce"
urlpatterns = [
    path("auth/", views.auth_callback, name="auth"),
    path("load/", views.load_callback, name="load"),
    path("uninstall/", views.uninstall_callback, name="uninstall"),
    path("remove-user/", views.remove_user_callback, name="remove-user"),
    path("webhooks/", webhooks.receive, name="webhooks"),
    path("app/status", views.app_status, name="app-status"),
    path("app/panel", views.app_panel, name="app-panel"),
    path("app/tracking", views.app_tracking, name="app-tracking"),
    path("app/sync-now", views.app_sync_now, name="app-sync-now"),
    path("app/disconnect", views.app_disconnect, name="app-disconnect"),
]
