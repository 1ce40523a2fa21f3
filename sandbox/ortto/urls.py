from django.urls import path

from . import account_views, views

app_name = "sandbox_ortto"

urlpatterns = [
    path("", views.index, name="index"),
    # People UI (OrttoAccount.account_url points at app/<instance>/).
    path("app/<slug:name>/", views.app_home, name="app"),
    path("app/<slug:name>/people/", views.people, name="people"),
    path("app/<slug:name>/people/<str:person_id>/", views.person_detail, name="person"),
    path("app/<slug:name>/people/<str:person_id>/unsubscribe/", views.person_unsubscribe, name="person-unsubscribe"),
    path("app/<slug:name>/journey-webhook/", views.journey_webhook_set, name="journey-webhook"),
    path("app/<slug:name>/organizations/", account_views.organizations, name="organizations"),
    path("app/<slug:name>/organizations/<str:account_id>/", account_views.organization_detail, name="organization"),
    # JSON control endpoints for tests and benchmarks.
    path("control/<slug:name>/faults", views.control_faults, name="control-faults"),
    path("control/<slug:name>/rate", views.control_rate, name="control-rate"),
    path("control/<slug:name>/revoke", views.control_revoke, name="control-revoke"),
    path("control/<slug:name>/reset", views.control_reset, name="control-reset"),
    path("control/<slug:name>/suppress", views.control_suppress, name="control-suppress"),
    path("control/<slug:name>/contract", views.control_contract, name="control-contract"),
    path("control/<slug:name>/delete-people", views.control_delete_people, name="control-delete-people"),
    path("control/<slug:name>/people", views.control_people, name="control-people"),
    path("control/<slug:name>/stats", views.control_stats, name="control-stats"),
    path("control/<slug:name>/journey-webhook", views.control_journey_webhook, name="control-journey-webhook"),
    # The API, one host per region in production: /sandbox/ortto/<default|au|eu>/v1/...
    path("<str:region>/v1/<path:endpoint>", views.api, name="api"),
]
