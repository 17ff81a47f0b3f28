"""The explorer's live tail: only rows newer than the newest shown, capped, never cached."""

from __future__ import annotations

import re
from datetime import timedelta

from django.urls import reverse

from analytics.explorer import TAIL_CAP, Cursor, EventFilters, events_filter, events_newer
from analytics.models import TokenEvent
from analytics.views import NEWEST_HEADER
from tests.analytics.conftest import BASE_TIME

URL = reverse("analytics:events_tail")
PAGE_URL = reverse("analytics:events")


def tail_jtis(response) -> list[str]:
    """The jti of each row in the fragment, in order (read back through the row cursors)."""
    cursors = re.findall(r'<tr data-cursor="([^"]+)"', response.content.decode())
    return [TokenEvent.objects.get(id=Cursor.decode(cursor).id).jti for cursor in cursors]


class TestLiveTail:
    def test_it_returns_only_rows_newer_than_the_cursor(self, viewer_client, make_event):
        shown = make_event(jti="shown", occurred_at=BASE_TIME)
        make_event(jti="older", occurred_at=BASE_TIME - timedelta(seconds=1))
        make_event(jti="new-1", occurred_at=BASE_TIME + timedelta(seconds=1))
        newest = make_event(jti="new-2", occurred_at=BASE_TIME + timedelta(seconds=2))
        response = viewer_client.get(URL, {"after": Cursor.of(shown).encode()})
        assert response.status_code == 200
        assert tail_jtis(response) == ["new-2", "new-1"]  # newest first, to go on top
        assert response[NEWEST_HEADER] == Cursor.of(newest).encode()
        assert response["Cache-Control"] == "no-store"
        body = response.content.decode()
        assert body.lstrip().startswith("<tr")
        assert f'data-cursor="{Cursor.of(newest).encode()}"' in body

    def test_it_counts_a_row_at_the_same_instant_once(self, viewer_client, make_event):
        first = make_event(jti="a", occurred_at=BASE_TIME)
        second = make_event(jti="b", occurred_at=BASE_TIME)
        lower, higher = sorted([first, second], key=lambda event: event.id)
        response = viewer_client.get(URL, {"after": Cursor.of(lower).encode()})
        assert tail_jtis(response) == [higher.jti]

    def test_it_answers_nothing_new_with_an_empty_body(self, viewer_client, make_event):
        shown = make_event()
        cursor = Cursor.of(shown).encode()
        response = viewer_client.get(URL, {"after": cursor})
        assert response.status_code == 200
        assert response.content.strip() == b""
        assert response[NEWEST_HEADER] == cursor

    def test_it_keeps_the_filters(self, viewer_client, make_event):
        shown = make_event(occurred_at=BASE_TIME)
        make_event(
            jti="failure",
            outcome="failure",
            reason="bad_secret",
            occurred_at=BASE_TIME + timedelta(seconds=1),
        )
        make_event(jti="success", occurred_at=BASE_TIME + timedelta(seconds=2))
        response = viewer_client.get(
            URL, {"after": Cursor.of(shown).encode(), "outcome": "failure"}
        )
        assert tail_jtis(response) == ["failure"]

    def test_it_caps_a_burst_and_says_so(self, make_events, make_event):
        shown = make_event(occurred_at=BASE_TIME - timedelta(hours=1))
        make_events(5, newest=BASE_TIME)
        rows, skipped = events_newer(events_filter(EventFilters()), after=Cursor.of(shown), cap=3)
        assert [row.occurred_at for row in rows] == [
            BASE_TIME - timedelta(seconds=n) for n in range(3)
        ]
        assert skipped is True

    def test_the_page_caps_its_answer_at_the_tail_cap(self, viewer_client, make_events):
        make_events(TAIL_CAP + 1)
        response = viewer_client.get(URL)
        assert len(tail_jtis(response)) == TAIL_CAP
        assert "More events arrived than fit" in response.content.decode()

    def test_it_refuses_a_bad_cursor(self, viewer_client):
        assert viewer_client.get(URL, {"after": "zzz"}).status_code == 400


class TestTailMode:
    def test_the_page_carries_the_tail_url_with_the_filters(self, viewer_client, make_event):
        make_event()
        body = viewer_client.get(PAGE_URL, {"tail": "1", "outcome": "success"}).content.decode()
        assert f'data-tail-url="{URL}?outcome=success"' in body
        assert "Stop live tail" in body
        assert "Older →" not in body

    def test_the_page_loads_its_script_from_a_static_file(self, viewer_client):
        body = viewer_client.get(PAGE_URL, {"tail": "1"}).content.decode()
        assert '<script src="/static/analytics/explorer.js" defer></script>' in body
        assert "<script>" not in body
