"""The detection catalogue: one declarative definition per rule, one evaluation function each.

Modelled on Elastic's detection-rules and Sigma: a rule states its signal, its threshold,
window and minimum count, a plain-words explanation (a template filled from the alert's
evidence), the remediation and the known false positives. The defaults below are what
docs/alerts.md lists; admins override them per environment (DetectionSetting).

Evaluation reads only recent raw events, judged by their own time (`occurred_at`), never
older than RECENT_HORIZON: a backfill of old logs can feed baselines but never raises an
alert. Rules that need per-minute/per-hour rollups (new network, volume anomaly, dormant
client) are in the catalogue with `evaluate=None` until the rollups exist.
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Count, Max, Min, Q
from django.db.models.functions import TruncMinute

from analytics.models import TokenEvent
from clients.models import Client, ScopeGrant

from .models import ENVIRONMENT_ANY, DetectionSetting, Severity

Reason = TokenEvent.Reason

# Detections never look further back than this, whatever an admin sets.
RECENT_HORIZON = timedelta(hours=1)
# Events stamped a little in the future (another service's clock) still count.
CLOCK_SKEW = timedelta(minutes=1)
SAMPLE_EVENTS = 5


@dataclass(frozen=True)
class Subject:
    """Who an alert is about: a client_id (as presented), a source network, or both."""

    client_id: str = ""
    network: str = ""

    @property
    def key(self) -> str:
        parts = []
        if self.client_id:
            parts.append(f"client:{self.client_id}")
        if self.network:
            parts.append(f"net:{self.network}")
        return "|".join(parts)


@dataclass(frozen=True)
class Config:
    """A rule's effective settings for one environment."""

    enabled: bool
    threshold: int
    window_seconds: int
    minimum: int
    severity: str

    @property
    def window(self) -> timedelta:
        return min(timedelta(seconds=self.window_seconds), RECENT_HORIZON)


@dataclass
class Finding:
    """One subject over the threshold in one evaluation."""

    subject: Subject
    first_seen_at: datetime
    last_seen_at: datetime
    observed: int  # the number compared with the threshold
    events: int  # matching events, compared with the minimum
    evidence: dict = field(default_factory=dict)
    sample_filter: Q = field(default_factory=Q)


@dataclass(frozen=True)
class Detection:
    rule: str
    title: str
    signal: str
    subject: str
    severity: str
    threshold: int
    window_seconds: int
    minimum: int
    explanation: str
    remediation: str
    false_positives: str
    evaluate: Callable[..., list[Finding]] | None = None
    needs: str = ""  # what it waits for when evaluate is None

    def defaults(self) -> Config:
        return Config(True, self.threshold, self.window_seconds, self.minimum, self.severity)

    def explain(self, evidence: dict) -> str:
        """The explanation with the evidence's numbers filled in ("?" for a missing one)."""
        return self.explanation.format_map(_Missing(evidence))


class _Missing(dict):
    def __missing__(self, key: str) -> str:
        return "?"


# --- Helpers ---------------------------------------------------------------------------


def network_of(address: str) -> str:
    """The address's /24 (IPv4) or /64 (IPv6), where one operator's machines usually sit."""
    ip = ipaddress.ip_address(address)
    prefix = 24 if ip.version == 4 else 64
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


def host_network(address: str) -> str:
    ip = ipaddress.ip_address(address)
    return f"{ip}/{ip.max_prefixlen}"


def _recent(config: Config, now: datetime, **filters) -> Q:
    return Q(occurred_at__gt=now - config.window, occurred_at__lte=now + CLOCK_SKEW, **filters)


def _iso(value: datetime) -> str:
    return value.isoformat()


def _minutes(config: Config) -> int:
    return int(config.window.total_seconds() // 60)


# --- Evaluations (raw recent events) ------------------------------------------------------


def brute_force(config: Config, now: datetime) -> list[Finding]:
    """Wrong secrets for one existing client_id, from any number of addresses."""
    where = _recent(config, now, reason=Reason.BAD_SECRET)
    rows = (
        TokenEvent.objects.filter(where)
        .values("client_id")
        .annotate(
            n=Count("id"),
            addresses=Count("source_ip", distinct=True),
            first=Min("occurred_at"),
            last=Max("occurred_at"),
        )
        .filter(n__gte=max(config.threshold, config.minimum))  # observed and events alike
    )
    return [
        Finding(
            subject=Subject(client_id=row["client_id"]),
            first_seen_at=row["first"],
            last_seen_at=row["last"],
            observed=row["n"],
            events=row["n"],
            evidence={"failures": row["n"], "addresses": row["addresses"]},
            sample_filter=where & Q(client_id=row["client_id"]),
        )
        for row in rows
    ]


def credential_stuffing(config: Config, now: datetime) -> list[Finding]:
    """One address, or one /24 (/64), failing against many client_ids.

    1. Count failures per (address, client_id, reason) in the database.
    2. Per address and per network: distinct client_ids tried, how many were unknown.
    3. An address over the threshold is the subject; a network is only when it spreads the
       attempts over several addresses none of which crossed it alone.
    """
    where = _recent(
        config, now, reason__in=[Reason.BAD_SECRET, Reason.UNKNOWN_CLIENT], source_ip__isnull=False
    )
    rows = (
        TokenEvent.objects.filter(where)
        .values("source_ip", "client_id", "reason")
        .annotate(n=Count("id"), first=Min("occurred_at"), last=Max("occurred_at"))
    )
    groups: dict[str, _SourceGroup] = defaultdict(_SourceGroup)
    for row in rows:
        address = row["source_ip"]
        groups[host_network(address)].add(row, address)
        groups[network_of(address)].add(row, address)
    findings, fired_addresses = [], set()
    for subject_net, group in sorted(
        groups.items(), key=lambda item: item[0].endswith(("/32", "/128")), reverse=True
    ):
        if len(group.client_ids) < config.threshold or group.failures < config.minimum:
            continue
        is_host = subject_net.endswith(("/32", "/128"))
        if not is_host and (len(group.addresses) < 2 or group.addresses & fired_addresses):
            continue
        if is_host:
            fired_addresses |= group.addresses
        findings.append(
            Finding(
                subject=Subject(network=subject_net),
                first_seen_at=group.first,
                last_seen_at=group.last,
                observed=len(group.client_ids),
                events=group.failures,
                evidence={
                    "client_ids": len(group.client_ids),
                    "unknown_client_ids": len(group.unknown),
                    "failures": group.failures,
                    "addresses": len(group.addresses),
                    "examples": sorted(group.client_ids)[:5],
                },
                sample_filter=where & Q(source_ip__in=sorted(group.addresses)),
            )
        )
    return findings


@dataclass
class _SourceGroup:
    client_ids: set = field(default_factory=set)
    unknown: set = field(default_factory=set)
    addresses: set = field(default_factory=set)
    failures: int = 0
    first: datetime | None = None
    last: datetime | None = None

    def add(self, row: dict, address: str) -> None:
        self.client_ids.add(row["client_id"])
        if row["reason"] == Reason.UNKNOWN_CLIENT:
            self.unknown.add(row["client_id"])
        self.addresses.add(address)
        self.failures += row["n"]
        self.first = min(filter(None, [self.first, row["first"]]))
        self.last = max(filter(None, [self.last, row["last"]]))


def allowlist_violation(config: Config, now: datetime) -> list[Finding]:
    """Attempts refused because the address is outside the client's allowed networks."""
    where = _recent(config, now, reason=Reason.IP_NOT_ALLOWED, source_ip__isnull=False)
    rows = (
        TokenEvent.objects.filter(where)
        .values("client_id", "source_ip")
        .annotate(n=Count("id"), first=Min("occurred_at"), last=Max("occurred_at"))
    )
    per_subject: dict[Subject, dict] = {}
    for row in rows:
        subject = Subject(client_id=row["client_id"], network=network_of(row["source_ip"]))
        acc = per_subject.setdefault(
            subject, {"n": 0, "first": row["first"], "last": row["last"], "addresses": set()}
        )
        acc["n"] += row["n"]
        acc["first"], acc["last"] = min(acc["first"], row["first"]), max(acc["last"], row["last"])
        acc["addresses"].add(row["source_ip"])
    return [
        Finding(
            subject=subject,
            first_seen_at=acc["first"],
            last_seen_at=acc["last"],
            observed=acc["n"],
            events=acc["n"],
            evidence={"attempts": acc["n"], "addresses": sorted(acc["addresses"])[:10]},
            sample_filter=where
            & Q(client_id=subject.client_id, source_ip__in=sorted(acc["addresses"])),
        )
        for subject, acc in per_subject.items()
        if acc["n"] >= max(config.threshold, config.minimum)
    ]


RETIRED_REASONS = [Reason.REVOKED_SECRET, Reason.EXPIRED_SECRET, Reason.DISABLED_CLIENT]


def retired_credential(config: Config, now: datetime) -> list[Finding]:
    """A revoked or expired secret presented, or a disabled client asking for tokens."""
    where = _recent(config, now, reason__in=RETIRED_REASONS)
    rows = (
        TokenEvent.objects.filter(where)
        .values("client_id", "reason")
        .annotate(
            n=Count("id"),
            addresses=Count("source_ip", distinct=True),
            first=Min("occurred_at"),
            last=Max("occurred_at"),
        )
    )
    per_client: dict[str, dict] = {}
    for row in rows:
        acc = per_client.setdefault(
            row["client_id"], {"n": 0, "first": row["first"], "last": row["last"], "reasons": {}}
        )
        acc["n"] += row["n"]
        acc["first"], acc["last"] = min(acc["first"], row["first"]), max(acc["last"], row["last"])
        acc["reasons"][row["reason"]] = row["n"]
    secret_ids = _secret_ids(where, per_client)
    return [
        Finding(
            subject=Subject(client_id=client_id),
            first_seen_at=acc["first"],
            last_seen_at=acc["last"],
            observed=acc["n"],
            events=acc["n"],
            evidence={
                "attempts": acc["n"],
                "reasons": acc["reasons"],
                "what": ", ".join(
                    f"{n} × {Reason(r).label.lower()}" for r, n in sorted(acc["reasons"].items())
                ),
                "secret_ids": secret_ids.get(client_id, []),
            },
            sample_filter=where & Q(client_id=client_id),
        )
        for client_id, acc in per_client.items()
        if acc["n"] >= max(config.threshold, config.minimum)
    ]


def _secret_ids(where: Q, per_client: dict) -> dict[str, list[int]]:
    rows = (
        TokenEvent.objects.filter(where, client_id__in=list(per_client), secret_id__isnull=False)
        .values_list("client_id", "secret_id")
        .order_by()  # the model's default ordering would join the DISTINCT
        .distinct()
    )
    found: dict[str, list[int]] = defaultdict(list)
    for client_id, secret_id in rows:
        found[client_id].append(secret_id)
    return found


def scope_probing(config: Config, now: datetime) -> list[Finding]:
    """One client asking for several distinct scopes it does not hold.

    The scopes not held are the requested ones minus the client's current grants (for a
    client Keyward knows), else every scope named in its refused requests.
    """
    where = _recent(config, now, reason=Reason.INVALID_SCOPE)
    rows = (
        TokenEvent.objects.filter(where)
        .values("client_id", "scopes_requested")
        .annotate(n=Count("id"), first=Min("occurred_at"), last=Max("occurred_at"))
    )
    per_client: dict[str, dict] = {}
    for row in rows:
        acc = per_client.setdefault(
            row["client_id"], {"n": 0, "first": row["first"], "last": row["last"], "scopes": set()}
        )
        acc["n"] += row["n"]
        acc["first"], acc["last"] = min(acc["first"], row["first"]), max(acc["last"], row["last"])
        acc["scopes"].update(row["scopes_requested"].split())
    granted = _grants(per_client)
    findings = []
    for client_id, acc in per_client.items():
        not_held = sorted(acc["scopes"] - granted.get(client_id, set()))
        if len(not_held) < config.threshold or acc["n"] < config.minimum:
            continue
        findings.append(
            Finding(
                subject=Subject(client_id=client_id),
                first_seen_at=acc["first"],
                last_seen_at=acc["last"],
                observed=len(not_held),
                events=acc["n"],
                evidence={
                    "distinct_scopes": len(not_held),
                    "scopes": not_held[:20],
                    "refusals": acc["n"],
                },
                sample_filter=where & Q(client_id=client_id),
            )
        )
    return findings


def _grants(per_client: dict) -> dict[str, set[str]]:
    rows = ScopeGrant.objects.filter(client__client_id__in=list(per_client)).values_list(
        "client__client_id", "scope__name"
    )
    granted: dict[str, set[str]] = defaultdict(set)
    for client_id, name in rows:
        granted[client_id].add(name)
    return granted


def sustained_rate_limiting(config: Config, now: datetime) -> list[Finding]:
    """Rate-limited requests in at least `threshold` distinct minutes of the window.

    A registered client is the subject of its own limited requests; requests that name no
    known client (the per-address failure limit) are grouped by address.
    """
    where = _recent(config, now, reason=Reason.RATE_LIMITED)
    rows = (
        TokenEvent.objects.filter(where)
        .annotate(minute=TruncMinute("occurred_at"))
        .values("client_id", "client_known", "source_ip", "minute")
        .annotate(n=Count("id"), first=Min("occurred_at"), last=Max("occurred_at"))
    )
    per_subject: dict[Subject, dict] = {}
    for row in rows:
        if row["client_known"]:
            subject = Subject(client_id=row["client_id"])
        elif row["source_ip"]:
            subject = Subject(network=host_network(row["source_ip"]))
        else:
            continue
        acc = per_subject.setdefault(
            subject, {"n": 0, "first": row["first"], "last": row["last"], "minutes": set()}
        )
        acc["n"] += row["n"]
        acc["first"], acc["last"] = min(acc["first"], row["first"]), max(acc["last"], row["last"])
        acc["minutes"].add(row["minute"])
    findings = []
    for subject, acc in per_subject.items():
        if len(acc["minutes"]) < config.threshold or acc["n"] < config.minimum:
            continue
        sample = (
            Q(client_id=subject.client_id)
            if subject.client_id
            else Q(source_ip=subject.network.split("/")[0], client_known=False)
        )
        findings.append(
            Finding(
                subject=subject,
                first_seen_at=acc["first"],
                last_seen_at=acc["last"],
                observed=len(acc["minutes"]),
                events=acc["n"],
                evidence={
                    "minutes": len(acc["minutes"]),
                    "window_minutes": _minutes(config),
                    "limited_requests": acc["n"],
                },
                sample_filter=where & sample,
            )
        )
    return findings


# --- The catalogue ---------------------------------------------------------------------

ROLLUPS = "per-minute and per-hour rollups (analytics)"

CATALOGUE: tuple[Detection, ...] = (
    Detection(
        rule="brute_force",
        title="Brute force on one client",
        signal="Failed authentications (wrong secret) for one existing client_id.",
        subject="client",
        severity=Severity.HIGH,
        threshold=20,
        window_seconds=300,
        minimum=1,
        explanation=(
            "{failures} requests presented a wrong secret for this client within {window}, "
            "from {addresses} address(es); the threshold is {threshold}."
        ),
        remediation=(
            "If the client's owner is not mid-deployment, block the offending networks for "
            "this client and rotate its secret; if the secret may have leaked, rotate with no "
            "grace period."
        ),
        false_positives=(
            "A deployment rolled out with an old secret retries in a loop; the addresses are "
            "then the client's own."
        ),
        evaluate=brute_force,
    ),
    Detection(
        rule="credential_stuffing",
        title="Client-id enumeration / credential stuffing",
        signal="One address, /24 or /64 failing against many client_ids or unknown ones.",
        subject="source",
        severity=Severity.HIGH,
        threshold=10,
        window_seconds=600,
        minimum=10,
        explanation=(
            "{client_ids} different client_ids ({unknown_client_ids} unknown) failed from "
            "this source within {window}, {failures} failures over {addresses} address(es); "
            "the threshold is {threshold} client_ids."
        ),
        remediation=(
            "Block the source network at the edge (firewall, WAF). Check whether any of the "
            "named clients then authenticated from it: their secrets would be compromised."
        ),
        false_positives=(
            "A shared NAT or proxy in front of many misconfigured services; a test harness "
            "that registers and deletes clients."
        ),
        evaluate=credential_stuffing,
    ),
    Detection(
        rule="new_network",
        title="New network for a client",
        signal="Successful tokens from a /24 (/48) not seen for the client in 30 days.",
        subject="client+network",
        severity=Severity.MEDIUM,
        threshold=1,
        window_seconds=3600,
        minimum=1,
        explanation=(
            "This client got {successes} token(s) from {network}, a network it has not used "
            "in the last 30 days; it learnt its networks for {learning_days} days."
        ),
        remediation=(
            "Ask the owner whether the client moved. If not, block the network for this client "
            "and rotate its secret at once."
        ),
        false_positives="Cloud autoscaling into a new region; a change of egress NAT.",
        needs=ROLLUPS,
    ),
    Detection(
        rule="allowlist_violation",
        title="Allowlist violation",
        signal="Requests refused because the source is outside the client's allowed networks.",
        subject="client+network",
        severity=Severity.MEDIUM,
        threshold=1,
        window_seconds=600,
        minimum=1,
        explanation=(
            "{attempts} request(s) for this client came from outside its allowed networks "
            "within {window}; the threshold is {threshold}."
        ),
        remediation=(
            "If the caller holds the right secret, the secret has left its home: rotate it. "
            "If the client legitimately moved, add the network to its allowlist."
        ),
        false_positives="A planned move to new infrastructure before the allowlist was updated.",
        evaluate=allowlist_violation,
    ),
    Detection(
        rule="retired_credential",
        title="Retired credential in use",
        signal="A revoked or expired secret presented, or a disabled client asking for tokens.",
        subject="client",
        severity=Severity.HIGH,
        threshold=1,
        window_seconds=900,
        minimum=1,
        explanation=(
            "This client was tried with credentials that are no longer valid within {window}: "
            "{what}. A rotated secret reused after its grace period is the classic sign of a "
            "leaked credential."
        ),
        remediation=(
            "Find who still holds the old secret (the addresses below). If it is not one of "
            "the client's own deployments, treat the secret as leaked: rotate, and block the "
            "network."
        ),
        false_positives="A forgotten job or replica that was not updated after a rotation.",
        evaluate=retired_credential,
    ),
    Detection(
        rule="scope_probing",
        title="Scope probing",
        signal="One client requesting several distinct scopes it does not hold.",
        subject="client",
        severity=Severity.MEDIUM,
        threshold=3,
        window_seconds=600,
        minimum=3,
        explanation=(
            "This client asked for {distinct_scopes} different scopes it does not hold within "
            "{window} ({refusals} refused requests); the threshold is {threshold}."
        ),
        remediation=(
            "A working client asks for the same scopes every time. Ask the owner; if nobody "
            "changed the client, someone else holds its secret: rotate it."
        ),
        false_positives="A release that expects a grant nobody has made yet.",
        evaluate=scope_probing,
    ),
    Detection(
        rule="volume_anomaly",
        title="Volume anomaly",
        signal=(
            "Tokens per hour far from the client's own baseline: median and MAD over the same "
            "hour of week across the last 1–4 weeks."
        ),
        subject="client",
        severity=Severity.MEDIUM,
        threshold=6,
        window_seconds=3600,
        minimum=50,
        explanation=(
            "This client got {observed} tokens in the last hour against a usual {median} "
            "(MAD {mad}) for this hour of the week; that is {score} MADs away, the threshold "
            "is {threshold}."
        ),
        remediation="Check for a new consumer or a leaked secret used from elsewhere.",
        false_positives="Launches, batch jobs, holidays; the baseline needs 1–4 weeks.",
        needs=ROLLUPS,
    ),
    Detection(
        rule="token_not_cached",
        title="Consumer not caching tokens",
        signal=(
            "Special case of the volume anomaly: far more tokens per token lifetime than the "
            "client's usual number of replicas."
        ),
        subject="client",
        severity=Severity.LOW,
        threshold=10,
        window_seconds=3600,
        minimum=50,
        explanation=(
            "This client got {per_lifetime} tokens per token lifetime ({lifetime} s) against "
            "its usual {replicas} replicas: a consumer asks for a new token on every call."
        ),
        remediation=(
            "Cache the token until shortly before it expires (every OAuth library can); it "
            "cuts load on Keyward and latency for the caller."
        ),
        false_positives="A scale-out to many more replicas.",
        needs=ROLLUPS,
    ),
    Detection(
        rule="dormant_client",
        title="Dormant client waking",
        signal="The first successful token after a long idle period.",
        subject="client",
        severity=Severity.MEDIUM,
        threshold=30,
        window_seconds=3600,
        minimum=1,
        explanation=(
            "This client got a token after {idle_days} days without one (threshold "
            "{threshold} days)."
        ),
        remediation=(
            "Ask the owner whether the service was revived on purpose; dormant credentials are "
            "a favourite of attackers. Disable clients nobody claims."
        ),
        false_positives="Quarterly or yearly jobs.",
        needs=ROLLUPS,
    ),
    Detection(
        rule="sustained_rate_limiting",
        title="Sustained rate limiting",
        signal="A client or an address rate limited in many distinct minutes.",
        subject="client or source",
        severity=Severity.LOW,
        threshold=5,
        window_seconds=600,
        minimum=1,
        explanation=(
            "Requests were rate limited in {minutes} of the last {window_minutes} minutes "
            "({limited_requests} requests refused); the threshold is {threshold} minutes."
        ),
        remediation=(
            "A client: cache tokens, or raise its limit if the volume is real. An address: "
            "block it at the edge."
        ),
        false_positives="A retry storm after an outage of the caller.",
        evaluate=sustained_rate_limiting,
    ),
)
DETECTIONS: dict[str, Detection] = {detection.rule: detection for detection in CATALOGUE}


def detection_get(rule: str) -> Detection | None:
    return DETECTIONS.get(rule)


def overrides_load() -> dict[tuple[str, str], DetectionSetting]:
    return {(row.rule, row.environment): row for row in DetectionSetting.objects.all()}


def config_for(
    detection: Detection, environment: str, overrides: dict[tuple[str, str], DetectionSetting]
) -> Config:
    """The environment's row, else the all-environments row, else the catalogue default."""
    row = overrides.get((detection.rule, environment)) or overrides.get(
        (detection.rule, ENVIRONMENT_ANY)
    )
    if row is None:
        return detection.defaults()
    return Config(row.enabled, row.threshold, row.window_seconds, row.minimum, row.severity)


def environments_of(client_ids: Iterable[str]) -> dict[str, Client]:
    ids = [client_id for client_id in set(client_ids) if client_id]
    return {client.client_id: client for client in Client.objects.filter(client_id__in=ids)}
