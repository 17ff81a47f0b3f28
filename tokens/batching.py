"""This process's view of the rate-limit counters, and the counts and token events it has
not sent to Redis yet.

Why it exists: the Redis round trip was the largest single cost of a token. In one
`bin/bench` session on the 2-core machine, Keyward served ES256 tokens at 0.414 ms of CPU
each with a script call per request and at 0.262 ms with no Redis call at all (RS256:
0.661 → 0.525 ms), against node oidc-provider's 0.31–0.34 ms. So a request this process can
decide on its own queues its counts and its event here, and one script call sends what the
requests of the last few milliseconds queued (tokens/sink.py sends; a sweeper thread sends
what a quiet moment leaves behind).

The rule, the same as the Lua script's (`over_limit`): an address that has failed to
authenticate KEYWARD_RATE_LIMIT_FAILURES_PER_IP times is limited; otherwise every counter is
incremented and the request is limited if one goes over its limit. Decided here only when
this process knows the total of every counter the request counts against, learned from
Redis within the last FRESH_FOR seconds; its view of a counter is that total plus what it
has queued and what is on its way. A request with a counter it does not know takes the
synchronous script, which learns it. So other processes' requests reach this view within
one send: a limit is exact inside a process and may be overshot across processes by what
the others admitted since this process last sent (at most one send interval's worth, or one
request per process for a counter it had not seen for FRESH_FOR seconds).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from audit.events import TokenEventRecord

# Seconds a counter's total, as Redis last returned it, is trusted for a decision here.
FRESH_FOR = 1.0


@dataclass(slots=True)  # not frozen: a frozen dataclass sets each field through object.__setattr__
class Counted:
    """The counters one request counts against, and their limits."""

    fail_key: str
    failure_limit: int
    counter_keys: list[str]
    limits: list[int]
    auth_failed: bool

    def all_keys(self) -> tuple[str, ...]:
        return (self.fail_key, *self.counter_keys)


def over_limit(count: Callable[[str], int], add: Callable[[str], int], counted: Counted) -> bool:
    """The rate-limit rule on any counter store: `count` reads a counter, `add` increments
    it and returns its new value."""
    if count(counted.fail_key) >= counted.failure_limit:
        return True
    limited = False
    for key, limit in zip(counted.counter_keys, counted.limits, strict=True):
        if add(key) > limit:
            limited = True
    if counted.auth_failed:
        add(counted.fail_key)
    return limited


@dataclass
class Batch:
    """One send: each counter's increment (0 only asks for its total) and the events, each
    with whether it was rate-limited."""

    increments: dict[str, int] = field(default_factory=dict)
    events: list[tuple[TokenEventRecord, bool]] = field(default_factory=list)


class LocalCounts:
    """The counters' totals as Redis last returned them, and what is queued or in flight.

    Two request threads and the sweeper share it; every method takes the lock, none does I/O.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._totals: dict[str, tuple[int, float]] = {}  # key → (total, learned at)
        self._queued = Batch()
        self._in_flight: dict[str, int] = {}
        self._sending = False
        self._sent_at = float("-inf")
        self._pruned_at = 0.0

    def queue(
        self, event: TokenEventRecord, counted: Counted, *, now: float, interval: float
    ) -> tuple[bool | None, Batch | None]:
        """Decide and queue one request: (limited, a batch to send now or None). (None,
        None) when a counter's total is not known here: send the request synchronously."""
        with self._lock:
            if not all(self._fresh(key, now) for key in counted.all_keys()):
                return None, None
            increments = self._queued.increments
            increments.setdefault(counted.fail_key, 0)  # read-only, but its total is wanted

            def count(key: str) -> int:
                return self._totals[key][0] + self._in_flight.get(key, 0) + increments[key]

            def add(key: str) -> int:
                increments[key] = increments.get(key, 0) + 1
                return count(key)

            limited = over_limit(count, add, counted)
            self._queued.events.append((event, limited))
            return limited, self._take_if_due(now, interval)

    def due(self, *, now: float, interval: float) -> Batch | None:
        """What the sweeper should send now, if anything."""
        with self._lock:
            if not self._queued.events and not self._queued.increments:
                return None
            return self._take_if_due(now, interval)

    def take_all(self) -> Batch | None:
        """Everything queued, whatever the interval (tests, shutdown); None while a send is
        in flight or nothing is queued."""
        return self.due(now=float("inf"), interval=0)

    def busy(self) -> bool:
        with self._lock:
            return self._sending

    def sent(self, totals: dict[str, int] | None, *, now: float) -> None:
        """A batch's send ended: learn the totals Redis returned (None: the send failed,
        its counts are lost and the limits fail open, as on every Redis failure)."""
        with self._lock:
            self._learn(totals or {}, now)
            self._in_flight = {}
            self._sending = False

    def learn(self, totals: dict[str, int], *, now: float) -> None:
        """Totals read from Redis outside a batch (the synchronous script)."""
        with self._lock:
            self._learn(totals, now)

    def _learn(self, totals: dict[str, int], now: float) -> None:
        for key, total in totals.items():
            self._totals[key] = (total, now)
        if now - self._pruned_at > FRESH_FOR:
            self._pruned_at = now
            self._totals = {k: v for k, v in self._totals.items() if self._fresh(k, now)}

    def _fresh(self, key: str, now: float) -> bool:
        known = self._totals.get(key)
        return known is not None and now - known[1] < FRESH_FOR

    def _take_if_due(self, now: float, interval: float) -> Batch | None:
        if self._sending or now - self._sent_at < interval:
            return None
        batch, self._queued = self._queued, Batch()
        self._in_flight = dict(batch.increments)
        self._sending = True
        self._sent_at = now
        return batch
