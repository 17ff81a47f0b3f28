from __future__ import annotations

import secrets

from django import forms
from django.contrib.auth.models import User
from django.contrib.auth.password_validation import (
    password_validators_help_texts,
    validate_password,
)
from django.core.exceptions import ValidationError

from base.roles import Role

ROLE_CHOICES = [(role.label, role.label.capitalize()) for role in Role]


def generate_password() -> str:
    """20 URL-safe characters (120 bits); shown once to the admin who created the user."""
    return secrets.token_urlsafe(15)


class UserCreateForm(forms.Form):
    username = forms.CharField(max_length=150, help_text="Letters, digits and @ . + - _ only.")
    email = forms.EmailField(required=False)
    role = forms.ChoiceField(choices=ROLE_CHOICES, initial=Role.VIEWER.label)
    password1 = forms.CharField(
        label="Password",
        required=False,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text="Leave both empty to generate one, shown once on the next page.",
    )
    password2 = forms.CharField(
        label="Password again",
        required=False,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def clean_username(self) -> str:
        username = self.cleaned_data["username"]
        User.username_validator(username)
        if User.objects.filter(username__iexact=username).exists():
            raise ValidationError("A user with that username already exists.")
        return username

    def clean(self) -> dict:
        cleaned = super().clean()
        first, second = cleaned.get("password1", ""), cleaned.get("password2", "")
        if not first and not second:
            cleaned["password"] = generate_password()
            cleaned["password_generated"] = True
            return cleaned
        if first != second:
            self.add_error("password2", "The two passwords differ.")
            return cleaned
        probe = User(username=cleaned.get("username", ""), email=cleaned.get("email", ""))
        try:
            validate_password(first, probe)
        except ValidationError as error:
            self.add_error("password1", error)
        cleaned["password"] = first
        cleaned["password_generated"] = False
        return cleaned

    @staticmethod
    def password_rules() -> list[str]:
        return password_validators_help_texts()


class UserRoleForm(forms.Form):
    role = forms.ChoiceField(choices=ROLE_CHOICES)


class UserActiveForm(forms.Form):
    active = forms.TypedChoiceField(
        choices=[("1", "active"), ("0", "inactive")], coerce=lambda value: value == "1"
    )


class TwoFactorCodeForm(forms.Form):
    """Six digits from the authenticator app, or (when signing in) a recovery code."""

    code = forms.CharField(max_length=32, strip=True)
