"""The connect flow, first-party in its own tab: Ortto sign-in → Accounts → Merge → Syncing your data."""

from django.contrib.auth import authenticate, get_user_model, login, logout
from django.contrib.auth.decorators import login_required
from django.db import IntegrityError, transaction
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from stores.app_context import CONNECT_MAX_AGE, ContextTokenError, connect_token_read
from stores.json_limits import MAX_ID
from stores.models import Store
from stores.services import StoreUnavailable, store_for_context
from sync import throttle
from sync.connect import connections, selectors
from sync.connect.accounts import ortto_account_add
from sync.connect.authority import connection_manager_may
from sync.connect.forms import AddAccountForm, MergeForm, SignInForm, SignUpForm
from sync.mail import store_owner_email
from sync.models import SyncRun

SESSION_KEY = "connect"
# When the link that bound the flow was issued: a flow from before the user's removal ends with it.
ISSUED_KEY = "connect_issued_at"


def _flow_page(request, template, context=None, status=200):
    context = dict(context or {})
    context.setdefault("flow_store", _flow_store(request))
    return render(request, template, context, status=status)


def _flow_store(request) -> Store | None:
    data = request.session.get(SESSION_KEY)
    if not data:
        return None
    # Re-checked on every step: a user removed from the store (or an uninstall) ends the flow at once, and a
    # flow bound from a link issued before a removal stays dead after a re-add (stores' one rule for tokens).
    try:
        return store_for_context(store_hash=data["store_hash"], bc_user_id=data["bc_user_id"],
                                 issued_at_ms=request.session.get(ISSUED_KEY, 0))
    except StoreUnavailable:
        return None


def _no_flow(request):
    return _flow_page(
        request, "sync/message.html",
        {"title": "Start from your BigCommerce control panel",
         "message": "Open Ortto Bridge from Apps › My Apps in your BigCommerce control panel and click Connect."},
        status=400,
    )


class _LinkRefused(Exception):
    def __init__(self, response):
        super().__init__("refused")
        self.response = response


def _not_allowed(request, store: Store):
    return _flow_page(
        request, "sync/not_allowed.html", {"store": store, "owner_email": store_owner_email(store=store)}, status=403,
    )


def _link_read(request, token: str | None) -> tuple[dict, Store, int]:
    """The flow a connect link names (store and BigCommerce user) and its store. Reads only; raises
    _LinkRefused with the page that says why the link cannot be followed."""
    try:
        ctx = connect_token_read(token)
    except ContextTokenError as exc:
        message = (
            "This Connect link has expired." if str(exc) == "expired" else "This Connect link is not valid."
        ) + " Go back to the app in your BigCommerce control panel and click Connect again."
        raise _LinkRefused(_flow_page(request, "sync/message.html", {"title": "Cannot connect", "message": message},
                                      status=403))
    try:
        store = store_for_context(store_hash=ctx.store_hash, bc_user_id=ctx.bc_user_id, issued_at_ms=ctx.issued_at_ms)
    except StoreUnavailable:
        raise _LinkRefused(_flow_page(
            request, "sync/message.html",
            {"title": "Cannot connect", "message": "This store has uninstalled the app, or you no longer have access to it."},
            status=403,
        )) from None
    if not connection_manager_may(store=store, bc_user_id=ctx.bc_user_id):
        raise _LinkRefused(_not_allowed(request, store))
    return {"store_hash": ctx.store_hash, "bc_user_id": ctx.bc_user_id}, store, ctx.issued_at_ms


def _link_used(request):
    return _flow_page(
        request, "sync/message.html",
        {"title": "This link has been used",
         "message": "This Connect link has been used already. Go back to the app in your BigCommerce "
                    "control panel, reload it, and click Connect again."},
        status=403,
    )


def _link_follow(request, token: str | None):
    """Bind this browser's session to the flow a connect link names: only ever on a POST with its CSRF token
    (Continue on the confirmation page, or the sign-in / sign-up that the link led to). Single-use: a link
    read from a log, a history or a proxy is worth nothing once followed."""
    try:
        flow, _, issued_at_ms = _link_read(request, token)
    except _LinkRefused as refused:
        return refused.response
    if request.session.get(SESSION_KEY) != flow:
        if not throttle.single_use(purpose="connect", token=token, ttl_seconds=CONNECT_MAX_AGE):
            return _link_used(request)
        request.session[SESSION_KEY] = flow
        request.session[ISSUED_KEY] = issued_at_ms
        request.session.pop("connect_account", None)
    else:
        _flow_renew(request, issued_at_ms)
    return redirect("connect:accounts")


def _flow_renew(request, issued_at_ms: int) -> None:
    """The session's own flow, reopened from a link checked just now: that link's issue time is the flow's."""
    request.session[ISSUED_KEY] = max(request.session.get(ISSUED_KEY, 0), issued_at_ms)


def _link_store(token: str | None) -> Store | None:
    """The store a connect link names, for the pages it leads to (sign-in, sign-up); None if invalid."""
    try:
        ctx = connect_token_read(token)
    except ContextTokenError:
        return None
    return Store.objects.filter(store_hash=ctx.store_hash, is_installed=True).first()


@require_http_methods(["GET", "POST"])
def start(request):
    """The Connect button opens this with a signed, short-lived token bound to the store and the user.

    A GET changes nothing. The browser whose session already follows this store's flow goes on with it
    (a reload). Any other browser is asked first: one signed in to the bridge sees what the link would do
    (this store, this sign-in) with Continue and Cancel, since an attacker's link to their own store looks
    exactly like the owner's; one not signed in gets the sign-in, which names the store. Only the POST
    that follows binds the flow to this session (docs/design.md §2).
    """
    if request.method == "POST" and "cancel" in request.POST:
        return _flow_page(
            request, "sync/message.html",
            {"title": "Nothing was connected",
             "message": "You cancelled: no store was connected and nothing changed. You can close this tab."},
        )
    token = request.POST.get("token") if request.method == "POST" else request.GET.get("token")
    if request.method == "POST":
        return _link_follow(request, token)
    try:
        flow, store, _ = _link_read(request, token)
    except _LinkRefused as refused:
        return refused.response
    if request.session.get(SESSION_KEY) == flow and _flow_store(request) is not None:
        return redirect("connect:accounts")
    if throttle.single_use_spent(purpose="connect", token=token):
        return _link_used(request)
    if request.user.is_authenticated:
        # No "connecting …" in the top bar: nothing is being connected until Continue.
        return _flow_page(request, "sync/connect_confirm.html", {"store": store, "token": token, "flow_store": None})
    return _flow_page(request, "sync/signin.html",
                      {"form": SignInForm(), "token": token, "flow_store": store, "next": reverse("connect:accounts")})


def _client_ip(request) -> str:
    return throttle.client_ip(request)


@require_http_methods(["GET", "POST"])
def signin(request):
    next_url = request.POST.get("next") or request.GET.get("next") or reverse("connect:accounts")
    if not url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}):
        next_url = reverse("connect:accounts")
    token = request.POST.get("token") or request.GET.get("token") or ""
    form = SignInForm(request.POST or None)
    error = ""
    status = 200
    if request.method == "POST" and form.is_valid():
        email = form.cleaned_data["email"].strip().lower()
        ip = _client_ip(request)
        # Counted before the password is checked, so parallel guesses cannot all slip under the limit.
        refused = throttle.signin_attempt(form="connect", username=email, ip=ip)
        if refused is not None:
            error = throttle.locked_message(refused)
            status = 429
        else:
            user = authenticate(request, username=email, password=form.cleaned_data["password"])
            if user is None:
                error = "That email and password do not match an Ortto Bridge sign-in."
                status = 400
            else:
                throttle.signin_succeeded(form="connect", username=email, ip=ip)
                login(request, user)
                return _link_follow(request, token) if token else redirect(next_url)
    context = {"form": form, "error": error, "next": next_url, "token": token}
    if token:
        context["flow_store"] = _link_store(token)
    return _flow_page(request, "sync/signin.html", context, status=status)


@require_http_methods(["GET", "POST"])
def signup(request):
    token = request.POST.get("token") or request.GET.get("token") or ""
    form = SignUpForm(request.POST or None)
    status = 200
    if request.method == "POST" and not throttle.signup_attempt(ip=_client_ip(request)):
        form.add_error(None, throttle.locked_message(throttle.SIGNUP_IP))
        status = 429
    elif request.method == "POST" and form.is_valid():
        email = form.cleaned_data["email"]
        try:
            with transaction.atomic():
                user = get_user_model().objects.create_user(
                    username=email, email=email, password=form.cleaned_data["password"])
        except IntegrityError:  # the same sign-up, sent twice at once: the other one created it
            form.add_error("email", SignUpForm.ALREADY_EXISTS)
            status = 400
        else:
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            return _link_follow(request, token) if token else redirect("connect:accounts")
    elif request.method == "POST":
        status = 400
    context = {"form": form, "token": token}
    if token:
        context["flow_store"] = _link_store(token)
    return _flow_page(request, "sync/signup.html", context, status=status)


@require_POST
def signout(request):
    flow, issued_at_ms = request.session.get(SESSION_KEY), request.session.get(ISSUED_KEY, 0)
    logout(request)
    if flow:
        request.session[SESSION_KEY] = flow
        request.session[ISSUED_KEY] = issued_at_ms
    return redirect("connect:signin")


@login_required
@require_http_methods(["GET", "POST"])
def accounts(request):
    store = _flow_store(request)
    if store is None:
        return _no_flow(request)
    if not connection_manager_may(store=store, bc_user_id=request.session[SESSION_KEY]["bc_user_id"]):
        return _not_allowed(request, store)
    available = selectors.ortto_accounts_for_user(user=request.user)
    available = selectors.ortto_accounts_with_other_stores(accounts=available, store=store)
    if request.method == "POST":
        account_id = request.POST.get("account", "")
        numeric = account_id.isascii() and account_id.isdigit() and len(account_id) < 19  # "²" is a digit too
        account = available.filter(pk=int(account_id)).first() if numeric else None
        if account is None:
            return _flow_page(
                request, "sync/accounts.html",
                {"accounts": available, "current": selectors.live_connection_get(store=store),
                 "error": "Pick one of your Ortto accounts."},
                status=400,
            )
        request.session["connect_account"] = account.pk
        return redirect("connect:merge")
    return _flow_page(
        request, "sync/accounts.html", {"accounts": available, "current": selectors.live_connection_get(store=store)}
    )


@login_required
@require_http_methods(["GET", "POST"])
def account_add(request):
    form = AddAccountForm(request.POST or None)
    error = ""
    if request.method == "POST" and not throttle.account_add_attempt(user_id=request.user.pk, ip=_client_ip(request)):
        # Each attempt tries an API key against Ortto: a key-guessing loop stops here.
        error = throttle.locked_message(throttle.ACCOUNT_ADD_USER)
        return _flow_page(request, "sync/account_add.html", {"form": form, "error": error}, status=429)
    if request.method == "POST" and form.is_valid():
        outcome = ortto_account_add(user=request.user, **form.cleaned_data)
        if outcome.account:
            return redirect("connect:accounts")
        error = outcome.error
        if outcome.accepted_region:
            # The key is right, only the region was wrong: keep it in the field for the second try.
            form.fields["api_key"].widget.render_value = True
    return _flow_page(request, "sync/account_add.html", {"form": form, "error": error}, status=400 if error else 200)


@login_required
@require_http_methods(["GET", "POST"])
def merge(request):
    store = _flow_store(request)
    if store is None:
        return _no_flow(request)
    if not connection_manager_may(store=store, bc_user_id=request.session[SESSION_KEY]["bc_user_id"]):
        return _not_allowed(request, store)
    account = selectors.ortto_accounts_for_user(user=request.user).filter(pk=request.session.get("connect_account")).first()
    if account is None:
        return redirect("connect:accounts")
    current = selectors.live_connection_get(store=store)
    same_account = current is not None and current.account_id == account.pk
    initial = {"merge_strategy": current.merge_strategy} if same_account else None
    # The import running into this account keeps the strategy it started with (connection_connect).
    running = selectors.active_import_get(store=store) if same_account else None
    form = MergeForm(request.POST or None, initial=initial)
    error = ""
    switching = current is not None and not same_account
    if request.method == "POST" and form.is_valid() and switching and request.POST.get("confirm_switch") != "1":
        # Another account: the old connection ends and a full import starts. Only on an explicit yes.
        error = f"Confirm that {store} should switch to {account.business_name} and run a full import into it."
    elif request.method == "POST" and form.is_valid():
        outcome = connections.connection_connect(
            store=store, account=account, merge_strategy=form.cleaned_data["merge_strategy"], user=request.user,
            bc_user_id=request.session[SESSION_KEY]["bc_user_id"],
        )
        if outcome.ok:
            return redirect("connect:syncing", run_id=outcome.run.pk)
        error = outcome.reason
    return _flow_page(
        request, "sync/merge.html",
        {"form": form, "account": account, "error": error, "current": current, "running": running,
         "switching": switching},
        status=400 if error else 200,
    )


def _run_for_user(request, run_id) -> SyncRun:
    if run_id > MAX_ID:
        raise Http404("No such run.")
    run = get_object_or_404(SyncRun.objects.select_related("store", "connection__account"), pk=run_id)
    if not run.connection.account.members.filter(pk=request.user.pk).exists():
        raise Http404("No such run.")
    return run


@login_required
@require_GET
def syncing(request, run_id):
    run = _run_for_user(request, run_id)
    return _flow_page(
        request, "sync/syncing.html",
        {"run": run, "account": run.connection.account, "done_url": selectors.control_panel_url(store=run.store),
         "flow_store": run.store},
    )


@login_required
@require_GET
def syncing_progress(request, run_id):
    run = _run_for_user(request, run_id)
    return JsonResponse({
        "status": run.status, "status_label": run.get_status_display(), "percent": run.progress_percent,
        "processed": run.processed, "total": run.total, "failed": run.failed, "counters": run.counters,
        "finished": not run.is_active, "error_summary": run.error_summary,
    })
