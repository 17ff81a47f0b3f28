"""The events explorer page: filters, keyset paging, bad input, roles, client links."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from analytics.explorer import PAGE_SIZE, Cursor, EventFilters, events_filter, events_page
from analytics.models import TokenEvent
from tests.analytics.conftest import BASE_TIME
from tests.conftest import logged_in, make_user

URL = reverse("analytics:events")


def shown_jtis(response) -> list[str]:
    return [row["event"].jti for row in response.context["rows"]]


def shown(client, **params) -> list[str]:
    response = client.get(URL, params)
    assert response.status_code == 200, response.content[:2000]
    return shown_jtis(response)


class TestFilters:
    def test_it_lists_events_newest_first(self, viewer_client, make_event):
        make_event(jti="old", occurred_at=BASE_TIME - timedelta(minutes=5))
        make_event(jti="new", occurred_at=BASE_TIME)
        assert shown(viewer_client) == ["new", "old"]

    @pytest.mark.parametrize(
        ("field", "wanted", "other"),
        [
            ("client_id", "billing-svc", "shipping-svc"),
            ("outcome", "failure", "success"),
            ("reason", "bad_secret", "ok"),
            ("endpoint", "introspect", "token"),
            ("source", "keycloak", "keyward"),
            ("jti", "abc-123", "def-456"),
        ],
    )
    def test_it_filters_on_one_field(self, viewer_client, make_event, field, wanted, other):
        make_event(**{field: wanted, "jti": "abc-123" if field == "jti" else "match"})
        make_event(**{field: other, "jti": "def-456" if field == "jti" else "other"})
        expected = "abc-123" if field == "jti" else "match"
        assert shown(viewer_client, **{field: wanted}) == [expected]

    def test_it_keeps_an_unknown_reason_searchable_and_readable(self, viewer_client, make_event):
        make_event(source="okta", reason="some_okta_reason", outcome="failure", jti="okta")
        response = viewer_client.get(URL, {"reason": "some_okta_reason"})
        assert shown_jtis(response) == ["okta"]
        assert b"some okta reason" in response.content

    def test_it_filters_on_a_time_range_in_utc(self, viewer_client, make_event):
        for minutes, jti in ((0, "at-noon"), (30, "half-past-eleven"), (90, "half-past-ten")):
            make_event(jti=jti, occurred_at=BASE_TIME - timedelta(minutes=minutes))
        found = shown(viewer_client, **{"from": "2026-11-30T11:00", "to": "2026-11-30T12:00Z"})
        assert found == ["half-past-eleven"]  # "to" is exclusive

    def test_it_reads_an_offset_time_as_the_same_instant(self, viewer_client, make_event):
        make_event(jti="noon", occurred_at=BASE_TIME)
        assert shown(viewer_client, **{"from": "2026-11-30T13:00+01:00"}) == ["noon"]

    @pytest.mark.parametrize(
        ("preset", "expected"), [("1h", ["recent"]), ("24h", ["recent", "day"])]
    )
    def test_it_applies_a_preset_range_up_to_now(self, viewer_client, make_event, preset, expected):
        now = timezone.now()
        make_event(jti="recent", occurred_at=now - timedelta(minutes=30))
        make_event(jti="day", occurred_at=now - timedelta(hours=5))
        make_event(jti="week", occurred_at=now - timedelta(days=3))
        assert shown(viewer_client, range=preset) == expected

    @pytest.mark.parametrize(
        ("query", "expected"),
        [
            ("10.1.0.0/16", ["v4-a", "v4-b"]),
            ("10.1.2.0/24", ["v4-a"]),
            ("10.1.2.3", ["v4-a"]),
            ("10.1.2.3/32", ["v4-a"]),
            ("10.1.2.3/8", ["v4-a", "v4-b", "v4-c"]),  # host bits set: the /8 around it
            ("2001:db8::/32", ["v6-a", "v6-b"]),
            ("2001:db8:0:1::/64", ["v6-a"]),
            ("2001:DB8:0:1::10", ["v6-a"]),
            ("::/0", ["v6-a", "v6-b", "v6-c"]),
        ],
    )
    def test_it_filters_on_an_address_or_network(self, viewer_client, make_event, query, expected):
        addresses = {
            "v4-a": "10.1.2.3",
            "v4-b": "10.1.9.9",
            "v4-c": "10.200.0.1",
            "v6-a": "2001:db8:0:1::10",
            "v6-b": "2001:db8:ffff::1",
            "v6-c": "2001:db9::1",
        }
        for seconds, (jti, address) in enumerate(addresses.items()):
            make_event(
                jti=jti, source_ip=address, occurred_at=BASE_TIME - timedelta(seconds=seconds)
            )
        make_event(jti="no-address", source_ip=None, occurred_at=BASE_TIME - timedelta(hours=1))
        assert shown(viewer_client, ip=query) == expected

    def test_it_combines_filters(self, viewer_client, make_event):
        make_event(jti="hit", client_id="a", outcome="failure", reason="bad_secret")
        make_event(jti="other-client", client_id="b", outcome="failure", reason="bad_secret")
        make_event(jti="success", client_id="a")
        assert shown(viewer_client, client_id="a", outcome="failure") == ["hit"]


class TestCleanUrls:
    def test_it_redirects_away_empty_filters_keeping_the_others_in_order(self, viewer_client):
        response = viewer_client.get(
            URL + "?client_id=&outcome=failure&reason=&range=24h&ip=&jti=abc%3A1"
        )
        assert response.status_code == 302
        assert response["Location"] == URL + "?outcome=failure&range=24h&jti=abc%3A1"

    def test_it_redirects_to_the_bare_page_when_every_filter_is_empty(self, viewer_client):
        response = viewer_client.get(URL + "?client_id=&outcome=&reason=")
        assert response.status_code == 302
        assert response["Location"] == URL

    def test_the_htmx_form_lands_on_the_clean_fragment(self, viewer_client, make_event):
        make_event(outcome="failure", jti="failed")
        response = viewer_client.get(
            URL + "?outcome=failure&client_id=", headers={"HX-Request": "true"}, follow=True
        )
        assert response.redirect_chain == [(URL + "?outcome=failure", 302)]
        assert response.content.decode().lstrip().startswith('<div id="explorer-results"')
        assert ">failed</code>" in response.content.decode()

    def test_it_answers_a_clean_url_directly(self, viewer_client):
        assert viewer_client.get(URL + "?outcome=failure").status_code == 200

    def test_the_links_it_makes_carry_no_empty_filter(self, viewer_client, make_events):
        make_events(PAGE_SIZE + 1, outcome="failure")
        body = viewer_client.get(URL + "?outcome=failure", follow=True).content.decode()
        links = re.findall(r'href="([^"]*\?[^"]*)"', body)
        assert links and not [link for link in links if re.search(r"=(&|$)", link)]


class TestBadInput:
    @pytest.mark.parametrize(
        ("params", "message"),
        [
            ({"from": "yesterday"}, "ISO 8601"),
            ({"from": "2026-11-30T12:00", "to": "2026-11-30T11:00"}, "must not be before"),
            ({"ip": "10.1.2.300"}, "IP address"),
            ({"ip": "10.0.0.0/33"}, "IP address"),
            ({"outcome": "maybe"}, "Select a valid choice"),
            ({"range": "2y"}, "Select a valid choice"),
            ({"before": "not-a-cursor"}, "page link is damaged"),
            ({"before": "1" * 18 + "-" + "0" * 32}, "page link is damaged"),
            ({"after": "123-not-hex"}, "page link is damaged"),
            ({"client_id": "a\x00b"}, "control"),
            ({"client_id": "x" * 201}, "at most 200"),
        ],
    )
    def test_it_answers_400_with_the_error(self, viewer_client, params, message):
        response = viewer_client.get(URL, params)
        assert response.status_code == 400
        assert message in response.content.decode()

    def test_it_refuses_both_cursors_at_once(self, viewer_client, make_event):
        cursor = Cursor.of(make_event()).encode()
        response = viewer_client.get(URL, {"before": cursor, "after": cursor})
        assert response.status_code == 400

    def test_it_shows_the_error_in_the_htmx_fragment(self, viewer_client):
        response = viewer_client.get(URL, {"ip": "nope"}, headers={"HX-Request": "true"})
        assert response.status_code == 400
        body = response.content.decode()
        assert body.lstrip().startswith('<div id="explorer-results"')
        assert "IP address" in body


class TestKeysetPaging:
    def test_it_pages_through_ties_on_time_without_gaps_or_repeats(self, make_events, make_event):
        make_events(4, newest=BASE_TIME)
        # Seven events at one instant straddle the page boundaries.
        for _ in range(7):
            make_event(occurred_at=BASE_TIME - timedelta(seconds=10))
        make_events(3, newest=BASE_TIME - timedelta(seconds=20))
        events = events_filter(EventFilters())
        expected = list(events.order_by("-occurred_at", "-id").values_list("id", flat=True))

        seen, pages, page = [], [], events_page(events, size=3)
        while True:
            pages.append(page)
            seen += [event.id for event in page.events]
            if page.older is None:
                break
            page = events_page(events, before=page.older, size=3)
        assert seen == expected
        assert len(pages) == 5

        # And back up from the last page, page by page, to the first.
        back = [pages[-1].events]
        page = pages[-1]
        while page.newer is not None:
            page = events_page(events, after=page.newer, size=3)
            back.append(page.events)
        assert [e.id for events_ in reversed(back) for e in events_] == expected[: len(seen)]
        assert [p.events for p in pages[:-1]] == list(reversed(back))[:-1]

    def test_it_shows_no_newer_link_on_the_first_page(self, make_events):
        make_events(5)
        page = events_page(events_filter(EventFilters()), size=3)
        assert page.newer is None and page.older is not None

    def test_it_walks_the_page_links(self, viewer_client, make_events):
        make_events(PAGE_SIZE * 2 + 5)
        first = viewer_client.get(URL)
        older = re.search(r'href="\?before=([0-9a-f-]+)"', first.content.decode()).group(1)
        second = viewer_client.get(URL, {"before": older})
        assert len(shown_jtis(second)) == PAGE_SIZE
        assert set(shown_jtis(first)).isdisjoint(shown_jtis(second))
        newer = re.search(r'href="\?after=([0-9a-f-]+)"', second.content.decode()).group(1)
        assert shown_jtis(viewer_client.get(URL, {"after": newer})) == shown_jtis(first)

    def test_it_reads_a_deep_page_without_offset_or_count(self, viewer_client, make_events):
        make_events(PAGE_SIZE + 5)
        cursor = Cursor.of(TokenEvent.objects.order_by("occurred_at").first()).encode()
        with CaptureQueriesContext(connection) as queries:
            viewer_client.get(URL, {"before": cursor, "client_id": "billing-svc"})
        table = TokenEvent._meta.db_table
        event_sql = [q["sql"] for q in queries if f'FROM "{table}"' in q["sql"]]
        assert len(event_sql) == 1
        assert "OFFSET" not in event_sql[0].upper()
        assert "COUNT(" not in event_sql[0].upper()
        assert f"LIMIT {PAGE_SIZE + 1}" in event_sql[0]

    def test_it_keeps_filters_in_the_page_links(self, viewer_client, make_events):
        make_events(PAGE_SIZE + 1, client_id="billing-svc", outcome="failure", reason="bad_secret")
        params = {"outcome": "failure", "reason": "bad_secret"}
        body = viewer_client.get(URL, params).content.decode()
        assert re.search(
            r'href="\?outcome=failure&amp;reason=bad_secret&amp;before=[0-9a-f-]+"', body
        )

    def test_the_cursor_round_trips(self, make_event):
        event = make_event(occurred_at=BASE_TIME + timedelta(microseconds=123457))
        cursor = Cursor.decode(Cursor.of(event).encode())
        assert cursor == Cursor(event.occurred_at, event.id)


class TestRows:
    def test_it_links_registered_clients_only(self, viewer_client, make_client, make_event):
        client, _ = make_client(name="Billing")
        make_event(client_id=client.client_id, client_known=True, jti="ours")
        make_event(client_id=client.client_id, source="keycloak", jti="same-id-elsewhere")
        make_event(client_id="stranger", source="auth0", jti="theirs")
        body = viewer_client.get(URL).content.decode()
        link = reverse("clients:detail", args=[client.client_id])
        assert body.count(f'href="{link}"') == 2
        assert 'title="stranger (not a registered client)"' in body

    def test_it_shows_time_in_iso_utc_and_full_values_in_titles(self, viewer_client, make_event):
        make_event(jti="j" * 64, scopes_requested="a:read b:write")
        body = viewer_client.get(URL).content.decode()
        assert "2026-11-30T12:00:00Z" in body
        assert f'title="{"j" * 64}"' in body

    def test_it_says_what_to_do_when_there_are_no_events(self, viewer_client):
        body = viewer_client.get(URL).content.decode()
        assert "No token events yet" in body
        assert "ingest_logs" in body and "bin/dev" in body

    def test_it_offers_to_widen_the_time_range(self, viewer_client, make_event):
        make_event(occurred_at=BASE_TIME - timedelta(days=10))
        body = viewer_client.get(URL, {"range": "1h", "client_id": "billing-svc"}).content.decode()
        assert "No events match these filters" in body
        assert '<a href="?client_id=billing-svc" role="button">Widen to any time' in body


class TestRoles:
    @pytest.mark.parametrize(
        "name",
        [
            "analytics:events",
            "analytics:events_tail",
            "analytics:events_csv",
            "analytics:events_ndjson",
        ],
    )
    def test_it_sends_anonymous_users_to_log_in(self, anonymous_client, name):
        response = anonymous_client.get(reverse(name))
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login"))

    @pytest.mark.parametrize(
        "name",
        [
            "analytics:events",
            "analytics:events_tail",
            "analytics:events_csv",
            "analytics:events_ndjson",
        ],
    )
    def test_it_refuses_users_without_a_role(self, db, name):
        response = logged_in(make_user("no-role", None)).get(reverse(name))
        assert response.status_code == 403

    @pytest.mark.parametrize("persona", ["viewer", "operator", "admin"])
    def test_it_lets_viewers_and_up_read(self, persona_clients, persona):
        assert persona_clients[persona].get(URL).status_code == 200

    def test_the_navigation_links_to_it(self, viewer_client):
        body = viewer_client.get(reverse("clients:list")).content.decode()
        assert f'href="{URL}">Events<' in body
