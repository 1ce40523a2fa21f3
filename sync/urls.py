from django.urls import path

app_name = "connect"
urlpatterns = []
