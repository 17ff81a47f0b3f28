"""Changes people can read: before/after as labelled fields wherever changes are shown (the
audit trail and the client page), never Python or JSON reprs; a secret by its hint."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from analytics.store import token_events_write
from audit.changes import entry_changes
from audit.events import TokenEventRecord
from audit.services import Actor
from clients import services
from security.services import client_secret_rotate

# What a raw value looks like when a page prints it as Python or JSON.
REPRS = re.compile(r"\[['\"]|['\"]\]|\{['\"]|\bTrue\b|\bFalse\b|\bNone\b|'secret_id'|\"secret_id\"")


def section(html: str, element_id: str) -> str:
    """From the element with that id up to the next section (or the page footer)."""
    start = html.index(f'id="{element_id}"')
    ends = [html.find(mark, start + 1) for mark in ("<section", "<footer")]
    return html[start : min(end for end in ends if end != -1)]


@pytest.fixture
def edited(make_client):
    client, _ = make_client("Billing", description="Bills customers")
    services.client_update(
        actor=Actor.cli(),
        client=client,
        allowed_networks=["10.0.0.0/8", "192.168.1.0/24"],
        can_introspect=True,
        description="",
    )
    return client


class TestOnTheAuditTrail:
    def test_it_shows_labelled_fields_without_reprs(self, edited, viewer_client):
        response = viewer_client.get(reverse("audit:list"), {"action": "client.update"})
        html = section(response.content.decode(), "audit-table")
        assert "<dt>Allowed networks</dt>" in html
        assert "<li>10.0.0.0/8</li><li>192.168.1.0/24</li>" in html  # one network per line
        assert "<dt>May introspect</dt>" in html and "<del>no</del>" in html
        assert "<ins>yes</ins>" in html
        assert "<del>Bills customers</del>" in html and "<ins>—</ins>" in html  # none: em dash
        assert not REPRS.search(html), REPRS.search(html)

    def test_it_names_secrets_by_hint_in_a_rotation(self, make_client, viewer_client):
        client, _ = make_client("Billing")
        old = client.secrets.get()
        new, _ = client_secret_rotate(actor=Actor.cli(), client=client, grace=timedelta(hours=24))
        response = viewer_client.get(reverse("audit:list"), {"action": "secret.rotate"})
        html = section(response.content.decode(), "audit-table")
        assert f"<code>{new.hint}</code>" in html and f"<code>{old.hint}</code>" in html
        assert "<dt>Previous secrets stay valid for</dt>" in html and "1 day" in html
        assert not REPRS.search(html), REPRS.search(html)


class TestOnTheClientPage:
    def test_recent_changes_use_the_same_labelled_fields(self, edited, viewer_client):
        response = viewer_client.get(reverse("clients:detail", args=[edited.client_id]))
        html = section(response.content.decode(), "client-audit")
        assert '<dl class="changes">' in html
        assert "<dt>Allowed networks</dt>" in html and "<li>10.0.0.0/8</li>" in html
        assert "<dt>Secret</dt>" in html  # the first secret, by its hint
        assert edited.secrets.get().hint in html
        assert not REPRS.search(html), REPRS.search(html)

    def test_token_events_name_the_secret_by_its_hint(self, make_client, viewer_client):
        client, _ = make_client("Billing")
        secret = client.secrets.get()
        token_events_write(
            [
                TokenEventRecord(
                    id=uuid.uuid4().hex,
                    occurred_at=timezone.now().timestamp(),
                    endpoint="token",
                    client_id=client.client_id,
                    client_known=True,
                    secret_id=secret.pk,
                    outcome="success",
                    reason="ok",
                    status_code=200,
                )
            ]
        )
        response = viewer_client.get(reverse("clients:detail", args=[client.client_id]))
        html = section(response.content.decode(), "client-token-events")
        assert f"<code>{secret.hint}</code>" in html
        assert f"#{secret.pk}<" not in html


class TestEntryChanges:
    def test_it_shows_each_kind_of_value_readably(self):
        changes = entry_changes(
            {"networks": [], "flag": False, "expires_at": None},
            {"networks": ["10.0.0.0/8"], "flag": True, "expires_at": "2026-12-03T08:45:12+00:00"},
            {"networks": "Allowed networks"},
        )
        shown = {c.field: (c.label, c.before.items, c.after.items) for c in changes}
        assert shown["networks"] == ("Allowed networks", ("—",), ("10.0.0.0/8",))
        assert shown["flag"] == ("Flag", ("no",), ("yes",))
        assert shown["expires_at"][2] == (
            '<time datetime="2026-12-03T08:45:12Z">2026-12-03 08:45 UTC</time>',
        )

    def test_it_leaves_out_a_secrets_row_id_beside_its_hint(self):
        changes = entry_changes({}, {"secret_id": 7, "hint": "kwsec_…Nlg4"}, {"hint": "Secret"})
        assert [(c.label, c.after.items) for c in changes] == [("Secret", ("kwsec_…Nlg4",))]

    def test_it_escapes_what_people_typed(self):
        (change,) = entry_changes({}, {"name": "<script>x</script>"}, {})
        assert change.after.items == ("&lt;script&gt;x&lt;/script&gt;",)


def test_the_fixed_moment_reads_in_utc():
    # base.display's format, for a moment given in another zone.
    from base.display import datetime_text

    moment = datetime(2026, 12, 3, 9, 45, tzinfo=UTC).astimezone()
    assert datetime_text(moment) == "2026-12-03 09:45 UTC"
