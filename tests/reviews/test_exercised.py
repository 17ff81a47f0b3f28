""" "Last exercised" per grant: what resource servers checked (introspection answers, the
kit's usage reports), on the client page, the scope page, the matrix and the export — and
"not reported", not "never", where no resource server reports a scope."""

from __future__ import annotations

import re
import uuid
from collections import Counter

import pytest
from django.urls import reverse
from django.utils import timezone

from analytics.store import token_events_write
from analytics.usage_reports import Report, usage_report_store
from audit.events import TokenEventRecord
from reviews import selectors

from .conftest import days

pytestmark = pytest.mark.django_db


def introspected(subject, scopes: str, *, caller: str = "gateway") -> None:
    """`caller` (a resource server) introspected an active token of `subject` now."""
    token_events_write(
        [
            TokenEventRecord(
                id=uuid.uuid4().hex,
                occurred_at=timezone.now().timestamp(),
                endpoint="introspect",
                client_id=caller,
                client_known=True,
                outcome="success",
                reason="ok",
                scopes_granted=scopes,
                status_code=200,
                subject_client_id=subject.client_id,
            )
        ]
    )


def reported(subject, scope: str, count: int = 1) -> None:
    """The resource-server kit reported `count` checks of `scope` this hour."""
    hour = int(timezone.now().timestamp() // 3600 * 3600)
    report = Report(
        batch_id=uuid.uuid4(),
        resource="orders-api",
        counts=Counter({(hour, subject.client_id, scope): count}),
    )
    assert usage_report_store(report=report, token=None)


@pytest.fixture
def holders(clock, make_scope, make_client):
    """Busy and Idle hold orders:read; Busy also holds billing:read, which no resource
    server reports."""
    read, billing = make_scope("orders:read"), make_scope("billing:read")
    busy, _ = make_client("Busy", scopes=[read, billing])
    idle, _ = make_client("Idle", scopes=[read])
    return busy, idle


def usage_of(usages, name: str):
    return next(u for u in usages if name in (u.grant.scope.name, u.grant.client.name))


class TestLastExercised:
    def test_introspection_of_a_token_exercises_its_scopes(self, holders, clock):
        busy, _idle = holders
        introspected(busy, "orders:read")
        clock.shift(days(1))
        usages = selectors.client_grants_usage(busy)
        read = usage_of(usages, "orders:read")
        assert read.last_exercised is not None and read.exercised_30 == 1
        assert read.last_exercised <= timezone.now() - days(1)

    def test_a_usage_report_exercises_the_scope(self, holders):
        busy, _idle = holders
        reported(busy, "orders:read", count=4)
        read = usage_of(selectors.client_grants_usage(busy), "orders:read")
        assert read.exercised_30 == 4 and read.last_exercised is not None

    def test_both_ways_add_up(self, holders):
        busy, _idle = holders
        introspected(busy, "orders:read")
        reported(busy, "orders:read", count=2)
        read = usage_of(selectors.client_grants_usage(busy), "orders:read")
        assert read.exercised_30 == 3

    def test_never_where_the_scope_is_reported_not_reported_where_it_is_not(self, holders):
        busy, idle = holders
        introspected(busy, "orders:read")
        idle_read = usage_of(selectors.client_grants_usage(idle), "orders:read")
        assert (idle_read.last_exercised, idle_read.exercised_label) == (None, "never")
        billing = usage_of(selectors.client_grants_usage(busy), "billing:read")
        assert (billing.last_exercised, billing.exercised_label) == (None, "not reported")

    def test_another_clients_token_exercises_nothing_of_this_client(self, holders):
        busy, idle = holders
        introspected(busy, "orders:read")
        assert usage_of(selectors.client_grants_usage(idle), "orders:read").exercised_30 == 0


class TestShown:
    def test_the_client_page_fragment_shows_last_exercised(self, holders, viewer_client):
        busy, _idle = holders
        introspected(busy, "orders:read")
        url = reverse("reviews:client_usage", args=[busy.client_id])
        fragment = viewer_client.get(url, headers={"HX-Request": "true"}).content.decode()
        assert "Last exercised" in fragment
        assert "not reported" in fragment  # billing:read
        assert fragment.count("<time") >= 3  # requested, issued… and exercised are times

    def test_the_scope_page_shows_each_holders_last_exercised(self, holders, viewer_client):
        busy, _idle = holders
        reported(busy, "orders:read")
        url = reverse("reviews:scope_usage", args=["orders:read"])
        fragment = viewer_client.get(url, headers={"HX-Request": "true"}).content.decode()
        busy_row, idle_row = fragment.split("<tr>")[2:4]
        assert "Busy" in busy_row and "not reported" not in busy_row
        assert "Idle" in idle_row and "never" in idle_row and "not reported" not in idle_row

    def test_the_matrix_marks_exercise_per_cell(self, holders, viewer_client):
        busy, _idle = holders
        introspected(busy, "orders:read")
        page = viewer_client.get(reverse("reviews:matrix")).content.decode()
        assert page.count('class="exercised"') == 3
        text = " ".join(re.sub(r"<[^>]+>", "", page).split())
        assert "exercised not reported" in text
        assert "exercised never" in text

    def test_the_export_has_last_exercised(self, holders, viewer_client):
        busy, _idle = holders
        introspected(busy, "orders:read")
        response = viewer_client.get(reverse("reviews:export"))
        lines = b"".join(response.streaming_content).decode().splitlines()
        header = lines[0].split(",")
        assert header[-2:] == ["last_exercised", "exercised_30d"]
        rows = {(r[0], r[4]): r[-2:] for r in (line.split(",") for line in lines[1:])}
        exercised_at, count = rows[(busy.client_id, "orders:read")]
        assert (
            exercised_at.startswith(timezone.now().strftime("%Y-%m-%dT%H:00:00")) and count == "1"
        )
        assert rows[(busy.client_id, "billing:read")] == ["not reported", "0"]
        assert rows[(_idle.client_id, "orders:read")] == ["never", "0"]
