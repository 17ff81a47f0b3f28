"""The console's shared layout: one date-time format, tables in scroll boxes, the header
(navigation state, role, skip link, favicon), the production badge's contrast, and the
production 404 and 500 pages."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.conf import settings
from django.template import Context, Template
from django.test import Client as BrowserClient
from django.test import RequestFactory
from django.urls import reverse

from keyward.views import server_error

TEMPLATES = Path(settings.BASE_DIR) / "templates"
PAGE_TEMPLATES = [
    path for path in TEMPLATES.rglob("*.html") if "emails" not in path.relative_to(TEMPLATES).parts
]
CSS = (Path(settings.BASE_DIR) / "static" / "keyward.css").read_text()


def render(source: str, **context) -> str:
    return Template(source).render(Context(context))


def contrast(foreground: str, background: str) -> float:
    """WCAG 2 contrast ratio of two #rrggbb colours."""

    def luminance(colour: str) -> float:
        channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
        linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    light, dark = sorted([luminance(foreground), luminance(background)], reverse=True)
    return (light + 0.05) / (dark + 0.05)


class TestOneDateTimeFormat:
    def test_when_shows_utc_in_a_time_element(self):
        moment = datetime(2026, 12, 3, 8, 45, 12, tzinfo=UTC)
        assert render("{{ m|when }}", m=moment) == (
            '<time datetime="2026-12-03T08:45:12Z">2026-12-03 08:45 UTC</time>'
        )

    def test_when_says_what_to_show_without_a_moment(self):
        assert render("{{ m|when }}", m=None) == "—"
        assert render('{{ m|when:"never" }}', m=None) == "never"

    def test_when_reads_iso_strings_as_stored_in_json(self):
        assert "2026-12-03 08:45 UTC" in render("{{ m|when }}", m="2026-12-03T08:45:00+00:00")

    def test_time_elements_never_wrap(self):
        assert re.search(r"(^|\n)time \{[^}]*white-space: nowrap", CSS)

    @pytest.mark.parametrize("path", PAGE_TEMPLATES, ids=lambda p: str(p.relative_to(TEMPLATES)))
    def test_no_page_template_formats_dates_its_own_way(self, path):
        assert not re.search(r"\|\s*(date|time|naturaltime|timesince)\b", path.read_text())


class TestTables:
    @pytest.mark.parametrize("path", PAGE_TEMPLATES, ids=lambda p: str(p.relative_to(TEMPLATES)))
    def test_every_table_scrolls_inside_its_own_box(self, path):
        # A wide table scrolls in its box, never the page (at 800 px, with long names).
        source = path.read_text()
        for match in re.finditer(r"<table\b", source):
            before = source[: match.start()].rstrip()
            assert re.search(r'<div class="table-scroll[" ][^>]*>$', before), source[
                match.start() - 120 : match.start()
            ]

    def test_long_names_are_clipped_with_the_whole_value_in_a_tooltip(self):
        name = "Nightly-settlement-export-" * 4
        html = render("{{ name|clip:20 }}", name=name)
        assert html == f'<span title="{name}">Nightly-settlement-…</span>'
        assert render("{{ name|clip:20 }}", name="Billing") == "Billing"


class TestHeader:
    def test_the_active_section_is_marked_current(self, viewer_client):
        html = viewer_client.get(reverse("clients:scope_list")).content.decode()
        assert '<a href="/clients/scopes/" aria-current="page">Scopes</a>' in html
        assert '<a href="/clients/">Clients</a>' in html
        assert html.count('aria-current="page"') == 1

    def test_a_page_inside_a_section_marks_that_section(self, viewer_client, make_client):
        client, _ = make_client("Billing")
        html = viewer_client.get(reverse("clients:detail", args=[client.client_id])).content
        assert b'<a href="/clients/" aria-current="page">Clients</a>' in html
        assert b'<a href="/">Overview</a>' in html

    def test_it_shows_the_signed_in_users_role(self, operator_client):
        html = operator_client.get(reverse("dashboard:overview")).content.decode()
        assert '<span class="badge badge-role">operator</span>' in html

    def test_it_has_a_skip_link_to_the_main_content(self, viewer_client):
        html = viewer_client.get(reverse("dashboard:overview")).content.decode()
        assert html.index('<a href="#main" class="skip-link">') < html.index("<header")
        assert '<main class="container" id="main"' in html

    def test_it_links_a_static_svg_favicon(self, viewer_client):
        html = viewer_client.get(reverse("dashboard:overview")).content.decode()
        assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in html
        assert (Path(settings.BASE_DIR) / "static" / "favicon.svg").read_text().startswith("<svg")


class TestProductionBadge:
    def test_its_text_has_at_least_4_5_to_1_contrast(self):
        rule = re.search(r"\.badge-production \{([^}]*)\}", CSS)[1]
        background = re.search(r"background: (#[0-9a-f]{6})", rule)[1]
        foreground = re.search(r"(?<!-)color: (#[0-9a-f]{6})", rule)[1]
        assert contrast(foreground, background) >= 4.5, (foreground, background)

    def test_the_contrast_formula_matches_wcag(self):
        assert round(contrast("#000000", "#ffffff"), 1) == 21.0
        assert round(contrast("#e65100", "#fff3e0"), 2) == 3.46  # the badge's old orange


@pytest.fixture
def production(settings):
    settings.DEBUG = False
    settings.ALLOWED_HOSTS = ["testserver"]


class TestNotFoundPage:
    def test_it_is_the_layouts_page_not_the_debug_page(self, production, viewer_client):
        response = viewer_client.get("/clients/no-such-client-id-at-all/")
        assert response.status_code == 404
        html = response.content.decode()
        assert "Page not found" in html and 'class="skip-link"' in html
        assert "<code>/clients/no-such-client-id-at-all/</code>" in html
        assert "Traceback" not in html and "URLconf" not in html

    def test_it_answers_anonymous_visitors_too(self, production, db):
        response = BrowserClient().get("/no-such-page/")
        assert response.status_code == 404 and b"Page not found" in response.content


class TestServerErrorPage:
    def test_it_is_the_layouts_page_not_the_debug_page(self, production, settings, db):
        settings.ROOT_URLCONF = "tests.dashboard.urls_failing"
        response = BrowserClient(raise_request_exception=False).get("/fail/")
        assert response.status_code == 500
        html = response.content.decode()
        assert "Something went wrong" in html and "keyward.css" in html
        assert "a bug" not in html and "Traceback" not in html

    def test_it_renders_without_the_request_or_context_processors(self, settings):
        # Whatever broke the page (the database, a context processor) is not touched again.
        settings.TEMPLATES = [
            {
                **settings.TEMPLATES[0],
                "OPTIONS": {
                    **settings.TEMPLATES[0]["OPTIONS"],
                    "context_processors": ["tests.dashboard.test_layout.broken_processor"],
                },
            }
        ]
        request = RequestFactory().get("/anything/")  # no user, no session
        response = server_error(request)
        assert response.status_code == 500 and b"Something went wrong" in response.content


def broken_processor(request):
    raise RuntimeError("the database is down")


class _Controls(HTMLParser):
    """Form controls with no accessible name: not inside a <label>, not named by a
    label's `for`, no aria-label(ledby)."""

    def __init__(self):
        super().__init__()
        self.open_labels = 0
        self.label_targets: set[str] = set()
        self.controls: list[dict] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "label":
            self.open_labels += 1
            if attrs.get("for"):
                self.label_targets.add(attrs["for"])
        elif tag in ("input", "select", "textarea") and attrs.get("type") not in (
            "hidden",
            "submit",
            "button",
        ):
            self.controls.append(attrs | {"_labelled": self.open_labels > 0})

    def handle_endtag(self, tag):
        if tag == "label":
            self.open_labels -= 1

    def unnamed(self) -> list[dict]:
        return [
            c
            for c in self.controls
            if not c["_labelled"]
            and c.get("id") not in self.label_targets
            and not c.get("aria-label")
            and not c.get("aria-labelledby")
        ]


class TestLabelledControls:
    @pytest.mark.parametrize(
        "name",
        [
            "dashboard:overview",
            "dashboard:users",
            "clients:list",
            "clients:register",
            "clients:scope_list",
            "clients:scope_create",
            "audit:list",
            "security:health",
            "security:settings",
            "tokens:keys",
        ],
    )
    def test_every_control_has_a_name(self, name, admin_client):
        parser = _Controls()
        parser.feed(admin_client.get(reverse(name)).content.decode())
        assert parser.unnamed() == []

    def test_the_secret_health_filters_are_labelled(self, admin_client):
        parser = _Controls()
        parser.feed(admin_client.get(reverse("security:health")).content.decode())
        names = {control.get("name") for control in parser.controls}
        assert {"kind", "environment"} <= names and parser.unnamed() == []
