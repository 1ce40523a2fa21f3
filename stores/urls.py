from django.urls import path

app_name = "bigcommerce"
urlpatterns = []
