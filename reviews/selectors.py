"""Reads for the scope review: usage per grant from the ScopeUsageHour rollup (every
source), when resource servers last exercised it (ScopeExerciseHour: introspection answers
and the kit's usage reports), and the findings list."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Case, IntegerField, Max, Q, Sum, Value, When
from django.utils import timezone

from analytics.models import ScopeExerciseHour, ScopeUsageHour
from clients.models import Client, Scope, ScopeGrant

from .models import Finding

RECENCY_BANDS = (
    # (label, at most this old); the matrix colours by band and prints the label too.
    ("this week", timedelta(days=7)),
    ("30 days", timedelta(days=30)),
    ("90 days", timedelta(days=90)),
)


@dataclass(frozen=True)
class GrantUsage:
    grant: ScopeGrant
    last_requested: datetime | None  # start of the hour of the last request
    last_issued: datetime | None
    requested_30: int
    issued_30: int
    requested_90: int
    issued_90: int
    # When a resource server last checked a token of this client carrying the scope (start
    # of the hour), and how often in 30 days. `exercise_reported`: some resource server
    # reports this scope at all; without one, no exercise means "not reported", not "never".
    last_exercised: datetime | None = None
    exercised_30: int = 0
    exercise_reported: bool = False

    @property
    def last_used(self) -> datetime | None:
        moments = [m for m in (self.last_requested, self.last_issued) if m is not None]
        return max(moments) if moments else None

    def recency(self, now: datetime | None = None) -> str:
        """'this week', '30 days', '90 days', 'older' or 'never'."""
        if self.last_used is None:
            return "never"
        age = (now or timezone.now()) - self.last_used
        return next((label for label, limit in RECENCY_BANDS if age <= limit), "older")

    @property
    def recency_class(self) -> str:
        return "recency-" + self.recency().replace(" ", "-")

    @property
    def exercised_label(self) -> str:
        """'never' or 'not reported' when there is no exercise to show."""
        return "never" if self.exercise_reported else "not reported"

    def unused_for(self, days: int, now: datetime) -> bool:
        """No use in `days` days, counted only once the grant is that old."""
        since = now - timedelta(days=days)
        old_enough = self.grant.granted_at <= since
        return old_enough and (self.last_used is None or self.last_used < since)

    def evidence(self) -> dict:
        return {
            "granted_at": _iso(self.grant.granted_at),
            "last_requested": _iso(self.last_requested),
            "last_issued": _iso(self.last_issued),
            "requested_30d": self.requested_30,
            "issued_30d": self.issued_30,
            "requested_90d": self.requested_90,
            "issued_90d": self.issued_90,
        }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _since(field: str, start: datetime) -> Sum:
    return Sum(
        Case(When(bucket__gte=start, then=field), default=Value(0)), output_field=IntegerField()
    )


def _last(field: str) -> Max:
    return Max(Case(When(**{f"{field}__gt": 0}, then="bucket")))


def usage_by_pair(
    *, client_ids: list[str] | None = None, scopes: list[str] | None = None, now=None
) -> dict[tuple[str, str], dict]:
    """(client_id, scope) → last requested/issued and 30/90-day counts, all sources summed."""
    now = now or timezone.now()
    rows = ScopeUsageHour.objects.all()
    if client_ids is not None:
        rows = rows.filter(client_id__in=client_ids)
    if scopes is not None:
        rows = rows.filter(scope__in=scopes)
    rows = rows.values("client_id", "scope").annotate(
        last_requested=_last("requested"),
        last_issued=_last("issued"),
        requested_30=_since("requested", now - timedelta(days=30)),
        issued_30=_since("issued", now - timedelta(days=30)),
        requested_90=_since("requested", now - timedelta(days=90)),
        issued_90=_since("issued", now - timedelta(days=90)),
    )
    return {(row.pop("client_id"), row.pop("scope")): row for row in rows}


EMPTY_USE = {
    "last_requested": None,
    "last_issued": None,
    "requested_30": 0,
    "issued_30": 0,
    "requested_90": 0,
    "issued_90": 0,
}


def exercise_by_pair(
    *, client_ids: list[str], scopes: list[str], now=None
) -> dict[tuple[str, str], dict]:
    """(client_id, scope) → last exercised and 30-day count, every resource server summed."""
    now = now or timezone.now()
    rows = (
        ScopeExerciseHour.objects.filter(client_id__in=client_ids, scope__in=scopes)
        .values("client_id", "scope")
        .annotate(
            last_exercised=Max("bucket"),
            exercised_30=_since("count", now - timedelta(days=30)),
        )
    )
    return {(row.pop("client_id"), row.pop("scope")): row for row in rows}


def scopes_reported(*, scopes: list[str]) -> set[str]:
    """The scopes some resource server reports exercise of (for any client)."""
    rows = ScopeExerciseHour.objects.filter(scope__in=scopes).values_list("scope", flat=True)
    return set(rows.distinct())


def grants_usage(grants, *, now=None) -> list[GrantUsage]:
    """Usage of each grant (a ScopeGrant queryset or list), in the order given."""
    grants = list(grants.select_related("client", "scope"))
    pairs = {
        "client_ids": sorted({g.client.client_id for g in grants}),
        "scopes": sorted({g.scope.name for g in grants}),
    }
    uses = usage_by_pair(**pairs, now=now)
    exercises = exercise_by_pair(**pairs, now=now)
    reported = scopes_reported(scopes=pairs["scopes"])
    usages = []
    for grant in grants:
        pair = (grant.client.client_id, grant.scope.name)
        usages.append(
            GrantUsage(
                grant,
                **uses.get(pair, EMPTY_USE),
                **exercises.get(pair, {}),
                exercise_reported=grant.scope.name in reported,
            )
        )
    return usages


def client_grants_usage(client: Client, *, now=None) -> list[GrantUsage]:
    return grants_usage(ScopeGrant.objects.filter(client=client).order_by("scope__name"), now=now)


def scope_grants_usage(scope: Scope, *, now=None) -> list[GrantUsage]:
    return grants_usage(ScopeGrant.objects.filter(scope=scope).order_by("client__name"), now=now)


@dataclass(frozen=True)
class Matrix:
    clients: list[Client]
    scopes: list[Scope]
    cells: dict[tuple[int, int], GrantUsage]  # (client pk, scope pk) → usage of the grant

    def rows(self):
        for client in self.clients:
            yield client, [self.cells.get((client.pk, scope.pk)) for scope in self.scopes]


def grants_filtered(
    *,
    environment: str = "",
    team: str = "",
    sensitive_only: bool = False,
    client_id: str = "",
    scope: str = "",
):
    grants = ScopeGrant.objects.all()
    if environment:
        grants = grants.filter(client__environment=environment)
    if team:
        grants = grants.filter(scope__owning_team=team)
    if sensitive_only:
        grants = grants.filter(scope__sensitive=True)
    if client_id:
        grants = grants.filter(client__client_id=client_id)
    if scope:
        grants = grants.filter(scope__name=scope)
    return grants.order_by("client__name", "scope__name")


def usage_matrix(**filters) -> Matrix:
    """Clients × scopes: each cell the grant's usage, None where the client holds no grant.
    Filters as grants_filtered."""
    usages = grants_usage(grants_filtered(**filters))
    clients = {u.grant.client.pk: u.grant.client for u in usages}
    scopes = {u.grant.scope.pk: u.grant.scope for u in usages}
    return Matrix(
        clients=sorted(clients.values(), key=lambda c: c.name.lower()),
        scopes=sorted(scopes.values(), key=lambda s: s.name),
        cells={(u.grant.client.pk, u.grant.scope.pk): u for u in usages},
    )


def scope_teams() -> list[str]:
    return sorted(set(Scope.objects.exclude(owning_team="").values_list("owning_team", flat=True)))


def scope_last_used(*, scopes: list[str]) -> dict[str, datetime]:
    """Scope → the start of the last hour anyone requested or was issued it (any source)."""
    rows = (
        ScopeUsageHour.objects.filter(scope__in=scopes)
        .filter(Q(requested__gt=0) | Q(issued__gt=0))
        .values("scope")
        .annotate(last=Max("bucket"))
    )
    return {row["scope"]: row["last"] for row in rows}


def findings_filtered(*, status: str = "", kind: str = "", client_id: str = "", scope: str = ""):
    findings = Finding.objects.all()
    if status:
        findings = findings.filter(status=status)
    if kind:
        findings = findings.filter(kind=kind)
    if client_id:
        findings = findings.filter(client_id=client_id)
    if scope:
        findings = findings.filter(scope=scope)
    return findings
