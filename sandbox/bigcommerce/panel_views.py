"""The emulated BigCommerce control panel and storefront (HTML). Views parse, call a service, render."""

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.html import escape
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_POST

from stores.security_headers import support_page_policy

from . import limits, services
from .forms import AddToCartForm, ApiLimitsForm, CheckoutForm, CustomerForm, OrderStatusForm, RefundForm, UserAddForm
from .models import Cart, Customer, Hook, Order, Product, SandboxStore, SandboxUser, Script, Subscriber, WebhookDelivery
from .serializers import CATALOG, TAX_PERCENT, basket_totals, product_image_url

PAGE_SIZE = 50


def _session_key(store: SandboxStore) -> str:
    return f"sandbox_bc_user_{store.store_hash}"


def _panel(request, store_hash: str) -> tuple[SandboxStore, SandboxUser | None]:
    store = get_object_or_404(SandboxStore, store_hash=store_hash)
    users = list(store.users.all())
    chosen = request.session.get(_session_key(store))
    user = next((u for u in users if u.bc_id == chosen), None) or next((u for u in users if u.is_owner), None)
    return store, user


def _render(request, template: str, store: SandboxStore, user, section: str, **context):
    context.update(store=store, acting_user=user, users=store.users.all(), section=section,
                   app_name=services.APP_NAME, app_id=settings.BIGCOMMERCE_APP_ID)
    return render(request, f"sandbox/bigcommerce/{template}", context)


def _owner_only(request, user) -> bool:
    if user is None or not user.is_owner:
        messages.error(request, "Only the store owner can install or uninstall apps.")
        return False
    return True


def store_picker(request):
    return render(request, "sandbox/bigcommerce/store_picker.html", {"stores": SandboxStore.objects.all()})


def dashboard(request, store_hash):
    store, user = _panel(request, store_hash)
    counts = {
        "customers": store.customers.count(),
        "subscribers": store.subscribers.count(),
        "orders": store.orders.count(),
        "scripts": store.scripts.count(),
    }
    return _render(request, "dashboard.html", store, user, "dashboard", counts=counts,
                   install=services.live_install(store))


@require_POST
def switch_user(request, store_hash):
    store, _ = _panel(request, store_hash)
    chosen = store.users.filter(bc_id=request.POST.get("user_id")).first()
    if chosen:
        request.session[_session_key(store)] = chosen.bc_id
    return redirect(request.POST.get("next") or reverse("sandbox_bigcommerce:dashboard", args=[store.store_hash]))


# --- apps -----------------------------------------------------------------------------------------

def marketplace(request, store_hash):
    store, user = _panel(request, store_hash)
    return _render(request, "marketplace.html", store, user, "marketplace", install=services.live_install(store))


def app_install(request, store_hash):
    """GET: the scope confirmation page. POST (Confirm): issue a grant and show the app's auth callback."""
    store, user = _panel(request, store_hash)
    if request.method == "POST":
        if not _owner_only(request, user):
            return redirect("sandbox_bigcommerce:marketplace", store.store_hash)
        if not request.POST.get("agree"):
            messages.error(request, "Tick the box to accept the requested access.")
            return redirect("sandbox_bigcommerce:app_install", store.store_hash)
        install = services.app_install_grant(store=store, user=user)
        return _render(request, "app_frame.html", store, user, "apps", title=f"Installing {services.APP_NAME}",
                       frame_src=services.app_auth_callback_url(install=install))
    return _render(request, "install_confirm.html", store, user, "marketplace",
                   scopes=services.APP_SCOPES.split())


def my_apps(request, store_hash):
    store, user = _panel(request, store_hash)
    return _render(request, "apps.html", store, user, "apps", install=services.live_install(store))


def app_launch(request, store_hash, app_id):
    store, user = _panel(request, store_hash)
    if str(app_id) != str(settings.BIGCOMMERCE_APP_ID) or services.live_install(store) is None:
        messages.error(request, f"{services.APP_NAME} is not installed on this store.")
        return redirect("sandbox_bigcommerce:apps", store.store_hash)
    return _render(request, "app_frame.html", store, user, "apps", title=services.APP_NAME,
                   frame_src=services.app_load_url(store=store, user=user))


@require_POST
def app_uninstall(request, store_hash):
    store, user = _panel(request, store_hash)
    if _owner_only(request, user):
        result = services.app_uninstall(store=store, user=user)
        if result.ok:
            messages.success(request, f"{services.APP_NAME} was uninstalled.")
        else:
            messages.warning(request, f"{services.APP_NAME} was uninstalled; its uninstall callback answered "
                                      f"{result.status or result.error}.")
    return redirect("sandbox_bigcommerce:apps", store.store_hash)


# --- users ----------------------------------------------------------------------------------------

def users(request, store_hash):
    store, user = _panel(request, store_hash)
    form = UserAddForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        services.user_add(store=store, email=form.cleaned_data["email"])
        messages.success(request, f"Added {form.cleaned_data['email']}.")
        return redirect("sandbox_bigcommerce:users", store.store_hash)
    return _render(request, "users.html", store, user, "users", form=form)


@require_POST
def user_remove(request, store_hash, user_id):
    store, user = _panel(request, store_hash)
    target = get_object_or_404(SandboxUser, store=store, bc_id=user_id)
    try:
        result = services.user_remove(store=store, user=target)
    except ValueError as exc:
        messages.error(request, str(exc))
    else:
        note = f" The app's remove-user callback answered {result.status}." if result.status else ""
        messages.success(request, f"Removed {target.email}.{note}")
    return redirect("sandbox_bigcommerce:users", store.store_hash)


# --- customers and orders -------------------------------------------------------------------------

def customers(request, store_hash):
    store, user = _panel(request, store_hash)
    query = request.GET.get("q", "").strip()
    queryset = Customer.objects.filter(store=store).order_by("-date_modified", "-bc_id")
    if query:
        queryset = queryset.filter(
            Q(email__icontains=query) | Q(first_name__icontains=query) | Q(last_name__icontains=query)
        )
    page = Paginator(queryset, PAGE_SIZE).get_page(request.GET.get("page"))
    subscribed = {
        email for email, consents in Subscriber.objects.filter(
            store=store, email__in=[c.email for c in page]).values_list("email", "consents")
        if services.NEWSLETTER in consents
    }
    rows = [(c, c.email in subscribed) for c in page]
    return _render(request, "customers.html", store, user, "customers", page=page, rows=rows, query=query)


def customer_edit(request, store_hash, customer_id):
    store, user = _panel(request, store_hash)
    customer = get_object_or_404(Customer, store=store, bc_id=customer_id)
    initial = {"first_name": customer.first_name, "last_name": customer.last_name, "email": customer.email,
               "newsletter": services.customer_is_subscribed(customer)}
    form = CustomerForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            services.customer_update(customer=customer, **form.cleaned_data)
        except ValueError as exc:
            form.add_error("email", str(exc))
        else:
            messages.success(request, f"Saved customer #{customer.bc_id}.")
            return redirect("sandbox_bigcommerce:customers", store.store_hash)
    return _render(request, "customer_edit.html", store, user, "customers", customer=customer, form=form)


@require_POST
def customer_delete(request, store_hash, customer_id):
    """Edit customer › Delete customer: as the control panel does, firing store/customer/deleted."""
    store, user = _panel(request, store_hash)
    customer = get_object_or_404(Customer, store=store, bc_id=customer_id)
    services.customer_delete(customer=customer)
    messages.success(request, f"Deleted customer #{customer_id}.")
    return redirect("sandbox_bigcommerce:customers", store.store_hash)


def subscribers(request, store_hash):
    store, user = _panel(request, store_hash)
    queryset = Subscriber.objects.filter(store=store).order_by("-date_modified", "-bc_id")
    query = request.GET.get("q", "").strip()
    if query:
        queryset = queryset.filter(email__icontains=query)
    page = Paginator(queryset, PAGE_SIZE).get_page(request.GET.get("page"))
    return _render(request, "subscribers.html", store, user, "subscribers", page=page, query=query)


def orders(request, store_hash):
    store, user = _panel(request, store_hash)
    queryset = Order.objects.filter(store=store).order_by("-bc_id")
    page = Paginator(queryset, PAGE_SIZE).get_page(request.GET.get("page"))
    return _render(request, "orders.html", store, user, "orders", page=page,
                   statuses=sorted(Order.STATUSES.items()))


@require_POST
def order_status(request, store_hash, order_id):
    store, _ = _panel(request, store_hash)
    order = get_object_or_404(Order, store=store, bc_id=order_id)
    form = OrderStatusForm(request.POST)
    if form.is_valid():
        services.order_status_set(order=order, status_id=form.cleaned_data["status_id"])
        messages.success(request, f"Order #{order.bc_id} is now {order.status}.")
    return redirect(request.POST.get("next") or reverse("sandbox_bigcommerce:orders", args=[store.store_hash]))


def _orders_page(request, store) -> str:
    return request.POST.get("next") or reverse("sandbox_bigcommerce:orders", args=[store.store_hash])


@require_POST
def order_ship(request, store_hash, order_id):
    store, _ = _panel(request, store_hash)
    order = get_object_or_404(Order, store=store, bc_id=order_id)
    services.order_ship(order=order)
    messages.success(request, f"Order #{order.bc_id} shipped.")
    return redirect(_orders_page(request, store))


@require_POST
def order_cancel(request, store_hash, order_id):
    store, _ = _panel(request, store_hash)
    order = get_object_or_404(Order, store=store, bc_id=order_id)
    services.order_status_set(order=order, status_id=5)
    messages.success(request, f"Order #{order.bc_id} cancelled.")
    return redirect(_orders_page(request, store))


@require_POST
def order_refund(request, store_hash, order_id):
    store, _ = _panel(request, store_hash)
    order = get_object_or_404(Order, store=store, bc_id=order_id)
    form = RefundForm(request.POST)
    if form.is_valid():
        try:
            services.order_refund(order=order, amount=form.cleaned_data["amount"])
            messages.success(request, f"Refunded {form.cleaned_data['amount']} on order #{order.bc_id}.")
        except ValueError as exc:
            messages.error(request, str(exc))
    else:
        messages.error(request, "Enter an amount to refund.")
    return redirect(_orders_page(request, store))


# --- settings: API limits, faults, webhooks -------------------------------------------------------

def api_settings(request, store_hash):
    store, user = _panel(request, store_hash)
    fields = ApiLimitsForm.base_fields
    form = ApiLimitsForm(request.POST or None, initial={name: getattr(store, name) for name in fields})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        limits.quota_set(store=store, requests=data["quota_requests"], window_ms=data["quota_window_ms"])
        limits.faults_set(
            store=store, error_429_probability=data["fault_429_probability"],
            error_500_probability=data["fault_500_probability"], slow_probability=data["fault_slow_probability"],
            slow_seconds=data["fault_slow_seconds"], fail_next_count=data["fail_next_count"],
            fail_next_status=data["fail_next_status"],
        )
        messages.success(request, "Saved the API limits and faults.")
        return redirect("sandbox_bigcommerce:api_settings", store.store_hash)
    return _render(request, "api_settings.html", store, user, "api", form=form,
                   quota=limits.quota_peek(store=store))


def webhooks(request, store_hash):
    store, user = _panel(request, store_hash)
    return _render(request, "webhooks.html", store, user, "webhooks",
                   hooks=Hook.objects.filter(store=store),
                   deliveries=WebhookDelivery.objects.filter(store=store)[:50])


@require_POST
def webhooks_deactivate(request, store_hash):
    store, _ = _panel(request, store_hash)
    count = services.hooks_deactivate(store=store)
    messages.success(request, f"Deactivated {count} hook(s), as BigCommerce does after failed deliveries.")
    return redirect("sandbox_bigcommerce:webhooks", store.store_hash)


# --- products -------------------------------------------------------------------------------------

def products(request, store_hash):
    store, user = _panel(request, store_hash)
    services.catalog_ensure(store)
    return _render(request, "products.html", store, user, "products", products=Product.objects.filter(store=store))


@require_POST
def product_restock(request, store_hash, product_id):
    """The Restock button: the variant's stock goes to the quantity asked for (default 10)."""
    store, _ = _panel(request, store_hash)
    product = get_object_or_404(Product, store=store, bc_id=product_id)
    try:
        quantity = int(request.POST.get("quantity") or 10)
        services.product_restock(product=product, quantity=quantity)
    except ValueError:
        messages.error(request, "Enter a stock level of 0 or more.")
    else:
        messages.success(request, f"{product.name}: {quantity} in stock (store/product/inventory/updated fired).")
    return redirect(reverse("sandbox_bigcommerce:products", args=[store.store_hash]))


# --- storefront -----------------------------------------------------------------------------------

def storefront(request, store_hash):
    store = get_object_or_404(SandboxStore, store_hash=store_hash)
    scripts = list(Script.objects.filter(store=store, enabled=True,
                                         visibility__in=["storefront", "all_pages"]))
    # Scripts are the store's own content: BigCommerce puts them into the page verbatim.
    cart = _session_cart(request, store)
    tags = {"head": [], "footer": []}
    for script in scripts:
        tags[script.location].append(mark_safe(_script_tag(script, nonce=request.csp_nonce)))
    response = render(request, "sandbox/bigcommerce/storefront.html",
                      {"store": store, "scripts": scripts, "head_tags": tags["head"], "footer_tags": tags["footer"],
                       "catalog": [{**p, "slug": services.product_slug(p["name"])} for p in CATALOG], "cart": cart,
                       "basket": basket_totals(cart.items) if cart and cart.items else None, "form": AddToCartForm()})
    response["Content-Security-Policy"] = support_page_policy(nonce=request.csp_nonce, third_party_scripts=True)
    return response


def _cart_key(store: SandboxStore) -> str:
    return f"sandbox_cart_{store.store_hash}"


def _session_cart(request, store: SandboxStore) -> Cart | None:
    cart_id = request.session.get(_cart_key(store))
    return Cart.objects.filter(store=store, cart_id=cart_id).first() if cart_id else None


@require_POST
def storefront_cart(request, store_hash):
    """The storefront's cart: add a product, abandon the cart now (what an hour of silence does), check out."""
    store = get_object_or_404(SandboxStore, store_hash=store_hash)
    cart = _session_cart(request, store)
    action = request.POST.get("action", "add")
    try:
        if action == "add":
            form = AddToCartForm(request.POST)
            if form.is_valid():
                cart = services.cart_add(store=store, product_id=form.cleaned_data["product_id"],
                                         quantity=form.cleaned_data["quantity"],
                                         email=form.cleaned_data["email"] or "", cart=cart,
                                         customer=_signed_in(request, store))
                request.session[_cart_key(store)] = cart.cart_id
                messages.success(request, "Added to your cart.")
        elif action == "abandon" and cart is not None:
            services.cart_abandon(cart=cart)
            request.session.pop(_cart_key(store), None)
            messages.success(request, "Cart abandoned: BigCommerce's store/cart/abandoned webhook has fired.")
        elif action == "checkout" and cart is not None:
            order = services.cart_checkout(cart=cart)
            request.session.pop(_cart_key(store), None)
            messages.success(request, f"Thank you! Order #{order.bc_id} placed: ${order.total_inc_tax} charged.")
    except ValueError as exc:
        messages.error(request, str(exc))
    return redirect(_next(request, reverse("sandbox_bigcommerce:storefront", args=[store.store_hash])))


def storefront_cart_recover(request, store_hash):
    """The abandoned-cart link: the token in its query string brings the cart back to this browser."""
    store = get_object_or_404(SandboxStore, store_hash=store_hash)
    cart = services.cart_recover(store=store, token=request.GET.get("token", ""))
    if cart is None:
        messages.error(request, "This cart is no longer available.")
    else:
        request.session[_cart_key(store)] = cart.cart_id
        messages.success(request, "Welcome back: your cart is as you left it.")
    return redirect(reverse("sandbox_bigcommerce:storefront", args=[store.store_hash]))


def _script_tag(script: Script, *, nonce: str) -> str:
    """The script as the storefront page carries it, with the page's CSP nonce (see support_page_policy)."""
    if script.kind == "script_tag":
        return services.SCRIPT_TAG.sub(f'<script nonce="{nonce}"', script.html, count=1)
    attributes = f' nonce="{nonce}" src="{escape(script.src)}"'
    if script.load_method in ("async", "defer"):
        attributes += f" {script.load_method}"
    if script.integrity_hashes:
        attributes += f' integrity="{escape(" ".join(script.integrity_hashes))}" crossorigin="anonymous"'
    return f"<script{attributes}></script>"


def checkout(request, store_hash):
    store = get_object_or_404(SandboxStore, store_hash=store_hash)
    form = CheckoutForm(request.POST or None)
    order = None
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        customer = None
        if data["customer_email"]:
            customer = Customer.objects.filter(store=store, email=data["customer_email"].lower()).first()
            if customer is None:
                form.add_error("customer_email", "No customer account has this email.")
        if not form.errors:
            order = services.checkout_order_place(
                store=store, customer=customer, email=data["email"] or data["customer_email"],
                first_name=data["first_name"] or "Guest", last_name=data["last_name"] or "Shopper",
                line_items=form.line_items(), subscribe=data["subscribe"],
            )
            form = CheckoutForm()
    receipt = None
    if order is not None:
        receipt = {**basket_totals(order.line_items), "charged": order.total_inc_tax}
    return render(request, "sandbox/bigcommerce/checkout.html",
                  {"store": store, "form": form, "order": order, "receipt": receipt, "tax_percent": TAX_PERCENT})


# --- product pages, shopper sign-in and the Current Customer API ------------------------------------

def _storefront_tags(request, store: SandboxStore) -> dict:
    scripts = list(Script.objects.filter(store=store, enabled=True, visibility__in=["storefront", "all_pages"]))
    tags = {"head": [], "footer": []}
    for script in scripts:
        tags[script.location].append(mark_safe(_script_tag(script, nonce=request.csp_nonce)))
    return {"scripts": scripts, "head_tags": tags["head"], "footer_tags": tags["footer"]}


def _next(request, default: str) -> str:
    """The page a storefront form came from (only a path on this site)."""
    target = request.POST.get("next") or ""
    if target.startswith("/") and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return target
    return default


def _shopper_key(store: SandboxStore) -> str:
    return f"sandbox_shopper_{store.store_hash}"


def _signed_in(request, store: SandboxStore) -> Customer | None:
    customer_id = request.session.get(_shopper_key(store))
    return Customer.objects.filter(store=store, bc_id=customer_id).first() if customer_id else None


def product_page(request, store_hash, slug):
    """A product page as a Stencil theme renders it: the product form carries `data-product-id` and the
    variant's id, and a sold-out product says so (`data-product-stock="0"`), which the bridge's storefront
    script reads."""
    store = get_object_or_404(SandboxStore, store_hash=store_hash)
    services.catalog_ensure(store)
    product = get_object_or_404(Product, store=store, slug=slug)
    response = render(request, "sandbox/bigcommerce/product.html", {
        "store": store, "product": product, "image_url": product_image_url(store, product),
        "shopper": _signed_in(request, store), "cart": _session_cart(request, store), **_storefront_tags(request, store)})
    response["Content-Security-Policy"] = support_page_policy(nonce=request.csp_nonce, third_party_scripts=True)
    return response


def storefront_sign_in(request, store_hash):
    """The storefront's customer login, reduced to picking a customer by email (no password in the sandbox)."""
    store = get_object_or_404(SandboxStore, store_hash=store_hash)
    if request.method == "POST":
        if request.POST.get("action") == "sign_out":
            request.session.pop(_shopper_key(store), None)
            messages.success(request, "Signed out.")
        else:
            customer = Customer.objects.filter(store=store, email=(request.POST.get("email") or "").strip().lower()).first()
            if customer is None:
                messages.error(request, "No customer account has this email.")
            else:
                request.session[_shopper_key(store)] = customer.bc_id
                messages.success(request, f"Signed in as {customer.email}.")
        return redirect(_next(request, reverse("sandbox_bigcommerce:storefront", args=[store.store_hash])))
    return redirect(reverse("sandbox_bigcommerce:storefront", args=[store.store_hash]))


def current_customer_jwt(request, store_hash):
    """current_customer.yml, getCurrentCustomer: GET /customer/current.jwt?app_client_id=... answers, for a
    signed-in shopper, a JWT (HS256) signed with that app's client secret; 401 for a guest (a storefront
    session without a customer), 400 without a known app_client_id."""
    store = get_object_or_404(SandboxStore, store_hash=store_hash)
    if request.GET.get("app_client_id") != settings.BIGCOMMERCE_CLIENT_ID:
        return JsonResponse({"status": 400, "title": "app_client_id is missing or unknown."}, status=400)
    customer = _signed_in(request, store)
    if customer is None:
        return JsonResponse({"status": 401, "title": "No customer is signed in."}, status=401)
    return JsonResponse(services.current_customer_token(store=store, customer=customer), safe=False)


def product_image(request, store_hash, sku):
    """The product's main image (the CDN's url_standard in BigCommerce): a small drawn picture."""
    store = get_object_or_404(SandboxStore, store_hash=store_hash)
    product = get_object_or_404(Product, store=store, sku=sku)
    hue = (product.bc_id * 47) % 360
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="320" height="240" viewBox="0 0 320 240">'
           f'<rect width="320" height="240" fill="hsl({hue},45%,88%)"/>'
           f'<circle cx="160" cy="105" r="62" fill="hsl({hue},45%,45%)"/>'
           f'<text x="160" y="212" font-family="sans-serif" font-size="20" text-anchor="middle" fill="#223">'
           f'{escape(product.name)}</text></svg>')
    response = HttpResponse(svg, content_type="image/svg+xml")
    response["Cache-Control"] = "public, max-age=3600"
    return response
