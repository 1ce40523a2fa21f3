"""The admin's login form, under the same throttle as the connect sign-in (one lock per account)."""

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm

from . import throttle


class ThrottledAdminLoginForm(AdminAuthenticationForm):
    def clean(self):
        username = (self.cleaned_data.get("username") or "").strip().lower()
        ip = throttle.client_ip(self.request) if self.request else ""
        if username and self.cleaned_data.get("password"):
            if not throttle.signin_attempt(username=username, ip=ip):
                raise forms.ValidationError(throttle.locked_message(), code="throttled")
        cleaned = super().clean()
        if username:
            throttle.signin_succeeded(username=username, ip=ip)
        return cleaned
