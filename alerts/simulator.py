"""A traffic simulator: a normal population of clients and one attack scenario per detection,
driven against the real token endpoint over HTTP.

It creates its clients through the services (so the audit trail shows them) and keeps
their secrets in memory only: an existing simulator client gets a fresh secret by a
rotation with no grace period. History that a detection compares with (weeks of volume, a
client's networks, a dormant client's last token) is backfilled through analytics.store,
backdated and with source keyward, as if Keyward had been running; beyond the raw-event
retention only the rollups are written, since that is all a running Keyward keeps.

Many source addresses: the token endpoint believes X-Forwarded-For only from trusted
proxies (base/http.py). With KEYWARD_TRUSTED_PROXIES=127.0.0.1/32 on the server (bin/dev
sets it) the simulator sends X-Forwarded-For and each client calls from its own network;
without it every request comes from 127.0.0.1 and the scenarios that need several
networks use 127.0.0.1 as the "new" or "foreign" one.
"""

from __future__ import annotations

import base64
import ipaddress
import random
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.utils import timezone

from analytics.rollups import rollups_of, rollups_write
from analytics.store import retention_cutoff, token_events_store
from audit.events import TokenEventRecord
from audit.services import Actor
from base.http import networks_parse
from clients import services as client_services
from clients.models import Client
from security.services import client_secret_rotate

from .models import Alert

TOKEN_PATH = "/token-srv/token"  # noqa: S105 - the endpoint's path, not a secret
NAME_PREFIX = "sim "
LOCAL = "127.0.0.1"


@dataclass
class SimClient:
    client: Client
    secret: str
    addresses: list[str]

    @property
    def client_id(self) -> str:
        return self.client.client_id


@dataclass
class Simulation:
    """What scenarios share: where to send requests and how to print progress."""

    base_url: str
    write: Callable[[str], None] = print
    forwarded: bool = False  # the server believes our X-Forwarded-For
    rng: random.Random = field(default_factory=random.Random)
    sent: int = 0
    statuses: dict = field(default_factory=dict)
    actor: Actor = field(default_factory=Actor.cli)

    # --- HTTP -------------------------------------------------------------------------

    def token(self, client_id: str, secret: str, *, address: str = LOCAL, scope: str = "") -> int:
        """One client-credentials request; returns the HTTP status (0: no answer)."""
        body = {"grant_type": "client_credentials"}
        if scope:
            body["scope"] = scope
        credentials = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
        headers = {
            "Authorization": f"Basic {credentials}",
            "Content-Type": "application/x-www-form-urlencoded",
        }
        if self.forwarded and address != LOCAL:
            headers["X-Forwarded-For"] = address
        request = urllib.request.Request(  # noqa: S310 - http(s) URL checked by the command
            self.base_url + TOKEN_PATH,
            data=urllib.parse.urlencode(body).encode(),
            headers=headers,
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                status = response.status
        except urllib.error.HTTPError as error:
            status = error.code
        except OSError:
            status = 0
        self.sent += 1
        self.statuses[status] = self.statuses.get(status, 0) + 1
        return status

    def wait_until_up(self, timeout: float) -> bool:
        """Poll /healthz until the server answers (bin/dev starts the simulator with it)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.base_url + "/healthz", timeout=2):  # noqa: S310
                    return True
            except urllib.error.HTTPError:
                return True  # it answers; health is not our business here
            except OSError:
                time.sleep(1)
        return False

    def address(self, home: str) -> str:
        """An address of `home` ("100.64.3") when forwarding works, else 127.0.0.1."""
        return f"{home}.{self.rng.randint(2, 250)}" if self.forwarded else LOCAL

    # --- Clients ----------------------------------------------------------------------

    def client(self, name: str, *, replicas: int = 2, home: str = "", **fields) -> SimClient:
        """The simulator client called `name`, created or given a fresh secret."""
        full_name = NAME_PREFIX + name
        existing = Client.objects.filter(name=full_name).first()
        if existing is None:
            client, secret = client_services.client_register(
                actor=self.actor,
                name=full_name,
                description="Created by manage.py simulate_traffic.",
                owner_email="simulator@example.com",
                **fields,
            )
        else:
            if fields:
                existing = client_services.client_update(
                    actor=self.actor, client=existing, **fields
                )
            _row, secret = client_secret_rotate(
                actor=self.actor, client=existing, grace=timedelta(0)
            )
            client = existing
        home = home or f"100.64.{client.pk % 250}"
        addresses = sorted({self.address(home) for _ in range(replicas)})
        return SimClient(client, secret, addresses)

    # --- History ------------------------------------------------------------------------

    def backfill(
        self,
        sim: SimClient,
        *,
        start: datetime,
        end: datetime,
        per_hour: float,
        addresses: list[str] | None = None,
    ) -> int:
        """Successful token events of `sim` from `start` to `end`, `per_hour` each hour
        (Poisson-ish), stored backdated. Older than the raw retention: rollups only."""
        addresses = addresses or sim.addresses
        records = list(self._history(sim.client_id, start, end, per_hour, addresses))
        cutoff = retention_cutoff().timestamp()
        old = [r for r in records if r.occurred_at < cutoff]
        recent = [r for r in records if r.occurred_at >= cutoff]
        if old:
            rollups_write(rollups_of(old))
        for chunk in range(0, len(recent), 5000):
            token_events_store(recent[chunk : chunk + 5000])
        return len(records)

    def _history(
        self, client_id: str, start: datetime, end: datetime, per_hour: float, addresses
    ) -> Iterator[TokenEventRecord]:
        hour = start.replace(minute=0, second=0, microsecond=0)
        while hour < end:
            count = max(0, round(self.rng.gauss(per_hour, per_hour**0.5 / 2)))
            for _ in range(count):
                at = hour + timedelta(seconds=self.rng.uniform(0, 3600))
                if start <= at < end:
                    yield _success(client_id, at, self.rng.choice(addresses))
            hour += timedelta(hours=1)


def _success(client_id: str, at: datetime, address: str) -> TokenEventRecord:
    return TokenEventRecord(
        id=uuid.uuid4().hex,
        occurred_at=at.timestamp(),
        endpoint="token",
        client_id=client_id,
        client_known=True,
        outcome="success",
        reason="ok",
        source_ip=address,
        user_agent="keyward-simulator (backfill)",
        status_code=200,
    )


def forwarding_trusted() -> bool:
    """Whether this process's settings trust 127.0.0.1 as a proxy: the server started with
    the same environment then believes the simulator's X-Forwarded-For."""
    trusted = networks_parse(tuple(settings.KEYWARD_TRUSTED_PROXIES))
    return any(ipaddress.ip_address(LOCAL) in network for network in trusted)


# --- The normal population -------------------------------------------------------------

NORMAL_ENVIRONMENTS = ("production", "production", "staging", "development")


def normal_population(sim: Simulation, count: int) -> list[SimClient]:
    return [
        sim.client(
            f"normal {n}",
            replicas=1 + n % 3,
            environment=NORMAL_ENVIRONMENTS[n % len(NORMAL_ENVIRONMENTS)],
        )
        for n in range(1, count + 1)
    ]


def normal_traffic(
    sim: Simulation, clients: list[SimClient], *, per_minute: float, until: float
) -> None:
    """Each client's replicas fetch tokens at about `per_minute` a client until `until`
    (monotonic time; 0: forever), in one loop that sleeps between requests."""
    rate = per_minute * len(clients) / 60  # requests per second, all clients
    while not until or time.monotonic() < until:
        sim_client = sim.rng.choice(clients)
        sim.token(
            sim_client.client_id, sim_client.secret, address=sim.rng.choice(sim_client.addresses)
        )
        time.sleep(sim.rng.expovariate(rate))


# --- Scenarios ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    name: str
    rule: str
    what: str
    run: Callable[[Simulation], SimClient | None]


def _brute_force(sim: Simulation) -> SimClient:
    target = sim.client("brute-force target", environment="production")
    origin = "5 addresses" if sim.forwarded else LOCAL
    sim.write(f"  25 wrong secrets for {target.client_id} from {origin}")
    for n in range(25):
        sim.token(target.client_id, uuid.uuid4().hex, address=f"203.0.113.{10 + n % 5}")
    return target


def _credential_stuffing(sim: Simulation) -> None:
    sim.write(f"  15 unknown client_ids tried from {'203.0.113.77' if sim.forwarded else LOCAL}")
    for _ in range(15):
        sim.token(f"sim-guess-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex, address="203.0.113.77")


def _new_network(sim: Simulation) -> SimClient:
    target = sim.client("new-network target", home="100.66.1", environment="production")
    now = timezone.now()
    # Its history: 20 days from its home network only (its learning period is 7).
    home = ["100.66.1.10", "100.66.1.11"]
    sim.backfill(
        target,
        start=now - timedelta(days=20),
        end=now - timedelta(hours=2),
        per_hour=2,
        addresses=home,
    )
    stranger = "203.0.113.50" if sim.forwarded else LOCAL
    sim.write(f"  20 days of history from 100.66.1.0/24, then 3 tokens from {stranger}")
    for _ in range(3):
        sim.token(target.client_id, target.secret, address=stranger)
    return target


def _allowlist_violation(sim: Simulation) -> SimClient:
    target = sim.client(
        "allowlist target", allowed_networks=["192.0.2.0/24"], environment="production"
    )
    sim.write("  3 requests with the right secret from outside 192.0.2.0/24")
    for _ in range(3):
        sim.token(target.client_id, target.secret, address="203.0.113.60")
    return target


def _retired_credential(sim: Simulation) -> SimClient:
    target = sim.client("retired-credential target", environment="production")
    old_secret = target.secret
    client_secret_rotate(actor=sim.actor, client=target.client, grace=timedelta(0))
    sim.write("  rotated with no grace period, then 3 requests with the old secret")
    for _ in range(3):
        sim.token(target.client_id, old_secret, address=target.addresses[0])
    return target


def _scope_probing(sim: Simulation) -> SimClient:
    target = sim.client("scope-probing target", environment="production")
    scopes = ["payments:refund", "admin:all", "users:write", "orders:write"]
    sim.write(f"  asking for {len(scopes)} scopes it does not hold")
    for scope in scopes:
        sim.token(target.client_id, target.secret, address=target.addresses[0], scope=scope)
    return target


def _baseline_weeks(sim: Simulation, target: SimClient, per_hour: float) -> None:
    now = timezone.now()
    sim.backfill(
        target, start=now - timedelta(days=29), end=now - timedelta(hours=1), per_hour=per_hour
    )


def _volume_spike(sim: Simulation) -> SimClient:
    target = sim.client("volume target", access_token_lifetime=300, environment="production")
    sim.write("  4 weeks of history at ~24 tokens an hour, then 150 tokens at once")
    _baseline_weeks(sim, target, 24)
    for _ in range(150):
        sim.token(target.client_id, target.secret, address=sim.rng.choice(target.addresses))
    return target


def _no_token_caching(sim: Simulation) -> SimClient:
    target = sim.client("caching target", access_token_lifetime=3600, environment="production")
    sim.write("  4 weeks of 2 replicas caching their hour-long tokens, then 100 tokens")
    _baseline_weeks(sim, target, 2)
    for _ in range(100):
        sim.token(target.client_id, target.secret, address=sim.rng.choice(target.addresses))
    return target


def _dormant_waking(sim: Simulation) -> SimClient:
    target = sim.client("dormant target", environment="production")
    now = timezone.now()
    sim.write("  tokens 60 to 45 days ago (rollups only, past raw retention), then one now")
    sim.backfill(target, start=now - timedelta(days=60), end=now - timedelta(days=45), per_hour=1)
    sim.token(target.client_id, target.secret, address=target.addresses[0])
    return target


def _rate_limited(sim: Simulation) -> None:
    address = "203.0.113.99" if sim.forwarded else LOCAL
    limit = settings.KEYWARD_RATE_LIMIT_FAILURES_PER_IP
    per_minute = limit + 10
    minutes = 6
    sim.write(
        f"  {per_minute} failures a minute from {address} for {minutes} minutes "
        f"(the per-address failure limit is {limit} a minute)"
    )
    client_id = f"sim-retry-storm-{uuid.uuid4().hex[:6]}"
    for minute in range(minutes):
        started = time.monotonic()
        for _ in range(per_minute):
            sim.token(client_id, "wrong", address=address)
        sim.write(f"  minute {minute + 1}/{minutes}: {sim.statuses}")
        time.sleep(max(0.0, 60 - (time.monotonic() - started)))


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("brute-force", "brute_force", "wrong secrets for one client", _brute_force),
        Scenario(
            "credential-stuffing",
            "credential_stuffing",
            "one address trying many client_ids",
            _credential_stuffing,
        ),
        Scenario("new-network", "new_network", "tokens from a network never used", _new_network),
        Scenario(
            "allowlist-violation",
            "allowlist_violation",
            "the right secret from outside the allowlist",
            _allowlist_violation,
        ),
        Scenario(
            "retired-credential",
            "retired_credential",
            "a rotated-out secret reused",
            _retired_credential,
        ),
        Scenario(
            "scope-probing", "scope_probing", "scopes the client does not hold", _scope_probing
        ),
        Scenario(
            "volume-spike", "volume_anomaly", "far above the client's own baseline", _volume_spike
        ),
        Scenario("no-token-caching", "token_not_cached", "a new token per call", _no_token_caching),
        Scenario("dormant-waking", "dormant_client", "a token after 45 idle days", _dormant_waking),
        Scenario(
            "rate-limited", "sustained_rate_limiting", "a retry storm for minutes", _rate_limited
        ),
    )
}


def alert_wait(rule: str, *, since: datetime, timeout: float) -> Alert | None:
    """The first alert of `rule` opened or updated since `since`, polling the database."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alert = (
            Alert.objects.filter(rule=rule, last_seen_at__gte=since - timedelta(seconds=5))
            .order_by("-updated_at")
            .first()
        )
        if alert is not None:
            return alert
        time.sleep(1)
    return None


def now_utc() -> datetime:
    return datetime.now(tz=UTC)
