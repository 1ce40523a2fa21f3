from django.urls import path

from . import views

app_name = "sandbox_mailbox"
urlpatterns = [path("", views.mailbox, name="mailbox")]
