"""Support's "Forget this email" (sync/consent/erasure.py) and the erasure audit rows, which keep a keyed
hash and never the email. Needs the "Can forget an email" permission (the Support group has it).

Also the unsubscribe write-backs (sync/consent/writeback.py): read-only, with a "Retry" action for the failed
ones (BigCommerce kept refusing past the attempt limit), which needs "Can retry a failed unsubscribe
write-back" (the Support group has it)."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from stores.admin_toolkit import ReadOnlyAdmin
from stores.models import Store
from sync.consent.erasure import email_forget
from sync.consent.writeback import writebacks_retry
from sync.models import ConsentWriteback, ErasureRecord


class ForgetEmailForm(forms.Form):
    email = forms.EmailField(label="Email", max_length=255)
    store = forms.ModelChoiceField(queryset=Store.objects.order_by("store_hash"), required=False,
                                   empty_label="Every store", label="Store")
    in_ortto = forms.BooleanField(required=False, label="Also delete the person in Ortto",
                                  help_text="Archives, then deletes them in the Ortto account of each connection "
                                            "(an account shared with other stores loses them there too).")
    confirm = forms.BooleanField(required=True, label="I understand this cannot be undone")


@admin.register(ErasureRecord)
class ErasureRecordAdmin(ReadOnlyAdmin):
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


@admin.register(ConsentWriteback)
class ConsentWritebackAdmin(ReadOnlyAdmin):
    list_display = ("email", "store_hash", "state", "attempts", "last_error", "via_hook", "found_at", "written_at")
    list_filter = ("state", "via_hook")
    search_fields = ("email", "connection__store__store_hash")
    list_select_related = ("connection__store",)
    fields = ("connection", "email", "state", "via_hook", "attempts", "last_error", "found_at", "written_at")
    readonly_fields = fields
    actions = ["retry"]

    @admin.display(description="Store", ordering="connection__store__store_hash")
    def store_hash(self, row):
        return row.connection.store.store_hash

    def has_retry_permission(self, request) -> bool:
        return request.user.has_perm("sync.retry_writeback")

    @admin.action(description="Retry the failed ones (written at the store's next sync)", permissions=["retry"])
    def retry(self, request, queryset):
        count = writebacks_retry(queryset)
        skipped = queryset.count() - count
        text = f"{count} write-back{'s' if count != 1 else ''} pending again, written at the store's next sync."
        if skipped:
            text += f" {skipped} not failed, left as {'it was' if skipped == 1 else 'they were'}."
        self.message_user(request, text, messages.SUCCESS if count else messages.WARNING)
