from __future__ import annotations

from datetime import UTC, datetime

import pytest
import time_machine
from django.urls import reverse

from audit.changes import entry_changes
from audit.models import AdminAction
from audit.services import Actor, admin_action_record
from clients import services

URL = reverse("audit:list")


def record(action="client.update", actor="ada-admin", target_type="client", target_id="c1", **kw):
    return admin_action_record(
        actor=Actor(label=actor),
        action=action,
        target_type=target_type,
        target_id=target_id,
        target_label=kw.pop("target_label", "Billing"),
        **kw,
    )


def listed_actions(response) -> list[str]:
    return [entry.action for entry in response.context["page"].object_list]


class TestAuditList:
    def test_it_lists_entries_newest_first(self, viewer_client):
        record(action="scope.create", target_type="scope", target_id="orders:read")
        record(action="client.register")
        response = viewer_client.get(URL)
        assert response.status_code == 200
        assert listed_actions(response) == ["client.register", "scope.create"]
        assert b"orders:read" in response.content

    def test_it_shows_before_and_after_as_a_diff(self, viewer_client, make_client):
        client, _ = make_client("Billing")
        services.client_update(actor=Actor.cli(), client=client, environment="production")
        response = viewer_client.get(URL, {"action": "client.update"})
        html = response.content.decode()
        assert "<dt>Environment</dt>" in html
        assert "<del>development</del>" in html and "<ins>production</ins>" in html

    def test_it_has_no_write_path(self, admin_client):
        record()
        assert admin_client.post(URL).status_code == 405
        assert AdminAction.objects.filter(action="client.update").count() == 1


class TestAuditFilters:
    @pytest.fixture(autouse=True)
    def _entries(self, db):
        with time_machine.travel(datetime(2026, 3, 1, 12, tzinfo=UTC), tick=False):
            record(action="client.register", actor="ada-admin", target_id="abc")
        with time_machine.travel(datetime(2026, 3, 5, 23, 59, tzinfo=UTC), tick=False):
            record(action="scope.create", actor="cli", target_type="scope", target_id="x:read")
        with time_machine.travel(datetime(2026, 3, 9, 8, tzinfo=UTC), tick=False):
            record(action="user.create", actor="otto-operator", target_type="user", target_id="bob")

    def test_it_filters_by_actor_label_part(self, viewer_client):
        response = viewer_client.get(URL, {"actor": "OTTO"})
        assert listed_actions(response) == ["user.create"]

    def test_it_filters_by_action_code(self, viewer_client):
        response = viewer_client.get(URL, {"action": "scope.create"})
        assert listed_actions(response) == ["scope.create"]

    def test_it_offers_the_distinct_action_codes(self, viewer_client):
        choices = viewer_client.get(URL).context["form"].fields["action"].choices
        assert [value for value, _ in choices] == [
            "",
            "client.register",
            "scope.create",
            "user.create",
        ]

    def test_it_filters_by_target_type_and_id(self, viewer_client):
        response = viewer_client.get(URL, {"target_type": "client", "target_id": "abc"})
        assert listed_actions(response) == ["client.register"]
        assert listed_actions(viewer_client.get(URL, {"target_id": "ab"})) == []

    def test_it_filters_by_whole_days(self, viewer_client):
        response = viewer_client.get(URL, {"date_from": "2026-03-05", "date_to": "2026-03-05"})
        assert listed_actions(response) == ["scope.create"]
        response = viewer_client.get(URL, {"date_from": "2026-03-02"})
        assert listed_actions(response) == ["user.create", "scope.create"]

    def test_it_reports_a_backwards_date_range(self, viewer_client):
        response = viewer_client.get(URL, {"date_from": "2026-03-09", "date_to": "2026-03-01"})
        assert response.status_code == 200
        assert "must not be before" in response.content.decode()

    def test_it_answers_htmx_with_the_table_only(self, viewer_client):
        response = viewer_client.get(URL, {"actor": "cli"}, headers={"HX-Request": "true"})
        html = response.content.decode()
        assert html.lstrip().startswith('<div id="audit-table"')
        assert "<html" not in html and "scope.create" in html
        assert "HX-Request" in response["Vary"]

    def test_it_keeps_filters_in_the_export_link(self, viewer_client):
        html = viewer_client.get(URL, {"actor": "cli"}).content.decode()
        assert reverse("audit:export") + "?actor=cli" in html

    def test_it_says_when_filters_match_nothing(self, viewer_client):
        html = viewer_client.get(URL, {"actor": "nobody"}).content.decode()
        assert "No audit entries match these filters." in html
        assert "Clear filters" in html


class TestAuditPagination:
    def test_it_shows_fifty_per_page(self, viewer_client):
        for number in range(55):
            record(target_id=f"c{number}")
        first = viewer_client.get(URL)
        assert len(first.context["page"].object_list) == 50
        assert "page=2" in first.content.decode()
        second = viewer_client.get(URL, {"page": 2})
        assert len(second.context["page"].object_list) == 5


class TestAuditEmptyState:
    def test_it_explains_the_empty_trail(self, viewer_client):
        html = viewer_client.get(URL).content.decode()
        assert "Nothing on record yet" in html


class TestEntryChanges:
    def test_it_lists_changed_added_and_removed_fields(self, db):
        entry = record(
            before={"a": 1, "same": "x", "gone": [1]}, after={"a": 2, "same": "x", "new": None}
        )
        kinds = {c.field: c.kind for c in entry_changes(entry.before, entry.after, {})}
        assert kinds == {"a": "changed", "gone": "removed", "new": "added"}
