from django import forms

from .models import Order
from .serializers import CATALOG


class CustomerForm(forms.Form):
    first_name = forms.CharField(max_length=100)
    last_name = forms.CharField(max_length=100)
    email = forms.EmailField(max_length=255)
    newsletter = forms.BooleanField(required=False, label="Subscribed to the newsletter")


class CheckoutForm(forms.Form):
    """The store's checkout: how many of each catalog product, at its listed price, and who buys."""

    customer_email = forms.EmailField(
        required=False, label="Existing customer's email",
        help_text="Leave empty to check out as a guest with the details below.",
    )
    email = forms.EmailField(required=False, label="Guest email")
    first_name = forms.CharField(max_length=100, required=False)
    last_name = forms.CharField(max_length=100, required=False)
    subscribe = forms.BooleanField(required=False, label="Subscribe to our newsletter")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for index, product in enumerate(CATALOG):
            self.fields[self.quantity_field(product)] = forms.IntegerField(
                min_value=0, max_value=20, required=False, initial=1 if index == 0 else 0, label=product["name"])

    @staticmethod
    def quantity_field(product: dict) -> str:
        return f"quantity_{product['product_id']}"

    def products(self):
        """(product, its quantity field) for the page's table of products."""
        return [(product, self[self.quantity_field(product)]) for product in CATALOG]

    def customer_fields(self):
        return [self[name] for name in ("customer_email", "email", "first_name", "last_name", "subscribe")]

    def clean(self):
        data = super().clean()
        if not data.get("customer_email") and not data.get("email"):
            raise forms.ValidationError("Enter a customer's email or a guest email.")
        if not self.line_items():
            raise forms.ValidationError("Choose at least one product.")
        return data

    def line_items(self) -> list[dict]:
        """The order's lines: each chosen product at its listed price."""
        lines = []
        for product in CATALOG:
            quantity = self.cleaned_data.get(self.quantity_field(product)) or 0
            if quantity:
                lines.append({**{k: product[k] for k in ("product_id", "variant_id", "sku", "name", "options")},
                              "quantity": quantity, "price": str(product["price"])})
        return lines


class OrderStatusForm(forms.Form):
    status_id = forms.TypedChoiceField(coerce=int, choices=sorted(Order.STATUSES.items()))


class RefundForm(forms.Form):
    amount = forms.DecimalField(min_value=0.01, max_digits=10, decimal_places=2)


class AddToCartForm(forms.Form):
    product_id = forms.IntegerField()
    quantity = forms.IntegerField(min_value=1, max_value=20, initial=1)
    email = forms.EmailField(required=False, max_length=255, label="Your email",
                             help_text="Shoppers who give an email can be reminded of their cart.")


class UserAddForm(forms.Form):
    email = forms.EmailField()


class ApiLimitsForm(forms.Form):
    quota_requests = forms.IntegerField(min_value=0, label="Requests per window")
    quota_window_ms = forms.IntegerField(min_value=1, label="Window (ms)")
    fault_429_probability = forms.FloatField(min_value=0, max_value=1, label="P(429)")
    fault_500_probability = forms.FloatField(min_value=0, max_value=1, label="P(500/502/503)")
    fault_slow_probability = forms.FloatField(min_value=0, max_value=1, label="P(slow)")
    fault_slow_seconds = forms.FloatField(min_value=0, max_value=60, label="Slow response (s)")
    fail_next_count = forms.IntegerField(min_value=0, label="Fail the next N requests")
    fail_next_status = forms.IntegerField(min_value=400, max_value=599, label="…with status")
