"""HTTP face of the emulated Ortto: the /v1 API per region, JSON control endpoints and the people UI."""

import json
import time

from django.core.paginator import Paginator
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from sandbox import latency

from . import accounts, display, engine, guard, services
from .apps import ARRIVED_AT
from .models import CustomField, Instance, Person, RequestLog
from .seed import seed_existing_people

MAX_PAYLOAD_BYTES = 2 * 1024 * 1024


def _json(status: int, payload: dict) -> JsonResponse:
    return JsonResponse(payload, status=status, json_dumps_params={"ensure_ascii": False})


def _counts(endpoint: str, body) -> tuple[int, int]:
    if not isinstance(body, dict):
        return 0, 0
    people = body.get("people") if endpoint == "person/merge" else None
    activities = body.get("activities") if endpoint == "activities/create" else None
    return (len(people) if isinstance(people, list) else 0, len(activities) if isinstance(activities, list) else 0)


@csrf_exempt
def api(request, region: str, endpoint: str):
    """Every /sandbox/ortto/<region>/v1/<endpoint> call: auth, faults, throttling, then the engine."""
    arrived = request.META.get(ARRIVED_AT) or time.time()
    started = time.monotonic()
    instance = None
    body = None
    status, payload = 404, engine.error_body(404, "unknown endpoint or method")
    ip = request.META.get("REMOTE_ADDR") or "unknown"
    slot = None
    in_flight = None  # synchronous merges in flight when this one arrived, itself included (limited merges)
    try:
        banned = guard.ip_banned(ip)
        if banned:
            status, payload = 429, guard.banned_body(banned)
            return _json(status, payload)
        if region not in guard.REGIONS:
            return _json(status, payload)
        instance, problem = guard.authenticate(region=region, api_key=request.headers.get("X-Api-Key"))
        if problem:
            status, payload = problem["code"], problem
            return _json(status, payload)
        handler = engine.ENDPOINTS.get(endpoint) or accounts.ENDPOINTS.get(endpoint)
        if handler is None or request.method != (engine.METHODS.get(endpoint) or accounts.METHODS.get(endpoint, "POST")):
            return _json(status, payload)
        status, payload = _faults_and_limits(instance, arrived=arrived)
        if status:
            return _json(status, payload)
        if len(request.body) > MAX_PAYLOAD_BYTES:
            status, payload = engine.bad_request("payload larger than 2 MB")
            return _json(status, payload)
        try:
            body = json.loads(request.body or b"{}")
        except (ValueError, UnicodeDecodeError):
            status, payload = engine.bad_request("invalid JSON body")
            return _json(status, payload)
        if not isinstance(body, dict):
            status, payload = engine.bad_request("the body must be a JSON object")
            return _json(status, payload)
        if _limited_merge(instance, endpoint, body):
            slot, in_flight = guard.merge_slot_take(instance)
            if slot is None:
                status, payload = 429, guard.concurrency_body()
                return _json(status, payload)
        status, payload = _run(handler, instance, body)
        return _json(status, payload)
    finally:
        # The answer's latency: every answer takes it, and a synchronous merge holds its slot meanwhile (the time
        # Ortto works on it is the time it counts against the concurrency limit).
        latency.pause(latency.ortto_mean_ms(instance.latency_ms if instance is not None else 0))
        if slot is not None:
            slot.delete()
        if 400 <= status < 500 and status != 429:
            guard.ip_strike(ip)
        people, activities = _counts(endpoint, body)
        try:
            RequestLog.objects.create(
                instance=instance,
                path=endpoint[:200],
                people=people,
                activities=activities,
                status=status,
                duration_ms=int((time.monotonic() - started) * 1000),
                in_flight=in_flight,
            )
        except IntegrityError:
            # The instance was deleted (a reset, or a test's teardown) while this request ran: the
            # request log is the emulator's own bookkeeping and must not turn the answer into a 500.
            pass


def _limited_merge(instance: Instance, endpoint: str, body: dict) -> bool:
    """A synchronous person merge that looks people up by a merge key (not by person id)."""
    if endpoint != "person/merge" or not instance.merge_concurrency_limit or body.get("async"):
        return False
    return body.get("merge_by") != ["str::person_id"]


def _run(handler, instance, body):
    # Two requests creating the same new email at once: the loser sees the winner's row on a second try,
    # as a real merge would.
    for attempt in range(3):
        try:
            with transaction.atomic():
                return handler(instance, body)
        except IntegrityError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _faults_and_limits(instance: Instance, *, arrived: float):
    forced = guard.take_forced_failure(instance)
    if forced:
        return forced, guard.failure(forced)
    fault = guard.random_fault(instance)
    if fault == "429":
        return 429, guard.rate_limit_body(1)
    if fault == "500":
        return 500, guard.failure(500)
    if fault == "timeout":
        time.sleep(instance.fault_timeout_seconds)
        return 504, guard.failure(504)
    wait = guard.throttle(instance, arrived=arrived)
    if wait is not None:
        return 429, guard.rate_limit_body(wait)
    return 0, None


# --- control endpoints (sandbox only, no auth) -----------------------------------------------------------


def _body(request) -> dict:
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _instance(name: str) -> Instance:
    return get_object_or_404(Instance, name=name)


@csrf_exempt
@require_POST
def control_faults(request, name: str):
    """{"p429","p500","ptimeout","timeout_seconds","latency_ms","fail_next":{"count","status"},"clear"}"""
    body = _body(request)
    fail_next = body.get("fail_next") or {}
    faults = services.instance_set_faults(
        _instance(name),
        p429=body.get("p429"),
        p500=body.get("p500"),
        ptimeout=body.get("ptimeout"),
        timeout_seconds=body.get("timeout_seconds"),
        latency_ms=body.get("latency_ms"),
        fail_next_count=fail_next.get("count"),
        fail_next_status=fail_next.get("status"),
        clear=bool(body.get("clear")),
    )
    return _json(200, faults)


@csrf_exempt
@require_POST
def control_rate(request, name: str):
    body = _body(request)
    return _json(200, services.instance_set_rate_limit(_instance(name), per_second=int(body.get("per_second", 0))))


@csrf_exempt
@require_POST
def control_revoke(request, name: str):
    body = _body(request)
    revoked = services.instance_set_revoked(_instance(name), revoked=body.get("revoked"))
    return _json(200, {"revoked": revoked})


@csrf_exempt
@require_POST
def control_reset(request, name: str):
    body = _body(request)
    instance = _instance(name)
    services.instance_reset(instance, schema=bool(body.get("schema")), faults=bool(body.get("faults")))
    return _json(200, services.instance_stats(instance))


@csrf_exempt
@require_POST
def control_contract(request, name: str):
    """{"duplicate_status": 400|409, "batch_errors": "per_item"|"refuse_with_details"|"refuse",
    "merge_concurrency_limit": n, "expired": bool, "accepted_icons": [icon id, ...],
    "attribute_prefixes": {display type: prefix}, "ignore_status": "merged"|"ignored"|"unchanged"|"none",
    "account_ignore_status": the same or "ignored-no-id", "remove_absent": "ok"|"refuse"}"""
    body = _body(request)
    try:
        state = services.instance_set_contract(
            _instance(name), duplicate_status=body.get("duplicate_status"), batch_errors=body.get("batch_errors"),
            merge_concurrency_limit=body.get("merge_concurrency_limit"), expired=body.get("expired"),
            accepted_icons=body.get("accepted_icons"), attribute_prefixes=body.get("attribute_prefixes"),
            ignore_status=body.get("ignore_status"),
            account_ignore_status=body.get("account_ignore_status"), remove_absent=body.get("remove_absent"))
    except (TypeError, ValueError) as exc:
        return _json(400, {"error": str(exc)})
    return _json(200, state)


@csrf_exempt
@require_POST
def control_delete_people(request, name: str):
    """{"emails": [...]}: delete these people, as a deletion in Ortto (or a GDPR erasure) would."""
    deleted = services.instance_delete_people(_instance(name), emails=list(_body(request).get("emails") or []))
    return _json(200, {"deleted": deleted})


@csrf_exempt
@require_POST
def control_suppress(request, name: str):
    body = _body(request)
    emails = services.instance_set_suppressed(_instance(name), emails=list(body.get("emails") or []))
    return _json(200, {"suppressed_emails": emails})


@csrf_exempt
@require_POST
def control_people(request, name: str):
    """Seed existing people: {"people": [{"email","first","last","city","subscribed","reason"} | {"fields"}]}"""
    people = _body(request).get("people") or []
    created = seed_existing_people(_instance(name), people)
    return _json(200, {"people": [{"person_id": p.person_id, "email": p.email} for p in created]})


@csrf_exempt
@require_POST
def control_journey_webhook(request, name: str):
    """{"url": "https://..."} (blank: none): the journey that posts each unsubscribe to it."""
    url = str(_body(request).get("url") or "")
    if url and not url.startswith(("http://", "https://")):
        return _json(400, {"error": "url must be http(s)"})
    return _json(200, {"journey_webhook_url": services.instance_set_journey_webhook(_instance(name), url=url)})


@require_POST
def journey_webhook_set(request, name: str):
    """The people page's "Unsubscribe journey" form: the Send to webhook action's URL."""
    instance = _instance(name)
    url = request.POST.get("url", "").strip()
    if url and not url.startswith(("http://", "https://")):
        return redirect("sandbox_ortto:people", name=instance.name)
    services.instance_set_journey_webhook(instance, url=url)
    return redirect("sandbox_ortto:people", name=instance.name)


@require_GET
def control_stats(request, name: str):
    return _json(200, services.instance_stats(_instance(name)))


# --- people UI --------------------------------------------------------------------------------------------


@require_GET
def index(request):
    instances = Instance.objects.order_by("name")
    return render(request, "sandbox/ortto/index.html", {"instances": instances})


@require_GET
def app_home(request, name: str):
    _instance(name)
    return redirect("sandbox_ortto:people", name=name)


@require_GET
def people(request, name: str):
    instance = _instance(name)
    query = request.GET.get("q", "").strip()
    people = Person.objects.filter(instance=instance).only(
        "person_id", "email", "name", "email_permission", "fields", "created_at"
    )
    if query:
        people = people.filter(Q(email__icontains=query.lower()) | Q(name__icontains=query))
    page = Paginator(people.order_by("-created_at", "-id"), 50).get_page(request.GET.get("page"))
    rows = [
        {
            "person": p,
            "city": (p.fields.get("geo::city") or {}).get("name", "") if isinstance(p.fields.get("geo::city"), dict) else "",
            "email_display": p.fields.get("str::email") or p.email or "",
        }
        for p in page.object_list
    ]
    return render(
        request,
        "sandbox/ortto/people.html",
        {"instance": instance, "page": page, "rows": rows, "query": query},
    )


@require_POST
def person_unsubscribe(request, name: str, person_id: str):
    """The person page's Unsubscribe button: as if they clicked an email's unsubscribe link."""
    instance = _instance(name)
    person = get_object_or_404(Person, instance=instance, person_id=person_id)
    services.person_unsubscribe(person)
    return redirect("sandbox_ortto:person", name=instance.name, person_id=person.person_id)


@require_GET
def person_detail(request, name: str, person_id: str):
    instance = _instance(name)
    person = Person.objects.filter(instance=instance, person_id=person_id).first()
    if person is None:
        raise Http404("No such person")
    custom_fields = {f.field_id: f for f in CustomField.objects.filter(instance=instance)}
    return render(
        request,
        "sandbox/ortto/person.html",
        {
            "instance": instance,
            "person": person,
            "rows": display.field_rows(person, custom_fields),
            "feed": display.person_feed(person),
            "email_display": person.fields.get("str::email") or person.email or "",
        },
    )
