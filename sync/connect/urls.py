from django.urls import path

from sync.connect import views

app_name = "connect"
urlpatterns = [
    path("", views.start, name="start"),
    path("signin/", views.signin, name="signin"),
    path("signup/", views.signup, name="signup"),
    path("signout/", views.signout, name="signout"),
    path("accounts/", views.accounts, name="accounts"),
    path("accounts/add/", views.account_add, name="account-add"),
    path("merge/", views.merge, name="merge"),
    path("syncing/<int:run_id>/", views.syncing, name="syncing"),
    path("syncing/<int:run_id>/progress", views.syncing_progress, name="syncing-progress"),
]
