"""What the BigCommerce side tells the apps above it. stores never imports them: they connect here."""

from django.dispatch import Signal

# BigCommerce removed the app from a store. Sent with store=<Store> inside the uninstall's transaction,
# after the store's token is dropped, so receivers' writes commit or roll back with it.
store_uninstalled = Signal()
