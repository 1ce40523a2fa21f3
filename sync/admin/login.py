"""The admin's login form, under the same throttle as the connect sign-in but counted apart from it: failures
on the public connect form never refuse or slow an admin's own sign-in."""

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm

from sync import throttle


class ThrottledAdminLoginForm(AdminAuthenticationForm):
    def clean(self):
        username = (self.cleaned_data.get("username") or "").strip().lower()
        ip = throttle.client_ip(self.request) if self.request else ""
        if username and self.cleaned_data.get("password"):
            refused = throttle.signin_attempt(form="admin", username=username, ip=ip)
            if refused is not None:
                raise forms.ValidationError(throttle.locked_message(refused), code="throttled")
        cleaned = super().clean()
        if username:
            throttle.signin_succeeded(form="admin", username=username, ip=ip)
        return cleaned
