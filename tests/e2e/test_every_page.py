"""Every console page in Chromium, as an admin, on realistic data with the longest names the
models allow: no serious or critical axe-core violation, no sideways scroll at 1366 and
800 px, and a screenshot of each in var/screenshots/ for a person to look at.

The pages come from the URLconf: each named route is asked once with Django's test client;
an HTML answer makes it a page the browser must visit, so a new page cannot be forgotten.

axe-core comes from the PyPI package axe-playwright-python, which bundles axe.min.js and
injects it with page.evaluate (through the DevTools protocol, so the Content-Security-Policy
does not block it): no JavaScript toolchain or vendored file in the repository.
"""

from __future__ import annotations

import base64
import os
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.conf import settings
from django.test import Client as DjangoClient
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from analytics.ingestion_tokens import ingestion_token_create
from analytics.store import token_events_write
from audit.events import TokenEventRecord
from audit.services import Actor
from clients import services as client_services
from clients.models import Client, Scope
from dashboard import services as dashboard_services
from security import services as security_services
from security.models import NotificationLog, SecretFinding
from tests.conftest import PASSWORD, make_user

from .test_csp import log_in

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

pytestmark = pytest.mark.e2e

SCREENSHOTS = Path(settings.BASE_DIR) / "var" / "screenshots"
WIDTHS = (1366, 800)
BLOCKING_IMPACTS = {"serious", "critical"}
# Pages the browser visits signed out, or halfway through signing in (a signed-in user is
# sent on from them).
SIGNED_OUT = {"login", "dashboard:two_factor_verify"}

# The longest values the models allow, as people type them: a name without a space to
# break at is the worst case for a layout.
LONG_NAME = ("Nightly-settlement-reconciliation-export-for-EMEA-payments-" * 2)[
    : Client._meta.get_field("name").max_length
]
LONG_TEXT = (
    "Exports every settled card and SEPA payment of the previous day from the ledger to the "
    "finance warehouse, then reconciles totals per merchant account and currency; see "
    "https://wiki.example.com/finance/settlement/reconciliation/runbooks/nightly-export-v2 "
    "for the runbook, owners, escalation contacts and the reconciliation thresholds used."
)[:300]
LONG_SCOPE = "settlements:reconciliation-export.emea-ledger-warehouse-nightly-run"
# 128, not the 150 Django allows: the audit trail's target_id holds 128 characters.
LONG_USERNAME = ("firstname.lastname-finance-operations-emea@" + "x" * 150)[:128]


def seed_console() -> dict[str, object]:
    """Demo data (seed_demo) plus a client, scope and user with the longest values, findings,
    token events, a rotation and a failed email. Returns sample URL arguments."""
    from django.core.management import call_command

    call_command("seed_demo", "--force", stdout=open(os.devnull, "w"))  # noqa: SIM115
    cli = Actor.cli()
    scope = client_services.scope_create(
        actor=cli, name=LONG_SCOPE, description=LONG_TEXT, owning_team="finance", sensitive=True
    )
    client, _secret = client_services.client_register(
        actor=cli,
        name=LONG_NAME,
        environment="production",
        description=LONG_TEXT,
        owner_email="settlement-reconciliation-team@payments.example.com",
        allowed_networks=["10.20.0.0/16", "192.168.100.0/24", "2001:db8:abcd:12::/64"],
        audiences=["https://ledger.example.com/api", "https://warehouse.example.com/ingest"],
        can_introspect=True,
        scopes=list(Scope.objects.filter(name__in=["orders:read", "reports:export"])),
    )
    client_services.scope_grant(actor=cli, client=client, scope=scope, reason=LONG_TEXT)
    old = client.secrets.get()
    security_services.client_secret_rotate(actor=cli, client=client, grace=timedelta(days=7))
    client_services.client_update(
        actor=cli, client=client, access_token_lifetime=900, allowed_networks=["10.20.0.0/16"]
    )
    dashboard_services.user_create(
        actor=cli,
        username=LONG_USERNAME,
        email="ops@example.com",
        role="operator",
        password=PASSWORD,
    )
    _findings(client, old)
    _token_events(client, old)
    NotificationLog.objects.create(
        kind=NotificationLog.Kind.SECRET_ROTATED,
        recipients=["settlement-reconciliation-team@payments.example.com"],
        subject=f"Secret rotated for {LONG_NAME}",
        body_text="…",
        status=NotificationLog.Status.FAILED,
        attempts=5,
        last_error="SMTPRecipientsRefused: {'settlement@payments.example.com': (550, b'5.1.1 "
        "The email account that you tried to reach does not exist.')}",
        client=client,
    )
    _issue_a_token()  # creates the signing keys the Keys page lists
    ingestion, _ = ingestion_token_create(
        actor=cli,
        name="Auth0 tenant eu-payments-prod (log stream to Keyward)",
        source="auth0",
        expires_at=timezone.now() + timedelta(days=90),
    )
    alert, suppression, destination = _alerts(client)
    finding, change = _review()
    campaign = _campaign(client)
    return {
        # By argument name; "<route name>:<argument>" where routes mean different rows.
        "pk": alert.pk,
        "alerts:suppression_lift:pk": suppression.pk,
        **{f"alerts:destination_{view}:pk": destination.pk for view in DESTINATION_VIEWS},
        "token_id": ingestion.pk,
        "client_id": client.client_id,
        "name": scope.name,
        "scope_name": scope.name,
        "secret_id": old.pk,
        "username": LONG_USERNAME,
        "reviews:finding_archive:pk": finding.pk,
        "reviews:change:pk": change.pk,
        "reviews:rollback:pk": change.pk,
        **{f"reviews:{view}:pk": campaign.pk for view in CAMPAIGN_VIEWS},
    }


def _review():
    """An open scope-review finding and an applied recommendation (seed_demo's grants are
    old and partly unused)."""
    from reviews.models import Finding
    from reviews.services import recommendation_apply

    change = recommendation_apply(
        actor=Actor.cli(), client=Client.objects.get(name="Finance reports")
    )
    return Finding.objects.filter(status="open").first(), change


CAMPAIGN_VIEWS = (
    "campaign", "campaign_decide", "campaign_close", "campaign_report", "campaign_report_csv",
)  # fmt: skip


def _campaign(client: Client):
    """A campaign with the longest name over the sensitive grants, reviewed by the user with
    the longest name, one grant kept with the longest justification (the widest rows)."""
    from django.contrib.auth.models import User

    from reviews.campaigns import campaign_decide, campaign_start

    campaign = campaign_start(
        actor=Actor.cli(),
        name=LONG_NAME,
        selection="sensitive",
        deadline=timezone.now() + timedelta(days=30),
        recurrence="half_yearly",
        no_response_policy="recommendation",
        fallback_reviewer=User.objects.get(username=LONG_USERNAME),
    )
    item = campaign.items.get(client_id=client.client_id, scope=LONG_SCOPE)
    campaign_decide(
        actor=Actor.cli(), campaign=campaign, items=[item], decision="keep", justification=LONG_TEXT
    )
    return campaign


def enrolled_admin():
    """An admin with a confirmed authenticator: signing in stops at the code page."""
    from django_otp.oath import TOTP

    from dashboard import two_factor

    user = make_user("ben-admin", "admin")
    device = two_factor.two_factor_enrolment_start(user=user)
    code = f"{TOTP(device.bin_key, device.step, device.t0, device.digits).token():06d}"
    assert two_factor.two_factor_enrol(actor=Actor.cli(), device=device, code=code) is not None
    return user


DESTINATION_VIEWS = ("detail", "rotate", "delete", "secret")


def _alerts(client: Client):
    """An open alert on the long-named client, a suppression and a webhook destination."""
    from alerts.detections import Subject
    from alerts.services import alert_raise, destination_create, suppression_create

    now = timezone.now()
    raised = alert_raise(
        rule="brute_force",
        subject=Subject(client_id=client.client_id),
        evidence={"failures": 240, "window_seconds": 300, "source_ips": ["10.20.3.4"]},
        seen_at=now,
        first_seen_at=now - timedelta(minutes=5),
        client=client,
    )
    suppression = suppression_create(
        actor=Actor.cli(),
        reason=LONG_TEXT,
        expires_at=now + timedelta(days=7),
        client_id=client.client_id,
    )
    destination, _secret = destination_create(
        actor=Actor.cli(),
        name="Security on-call (Slack #sec-alerts-emea-payments)",
        kind="webhook",
        target="https://hooks.example.com/services/T0000/B0000/settlement-reconciliation-alerts",
    )
    return raised.alert, suppression, destination


def _findings(client: Client, secret) -> None:
    for kind in (SecretFinding.Kind.SECRET_EXPIRING, SecretFinding.Kind.SECRET_UNUSED):
        SecretFinding.objects.create(kind=kind, client=client, secret=secret)
    dormant = Client.objects.get(name="Finance reports")
    SecretFinding.objects.create(
        kind=SecretFinding.Kind.CLIENT_DORMANT, client=dormant, details={"last_used_at": None}
    )


def _token_events(client: Client, secret) -> None:
    now = timezone.now()
    records = [
        TokenEventRecord(
            id=uuid.uuid4().hex,
            occurred_at=(now - timedelta(minutes=minutes)).timestamp(),
            endpoint="token",
            client_id=client.client_id,
            client_known=True,
            secret_id=secret.pk,
            outcome=outcome,
            reason=reason,
            status_code=status,
            source_ip="10.20.3.4",
            scopes_requested=f"orders:read reports:export {LONG_SCOPE}",
        )
        for minutes, reason, outcome, status in [
            (1, "ok", "success", 200),
            (2, "bad_secret", "failure", 401),
            (3, "invalid_scope", "failure", 400),
        ]
    ]
    token_events_write(records)


def _issue_a_token() -> None:
    demo = Client.objects.get(name="Local dev app")
    _, secret = client_services.client_secret_create(actor=Actor.cli(), client=demo)
    basic = base64.b64encode(f"{demo.client_id}:{secret}".encode()).decode()
    response = DjangoClient().post(
        "/token-srv/token",
        "grant_type=client_credentials",
        content_type="application/x-www-form-urlencoded",
        HTTP_AUTHORIZATION=f"Basic {basic}",
    )
    assert response.status_code == 200, response.content


def named_routes(patterns=None, namespace: str = ""):
    """(URL name, URLPattern) for every named route of the project's URLconf."""
    for entry in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(entry, URLResolver):
            inner = ":".join(part for part in (namespace, entry.namespace or "") if part)
            yield from named_routes(entry.url_patterns, inner)
        elif isinstance(entry, URLPattern) and entry.name:
            yield (f"{namespace}:{entry.name}" if namespace else entry.name), entry


def console_pages(samples: dict[str, object], admin) -> tuple[dict[str, str], list[tuple]]:
    """Every named route an admin GETs as an HTML page: {name: URL}; and (name, URL, status,
    content type) of the routes that are not pages."""
    browser = DjangoClient()
    browser.force_login(admin)
    pages, others = {}, []
    for name, pattern in named_routes():
        kwargs = {
            arg: samples.get(f"{name}:{arg}", samples.get(arg))
            for arg in pattern.pattern.converters
        }
        missing = [arg for arg, value in kwargs.items() if value is None]
        assert not missing, f"{name}: add a sample value for {missing} to seed_console()"
        url = reverse(name, kwargs=kwargs)
        response = browser.get(url)
        content_type = response.get("Content-Type", "")
        # An htmx fragment is not a page; streamed answers are exports, never pages.
        is_document = not response.streaming and b"<html" in response.content[:500]
        if response.status_code == 200 and content_type.startswith("text/html") and is_document:
            pages[name] = url
        else:
            others.append((name, url, response.status_code, content_type))
    return pages, others


# The outermost elements that reach past the viewport's right edge: where to look first.
WIDEST_ELEMENTS = """(width) => {
  const out = [...document.body.querySelectorAll("*")].filter(
    (el) => el.getBoundingClientRect().right > width + 1
  );
  const outermost = out.filter((el) => !out.includes(el.parentElement));
  return outermost.slice(0, 3).map((el) =>
    el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") +
    (typeof el.className === "string" && el.className
      ? "." + el.className.replace(/ /g, ".") : "") +
    " right=" + Math.round(el.getBoundingClientRect().right)
  ).join(", ");
}"""


def check_page(page, axe: Axe, url: str, label: str, status: int = 200) -> list[str]:
    """Visit at each width: screenshot, no sideways scroll, no serious axe violation."""
    problems = []
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        response = page.goto(url)
        assert response.status == status, (label, response.status)
        page.wait_for_load_state("load")
        page.screenshot(path=SCREENSHOTS / f"{label}-{width}.png", full_page=True)
        scroll_width = page.evaluate("document.documentElement.scrollWidth")
        if scroll_width > width:
            widest = page.evaluate(WIDEST_ELEMENTS, width)
            problems.append(
                f"{label} at {width} px: the document is {scroll_width} px wide; {widest}"
            )
        for violation in axe.run(page).response["violations"]:
            if violation["impact"] in BLOCKING_IMPACTS:
                targets = [node["target"] for node in violation["nodes"]][:3]
                problems.append(
                    f"{label} at {width} px: {violation['impact']} {violation['id']} "
                    f"({violation['help']}) at {targets}"
                )
    return problems


@pytest.fixture
def seeded(role_groups, settings):
    settings.DEBUG = False  # as in production: the 404 page is the layout's, not Django's
    admin = make_user("ada-admin", "admin")
    return admin, seed_console()


class TestEveryPage:
    def test_every_console_page_is_accessible_and_fits_at_both_widths(
        self, live_server, chromium, page, seeded
    ):
        admin, samples = seeded
        pages, others = console_pages(samples, admin)
        # The URLconf's pages are all here; a new page route joins this list by itself.
        assert len(pages) >= 15, others  # the test below says where the others went
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        axe = Axe()
        problems = check_page(page, axe, live_server.url + "/login/", "login")
        log_in(page, live_server.url, admin.username)
        for name, url in pages.items():
            problems += check_page(page, axe, live_server.url + url, name.replace(":", "-"))
        problems += check_page(page, axe, live_server.url + "/no-such-page/", "404", status=404)
        problems += self.second_step_page(chromium, axe, live_server.url)
        assert problems == [], "\n".join(problems)
        print("pages checked:", ", ".join(["login", *pages, "404", "two_factor_verify"]))

    def second_step_page(self, chromium, axe: Axe, base_url: str) -> list[str]:
        """The code page, where a user with an authenticator lands after the password."""
        user = enrolled_admin()
        context = chromium.new_context()
        try:
            page = context.new_page()
            page.goto(f"{base_url}/login/")
            page.get_by_label("Username").fill(user.username)
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Log in").click()
            page.wait_for_url("**" + reverse("dashboard:two_factor_verify") + "*")
            url = page.url
            return check_page(page, axe, url, "dashboard-two_factor_verify")
        finally:
            context.close()

    def test_every_named_route_is_a_page_or_not_meant_for_a_browser(self, seeded):
        # A route the page test skips must be a POST-only action (405), an htmx fragment
        # (200 without <html>), a machine endpoint or download (not HTML), or a page visited
        # signed out; anything else (a redirect, an error) would be a page left unchecked.
        admin, samples = seeded
        pages, others = console_pages(samples, admin)
        unchecked = [
            f"{name} {url} → {status} {content_type}"
            for name, url, status, content_type in others
            if status not in (200, 405)
            and content_type.startswith("text/html")
            and name not in SIGNED_OUT
        ]
        assert unchecked == []
        assert {"clients:detail", "clients:scope_detail", "security:rotate"} <= set(pages)
        machine = {name for name, _, _, content_type in others if "html" not in content_type}
        assert {"tokens:token", "tokens:jwks", "audit:export", "protected-resource"} <= machine
