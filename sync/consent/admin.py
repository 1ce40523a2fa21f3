"""Support's "Forget this email" (sync/consent/erasure.py) and the erasure audit rows, which keep a keyed
hash and never the email. Needs the "Can forget an email" permission (the Support group has it)."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from stores.models import Store
from sync.consent.erasure import email_forget
from sync.models import ErasureRecord


class ForgetEmailForm(forms.Form):
    email = forms.EmailField(label="Email", max_length=255)
    store = forms.ModelChoiceField(queryset=Store.objects.order_by("store_hash"), required=False,
                                   empty_label="Every store", label="Store")
    in_ortto = forms.BooleanField(required=False, label="Also delete the person in Ortto",
                                  help_text="Archives, then deletes them in the Ortto account of each connection "
                                            "(an account shared with other stores loses them there too).")
    confirm = forms.BooleanField(required=True, label="I understand this cannot be undone")


@admin.register(ErasureRecord)
class ErasureRecordAdmin(admin.ModelAdmin):
    list_display = ("created_at", "store", "source", "short_hash", "in_ortto", "ortto_outcome", "lifted_at")
    list_filter = ("source", "in_ortto")
    list_select_related = ("store",)
    fields = ("created_at", "store", "source", "requested_by", "email_hash", "in_ortto", "ortto_outcome",
              "rows_deleted", "lifted_at")
    readonly_fields = fields
    change_list_template = "admin/sync/erasurerecord/change_list.html"

    @admin.display(description="Email hash")
    def short_hash(self, record):
        return record.email_hash[:16] + "…"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_forget_permission(self, request) -> bool:
        return request.user.has_perm("sync.forget_email")

    def get_urls(self):
        return [path("forget/", self.admin_site.admin_view(self.forget_view), name="sync_erasurerecord_forget")] \
            + super().get_urls()

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "can_forget": self.has_forget_permission(request),
                         "forget_url": reverse("admin:sync_erasurerecord_forget")}
        return super().changelist_view(request, extra_context=extra_context)

    def forget_view(self, request):
        """Forget this email: a form; on POST the erasure, a message, and the audit list."""
        if not self.has_forget_permission(request):
            raise PermissionDenied
        form = ForgetEmailForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            record = email_forget(email=form.cleaned_data["email"], store=form.cleaned_data["store"],
                                  in_ortto=form.cleaned_data["in_ortto"],
                                  requested_by=request.user.get_username(), source=ErasureRecord.Source.SUPPORT)
            rows = sum(record.rows_deleted.values())
            text = f"Forgotten: {rows} row{'s' if rows != 1 else ''} erased in the bridge"
            if record.in_ortto:
                text += f"; Ortto: {record.ortto_outcome}"
            text += f". Audit row {record.pk} keeps only a keyed hash."
            if record.in_ortto and "Ortto answered" in record.ortto_outcome:
                messages.warning(request, text + " Ortto did not erase them everywhere: run Forget this email "
                                                 "again to try Ortto once more.")
            else:
                messages.success(request, text)
            return HttpResponseRedirect(reverse("admin:sync_erasurerecord_changelist"))
        context = {**self.admin_site.each_context(request), "title": "Forget this email", "form": form,
                   "opts": self.model._meta}
        return TemplateResponse(request, "admin/sync/erasurerecord/forget.html", context,
                                status=400 if request.method == "POST" else 200)
