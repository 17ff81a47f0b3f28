"""Forms for the clients and scope pages. They validate; clients/services.py writes."""

from __future__ import annotations

import ipaddress

from django import forms

from base.forms import ConsoleForm
from base.text import validate_multi_line, validate_single_line

from .models import (
    CLIENT_DESCRIPTION_MAX_LENGTH,
    SCOPE_NAME_MAX_LENGTH,
    Client,
    Scope,
    validate_scope_name,
)


class LinesField(forms.Field):
    """A textarea holding one value per line; cleans to a list without blank lines."""

    def __init__(self, *, rows: int = 3, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault("widget", forms.Textarea(attrs={"rows": rows, "spellcheck": "false"}))
        super().__init__(**kwargs)

    def prepare_value(self, value):
        if isinstance(value, list | tuple):
            return "\n".join(value)
        return value

    def to_python(self, value) -> list[str]:
        if not value:
            return []
        if isinstance(value, list | tuple):
            return [str(item).strip() for item in value if str(item).strip()]
        return [line.strip() for line in str(value).splitlines() if line.strip()]


class NetworksField(LinesField):
    """CIDRs, one per line. Host bits must be zero so `10.0.0.1/8` is not read as `/8`."""

    def validate(self, value: list[str]) -> None:
        super().validate(value)
        errors = []
        for number, entry in enumerate(value, start=1):
            try:
                ipaddress.ip_network(entry, strict=True)
            except ValueError:
                errors.append(self._explain(number, entry))
        if errors:
            raise forms.ValidationError(errors)

    def to_python(self, value) -> list[str]:
        # A bare address means that one host: store it as /32 (or /128) explicitly.
        return [_with_prefix(entry) for entry in super().to_python(value)]

    @staticmethod
    def _explain(number: int, entry: str) -> str:
        try:
            network = ipaddress.ip_network(entry, strict=False)
        except ValueError:
            return (
                f"Line {number}: “{entry}” is not a network in CIDR notation "
                "(for example 10.0.0.0/8 or 2001:db8::/32)."
            )
        return f"Line {number}: “{entry}” has host bits set; did you mean {network}?"


def _with_prefix(entry: str) -> str:
    if "/" in entry:
        return entry
    try:
        return str(ipaddress.ip_network(entry))
    except ValueError:
        return entry  # left for validate() to report


class AudiencesField(LinesField):
    def validate(self, value: list[str]) -> None:
        super().validate(value)
        bad = [entry for entry in value if any(char.isspace() for char in entry)]
        if bad:
            raise forms.ValidationError(f"Audiences cannot contain spaces: {', '.join(bad)}")
        too_long = [entry for entry in value if len(entry) > 200]
        if too_long:
            raise forms.ValidationError("An audience can be at most 200 characters long.")


class ScopeChoiceField(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj: Scope) -> str:
        label = obj.name
        if obj.description:
            label += f" — {obj.description}"
        if obj.sensitive:
            label += " (sensitive)"
        return label


class ClientForm(ConsoleForm):
    """The editable fields of a client (see services.CLIENT_EDITABLE_FIELDS).

    A name another client already has is a warning the user can confirm past, not a
    refusal: the client_id is the identity, and one service often keeps a client of the
    same name per environment. The warning makes a mix-up (two "billing" clients in
    production) a decision rather than an accident.
    """

    name = forms.CharField(max_length=100, validators=[validate_single_line])
    confirm_duplicate_name = forms.BooleanField(
        required=False, label="Use this name anyway", widget=forms.HiddenInput
    )
    description = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        max_length=CLIENT_DESCRIPTION_MAX_LENGTH,
        validators=[validate_multi_line],
    )
    owner_email = forms.EmailField(
        required=False, max_length=254, help_text="Who gets told about this client (optional)."
    )
    environment = forms.ChoiceField(
        choices=Client.Environment.choices, initial=Client.Environment.DEVELOPMENT
    )
    access_token_lifetime = forms.IntegerField(
        label="Access-token lifetime (seconds)",
        min_value=60,
        max_value=86400,
        initial=3600,
        help_text="Between 60 seconds and 86400 (one day).",
    )
    allowed_networks = NetworksField(
        help_text="One CIDR per line, e.g. 10.0.0.0/8. Leave empty to allow any address."
    )
    denied_networks = NetworksField(
        help_text="One CIDR per line: refused even inside the allowed networks (e.g. blocked "
        "from an alert). Leave empty to block nothing.",
    )
    audiences = AudiencesField(
        rows=2,
        help_text="The aud claim of its tokens, one per line. Empty means the default audience.",
    )
    can_introspect = forms.BooleanField(
        required=False,
        label="May introspect tokens",
        help_text="Lets this client call the introspection endpoint for any token.",
    )

    def __init__(self, *args, client: Client | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.client = client

    @classmethod
    def initial_for(cls, client: Client) -> dict:
        fields = [name for name in cls.base_fields if name != "confirm_duplicate_name"]
        return {name: getattr(client, name) for name in fields}

    def clean_name(self) -> str:
        name = self.cleaned_data["name"]
        others = Client.objects.filter(name__iexact=name)
        if self.client is not None:
            others = others.exclude(pk=self.client.pk)
        other = others.first()
        if other is None or self.data.get(self.add_prefix("confirm_duplicate_name")):
            return name
        # Offer the confirmation box from now on (hidden until there is something to confirm).
        self.fields["confirm_duplicate_name"].widget = forms.CheckboxInput()
        raise forms.ValidationError(
            f"A client named “{other.name}” already exists ({other.get_environment_display()}, "
            f"client_id {other.client_id}). Choose another name, or tick “Use this name "
            "anyway” below and send the form again.",
            code="duplicate_name",
        )

    def clean(self) -> dict:
        cleaned = super().clean()
        cleaned.pop("confirm_duplicate_name", None)  # a question for the form, not a field
        return cleaned


class ClientRegisterForm(ClientForm):
    denied_networks = None  # a new client has nothing to block yet
    scopes = ScopeChoiceField(
        queryset=Scope.objects.all(),
        to_field_name="name",
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Initial scopes",
    )
    scope_reason = forms.CharField(
        required=False,
        max_length=280,  # stored as "initial scope: …" in a 300-character reason
        validators=[validate_single_line],
        label="Why does it need the sensitive scopes?",
        help_text="Needed when you tick a scope marked sensitive; kept with the grant and audited.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not Scope.objects.filter(sensitive=True).exists():
            del self.fields["scope_reason"]  # nothing to explain

    def clean(self) -> dict:
        cleaned = super().clean()
        sensitive = [scope.name for scope in cleaned.get("scopes") or [] if scope.sensitive]
        if sensitive and not cleaned.get("scope_reason", "").strip():
            self.add_error(
                "scope_reason",
                f"{', '.join(sensitive)} {'is' if len(sensitive) == 1 else 'are'} sensitive: "
                "say why this client needs it.",
            )
        return cleaned


class ClientFilterForm(ConsoleForm):
    """The query string of the clients list. Invalid values are ignored, not errors."""

    SORTS = {
        "name": "name",
        "created": "created_at",
        "environment": "environment",
        "status": "status",
    }

    q = forms.CharField(required=False, max_length=200, label="Search")
    environment = forms.ChoiceField(
        required=False,
        choices=[("", "Any environment"), *Client.Environment.choices],
        widget=forms.Select(attrs={"aria-label": "Environment"}),
    )
    status = forms.ChoiceField(
        required=False,
        choices=[("", "Any status"), *Client.Status.choices],
        widget=forms.Select(attrs={"aria-label": "Status"}),
    )
    scope = forms.ChoiceField(
        required=False, choices=[], widget=forms.Select(attrs={"aria-label": "Scope"})
    )
    sort = forms.ChoiceField(
        required=False,
        choices=[(key, key) for name in SORTS for key in (name, f"-{name}")],
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        names = Scope.objects.values_list("name", flat=True)
        self.fields["scope"].choices = [("", "Any scope"), *((name, name) for name in names)]

    def value(self, name: str) -> str:
        """The cleaned value of a field, or "" when it was missing or invalid."""
        if not hasattr(self, "cleaned_data"):
            self.is_valid()
        return self.cleaned_data.get(name) or ""

    def ordering(self) -> list[str]:
        sort = self.value("sort") or "name"
        field = self.SORTS[sort.lstrip("-")]
        prefix = "-" if sort.startswith("-") else ""
        # name and pk as tie-breakers keep pagination stable.
        return [prefix + field, "name", "pk"]

    def is_filtered(self) -> bool:
        return any(self.value(name) for name in ("q", "environment", "status", "scope"))


class ScopeGrantForm(ConsoleForm):
    scope = forms.ModelChoiceField(
        queryset=Scope.objects.none(), to_field_name="name", empty_label="Choose a scope…"
    )
    reason = forms.CharField(
        required=False,
        max_length=300,
        validators=[validate_single_line],
        widget=forms.TextInput(attrs={"placeholder": "Reason"}),
    )

    def __init__(self, *args, client: Client, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["scope"].queryset = Scope.objects.exclude(grants__client=client)
        self.fields["scope"].error_messages["invalid_choice"] = (
            "Choose a scope this client does not hold yet."
        )

    def clean(self) -> dict:
        cleaned = super().clean()
        scope = cleaned.get("scope")
        if scope is not None and scope.sensitive and not cleaned.get("reason", "").strip():
            self.add_error("reason", f"{scope.name} is sensitive: say why this client needs it.")
        return cleaned


class ScopeGrantReasonForm(ConsoleForm):
    reason = forms.CharField(
        required=False,
        max_length=300,
        validators=[validate_single_line],
        widget=forms.TextInput(attrs={"placeholder": "Why this client needs it"}),
    )


class ClientStatusForm(ConsoleForm):
    status = forms.ChoiceField(choices=Client.Status.choices)


class ClientDisableForm(ConsoleForm):
    """Disabling stops every consumer at once: a production client's name must be typed."""

    confirm_name = forms.CharField(label="Client name", strip=False, max_length=100)

    def __init__(self, *args, client: Client, **kwargs):
        super().__init__(*args, **kwargs)
        self.client = client
        if not self.needs_name():
            del self.fields["confirm_name"]

    def needs_name(self) -> bool:
        return self.client.environment == Client.Environment.PRODUCTION

    def clean_confirm_name(self) -> str:
        value = self.cleaned_data["confirm_name"]
        if value != self.client.name:
            raise forms.ValidationError(
                "That is not the client's name. Type it exactly to confirm disabling it."
            )
        return value


class ClientDeleteForm(ConsoleForm):
    confirm_name = forms.CharField(label="Client name", strip=False, max_length=100)

    def __init__(self, *args, client: Client, **kwargs):
        super().__init__(*args, **kwargs)
        self.client = client

    def clean_confirm_name(self) -> str:
        value = self.cleaned_data["confirm_name"]
        if value != self.client.name:
            raise forms.ValidationError(
                "That is not the client's name. Type it exactly to confirm the deletion."
            )
        return value


class ScopeEditForm(ConsoleForm):
    description = forms.CharField(required=False, max_length=300, validators=[validate_single_line])
    owning_team = forms.CharField(required=False, max_length=100, validators=[validate_single_line])
    sensitive = forms.BooleanField(
        required=False, help_text="Grants of sensitive scopes deserve a second look."
    )

    @classmethod
    def initial_for(cls, scope: Scope) -> dict:
        return {name: getattr(scope, name) for name in cls.base_fields}


class ScopeCreateForm(ScopeEditForm):
    name = forms.CharField(
        max_length=SCOPE_NAME_MAX_LENGTH,
        validators=[validate_scope_name],
        help_text="For example orders:read. It cannot be changed later.",
    )

    field_order = ["name", "description", "owning_team", "sensitive"]

    def clean_name(self) -> str:
        name = self.cleaned_data["name"]
        if Scope.objects.filter(name=name).exists():
            raise forms.ValidationError(f"A scope named {name} already exists.")
        return name


class ScopeSearchForm(ConsoleForm):
    q = forms.CharField(required=False, max_length=200, label="Search")
