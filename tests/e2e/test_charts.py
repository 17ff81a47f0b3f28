"""Traffic charts in Chromium: the overview and a client page draw their uPlot charts under
the Content-Security-Policy without a console error, show values on hover, open the
explorer on the clicked bucket, stay readable in light and dark, and fit an 800 px window.
Screenshots go to var/screenshots/ (look at them)."""

from __future__ import annotations

import os
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from playwright.sync_api import expect

from tests.analytics.traffic import event, events_write
from tests.conftest import make_user
from tests.e2e.test_csp import log_in

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

pytestmark = pytest.mark.e2e

SHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
NOW = datetime.now(UTC)


@pytest.fixture
def traffic(role_groups, make_client, make_scope):
    """An admin, a client granted two scopes, and a day of its traffic with a burst of bad
    secrets two hours ago, besides Okta events and unknown client_ids."""
    admin = make_user("ada-admin", "admin")
    read, write = make_scope("orders:read"), make_scope("orders:write")
    client, _secret = make_client("Billing service", scopes=[read, write])
    rng = random.Random(7)
    records = []
    for _ in range(900):
        at = NOW - timedelta(seconds=rng.uniform(60, 86400))
        records.append(
            event(
                at,
                client_id=client.client_id,
                client_known=True,
                secret_id=client.secrets.get().pk,
                scopes_requested="orders:read",
                scopes_granted="orders:read",
                ip=f"203.0.113.{rng.randint(1, 50)}",
                source=rng.choice(["keyward"] * 4 + ["okta"]),
            )
        )
    for _ in range(150):
        at = NOW - timedelta(hours=2, seconds=rng.uniform(0, 1800))
        records.append(
            event(at, client_id=client.client_id, reason="bad_secret", ip="198.51.100.66")
        )
    for name in ("root", "admin", "test-client"):
        records.append(event(NOW - timedelta(hours=5), client_id=name, reason="unknown_client"))
    events_write(*records)
    return admin.username, client


def watch_console(page) -> list[str]:
    """Console errors and failed requests (the favicon aside: the browser asks for one)."""
    errors: list[str] = []

    def console(message) -> None:
        # A failed request is reported with its URL below; the console line has none.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            errors.append(message.text)

    def response(answer) -> None:
        if answer.status >= 400 and not answer.url.endswith("/favicon.ico"):
            errors.append(f"{answer.status} {answer.url}")

    page.on("console", console)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("response", response)
    return errors


def chart_ready(page, scope: str = "") -> None:
    canvas = page.locator(f"{scope} .chart[data-chart-ready='true'] canvas".strip())
    expect(canvas.first).to_be_visible()


# The outermost elements reaching past the viewport's right edge, to say what overflows.
WIDER_THAN_VIEWPORT = """
[...document.querySelectorAll("body *")]
  .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1)
  .filter((e) => !(e.parentElement.getBoundingClientRect().right > window.innerWidth + 1))
  .slice(0, 5).map((e) => e.closest("section[id]")?.id + " " + e.tagName + "." + e.className)
"""


def shoot(page, name: str, region: str = "") -> None:
    """Screenshots at 1366 and 800 px, light and dark; at each width the document (or only
    `region`, where the page around it is not ours to fix) fits the viewport."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    for width in (1366, 800):
        page.set_viewport_size({"width": width, "height": 900})
        page.wait_for_timeout(400)  # ResizeObserver → setSize
        wide = page.evaluate(WIDER_THAN_VIEWPORT)
        if region:
            box = page.locator(region).bounding_box()
            assert box["x"] + box["width"] <= width, (name, width, wide)
        else:
            assert page.evaluate("document.documentElement.scrollWidth") <= width, (name, wide)
        for theme in ("light", "dark"):
            page.evaluate(f"document.documentElement.dataset.theme = '{theme}'")
            page.wait_for_timeout(200)  # the MutationObserver redraws in the scheme's colours
            page.screenshot(path=str(SHOTS / f"charts-{name}-{width}-{theme}.png"), full_page=True)
    page.evaluate("document.documentElement.dataset.theme = 'light'")
    page.set_viewport_size({"width": 1366, "height": 900})


class TestChartsInTheBrowser:
    def test_the_overview_draws_hovers_and_clicks_through(self, live_server, watched_page, traffic):
        page = watched_page
        errors = watch_console(page)
        log_in(page, live_server.url, traffic[0])
        page.goto(live_server.url + "/?range=24h")
        chart_ready(page, "#traffic")
        shoot(page, "overview")
        # Hover: the legend shows the values under the pointer.
        over = page.locator("#traffic .u-over")
        box = over.bounding_box()
        page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5)
        legend = page.locator("#traffic .u-legend .u-series").nth(1).locator(".u-value")
        expect(legend).not_to_have_text("—")
        assert legend.inner_text().replace(",", "").isdigit()
        assert page.violations() == [] and errors == []
        # Click: the explorer, filtered to that bucket.
        with page.expect_navigation():
            page.mouse.click(box["x"] + box["width"] * 0.5, box["y"] + 2)
        url = urlparse(page.url)
        query = parse_qs(url.query)
        assert url.path == "/analytics/events/"
        start = datetime.fromisoformat(query["from"][0])
        end = datetime.fromisoformat(query["to"][0])
        assert timedelta(0) < end - start <= timedelta(minutes=30)
        assert "outcome" not in query  # the pointer was near the top: all requests
        expect(page.get_by_role("heading", name="Token events")).to_be_visible()
        assert page.violations() == [] and errors == []

    def test_the_range_switch_redraws_and_keeps_a_shareable_url(
        self, live_server, watched_page, traffic
    ):
        page = watched_page
        errors = watch_console(page)
        log_in(page, live_server.url, traffic[0])
        page.goto(live_server.url + "/")
        chart_ready(page, "#traffic")
        page.locator("#traffic nav.switch").first.get_by_role("link", name="7 d").click()
        expect(page).to_have_url(live_server.url + "/?range=7d")
        expect(page.locator("#traffic figcaption")).to_contain_text("last 7 days")
        chart_ready(page, "#traffic")
        assert page.locator("#traffic .uplot").count() == 1  # the old chart was destroyed
        assert page.violations() == [] and errors == []

    def test_a_client_page_loads_its_activity_with_a_chart(
        self, live_server, watched_page, traffic
    ):
        page = watched_page
        errors = watch_console(page)
        username, client = traffic
        log_in(page, live_server.url, username)
        page.goto(f"{live_server.url}/clients/{client.client_id}/")
        activity = page.locator("#client-activity")
        expect(activity.get_by_role("heading", name="Source networks")).to_be_visible()
        chart_ready(page, "#client-activity")
        expect(activity.get_by_text("granted, never requested")).to_be_visible()
        expect(activity.get_by_text(client.secrets.get().hint)).to_be_visible()
        expect(activity.locator(".badge-source", has_text="okta")).to_be_visible()
        # The client page's own tables scroll in their boxes once the console layout work
        # lands; the activity block is checked here.
        shoot(page, "client", region="#client-activity")
        # Failures near the bottom of the burst: click where the failures line peaks.
        page.locator("#client-activity nav.switch").get_by_role("link", name="24 h").click()
        chart_ready(page, "#client-activity")
        assert page.violations() == [] and errors == []


# The longest run of the axis-text colour in one row (the dashed threshold) and in one
# column (the dotted first-event marker) of the chart's canvas, against its size.
GUIDE_PIXELS = """(element) => {
  const probe = document.createElement("span");
  probe.style.color = "var(--pico-muted-color)";
  element.append(probe);
  const [r, g, b] = getComputedStyle(probe).color.match(/\\d+/g).map(Number);
  probe.remove();
  const canvas = element.querySelector("canvas");
  const { width, height } = canvas;
  const data = canvas.getContext("2d").getImageData(0, 0, width, height).data;
  const rows = new Array(height).fill(0), columns = new Array(width).fill(0);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 4;
      if (data[i + 3] > 200 && Math.abs(data[i] - r) + Math.abs(data[i + 1] - g)
          + Math.abs(data[i + 2] - b) < 24) { rows[y]++; columns[x]++; }
    }
  }
  return { row: Math.max(...rows), column: Math.max(...columns), width, height };
}"""


@pytest.fixture
def brute_forced(role_groups, make_client):
    """An operator, and a client's two quiet hours ending in a brute force, alerted."""
    from alerts.evaluation import detections_evaluate
    from alerts.models import Alert

    operator = make_user("olga-operator", "operator")
    client, _secret = make_client("Billing service", environment="production")
    now = datetime.now(UTC)
    rng = random.Random(3)
    quiet = [
        event(now - timedelta(seconds=rng.uniform(300, 7200)), client_id=client.client_id)
        for _ in range(120)
    ]
    burst = [
        event(
            now - timedelta(seconds=rng.uniform(0, 200)),
            client_id=client.client_id,
            reason="bad_secret",
            ip="203.0.113.66",
        )
        for _ in range(40)
    ]
    events_write(*quiet, *burst)
    detections_evaluate()
    return operator.username, Alert.objects.get(rule="brute_force")


class TestAlertChart:
    def test_the_investigation_page_draws_traffic_threshold_and_marker(
        self, live_server, watched_page, brute_forced
    ):
        page = watched_page
        errors = watch_console(page)
        username, alert = brute_forced
        log_in(page, live_server.url, username)
        page.goto(f"{live_server.url}/alerts/{alert.pk}/")
        chart_ready(page, "#alert-traffic")
        expect(page.locator("#alert-traffic .u-legend")).to_contain_text("Bad secret")
        guides = page.locator("#alert-traffic .chart").evaluate(GUIDE_PIXELS)
        assert guides["row"] > 0.4 * guides["width"], guides  # the threshold, across
        assert guides["column"] > 0.2 * guides["height"], guides  # the first event, down
        shoot(page, "alert", region="#alert-traffic")
        assert page.violations() == [] and errors == []
        # Click near the bottom of the burst's bucket: the explorer on its events.
        over = page.locator("#alert-traffic .u-over")
        over.scroll_into_view_if_needed()
        box = over.bounding_box()
        page.mouse.move(box["x"] + box["width"] - 3, box["y"] + 2)
        with page.expect_navigation():
            page.mouse.click(box["x"] + box["width"] - 3, box["y"] + 2)
        query = parse_qs(urlparse(page.url).query)
        assert query["client_id"] == [alert.subject_client_id] and "from" in query
