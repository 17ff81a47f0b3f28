"""Detection quality: attacks alerted, time to alert, false alerts on normal clients.

    DATABASE_URL=postgres://…/scratch nice -n 10 .venv/bin/python -u -m bench.alerts_quality \
        [--clients 1000] [--days 14] [--replay-days 7] [--seeds 3]

Per seed, on a scratch database (it TRUNCATEs the event, rollup and alert tables):
1. A normal population: `--clients` registered clients, each with its own hourly rate
   (log-normal, median ~3 tokens an hour), a daily rhythm (peak in the afternoon, a
   quarter of it at night) and a quieter weekend, 1–3 replicas in its own /24, and 3 % of
   failures (wrong secret, one retry) among them.
2. `--days` of backfilled history. The older days go to the rollups only (all the
   detections read of them); the last `--replay-days` through analytics.store, as the
   drain writes them (COPY of raw rows, rollups, last_used).
3. Those last days replayed as if live: every rule evaluated at each half of its own
   window (detection_run, the function detections_evaluate calls per rule) with `now`
   moving forward, quiet alerts resolved every hour. Every alert opened is a false alert
   on a normal client. Each replayed day has at least `--days - --replay-days` days of
   history behind it (new clients' learning period and the volume baseline need a week).
4. One live hour through the store and a full evaluation (alerts: false too).
5. Each attack scenario injected with live timestamps through the store, one at a time,
   followed by one run (what after_batch_drained does after the batch): detected or not,
   and the time from the store's commit to the alert (the evaluation's cost; the drain
   interval, 2 s by default, comes on top in production). Alerts raised then on anything
   but the attack's subject count as false too.
Client-days counted: clients × (replayed days + 1/24 for the live hour), the traffic the
detections actually judged as recent. Prints a table per detection over the seeds;
bench/README.md has the figures and what they do not show.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import random
import statistics
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "keyward.settings")
django.setup()

from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402

from alerts.detections import CATALOGUE, DETECTIONS, RECENT_HORIZON, overrides_load  # noqa: E402
from alerts.evaluation import detection_run, detections_evaluate  # noqa: E402
from alerts.models import Alert  # noqa: E402
from alerts.services import alerts_auto_resolve  # noqa: E402
from alerts.simulator import SCENARIOS  # noqa: E402
from analytics.rollups import rollups_of, rollups_write  # noqa: E402
from analytics.signals import events_stored  # noqa: E402
from analytics.store import token_events_store  # noqa: E402
from audit.events import TokenEventRecord  # noqa: E402
from clients.models import Client  # noqa: E402

TABLES = (
    "analytics_tokenevent",
    "analytics_trafficminute",
    "analytics_traffichour",
    "analytics_sourcenetwork",
    "analytics_networkfailurehour",
    "analytics_scopeusagehour",
    "alerts_alertevent",
    "alerts_alertdelivery",
    "alerts_alert",
)
PREFIX = "qbench-"


def record(client_id: str, at: datetime, ip: str, reason: str = "ok", **fields) -> TokenEventRecord:
    ok = reason == "ok"
    return TokenEventRecord(
        id=uuid.uuid4().hex,
        occurred_at=at.timestamp(),
        endpoint="token",
        client_id=client_id,
        client_known=fields.pop("known", True),
        outcome="success" if ok else "failure",
        reason=reason,
        source_ip=ip,
        status_code=200 if ok else (429 if reason == "rate_limited" else 401),
        **fields,
    )


class Population:
    def __init__(self, rng: random.Random, count: int):
        self.rng = rng
        existing = list(Client.objects.filter(name__startswith=PREFIX).order_by("pk")[:count])
        missing = count - len(existing)
        if missing > 0:
            Client.objects.bulk_create(
                Client(
                    name=f"{PREFIX}{len(existing) + n}",
                    client_id=uuid.uuid4().hex[:24],
                    environment="production",
                )
                for n in range(missing)
            )
            existing = list(Client.objects.filter(name__startswith=PREFIX).order_by("pk")[:count])
        self.clients = existing
        self.rate = {c.client_id: rng.lognormvariate(math.log(3), 0.8) for c in existing}
        self.replicas = {
            c.client_id: [
                f"10.{i // 250 % 250}.{i % 250}.{10 + r}" for r in range(rng.randint(1, 3))
            ]
            for i, c in enumerate(existing)
        }

    def hourly(self, client_id: str, hour: datetime) -> float:
        rhythm = 0.25 + 0.75 * (1 + math.sin((hour.hour - 9) / 24 * 2 * math.pi)) / 2
        weekend = 0.6 if hour.weekday() >= 5 else 1.0
        return self.rate[client_id] * rhythm * weekend * 2

    def traffic(self, start: datetime, end: datetime) -> list[TokenEventRecord]:
        records = []
        hour = start.replace(minute=0, second=0, microsecond=0)
        while hour < end:
            for client_id, addresses in self.replicas.items():
                n = _poisson(self.rng, self.hourly(client_id, hour))
                for _ in range(n):
                    at = hour + timedelta(seconds=self.rng.uniform(0, 3600))
                    if not start <= at < end:
                        continue
                    ip = self.rng.choice(addresses)
                    if self.rng.random() < 0.03:
                        records.append(record(client_id, at, ip, "bad_secret"))
                    records.append(record(client_id, at, ip))
            hour += timedelta(hours=1)
        return records


def _poisson(rng: random.Random, lam: float) -> int:
    if lam > 30:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    threshold, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p < threshold:
            return k
        k += 1


def attacks(pop: Population, rng: random.Random, now: datetime) -> dict:
    """Scenario name → (rule, subject_key fragment, records, setup)."""
    c = [client.client_id for client in rng.sample(pop.clients, 10)]
    ago = lambda s: now - timedelta(seconds=s)  # noqa: E731
    dormant = Client.objects.create(
        name=f"{PREFIX}dormant-{uuid.uuid4().hex[:6]}",
        client_id=uuid.uuid4().hex[:24],
        environment="production",
    )
    caching = c[6]
    return {
        "brute-force": (
            "brute_force",
            c[0],
            [
                record(
                    c[0], ago(rng.uniform(0, 240)), f"203.0.113.{rng.randint(1, 3)}", "bad_secret"
                )
                for _ in range(25)
            ],
        ),
        "credential-stuffing": (
            "credential_stuffing",
            "198.18.0.77",
            [
                record(
                    f"guess-{uuid.uuid4().hex[:6]}",
                    ago(rng.uniform(0, 300)),
                    "198.18.0.77",
                    "unknown_client",
                    known=False,
                )
                for _ in range(15)
            ],
        ),
        "new-network": (
            "new_network",
            c[1],
            [record(c[1], ago(rng.uniform(0, 300)), "198.19.7.20") for _ in range(3)],
        ),
        "allowlist-violation": (
            "allowlist_violation",
            c[2],
            [
                record(c[2], ago(rng.uniform(0, 300)), "198.18.9.9", "ip_not_allowed")
                for _ in range(3)
            ],
        ),
        "retired-credential": (
            "retired_credential",
            c[3],
            [
                record(c[3], ago(rng.uniform(0, 300)), pop.replicas[c[3]][0], "expired_secret")
                for _ in range(3)
            ],
        ),
        "scope-probing": (
            "scope_probing",
            c[4],
            [
                record(
                    c[4],
                    ago(rng.uniform(0, 300)),
                    pop.replicas[c[4]][0],
                    "invalid_scope",
                    scopes_requested=scope,
                )
                for scope in ("admin:all", "payments:refund", "users:write", "keys:rotate")
            ],
        ),
        "volume-spike": (
            "volume_anomaly",
            c[5],
            [
                record(
                    c[5],
                    ago(rng.uniform(0, 1800)),
                    f"10.250.{rng.randint(0, 250)}.{rng.randint(1, 250)}",
                )
                for _ in range(max(60, round(12 * pop.hourly(c[5], now))))
            ],
        ),
        "no-token-caching": (
            "token_not_cached",
            caching,
            [
                record(caching, ago(rng.uniform(0, 1800)), rng.choice(pop.replicas[caching]))
                for _ in range(
                    max(60, round(15 * max(len(pop.replicas[caching]), pop.hourly(caching, now))))
                )
            ],
        ),
        "dormant-waking": (
            "dormant_client",
            dormant.client_id,
            [record(dormant.client_id, ago(60), "10.251.0.5")],
            [
                record(dormant.client_id, now - timedelta(days=45, hours=h), "10.251.0.5")
                for h in range(48)
            ],
        ),
        "rate-limited": (
            "sustained_rate_limiting",
            "198.18.5.5",
            [
                record(
                    "retry-storm",
                    ago(60 * m + rng.uniform(0, 50)),
                    "198.18.5.5",
                    "rate_limited",
                    known=False,
                )
                for m in range(7)
                for _ in range(5)
            ],
        ),
    }


@dataclass
class SeedResult:
    attacks: dict[str, tuple[bool, float]]  # scenario → (alerted, seconds to alert)
    false_alerts: Counter  # rule → alerts opened on normal traffic
    client_days: float  # evaluated live (replayed hours and the live hour)
    history_events: int
    evaluations: int
    seconds: dict[str, float]  # phase → wall time


def _store(records: list[TokenEventRecord]) -> None:
    """The drain's write path (COPY, rollups, last_used) in drain-sized batches."""
    for chunk in range(0, len(records), 5000):
        token_events_store(records[chunk : chunk + 5000])


def backfill(pop: Population, *, live_start: datetime, days: int, replay_days: int) -> int:
    """`days` of history before `live_start`, a day at a time (a million records do not fit
    memory). The older days go to the rollups only, which is all the detections read of
    them; the last `replay_days` go through the store like live traffic (raw events and
    rollups), since replaying them reads their raw events."""
    total = 0
    for day in range(days, 0, -1):
        start = live_start - timedelta(days=day)
        records = pop.traffic(start, start + timedelta(days=1))
        if day > replay_days:
            rollups_write(rollups_of(records))
        else:
            _store(records)
        total += len(records)
    return total


def replay(*, start: datetime, end: datetime) -> tuple[Counter, int]:
    """Evaluate [start, end) as if it were live: every rule at each half of its window
    (the 5-minute rules every 2.5 minutes… the hour rules every 30 minutes), so each
    event is judged by each rule twice, in overlapping windows, with the history that
    preceded it; quiet alerts resolve every hour. Returns the alerts opened per rule and
    the number of rule evaluations.

    Production evaluates every few seconds over sliding windows; half-window steps catch a
    burst that straddles a boundary without paying for 1,000 runs an hour."""
    overrides = overrides_load()
    opened: Counter = Counter()
    runs = 0
    step = timedelta(seconds=min(d.window_seconds for d in CATALOGUE) / 2)
    moment = start + step
    while moment <= end:
        elapsed = (moment - start).total_seconds()
        for detection in CATALOGUE:
            stride = min(detection.window_seconds, RECENT_HORIZON.total_seconds()) / 2
            if elapsed % stride == 0:
                outcome = detection_run(detection, overrides=overrides, now=moment)
                opened[detection.rule] += outcome["opened"]
                runs += 1
        if elapsed % 3600 == 0:
            alerts_auto_resolve(now=moment)
        moment += step
    return opened, runs


def run_seed(seed: int, clients: int, days: int, replay_days: int) -> SeedResult:
    rng = random.Random(seed)
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {', '.join(TABLES)}")  # noqa: S608 - constants
    Client.objects.filter(name__startswith=f"{PREFIX}dormant-").delete()
    pop = Population(rng, clients)
    now = timezone.now()
    live_start = now - timedelta(hours=1)
    seconds = {}
    clock = time.perf_counter()
    history = backfill(pop, live_start=live_start, days=days, replay_days=replay_days)
    seconds["backfill"] = time.perf_counter() - clock
    clock = time.perf_counter()
    false_alerts, runs = replay(start=live_start - timedelta(days=replay_days), end=live_start)
    seconds["replay"] = time.perf_counter() - clock
    clock = time.perf_counter()
    _store(pop.traffic(live_start, now))
    print(
        f"seed {seed}: {history:,} history events in {seconds['backfill']:.0f} s, "
        f"{replay_days} days replayed ({runs:,} rule runs) in {seconds['replay']:.0f} s, "
        f"false alerts so far {sum(false_alerts.values())}",
        flush=True,
    )
    before = set(Alert.objects.values_list("pk", flat=True))
    detections_evaluate(now=timezone.now())
    for alert in Alert.objects.exclude(pk__in=before):
        false_alerts[alert.rule] += 1
    results = {}
    for name, spec in attacks(pop, rng, timezone.now()).items():
        rule, subject, records, *setup = spec
        if setup:
            rollups_write(rollups_of(setup[0]))
        before = set(Alert.objects.values_list("pk", flat=True))
        token_events_store(records)
        committed = time.perf_counter()
        detections_evaluate(now=timezone.now())
        elapsed = time.perf_counter() - committed
        new = Alert.objects.exclude(pk__in=before)
        hit = [a for a in new if a.rule == rule and subject in a.subject_key]
        for alert in new:
            if alert.rule != rule and subject not in alert.subject_key:
                false_alerts[alert.rule] += 1
        results[name] = (bool(hit), elapsed)
        if not hit:
            why = missed(rule, subject, timezone.now())
            print(f"seed {seed}: {name} missed; {why}", flush=True)
    seconds["live"] = time.perf_counter() - clock
    return SeedResult(
        attacks=results,
        false_alerts=false_alerts,
        client_days=clients * (replay_days + 1 / 24),
        history_events=history,
        evaluations=runs,
        seconds=seconds,
    )


def missed(rule: str, subject: str, now: datetime) -> str:
    """What the rule saw of a missed attack's subject: its finding with the threshold and
    the minimum at zero, where every subject with matching activity is one."""
    detection = DETECTIONS[rule]
    relaxed = dataclasses.replace(detection.defaults(), threshold=0, minimum=0)
    try:
        findings = detection.evaluate(relaxed, now)
    except Exception as error:  # noqa: BLE001 - a diagnostic must not end the run
        return f"the rule at threshold 0 failed: {error!r}"
    for finding in findings:
        if subject in finding.subject.key:
            return (
                f"observed {finding.observed} against a threshold of {detection.threshold}, "
                f"{finding.events} events (minimum {detection.minimum}), {finding.evidence}"
            )
    return "not even a finding at threshold 0"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--days", type=int, default=14, help="days of backfilled history")
    parser.add_argument(
        "--replay-days",
        type=int,
        default=7,
        help="of those, the last days evaluated hour by hour as if live",
    )
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=1)
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        raise SystemExit("PostgreSQL only (TRUNCATE of a scratch database)")
    if not 0 <= args.replay_days <= args.days:
        raise SystemExit("--replay-days must be between 0 and --days")
    # The benchmark evaluates itself, as after_batch_drained would; no task per batch.
    events_stored.disconnect(dispatch_uid="alerts.evaluate_after_drain")
    started = time.perf_counter()
    detected, latency = defaultdict(list), defaultdict(list)
    false_alerts: Counter = Counter()
    client_days = 0.0
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        result = run_seed(seed, args.clients, args.days, args.replay_days)
        false_alerts.update(result.false_alerts)
        client_days += result.client_days
        for name, (hit, seconds) in result.attacks.items():
            detected[name].append(hit)
            latency[name].append(seconds)
    report(args, detected, latency, false_alerts, client_days, time.perf_counter() - started)


def report(args, detected, latency, false_alerts: Counter, client_days: float, wall: float):
    print(
        f"\n{args.clients} clients, {args.days} days of history ({args.replay_days} replayed "
        f"as live), {args.seeds} seeds, {wall / 60:.0f} min "
        f"({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)\n"
    )
    rule_of = {name: scenario.rule for name, scenario in SCENARIOS.items()}
    print("| scenario | detected | time to alert (median, max) | false alerts of the rule |")
    print("|---|---|---|---|")
    for name in detected:
        share = sum(detected[name]) / len(detected[name])
        print(
            f"| {name} | {share:.0%} | {statistics.median(latency[name]):.2f} s, "
            f"{max(latency[name]):.2f} s | {false_alerts[rule_of[name]]} |"
        )
    total = sum(false_alerts.values())
    print(
        f"\nfalse alerts on normal clients: {total} over {client_days:,.0f} evaluated "
        f"client-days = {total / client_days * 10_000:.2f} per 10,000 client-days"
        + (f" ({ {rule: n for rule, n in false_alerts.items() if n} })" if total else "")
    )


if __name__ == "__main__":
    main()
