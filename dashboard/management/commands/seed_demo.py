"""manage.py seed_demo: demo users, scopes and clients for a local try-out. Idempotent.

Everything is written through the services, so the demo's audit trail shows how the real
one looks. Rows that already exist (matched by username, scope name or client name) are
left alone, so it is safe to run at every start.
"""

from __future__ import annotations

import contextlib
import os
import random
import uuid
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from analytics.store import token_events_write
from audit.events import TokenEventRecord
from audit.services import Actor
from clients import services as client_services
from clients.models import Client, Scope
from dashboard import services
from reviews import campaigns
from reviews.models import ReviewCampaign
from reviews.scan import findings_scan

DEMO_PASSWORD = "keyward-demo"  # noqa: S105 - a documented local demo login
DEMO_USERS = (
    ("admin", "admin"),
    ("operator", "operator"),
    ("viewer", "viewer"),
)
DEMO_SCOPES = (
    # name, description, owning team, sensitive
    ("orders:read", "Read orders and their line items", "commerce", False),
    ("orders:write", "Create, update and cancel orders", "commerce", False),
    ("payments:refund", "Issue refunds to customers", "payments", True),
    ("inventory:read", "Read stock levels per warehouse", "logistics", False),
    ("inventory:write", "Adjust stock levels", "logistics", False),
    ("reports:export", "Export sales reports", "finance", False),
    ("demo:read", "Read the demo resource at /api/protected-resource", "platform", False),
)
# The scope review needs history: demo grants are recorded as made this long ago, and the
# clients use only some of their scopes (DEMO_USAGE), so the others show as unused.
DEMO_GRANT_AGE = timedelta(days=120)
DEMO_USAGE = {
    # client name: (scopes it actually requests, token service that recorded it)
    "Checkout service": (("orders:read", "orders:write"), "keyward"),
    "Refund worker": (("orders:read", "payments:refund"), "keycloak"),
    "Finance reports": (("reports:export",), "keyward"),
    "Local dev app": (("demo:read",), "keyward"),
}
DEMO_CAMPAIGN = {
    "name": "Quarterly access review: production",
    "reviewer": "operator",
    # (client, scope, justification) the demo reviewer has already kept
    "keep": (
        ("Checkout service", "orders:read", "Reads every order it places; used daily."),
        ("Refund worker", "payments:refund", "Issuing refunds is this worker's whole job."),
    ),
}
# Resource servers that report what they checked: an API gateway introspects the checkout
# service's tokens, so those grants show "last exercised"; orders:read held by others shows
# "never", and scopes no resource server reports show "not reported".
DEMO_GATEWAY = "demo-orders-gateway"
DEMO_EXERCISED = {"Checkout service": "orders:read orders:write"}
DEMO_CLIENTS = (
    # name, environment, owner, scopes, description
    (
        "Checkout service",
        "production",
        "checkout@example.com",
        ("orders:read", "orders:write", "inventory:read"),
        "Places orders from the web shop.",
    ),
    (
        "Refund worker",
        "production",
        "payments@example.com",
        ("orders:read", "payments:refund"),
        "Processes approved refund requests.",
    ),
    (
        "Warehouse sync",
        "staging",
        "logistics@example.com",
        ("inventory:read", "inventory:write"),
        "Nightly stock sync from the warehouse system.",
    ),
    (
        "Finance reports",
        "staging",
        "finance@example.com",
        ("reports:export", "orders:read"),
        "Monthly sales export.",
    ),
    (
        "Local dev app",
        "development",
        "dev@example.com",
        ("orders:read", "demo:read"),
        "For trying the token endpoint from a laptop.",
    ),
)


class Command(BaseCommand):
    help = "Create demo users (admin/operator/viewer), scopes and clients. Safe to re-run."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--force", action="store_true", help="Run even with DEBUG off (never in production)."
        )

    def handle(self, *args, **options) -> None:
        if not settings.DEBUG and not options["force"]:
            raise CommandError(
                "seed_demo creates users with a published password; it runs only with "
                "DEBUG on. Use --force if you really mean it.",
                returncode=2,
            )
        actor = Actor.cli()
        self._users(actor)
        self._scopes(actor)
        secrets = self._clients(actor)
        self._usage([client for client, _ in secrets])
        self._campaign()
        self._summary(secrets)

    def _users(self, actor: Actor) -> None:
        for username, role in DEMO_USERS:
            if User.objects.filter(username=username).exists():
                self.stdout.write(f"  user {username}: exists")
                continue
            services.user_create(
                actor=actor,
                username=username,
                email=f"{username}@example.com",
                role=role,
                password=DEMO_PASSWORD,
            )
            self.stdout.write(f"  user {username}: created ({role})")

    def _scopes(self, actor: Actor) -> None:
        for name, description, team, sensitive in DEMO_SCOPES:
            if Scope.objects.filter(name=name).exists():
                self.stdout.write(f"  scope {name}: exists")
                continue
            client_services.scope_create(
                actor=actor,
                name=name,
                description=description,
                owning_team=team,
                sensitive=sensitive,
            )
            self.stdout.write(f"  scope {name}: created")

    def _clients(self, actor: Actor) -> list[tuple[Client, str]]:
        """Register the missing demo clients; returns (client, plain secret) for each new one."""
        created = []
        for name, environment, owner, scope_names, description in DEMO_CLIENTS:
            if Client.objects.filter(name=name).exists():
                self.stdout.write(f"  client {name}: exists")
                continue
            client, secret = client_services.client_register(
                actor=actor,
                name=name,
                environment=environment,
                owner_email=owner,
                description=description,
            )
            for scope in Scope.objects.filter(name__in=scope_names):
                client_services.scope_grant_restore(
                    actor=actor,
                    client=client,
                    scope=scope,
                    reason="initial scope",
                    granted_at=timezone.now() - DEMO_GRANT_AGE,
                    granted_by_id=None,
                )
            created.append((client, secret))
            self.stdout.write(f"  client {name}: registered ({environment})")
        if created:
            # One disabled client, so the dashboard shows both states.
            warehouse = next((c for c, _ in created if c.name == "Warehouse sync"), None)
            if warehouse is not None:
                client_services.client_set_status(actor=actor, client=warehouse, status="disabled")
                self.stdout.write("  client Warehouse sync: disabled")
        return created

    def _usage(self, clients: list[Client]) -> None:
        """Token requests over the last three weeks for the scopes each demo client uses,
        written through the event store (which keeps the scope-usage rollup), then one
        findings scan so the review pages have something to show."""
        rng = random.Random(7)  # the same demo every time
        now = timezone.now()
        records = []
        for client in clients:
            scopes, source = DEMO_USAGE.get(client.name, ((), ""))
            for _ in range(40 if scopes else 0):
                used = " ".join(s for s in scopes if rng.random() < 0.7) or scopes[0]
                at = now - timedelta(days=rng.uniform(0, 21))
                records.append(_demo_event(client, used, source, at))
            exercised = DEMO_EXERCISED.get(client.name, "")
            for _ in range(20 if exercised else 0):
                at = now - timedelta(days=rng.uniform(0, 7))
                records.append(_demo_introspection(client, exercised, at))
        if records:
            token_events_write(records)
            self.stdout.write(f"  {len(records)} demo token requests recorded")
        counts = findings_scan()
        self.stdout.write(f"  scope review: {counts['opened']} findings opened")

    def _campaign(self) -> None:
        """An open review campaign over the production grants, reviewed by the demo
        operator (no demo owner email is a console user's), with two decisions made."""
        reviewer = User.objects.filter(username=DEMO_CAMPAIGN["reviewer"]).first()
        if ReviewCampaign.objects.filter(name=DEMO_CAMPAIGN["name"]).exists() or not reviewer:
            self.stdout.write("  review campaign: exists")
            return
        campaign = campaigns.campaign_start(
            actor=Actor.cli(),
            name=DEMO_CAMPAIGN["name"],
            selection=ReviewCampaign.Selection.ENVIRONMENT,
            selection_value="production",
            deadline=timezone.now() + timedelta(days=10),
            recurrence=ReviewCampaign.Recurrence.QUARTERLY,
            no_response_policy=ReviewCampaign.Policy.RECOMMENDATION,
            fallback_reviewer=reviewer,
        )
        as_reviewer = Actor(label=reviewer.username, user=reviewer)
        for client_name, scope, justification in DEMO_CAMPAIGN["keep"]:
            campaigns.campaign_decide(
                actor=as_reviewer,
                campaign=campaign,
                items=list(campaign.items.filter(client_name=client_name, scope=scope)),
                decision="keep",
                justification=justification,
            )
        self.stdout.write(
            f"  review campaign: {campaign.items.count()} grants for {reviewer.username}"
        )

    def _summary(self, secrets: list[tuple[Client, str]]) -> None:
        """Every demo client: environment, whether the token service takes it, its scopes,
        and its secret if this run created it (a secret is shown once, then stored hashed)."""
        new_secrets = {client.pk: secret for client, secret in secrets}
        names = [name for name, *_ in DEMO_CLIENTS]
        clients = Client.objects.filter(name__in=names).prefetch_related("grants__scope")
        self.stdout.write("")
        self.stdout.write("Demo clients (secrets are shown only by the run that creates them):")
        for client in sorted(clients, key=lambda c: names.index(c.name)):
            self._client_lines(client, new_secrets.get(client.pk))
        if secrets:
            self._try_it(secrets)
        self.stdout.write("")
        self.stdout.write(
            self.style.SUCCESS(
                f"Log in at {settings.KEYWARD_ISSUER}/ as admin / {DEMO_PASSWORD} "
                "(also operator, viewer)"
            )
        )
        if mail_folder := _mail_folder():
            self.stdout.write(f"Emails are written to {mail_folder} instead of being sent.")

    def _client_lines(self, client: Client, secret: str | None) -> None:
        if client.is_active():
            state = "active"
        else:
            state = self.style.WARNING("DISABLED: the token service refuses it")
        scopes = ", ".join(client.scope_names()) or "none"
        self.stdout.write(f"  {client.name} ({client.environment}, {state})")
        self.stdout.write(f"    client_id {client.client_id}   scopes: {scopes}")
        if secret:
            self.stdout.write(f"    secret    {secret}")

    def _try_it(self, secrets: list[tuple[Client, str]]) -> None:
        client, secret = next(((c, s) for c, s in secrets if c.name == "Local dev app"), secrets[0])
        issuer = settings.KEYWARD_ISSUER
        self.stdout.write("")
        self.stdout.write(f"Try the token service with {client.name} (docs/token-service.md):")
        self.stdout.write(
            f"  TOKEN=$(curl -s -u '{client.client_id}:{secret}' "
            f"-d grant_type=client_credentials {issuer}/token-srv/token "
            "| python3 -c 'import sys, json; print(json.load(sys.stdin)[\"access_token\"])')"
        )
        self.stdout.write("  # offline (JWT + JWKS): a revoked token still passes until it expires")
        self.stdout.write(
            f'  curl -H "Authorization: Bearer $TOKEN" {issuer}/api/protected-resource'
        )
        self.stdout.write("  # revoke the token, then call both again")
        self.stdout.write(
            f"  curl -u '{client.client_id}:{secret}' -d token=$TOKEN {issuer}/token-srv/revoke"
        )
        self.stdout.write("  # online (introspection): a revoked token is refused at once")
        self.stdout.write(
            f'  curl -H "Authorization: Bearer $TOKEN" {issuer}/api/protected-resource/online'
        )


def _mail_folder() -> str:
    """Where Django's file-based email backend writes, shown relative to the current folder
    when inside it (bin/dev: `var/mail/`); empty when mail goes anywhere else."""
    if settings.EMAIL_BACKEND != "django.core.mail.backends.filebased.EmailBackend":
        return ""
    folder = Path(settings.EMAIL_FILE_PATH).resolve()
    with contextlib.suppress(ValueError):
        folder = folder.relative_to(Path.cwd())
    return f"{folder}{os.sep}"


def _demo_introspection(client: Client, scopes: str, at) -> TokenEventRecord:
    """The demo gateway introspected an active token of `client`."""
    return TokenEventRecord(
        id=uuid.uuid4().hex,
        occurred_at=at.timestamp(),
        endpoint="introspect",
        client_id=DEMO_GATEWAY,
        client_known=True,
        outcome="success",
        reason="ok",
        source_ip="192.0.2.20",
        status_code=200,
        scopes_granted=scopes,
        subject_client_id=client.client_id,
    )


def _demo_event(client: Client, scopes: str, source: str, at) -> TokenEventRecord:
    return TokenEventRecord(
        id=uuid.uuid4().hex,
        occurred_at=at.timestamp(),
        endpoint="token",
        client_id=client.client_id,
        client_known=True,
        outcome="success",
        reason="ok",
        source_ip="192.0.2.10",
        status_code=200,
        scopes_requested=scopes,
        scopes_granted=scopes,
        source=source,
    )
