"""Names and notes are validated the same way whichever way they come in."""

from __future__ import annotations

import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import transaction
from django.test import Client as BrowserClient
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit.services import Actor
from base.text import validate_multi_line, validate_single_line
from clients import services
from clients.models import Client, Scope, ScopeGrant
from tests.processes import child_database_url

ROOT = Path(__file__).resolve().parents[2]

REFUSED_EVERYWHERE = ["\x00", "\x1b[2J", "\x9b31m", "\u202e", "\u200b", "\x7f", "\udcff"]
LINE_BREAKS = ["\n", "\r", "\t", "\u2028", "\u2029", "\x85"]


def refused_by_cli(*args: str) -> str:
    with pytest.raises(CommandError) as excinfo:
        call_command(*args, stdout=StringIO(), stderr=StringIO())
    assert excinfo.value.returncode == 2
    return str(excinfo.value)


class TestTextValidators:
    @pytest.mark.parametrize("bad", REFUSED_EVERYWHERE + LINE_BREAKS)
    def test_it_refuses_controls_and_line_breaks_in_a_single_line(self, bad):
        with pytest.raises(ValidationError, match="U\\+"):
            validate_single_line(f"Billing{bad}x")

    @pytest.mark.parametrize("bad", REFUSED_EVERYWHERE)
    def test_it_refuses_controls_in_multi_line_text(self, bad):
        with pytest.raises(ValidationError):
            validate_multi_line(f"line one{bad}")

    def test_it_allows_line_breaks_and_tabs_in_multi_line_text(self):
        validate_multi_line("line one\r\nline two\n\tindented")

    @pytest.mark.parametrize("ok", ["Billing", "Zahlungsverkehr – EU", "決済", "🧾 receipts", ""])
    def test_it_allows_printable_text_and_empty_optional_text(self, ok):
        validate_single_line(ok)

    @pytest.mark.parametrize("blank", [" ", "   ", "\u3000"])
    def test_it_refuses_text_that_is_only_whitespace(self, blank):
        with pytest.raises(ValidationError, match="whitespace"):
            validate_single_line(blank)


@pytest.mark.django_db
class TestServices:
    def test_it_refuses_a_scope_name_with_a_final_newline(self):
        with pytest.raises(ValidationError) as excinfo:
            services.scope_create(actor=Actor.cli(), name="x:y\n")
        assert "name" in excinfo.value.message_dict
        assert not Scope.objects.exists()

    def test_it_refuses_a_blank_client_name(self):
        with pytest.raises(ValidationError):
            services.client_register(actor=Actor.cli(), name="   ")

    def test_it_refuses_an_escape_sequence_in_a_client_name_on_update(self, make_client):
        client, _secret = make_client("Billing")
        with pytest.raises(ValidationError):
            services.client_update(actor=Actor.cli(), client=client, name="Bill\x1b[2Jing")
        client.refresh_from_db()
        assert client.name == "Billing"

    def test_it_refuses_an_audience_with_a_newline(self, make_client):
        client, _secret = make_client()
        with pytest.raises(ValidationError):
            services.client_update(actor=Actor.cli(), client=client, audiences=["api\nx"])

    def test_it_refuses_a_grant_reason_with_a_newline_and_writes_nothing(
        self, make_client, make_scope
    ):
        client, _secret = make_client()
        scope = make_scope()
        with pytest.raises(ValidationError):
            services.scope_grant(actor=Actor.cli(), client=client, scope=scope, reason="a\nb")
        assert not ScopeGrant.objects.exists()

    def test_it_refuses_an_overlong_grant_reason_instead_of_cutting_it(
        self, make_client, make_scope
    ):
        client, _secret = make_client()
        with pytest.raises(ValidationError):
            services.scope_grant(
                actor=Actor.cli(), client=client, scope=make_scope(), reason="r" * 301
            )

    def test_it_refuses_a_bidi_override_in_a_scope_team(self, make_scope):
        scope = make_scope()
        with pytest.raises(ValidationError):
            services.scope_update(actor=Actor.cli(), scope=scope, owning_team="ops\u202e")


@pytest.mark.django_db
class TestCommands:
    def test_it_refuses_a_scope_name_with_a_final_newline(self):
        assert "name" in refused_by_cli("create_scope", "x:y\n")
        assert not Scope.objects.exists()

    def test_it_refuses_a_client_name_with_an_escape_sequence(self):
        refused_by_cli("create_client", "--name", "\x1b]0;pwned\x07")
        assert not Client.objects.exists()

    def test_it_refuses_a_grant_reason_with_a_newline(self, make_client, make_scope):
        client, _secret = make_client()
        scope = make_scope()
        assert "reason" in refused_by_cli(
            "grant_scope", client.client_id, scope.name, "--reason", "a\nb"
        )

    @pytest.mark.parametrize(
        "args",
        [
            ["create_scope", "\udcff"],
            ["create_client", "--name", "B\udcff"],
            ["grant_scope", "\udcff", "x:y"],
            ["rotate_secret", "\udcff"],
            ["revoke_secret", "abc", "\udcff"],
        ],
    )
    def test_it_refuses_arguments_that_were_not_utf8(self, args):
        assert "not valid UTF-8" in refused_by_cli(*args)


@pytest.mark.django_db(transaction=True)
class TestCommandProcess:
    def test_it_answers_bytes_that_are_not_utf8_in_one_line_with_status_2(self):
        env = os.environ | {"DATABASE_URL": child_database_url(), "LC_ALL": "C.UTF-8"}
        done = subprocess.run(
            [os.fsencode(sys.executable), b"manage.py", b"create_scope", b"\xff"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            timeout=60,
        )
        assert done.returncode == 2, done.stderr
        lines = done.stderr.decode().strip().splitlines()
        assert lines == ["CommandError: The name argument is not valid UTF-8 text."]
        assert not Scope.objects.exists()


# --- Arbitrary text: refused clearly, or stored and shown ---------------------------------

# Mostly short text from all of Unicode, surrogates included (what undecodable arguments
# become), and now and then a printable word, so that valid rows get rendered too.
TEXT = st.one_of(
    st.text(st.characters(exclude_categories=()), max_size=40),
    st.text(st.characters(codec="utf-8"), min_size=1, max_size=40),
    st.from_regex(r"\A[a-z][a-z0-9]{0,10}(:[a-z]{1,8})?\Z"),
)
PROPERTY = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def pages_answer_200(browser: BrowserClient, *, client=None, scope=None) -> None:
    urls = [reverse("clients:list"), reverse("clients:scope_list"), reverse("audit:list")]
    if client is not None:
        urls.append(reverse("clients:detail", args=[client.client_id]))
    if scope is not None:
        urls.append(reverse("clients:scope_detail", args=[scope.name]))
    for url in urls:
        assert browser.get(url).status_code == 200, url


def in_rolled_back_transaction(check) -> None:
    """Each example starts from the same database; the test's own transaction stays."""
    with transaction.atomic():
        check()
        transaction.set_rollback(True)


@pytest.mark.django_db
class TestArbitraryText:
    @PROPERTY
    @given(name=TEXT, description=TEXT)
    def test_client_register(self, admin_client, name, description):
        def check():
            try:
                client, _ = services.client_register(
                    actor=Actor.cli(), name=name, description=description
                )
            except ValidationError:
                return
            pages_answer_200(admin_client, client=client)

        in_rolled_back_transaction(check)

    @PROPERTY
    @given(name=TEXT, description=TEXT, audience=TEXT)
    def test_client_update(self, admin_client, make_client, name, description, audience):
        def check():
            client, _ = make_client("Before")
            try:
                services.client_update(
                    actor=Actor.cli(),
                    client=client,
                    name=name,
                    description=description,
                    audiences=[audience],
                )
            except ValidationError:
                return
            pages_answer_200(admin_client, client=client)

        in_rolled_back_transaction(check)

    @PROPERTY
    @given(name=TEXT, description=TEXT, team=TEXT)
    def test_scope_create(self, admin_client, name, description, team):
        def check():
            try:
                scope = services.scope_create(
                    actor=Actor.cli(), name=name, description=description, owning_team=team
                )
            except ValidationError:
                return
            pages_answer_200(admin_client, scope=scope)

        in_rolled_back_transaction(check)

    @PROPERTY
    @given(description=TEXT, team=TEXT)
    def test_scope_update(self, admin_client, make_scope, description, team):
        def check():
            scope = make_scope("orders:read")
            try:
                services.scope_update(
                    actor=Actor.cli(), scope=scope, description=description, owning_team=team
                )
            except ValidationError:
                return
            pages_answer_200(admin_client, scope=scope)

        in_rolled_back_transaction(check)

    @PROPERTY
    @given(reason=TEXT)
    def test_scope_grant_reason(self, admin_client, make_client, make_scope, reason):
        def check():
            client, _ = make_client("Billing")
            scope = make_scope("orders:read")
            try:
                services.scope_grant(actor=Actor.cli(), client=client, scope=scope, reason=reason)
            except ValidationError:
                return
            pages_answer_200(admin_client, client=client, scope=scope)

        in_rolled_back_transaction(check)
