"""manage.py scope_review: findings, apply a least-privilege recommendation, roll one back.

    scope_review findings [--json]          run the scan, list open findings
    scope_review apply CLIENT_ID [--dry-run] remove the client's unused scopes
    scope_review rollback CHANGE_ID          put back what a change removed (30 days)
    scope_review campaigns [--run]           list review campaigns; --run first closes
                                             those past their deadline and sends reminders

Bad input gets one line on stderr and exit status 2.
"""

from __future__ import annotations

import json
import uuid

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Count, Q

from audit.services import Actor
from clients.models import Client
from reviews import campaigns, services
from reviews.models import Finding, GrantChange, ReviewCampaign
from reviews.recommendations import recommendation_for
from reviews.scan import findings_scan


def _bad(message: str) -> CommandError:
    return CommandError(message, returncode=2)


class Command(BaseCommand):
    help = "Scope review from the command line: findings, apply, rollback."

    def add_arguments(self, parser) -> None:
        commands = parser.add_subparsers(dest="command", required=True)
        findings = commands.add_parser("findings", help="Scan now and list open findings.")
        findings.add_argument("--json", action="store_true", help="One JSON document.")
        apply = commands.add_parser("apply", help="Remove a client's unused scopes.")
        apply.add_argument("client_id")
        apply.add_argument("--dry-run", action="store_true", help="Show the diff only.")
        rollback = commands.add_parser("rollback", help="Undo an applied change.")
        rollback.add_argument("change_id")
        listing = commands.add_parser("campaigns", help="List review campaigns.")
        listing.add_argument(
            "--run", action="store_true", help="First do the periodic job (deadlines, reminders)."
        )

    def handle(self, *args, **options) -> None:
        handler = {
            "findings": self._findings,
            "apply": self._apply,
            "rollback": self._rollback,
            "campaigns": self._campaigns,
        }
        handler[options["command"]](options)

    def _findings(self, options) -> None:
        findings_scan()
        rows = Finding.objects.filter(status=Finding.Status.OPEN).order_by("kind", "client_name")
        if options["json"]:
            self.stdout.write(json.dumps([_as_dict(f) for f in rows], indent=2))
            return
        for finding in rows:
            subject = " ".join(p for p in (finding.client_name, finding.scope) if p)
            self.stdout.write(f"{finding.pk}\t{finding.kind}\t{subject}")
        self.stdout.write(f"{len(rows)} open finding(s)")

    def _apply(self, options) -> None:
        client = Client.objects.filter(client_id=options["client_id"]).first()
        if client is None:
            raise _bad(f"No client with id {options['client_id']!r}.")
        recommendation = recommendation_for(client)
        for usage in recommendation.remove:
            last = usage.last_used.isoformat() if usage.last_used else "never"
            self.stdout.write(f"- {usage.grant.scope.name}\t(last used {last})")
        for usage in recommendation.keep:
            self.stdout.write(f"  {usage.grant.scope.name}")
        if options["dry_run"] or recommendation.is_empty():
            self.stdout.write(
                "dry run: nothing changed" if options["dry_run"] else "nothing to remove"
            )
            return
        change = services.recommendation_apply(actor=Actor.cli(), client=client)
        self.stdout.write(f"applied change {change.pk}")

    def _rollback(self, options) -> None:
        try:
            change_id = uuid.UUID(options["change_id"])
        except ValueError:
            raise _bad(f"{options['change_id']!r} is not a change id (a UUID).") from None
        change = GrantChange.objects.filter(pk=change_id).first()
        if change is None:
            raise _bad(f"No change with id {change_id}.")
        try:
            services.change_rollback(actor=Actor.cli(), change=change)
        except services.RollbackRefused as exc:
            raise _bad(str(exc)) from exc
        self.stdout.write(f"restored {', '.join(change.scope_names())} on {change.client_name}")

    def _campaigns(self, options) -> None:
        if options["run"]:
            counts = campaigns.campaigns_run()
            self.stdout.write(f"closed {counts['closed']}, reminders sent {counts['reminded']}")
        pending = Q(items__decision="", items__grant_gone_at__isnull=True)
        rows = ReviewCampaign.objects.annotate(
            total=Count("items"), pending=Count("items", filter=pending)
        )
        for campaign in rows:
            self.stdout.write(
                f"{campaign.pk}\t{campaign.status}\t{campaign.deadline.isoformat()}\t"
                f"{campaign.pending}/{campaign.total} pending\t{campaign.name}"
            )
        self.stdout.write(f"{len(rows)} campaign(s)")


def _as_dict(finding: Finding) -> dict:
    return {
        "id": finding.pk,
        "kind": finding.kind,
        "client_id": finding.client_id,
        "client_name": finding.client_name,
        "scope": finding.scope,
        "status": finding.status,
        "opened_at": finding.opened_at.isoformat(),
        "evidence": finding.evidence,
    }
