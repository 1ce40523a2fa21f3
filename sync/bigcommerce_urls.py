"""What sync serves under bigcommerce/: webhook intake and the app page's own endpoints.

Their paths are contracts: BigCommerce posts to the webhook path it was registered with (hooks.WEBHOOK_PATH,
where WebhookIntakeMiddleware answers; a test keeps the two in step), and the app page's scripts call the rest.
"""

from django.urls import path

from sync.connect import app_views
from sync.intake import webhooks

urlpatterns = [
    path("webhooks/", webhooks.webhook_receive, name="webhooks"),
    path("app/status", app_views.app_status, name="app-status"),
    path("app/panel", app_views.app_panel, name="app-panel"),
    path("app/tracking", app_views.app_tracking, name="app-tracking"),
    path("app/sync-now", app_views.app_sync_now, name="app-sync-now"),
    path("app/retry-failed", app_views.app_retry_failed, name="app-retry-failed"),
    path("app/alerts", app_views.app_alerts, name="app-alerts"),
    path("app/consent/writeback", app_views.app_consent_writeback, name="app-consent-writeback"),
    path("app/consent/erase", app_views.app_consent_erase, name="app-consent-erase"),
    path("app/consent/hook", app_views.app_consent_hook, name="app-consent-hook"),
    path("app/stock-consent", app_views.app_stock_consent, name="app-stock-consent"),
    path("app/disconnect", app_views.app_disconnect, name="app-disconnect"),
    path("app/managers", app_views.app_managers, name="app-managers"),
]
