"""The emulated Ortto's organization pages (Ortto's API calls them accounts): the list and one account
with its fields and people, next to the people pages."""

from django.core.paginator import Paginator
from django.db.models import Count
from django.http import Http404
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from . import schema
from .accounts import BUILTIN_ACCOUNT_FIELDS
from .models import Account, AccountCustomField, Instance


@require_GET
def organizations(request, name: str):
    instance = get_object_or_404(Instance, name=name)
    query = request.GET.get("q", "").strip()
    accounts = Account.objects.filter(instance=instance).annotate(people_count=Count("people"))
    if query:
        accounts = accounts.filter(name__icontains=query)
    page = Paginator(accounts.order_by("name", "id"), 50).get_page(request.GET.get("page"))
    rows = [{"account": a, "website": a.fields.get("str:o:website", ""),
             "city": schema.display_value("geo:o:city", a.fields.get("geo:o:city"))} for a in page.object_list]
    return render(request, "sandbox/ortto/organizations.html",
                  {"instance": instance, "page": page, "rows": rows, "query": query, "section": "organizations"})


@require_GET
def organization_detail(request, name: str, account_id: str):
    instance = get_object_or_404(Instance, name=name)
    account = Account.objects.filter(instance=instance, account_id=account_id).first()
    if account is None:
        raise Http404("No such organization")
    custom = {f.field_id: f for f in AccountCustomField.objects.filter(instance=instance)}
    order = list(BUILTIN_ACCOUNT_FIELDS)
    rows = [
        {"field_id": field_id,
         "label": BUILTIN_ACCOUNT_FIELDS.get(field_id) or (custom[field_id].name if field_id in custom
                                                            else schema.friendly_name(field_id, {})),
         "value": schema.display_value(field_id, value, custom[field_id].display_type if field_id in custom else "")}
        for field_id, value in sorted(account.fields.items(),
                                      key=lambda item: (item[0] not in order, order.index(item[0]) if item[0] in order else 0, item[0]))
    ]
    people = account.people.order_by("email").only("person_id", "email", "name", "email_permission", "fields")
    return render(request, "sandbox/ortto/organization.html",
                  {"instance": instance, "account": account, "rows": rows, "people": people,
                   "section": "organizations"})
