from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password

from .models import MergeStrategy, OrttoAccount


class SignInForm(forms.Form):
    email = forms.EmailField(widget=forms.EmailInput(attrs={"autocomplete": "email", "autofocus": True}))
    password = forms.CharField(widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}))


class SignUpForm(forms.Form):
    email = forms.EmailField(widget=forms.EmailInput(attrs={"autocomplete": "email", "autofocus": True}))
    password = forms.CharField(widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))

    def clean_email(self):
        email = self.cleaned_data["email"].strip().lower()
        if get_user_model().objects.filter(username__iexact=email).exists():
            raise forms.ValidationError("There is already a sign-in for this email. Sign in instead.")
        return email

    def clean_password(self):
        password = self.cleaned_data["password"]
        validate_password(password)
        return password


class AddAccountForm(forms.Form):
    business_name = forms.CharField(max_length=255, help_text="As it should appear in the app, e.g. Acme Outdoor.")
    name = forms.SlugField(
        max_length=100, label="Ortto account name",
        help_text="The part of your Ortto address after ortto.app/, e.g. acme-us.",
    )
    region = forms.ChoiceField(choices=OrttoAccount.Region.choices, initial=OrttoAccount.Region.DEFAULT)
    api_key = forms.CharField(
        label="Private API key", max_length=500, widget=forms.PasswordInput(render_value=False),
        help_text="Ortto › Data sources › Custom API › API key.",
    )
    tracking_key = forms.CharField(
        label="Tracking key", max_length=255, required=False,
        help_text="Optional. Ortto › Data sources › Tracking code; needed for website tracking.",
    )


class MergeForm(forms.Form):
    merge_strategy = forms.TypedChoiceField(
        choices=MergeStrategy.choices, coerce=int, widget=forms.RadioSelect, initial=MergeStrategy.APPEND_ONLY,
        label="How should people's and organizations' data merge into Ortto?",
    )
