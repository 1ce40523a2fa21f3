from django.urls import path

from . import api_views, panel_views

app_name = "sandbox_bigcommerce"

api = "api/stores/<str:store_hash>/"
manage = "store-<str:store_hash>/manage/"

urlpatterns = [
    # Store API (api.bigcommerce.com/stores/{hash}/...)
    path(f"{api}v2/store", api_views.store_information, name="api_store"),
    path(f"{api}v2/orders", api_views.orders, name="api_orders"),
    path(f"{api}v2/orders/count", api_views.orders_count, name="api_orders_count"),
    path(f"{api}v2/orders/<int:order_id>", api_views.order, name="api_order"),
    path(f"{api}v3/carts/<str:cart_id>", api_views.cart, name="api_cart"),
    path(f"{api}v3/catalog/products", api_views.catalog_products, name="api_catalog_products"),
    path(f"{api}v3/customers", api_views.customers, name="api_customers"),
    path(f"{api}v3/customers/subscribers", api_views.subscribers, name="api_subscribers"),
    path(f"{api}v3/customers/subscribers/<int:subscriber_id>", api_views.subscriber, name="api_subscriber"),
    path(f"{api}v3/content/scripts", api_views.scripts, name="api_scripts"),
    path(f"{api}v3/content/scripts/<uuid:script_uuid>", api_views.script, name="api_script"),
    path(f"{api}v3/hooks", api_views.hooks, name="api_hooks"),
    path(f"{api}v3/hooks/<int:hook_id>", api_views.hook, name="api_hook"),
    # OAuth (login.bigcommerce.com)
    path("login/oauth2/token", api_views.token, name="token"),
    # Control endpoints for tests and benchmarks
    path("control/<str:store_hash>/faults", api_views.control_faults, name="control_faults"),
    path("control/<str:store_hash>/quota", api_views.control_quota, name="control_quota"),
    # Control panel
    path("", panel_views.store_picker, name="store_picker"),
    path(manage, panel_views.dashboard, name="dashboard"),
    path(f"{manage}switch-user/", panel_views.switch_user, name="switch_user"),
    path(f"{manage}marketplace/", panel_views.marketplace, name="marketplace"),
    path(f"{manage}marketplace/ortto-bridge/install/", panel_views.app_install, name="app_install"),
    path(f"{manage}apps/", panel_views.my_apps, name="apps"),
    path(f"{manage}apps/uninstall/", panel_views.app_uninstall, name="app_uninstall"),
    path(f"{manage}app/<str:app_id>", panel_views.app_launch, name="app_launch"),
    path(f"{manage}users/", panel_views.users, name="users"),
    path(f"{manage}users/<int:user_id>/remove/", panel_views.user_remove, name="user_remove"),
    path(f"{manage}customers/", panel_views.customers, name="customers"),
    path(f"{manage}customers/<int:customer_id>/edit/", panel_views.customer_edit, name="customer_edit"),
    path(f"{manage}customers/<int:customer_id>/delete/", panel_views.customer_delete, name="customer_delete"),
    path(f"{manage}customers/subscribers/", panel_views.subscribers, name="subscribers"),
    path(f"{manage}orders/", panel_views.orders, name="orders"),
    path(f"{manage}orders/<int:order_id>/status/", panel_views.order_status, name="order_status"),
    path(f"{manage}orders/<int:order_id>/ship/", panel_views.order_ship, name="order_ship"),
    path(f"{manage}orders/<int:order_id>/cancel/", panel_views.order_cancel, name="order_cancel"),
    path(f"{manage}orders/<int:order_id>/refund/", panel_views.order_refund, name="order_refund"),
    path(f"{manage}products/", panel_views.products, name="products"),
    path(f"{manage}products/<int:product_id>/restock/", panel_views.product_restock, name="product_restock"),
    path(f"{manage}settings/api/", panel_views.api_settings, name="api_settings"),
    path(f"{manage}settings/webhooks/", panel_views.webhooks, name="webhooks"),
    path(f"{manage}settings/webhooks/deactivate/", panel_views.webhooks_deactivate, name="webhooks_deactivate"),
    # Storefront
    path("store-<str:store_hash>/storefront/", panel_views.storefront, name="storefront"),
    path("store-<str:store_hash>/checkout/", panel_views.checkout, name="checkout"),
    path("store-<str:store_hash>/storefront/cart/", panel_views.storefront_cart, name="storefront_cart"),
    # The abandoned-cart recovery link (docs/ortto-contract.md, "Abandoned cart"): the storefront's cart page
    # with the abandoned-cart token in its query string.
    path("store-<str:store_hash>/storefront/cart.php", panel_views.storefront_cart_recover, name="cart_recover"),
    path("store-<str:store_hash>/storefront/sign-in/", panel_views.storefront_sign_in, name="storefront_sign_in"),
    path("store-<str:store_hash>/customer/current.jwt", panel_views.current_customer_jwt, name="current_customer_jwt"),
    path("store-<str:store_hash>/product_images/<str:sku>.svg", panel_views.product_image, name="product_image"),
    path("store-<str:store_hash>/storefront/<slug:slug>/", panel_views.product_page, name="product_page"),
]
