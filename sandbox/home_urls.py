from django.urls import path
from django.views.generic import RedirectView

# In the sandbox the site's root opens the emulated BigCommerce control panel.
urlpatterns = [path("", RedirectView.as_view(url="/sandbox/bigcommerce/", permanent=False))]
