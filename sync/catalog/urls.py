from django.urls import path

from sync.catalog import storefront

app_name = "storefront"
urlpatterns = [
    path("<str:store_hash>/back-in-stock/", storefront.back_in_stock, name="back-in-stock"),
    path("<str:store_hash>/viewed/", storefront.product_viewed, name="viewed"),
]
