"""Console forms: over-long input refused with a message (never cut), an error summary at
the top, help text apart from the next label, duplicate client names warned about."""

from __future__ import annotations

import importlib
import inspect

import pytest
from django import forms
from django.urls import reverse

from audit.models import AdminAction
from base.forms import ConsoleForm
from clients.models import Client

REGISTER = reverse("clients:register")
VALID = {"name": "Billing", "environment": "staging", "access_token_lifetime": "3600"}
FORM_MODULES = [
    "clients.forms",
    "security.forms",
    "dashboard.forms",
    "audit.forms",
    "analytics.forms",
    "analytics.ingestion_forms",
    "alerts.forms",
]


def project_forms() -> list[type[forms.Form]]:
    found = []
    for module_name in FORM_MODULES:
        module = importlib.import_module(module_name)
        for _name, value in inspect.getmembers(module, inspect.isclass):
            if issubclass(value, forms.BaseForm) and value.__module__ == module_name:
                found.append(value)
    return found


class TestNoSilentCut:
    @pytest.mark.parametrize("form_class", project_forms(), ids=lambda cls: cls.__name__)
    def test_every_form_is_a_console_form(self, form_class):
        assert issubclass(form_class, ConsoleForm), f"{form_class.__name__} may cut input"

    @pytest.mark.parametrize(
        "page",
        [
            reverse("clients:register"),
            reverse("clients:scope_create"),
            reverse("dashboard:users"),
            reverse("security:settings"),
            reverse("audit:list"),
            reverse("analytics:events"),
            reverse("login"),
        ],
    )
    def test_no_page_renders_a_maxlength_the_browser_would_cut_at(self, admin_client, page):
        assert "maxlength" not in admin_client.get(page).content.decode()

    def test_an_over_long_name_is_refused_with_how_much_too_long(self, operator_client):
        response = operator_client.post(REGISTER, VALID | {"name": "x" * 101})
        assert "at most 100 characters (it has 101)" in response.text
        assert not Client.objects.exists()

    def test_an_over_long_description_is_refused_by_form_and_model(self, operator_client):
        response = operator_client.post(REGISTER, VALID | {"description": "d" * 2001})
        assert "at most 2000 characters (it has 2001)" in response.text
        client = Client(name="x", description="d" * 2001)
        with pytest.raises(Exception, match="at most 2000"):
            client.full_clean()

    def test_an_over_long_owner_email_is_refused(self, operator_client):
        email = "a" * 250 + "@example.com"
        response = operator_client.post(REGISTER, VALID | {"owner_email": email})
        assert "at most 254 characters" in response.text and not Client.objects.exists()

    def test_an_over_long_grant_reason_is_refused(self, operator_client, make_client, make_scope):
        client, _ = make_client("Billing")
        make_scope("orders:read")
        url = reverse("clients:scope_add", args=[client.client_id])
        response = operator_client.post(url, {"scope": "orders:read", "reason": "r" * 301})
        assert "at most 300 characters" in response.text and not client.grants.exists()


class TestErrorSummary:
    def test_it_lists_every_error_at_the_top_linking_to_the_field(self, operator_client):
        response = operator_client.post(
            REGISTER, VALID | {"name": "", "access_token_lifetime": "5"}
        )
        text = response.text
        summary = text.index("data-error-summary")
        assert summary < text.index('id="id_name"')
        assert 'href="#id_name">Name: This field is required.' in text
        assert 'href="#id_access_token_lifetime">' in text
        assert 'tabindex="-1"' in text[summary - 200 : summary]

    def test_it_is_absent_from_a_fresh_form(self, operator_client):
        assert "data-error-summary" not in operator_client.get(REGISTER).text

    def test_the_script_moves_focus_to_it(self):
        from pathlib import Path

        script = Path("static/keyward.js").read_text()
        assert "[data-error-summary]" in script and "summary.focus()" in script


class TestHelpText:
    def test_help_text_is_its_own_block_described_by_the_field(self, operator_client):
        text = operator_client.get(REGISTER).text
        assert '<small class="helptext" id="id_access_token_lifetime_helptext">' in text
        assert 'aria-describedby="id_access_token_lifetime_helptext"' in text


class TestDuplicateNames:
    def test_a_duplicate_name_is_a_warning_with_a_box_to_confirm(
        self, operator_client, make_client
    ):
        existing, _ = make_client("Billing", environment="production")
        response = operator_client.post(REGISTER, VALID | {"name": "billing"})
        assert response.status_code == 200 and Client.objects.count() == 1
        assert "A client named “Billing” already exists (Production" in response.text
        assert existing.client_id in response.text
        assert 'type="checkbox" name="confirm_duplicate_name"' in response.text

    def test_confirming_registers_the_second_client(self, operator_client, make_client):
        make_client("Billing")
        data = VALID | {"confirm_duplicate_name": "on"}
        assert operator_client.post(REGISTER, data).status_code == 302
        assert Client.objects.filter(name="Billing").count() == 2

    def test_a_fresh_form_hides_the_box(self, operator_client):
        assert 'type="hidden" name="confirm_duplicate_name"' in operator_client.get(REGISTER).text

    def test_editing_a_client_keeps_its_own_name_without_a_warning(
        self, operator_client, make_client
    ):
        client, _ = make_client("Billing")
        url = reverse("clients:edit", args=[client.client_id])
        response = operator_client.post(url, VALID | {"description": "new"})
        assert response.status_code == 302

    def test_renaming_onto_another_clients_name_warns(self, operator_client, make_client):
        make_client("Billing")
        other, _ = make_client("Shop")
        url = reverse("clients:edit", args=[other.client_id])
        response = operator_client.post(url, VALID)
        assert "already exists" in response.text
        other.refresh_from_db()
        assert other.name == "Shop" and not AdminAction.objects.filter(action="client.update")
