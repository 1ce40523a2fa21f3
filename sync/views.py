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
from stores.models import Store, StoreUser

from . import connections, selectors, throttle
from .accounts import ortto_account_add
from .forms import AddAccountForm, MergeForm, SignInForm, SignUpForm
from .models import SyncRun

SESSION_KEY = "connect"


def _flow_page(request, template, context=None, status=200):
    context = dict(context or {})
    context.setdefault("flow_store", _flow_store(request))
    return render(request, template, context, status=status)


def _flow_store(request) -> Store | None:
    data = request.session.get(SESSION_KEY)
    if not data:
        return None
    # Re-checked on every step: a user removed from the store (or an uninstall) ends the flow at once.
    return Store.objects.filter(
        store_hash=data["store_hash"], is_installed=True,
        users__bc_user_id=data["bc_user_id"], users__is_active=True,
    ).first()


def _no_flow(request):
    return _flow_page(
        request, "sync/message.html",
        {"title": "Start from your BigCommerce control panel",
         "message": "Open Ortto Bridge from Apps › My Apps in your BigCommerce control panel and click Connect."},
        status=400,
    )


@require_GET
def start(request):
    """The Connect button lands here with a signed, short-lived token bound to the store and the user."""
    try:
        ctx = connect_token_read(request.GET.get("token"))
    except ContextTokenError as exc:
        message = (
            "This Connect link has expired." if str(exc) == "expired" else "This Connect link is not valid."
        ) + " Go back to the app in your BigCommerce control panel and click Connect again."
        return _flow_page(request, "sync/message.html", {"title": "Cannot connect", "message": message}, status=403)
    flow = {"store_hash": ctx.store_hash, "bc_user_id": ctx.bc_user_id}
    # Single-use: a link read from a log, a history or a proxy is worth nothing once clicked. The same
    # browser opening it again (a reload) already holds this flow in its session and goes on.
    first_use = throttle.single_use(purpose="connect", token=request.GET["token"], ttl_seconds=CONNECT_MAX_AGE)
    if not first_use and request.session.get(SESSION_KEY) != flow:
        return _flow_page(
            request, "sync/message.html",
            {"title": "This link has been used",
             "message": "This Connect link has been used already. Go back to the app in your BigCommerce "
                        "control panel, reload it, and click Connect again."},
            status=403,
        )
    if not StoreUser.objects.filter(
        store__store_hash=ctx.store_hash, store__is_installed=True, bc_user_id=ctx.bc_user_id, is_active=True
    ).exists():
        return _flow_page(
            request, "sync/message.html",
            {"title": "Cannot connect", "message": "This store has uninstalled the app, or you no longer have access to it."},
            status=403,
        )
    if request.session.get(SESSION_KEY) != flow:
        request.session[SESSION_KEY] = flow
        request.session.pop("connect_account", None)
    return redirect("connect:accounts")


def _client_ip(request) -> str:
    return throttle.client_ip(request)


@require_http_methods(["GET", "POST"])
def signin(request):
    next_url = request.POST.get("next") or request.GET.get("next") or reverse("connect:accounts")
    if not url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}):
        next_url = reverse("connect:accounts")
    form = SignInForm(request.POST or None)
    error = ""
    status = 200
    if request.method == "POST" and form.is_valid():
        email = form.cleaned_data["email"].strip().lower()
        ip = _client_ip(request)
        # Counted before the password is checked, so parallel guesses cannot all slip under the limit.
        if not throttle.signin_attempt(username=email, ip=ip):
            error = throttle.locked_message()
            status = 429
        else:
            user = authenticate(request, username=email, password=form.cleaned_data["password"])
            if user is None:
                error = "That email and password do not match an Ortto Bridge sign-in."
                status = 400
            else:
                throttle.signin_succeeded(username=email, ip=ip)
                login(request, user)
                return redirect(next_url)
    return _flow_page(request, "sync/signin.html", {"form": form, "error": error, "next": next_url}, status=status)


@require_http_methods(["GET", "POST"])
def signup(request):
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
            return redirect("connect:accounts")
    elif request.method == "POST":
        status = 400
    return _flow_page(request, "sync/signup.html", {"form": form}, status=status)


@require_POST
def signout(request):
    flow = request.session.get(SESSION_KEY)
    logout(request)
    if flow:
        request.session[SESSION_KEY] = flow
    return redirect("connect:signin")


@login_required
@require_http_methods(["GET", "POST"])
def accounts(request):
    store = _flow_store(request)
    if store is None:
        return _no_flow(request)
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
