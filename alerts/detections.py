"""The detection catalogue: one declarative definition per rule, one evaluation function each.

Modelled on Elastic's detection-rules and Sigma: a rule states its signal, its threshold,
window and minimum count, a plain-words explanation (a template filled from the alert's
evidence), the remediation and the known false positives. The defaults below are what
docs/alerts.md lists; admins override them per environment (DetectionSetting).

Evaluation reads only recent activity, judged by the events' own time (`occurred_at`),
never older than RECENT_HORIZON: a backfill of old logs never raises an alert. What is
usual for a client (its networks, its volume at this time of the week, its last success)
comes from the rollups (analytics.models), which backfilled history feeds like live
traffic, so it is the baseline; their size does not grow with the number of events.
"""

from __future__ import annotations

import ipaddress
import math
import statistics
import string
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Count, Max, Min, OuterRef, Q, Subquery, Sum
from django.db.models.functions import TruncMinute

from analytics.models import SourceNetwork, TokenEvent, TrafficHour, TrafficMinute
from analytics.rollups import network_of as rollup_network_of
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
    evaluate: Callable[..., list[Finding]]
    # The reasons whose requests per window are compared with the threshold, for the rules
    # that count requests: the investigation chart draws them against the threshold.
    counts: tuple[str, ...] = ()

    def defaults(self) -> Config:
        return Config(True, self.threshold, self.window_seconds, self.minimum, self.severity)

    def explain(self, evidence: dict) -> str:
        """The explanation with the evidence's numbers filled in. An alert raised outside an
        evaluation (an import, a sample) may lack some: the clauses and parentheses that
        need them are left out rather than shown with holes, and the rule's signal stands
        in when the first clause is among them."""
        values = dict(evidence)
        if "window" not in values and "window_seconds" in values:
            values["window"] = window_words(values["window_seconds"])
        first, *rest = _clauses(_without_lacking_asides(self.explanation, values))
        if _lacks(first, values):
            return self.signal
        kept = [first]
        for separator, clause in zip(rest[::2], rest[1::2], strict=True):
            if not _lacks(clause, values):
                kept += [separator, clause]
        text = "".join(kept).format_map(values)
        return text if text.endswith(".") else text + "."


def _lacks(template: str, values: dict) -> bool:
    return any(name and name not in values for _, name, _, _ in string.Formatter().parse(template))


def _without_lacking_asides(template: str, values: dict) -> str:
    """`template` less each " (…)" aside that names a value missing from `values`."""
    out, depth, aside = [], 0, ""
    for char in template:
        if depth == 0 and char == "(" and out and out[-1] == " ":
            out.pop()
            depth, aside = 1, " ("
            continue
        if depth:
            aside += char
            depth += (char == "(") - (char == ")")
            if depth == 0 and not _lacks(aside, values):
                out.append(aside)
            continue
        out.append(char)
    return "".join(out)


def _clauses(template: str) -> list[str]:
    """`template` cut at each ", ", "; ", ": " or ". " outside parentheses: clause, break,
    clause, …"""
    parts, depth, start = [], 0, 0
    for at, char in enumerate(template):
        depth += (char == "(") - (char == ")")
        if depth == 0 and char in ",;:." and template[at + 1 : at + 2] == " ":
            parts += [template[start:at], template[at : at + 2]]
            start = at + 2
    return [*parts, template[start:]]


def window_words(seconds: int) -> str:
    minutes = seconds // 60
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


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


# --- Evaluations over rollups and history --------------------------------------------------
# What happened recently is read from the window (raw events or minute rollups); what is
# usual from the rollups (SourceNetwork, TrafficHour), whose size does not grow with the
# number of events. Backfilled history feeds these rollups like live traffic, so it is
# the baseline; only activity inside the window can fire.

NEW_NETWORK_LEARNING = timedelta(days=7)
VOLUME_BASELINE_WEEKS = 4
WEEK = timedelta(days=7)
HOUR = timedelta(hours=1)
# Robust scale of a normal distribution from its MAD.
MAD_TO_SIGMA = 1.4826


def _successes(config: Config, now: datetime) -> Q:
    return _recent(
        config, now, outcome=TokenEvent.Outcome.SUCCESS, endpoint=TokenEvent.Endpoint.TOKEN
    )


def new_network(config: Config, now: datetime) -> list[Finding]:
    """Successful tokens from a /24 (/48) the client had not used before the window.

    1. Recent successes per (client_id, address), grouped by network (raw window).
    2. SourceNetwork: the network's first sighting for the client (any source, any
       outcome) and the client's earliest sighting of all (its learning period).
    3. New: first seen inside the window, the client known for longer than the learning
       period, and the addresses not inside the client's allowlist.
    """
    where = _successes(config, now) & Q(source_ip__isnull=False)
    rows = (
        TokenEvent.objects.filter(where)
        .values("client_id", "source_ip")
        .annotate(n=Count("id"), first=Min("occurred_at"), last=Max("occurred_at"))
    )
    recent: dict[tuple[str, str], dict] = {}
    for row in rows:
        key = (row["client_id"], rollup_network_of(row["source_ip"]))
        acc = recent.setdefault(
            key, {"n": 0, "first": row["first"], "last": row["last"], "addresses": set()}
        )
        acc["n"] += row["n"]
        acc["first"], acc["last"] = min(acc["first"], row["first"]), max(acc["last"], row["last"])
        acc["addresses"].add(row["source_ip"])
    if not recent:
        return []
    seen = (
        SourceNetwork.objects.filter(client_id__in={client_id for client_id, _ in recent})
        .values("client_id", "network")
        .annotate(first=Min("first_seen"))
    )
    network_first = {(row["client_id"], row["network"]): row["first"] for row in seen}
    client_first: dict[str, datetime] = {}
    for (client_id, _network), first in network_first.items():
        client_first[client_id] = min(first, client_first.get(client_id, first))
    allowlists = {
        client.client_id: client.allowed_networks
        for client in Client.objects.filter(client_id__in={c for c, _ in recent})
    }
    window_start = now - config.window
    findings = []
    for (client_id, network), acc in recent.items():
        first = network_first.get((client_id, network), acc["first"])
        learning = client_first.get(client_id, acc["first"]) > now - NEW_NETWORK_LEARNING
        if first <= window_start or learning or acc["n"] < config.threshold:
            continue
        if acc["n"] < config.minimum or _inside(acc["addresses"], allowlists.get(client_id)):
            continue
        findings.append(
            Finding(
                subject=Subject(client_id=client_id, network=network),
                first_seen_at=acc["first"],
                last_seen_at=acc["last"],
                observed=acc["n"],
                events=acc["n"],
                evidence={
                    "successes": acc["n"],
                    "network": network,
                    "addresses": sorted(acc["addresses"])[:10],
                    "learning_days": NEW_NETWORK_LEARNING.days,
                    "known_networks": sum(1 for c, _ in network_first if c == client_id) - 1,
                },
                sample_filter=where
                & Q(client_id=client_id, source_ip__in=sorted(acc["addresses"])),
            )
        )
    return findings


def _inside(addresses: set[str], allowlist: list[str] | None) -> bool:
    """Every address inside one of the allowlist's networks (an empty list allows all,
    but then nothing is 'inside' it: the client has no declared home)."""
    if not allowlist:
        return False
    networks = [ipaddress.ip_network(cidr, strict=False) for cidr in allowlist]
    return all(
        any(ipaddress.ip_address(a) in net for net in networks if net.version == v)
        for a in addresses
        for v in [ipaddress.ip_address(a).version]
    )


def dormant_client(config: Config, now: datetime) -> list[Finding]:
    """A registered client's first successful token after `threshold` days without one.

    Its last success before the window comes from TrafficHour (kept for the rollup
    retention, a year, where raw events are kept 30 days): one index probe per client, the
    newest hour bucket before the window (a correlated subquery).
    """
    where = _successes(config, now)
    recent = {
        row["client_id"]: row
        for row in TokenEvent.objects.filter(where)
        .values("client_id")
        .annotate(n=Count("id"), first=Min("occurred_at"), last=Max("occurred_at"))
    }
    if not recent:
        return []
    window_hour = _hour(now - config.window)
    previous = TrafficHour.objects.filter(
        client_id=OuterRef("client_id"),
        outcome=TokenEvent.Outcome.SUCCESS,
        endpoint=TokenEvent.Endpoint.TOKEN,
        bucket__lt=window_hour,
    ).order_by("-bucket")
    last_success = dict(
        Client.objects.filter(client_id__in=list(recent))
        .annotate(previous=Subquery(previous.values("bucket")[:1]))
        .filter(previous__isnull=False)
        .values_list("client_id", "previous")
    )
    findings = []
    for client_id, previous_bucket in last_success.items():
        row = recent[client_id]
        # The end of the bucket: the most generous idle time the rollup cannot refute.
        idle = row["first"] - (previous_bucket + HOUR)
        if idle < timedelta(days=config.threshold) or row["n"] < config.minimum:
            continue
        findings.append(
            Finding(
                subject=Subject(client_id=client_id),
                first_seen_at=row["first"],
                last_seen_at=row["last"],
                observed=idle.days,
                events=row["n"],
                evidence={
                    "idle_days": idle.days,
                    "previous_success": previous_bucket.date().isoformat(),
                    "successes": row["n"],
                },
                sample_filter=where & Q(client_id=client_id),
            )
        )
    return findings


def _hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


@dataclass
class _Volume:
    """One client's recent successful tokens against its own history."""

    client_id: str
    observed: int
    first: datetime
    last: datetime
    weeks: list[float]  # the same window 1–4 weeks back, estimated from hour buckets
    addresses: int
    lifetime: int

    @property
    def median(self) -> float:
        return statistics.median(self.weeks)

    @property
    def mad(self) -> float:
        return statistics.median(abs(w - self.median) for w in self.weeks)

    @property
    def score(self) -> float:
        """MADs above the median. The scale has floors: with 1–4 weeks the MAD is often 0,
        and counts vary at least like a Poisson process and by 10 %. The Poisson floor is
        that of the difference between this window and a median of n weeks, itself a
        noisy count: √(median × (1 + 1/n)). With one week of history, √median alone let a
        client's ordinary hour-to-hour noise reach 6 (bench/alerts_quality.py found one
        in 21,000 client-days)."""
        poisson = math.sqrt(self.median * (1 + 1 / len(self.weeks)))
        scale = max(MAD_TO_SIGMA * self.mad, poisson, 0.1 * self.median, 1.0)
        return (self.observed - self.median) / scale

    def per_lifetime(self, count: float, window: timedelta) -> float:
        """Tokens per token lifetime at the rate of `count` per window."""
        return count * min(self.lifetime, window.total_seconds()) / window.total_seconds()

    def replicas(self, window: timedelta) -> int:
        """Usual consumers, counted low: a caching replica takes one token per lifetime, so
        the baseline's tokens per lifetime bound them, but the baseline is a median of 1–4
        Poisson counts. A client of 4 tokens an hour has weeks at 8 or 9 (the quality
        benchmark's attack went unseen on 31 of 1,000 clients so), which doubled the
        threshold and hid a consumer that stopped caching. Hence the baseline's lower
        bound, median − 2·√median (about 97.5 % one-sided), per lifetime; at least the
        addresses calling now, and 1. A tenfold jump over even the low estimate is not
        noise, so false alerts stay rare."""
        low = max(0.0, self.median - 2 * math.sqrt(self.median))
        return max(1, self.addresses, math.floor(self.per_lifetime(low, window)))


def _volumes(config: Config, now: datetime) -> tuple[list[_Volume], Q]:
    """Clients with at least `minimum` successes in the window and a week of history.

    Three reads: the window's minute rollups (which clients are busy), the hour rollups
    of the same window 1–4 weeks back (two buckets per week, weighted by their overlap),
    and SourceNetwork for how long each client has been seen (weeks before a client
    existed are not zeros).
    """
    window = config.window
    start = now - window
    busy = (
        TrafficMinute.objects.filter(
            bucket__gt=start - timedelta(minutes=1),
            bucket__lte=now,
            outcome=TokenEvent.Outcome.SUCCESS,
            endpoint=TokenEvent.Endpoint.TOKEN,
        )
        .values("client_id")
        .annotate(n=Sum("count"), first=Min("bucket"), last=Max("bucket"))
        .filter(n__gte=config.minimum)
    )
    recent = {row["client_id"]: row for row in busy}
    where = _successes(config, now)
    if not recent:
        return [], where
    spans = {week: (start - week * WEEK, now - week * WEEK) for week in range(1, 5)}
    buckets = {b for s, e in spans.values() for b in (_hour(s), _hour(e))}
    counts: dict[tuple[str, datetime], int] = defaultdict(int)
    for row in (
        TrafficHour.objects.filter(
            client_id__in=list(recent),
            bucket__in=buckets,
            outcome=TokenEvent.Outcome.SUCCESS,
            endpoint=TokenEvent.Endpoint.TOKEN,
        )
        .values("client_id", "bucket")
        .annotate(n=Sum("count"))
    ):
        counts[(row["client_id"], row["bucket"])] += row["n"]
    since = dict(
        SourceNetwork.objects.filter(client_id__in=list(recent))
        .values("client_id")
        .annotate(first=Min("first_seen"))
        .values_list("client_id", "first")
    )
    addresses = dict(
        TokenEvent.objects.filter(where, client_id__in=list(recent))
        .values("client_id")
        .annotate(n=Count("source_ip", distinct=True))
        .values_list("client_id", "n")
    )
    lifetimes = dict(
        Client.objects.filter(client_id__in=list(recent)).values_list(
            "client_id", "access_token_lifetime"
        )
    )
    volumes = []
    for client_id, row in recent.items():
        seen_since = since.get(client_id)
        weeks = [
            _overlap_count(counts, client_id, span_start, span_end)
            for span_start, span_end in spans.values()
            if seen_since is not None and seen_since <= span_start
        ]
        if not weeks:
            continue  # no week of history yet: nothing to compare with
        volumes.append(
            _Volume(
                client_id=client_id,
                observed=row["n"],
                first=row["first"],
                last=row["last"] + timedelta(minutes=1),
                weeks=weeks,
                addresses=addresses.get(client_id, 0),
                lifetime=lifetimes.get(client_id) or 3600,
            )
        )
    return volumes, where


def _overlap_count(counts: dict, client_id: str, start: datetime, end: datetime) -> float:
    """The successes of [start, end) estimated from hour buckets, each counting for the
    share of the hour the span covers (traffic assumed even within an hour)."""
    total = 0.0
    bucket = _hour(start)
    while bucket < end:
        covered = min(end, bucket + HOUR) - max(start, bucket)
        total += counts.get((client_id, bucket), 0) * (covered / HOUR)
        bucket += HOUR
    return total


def _not_caching(volume: _Volume, threshold: float, window: timedelta) -> bool:
    return volume.per_lifetime(volume.observed, window) >= threshold * volume.replicas(window)


def volume_anomaly(config: Config, now: datetime) -> list[Finding]:
    """Tokens in the window `threshold` MADs or more above the median of the same window
    1–4 weeks back. A client that looks like a consumer not caching its tokens is left to
    that rule (its catalogue threshold), which explains it better."""
    volumes, where = _volumes(config, now)
    caching_rule = next(d for d in CATALOGUE if d.rule == "token_not_cached")
    findings = []
    for v in volumes:
        if v.score < config.threshold or _not_caching(v, caching_rule.threshold, config.window):
            continue
        findings.append(
            _volume_finding(
                v,
                where,
                math.floor(v.score),
                {"median": round(v.median, 1), "mad": round(v.mad, 1), "score": round(v.score, 1)},
            )
        )
    return findings


def token_not_cached(config: Config, now: datetime) -> list[Finding]:
    """Tokens per token lifetime `threshold` times or more the client's usual replicas,
    counted low (_Volume.replicas)."""
    volumes, where = _volumes(config, now)
    findings = []
    for v in volumes:
        per_lifetime = v.per_lifetime(v.observed, config.window)
        replicas = v.replicas(config.window)
        if per_lifetime < config.threshold * replicas:
            continue
        findings.append(
            _volume_finding(
                v,
                where,
                int(per_lifetime // replicas),
                {
                    "per_lifetime": round(per_lifetime),
                    "lifetime": v.lifetime,
                    "replicas": replicas,
                    "addresses": v.addresses,
                    "median": round(v.median, 1),
                },
            )
        )
    return findings


def _volume_finding(v: _Volume, where: Q, observed: int, evidence: dict) -> Finding:
    return Finding(
        subject=Subject(client_id=v.client_id),
        first_seen_at=v.first,
        last_seen_at=v.last,
        observed=observed,
        events=v.observed,
        evidence={"tokens": v.observed, "weeks": len(v.weeks), **evidence},
        sample_filter=where & Q(client_id=v.client_id),
    )


# --- The catalogue ---------------------------------------------------------------------

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
        counts=(Reason.BAD_SECRET,),
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
        evaluate=new_network,
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
        counts=(Reason.IP_NOT_ALLOWED,),
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
        counts=tuple(RETIRED_REASONS),
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
            "This client got {tokens} tokens within {window} against a usual {median} "
            "(MAD {mad}) at this time of the week over the last {weeks} week(s); that is "
            "{score} MADs above, the threshold is {threshold}."
        ),
        remediation="Check for a new consumer or a leaked secret used from elsewhere.",
        false_positives="Launches, batch jobs, holidays; the baseline needs 1–4 weeks.",
        evaluate=volume_anomaly,
    ),
    Detection(
        rule="token_not_cached",
        title="Consumer not caching tokens",
        signal=(
            "Special case of the volume anomaly: far more tokens per token lifetime than the "
            "client's usual number of replicas, estimated low (its baseline less chance)."
        ),
        subject="client",
        severity=Severity.LOW,
        threshold=10,
        window_seconds=3600,
        minimum=50,
        explanation=(
            "This client got {per_lifetime} tokens per token lifetime ({lifetime} s; {tokens} "
            "within {window}, from {addresses} address(es)) against at least {replicas} "
            "usual replica(s) (the same window of past weeks had {median} tokens; a caching "
            "replica takes one per lifetime): a consumer asks for a new token on every call."
        ),
        remediation=(
            "Cache the token until shortly before it expires (every OAuth library can); it "
            "cuts load on Keyward and latency for the caller."
        ),
        false_positives="A scale-out to many more replicas.",
        evaluate=token_not_cached,
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
        evaluate=dormant_client,
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
