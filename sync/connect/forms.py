from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password

from sync.models import MergeStrategy, OrttoAccount


class SignInForm(forms.Form):
    email = forms.EmailField(widget=forms.EmailInput(attrs={"autocomplete": "email", "autofocus": True}))
    password = forms.CharField(widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}))


class SignUpForm(forms.Form):
    ALREADY_EXISTS = "There is already a sign-in for this email. Sign in instead."
    # The email is also the username, whose column holds 150 characters.
    email = forms.EmailField(
        max_length=150, widget=forms.EmailInput(attrs={"autocomplete": "email", "autofocus": True}))
    password = forms.CharField(widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))

    def clean_email(self):
        email = self.cleaned_data["email"].strip().lower()
        if get_user_model().objects.filter(username__iexact=email).exists():
            raise forms.ValidationError(self.ALREADY_EXISTS)
        return email

    def clean(self):
        cleaned = super().clean()
        email, password = cleaned.get("email"), cleaned.get("password")
        if password is None:
            return cleaned
        # UserAttributeSimilarityValidator (settings) compares with the would-be user's email; a
        # password that merely contains the email or its name part is refused here as well.
        user = get_user_model()(username=email or "", email=email or "")
        try:
            validate_password(password, user=user)
        except forms.ValidationError as exc:
            self.add_error("password", exc)
            return cleaned
        local = (email or "").split("@")[0]
        if email and (email in password.lower() or (len(local) >= 4 and local in password.lower())):
            self.add_error("password", "The password must not contain your email address.")
        return cleaned


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
