"""Reads behind the events explorer: filters, keyset pages, the live tail and export chunks.

Every read is ordered by (occurred_at, id) descending and positioned by a cursor, the
(occurred_at, id) of a row, never by OFFSET: a page deep in the past costs what the first
page costs, because the database walks the time index from the cursor and stops after one
page. Nothing counts the whole result either. Which index serves which filter on
PostgreSQL is written in docs/architecture.md ("Events explorer").
"""

from __future__ import annotations

import ipaddress
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db.models import BooleanField, F, Func, GenericIPAddressField, Q, QuerySet, Value
from django.db.models.functions import Cast

from base.http import IPAddress, IPNetwork
from clients.models import Client

from .models import TokenEvent

PAGE_SIZE = 50
# Rows one live-tail poll returns at most, and rows the page keeps while tailing.
TAIL_CAP = 200
# Rows per query while exporting: the memory an export holds, whatever its size.
EXPORT_CHUNK = 2000

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Cursor:
    """A row's position in the explorer's order, written `<epoch microseconds>-<id hex>`.

    Simple enough to read in a URL, exact (PostgreSQL and SQLite keep microseconds) and
    free of characters that need escaping in a query string."""

    occurred_at: datetime
    id: uuid.UUID

    @classmethod
    def of(cls, event: TokenEvent) -> Cursor:
        return cls(event.occurred_at, event.id)

    @classmethod
    def decode(cls, text: str) -> Cursor:
        micros, _, hex_id = text.partition("-")
        if not micros.isdigit() or len(micros) > 17:
            raise ValueError("bad cursor time")
        try:
            moment = _EPOCH + timedelta(microseconds=int(micros))
        except OverflowError:
            raise ValueError("cursor time out of range") from None
        return cls(moment, uuid.UUID(hex=hex_id))

    def encode(self) -> str:
        delta = self.occurred_at - _EPOCH
        micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
        return f"{micros}-{self.id.hex}"

    def older(self) -> Q:
        """Rows after this one in the page order. The plain `occurred_at <= t` bound is
        redundant with the OR; it is there so the database can start its index scan (and
        prune day partitions) at the cursor instead of filtering from the top."""
        same_time_older = Q(occurred_at=self.occurred_at, id__lt=self.id)
        return Q(occurred_at__lte=self.occurred_at) & (
            Q(occurred_at__lt=self.occurred_at) | same_time_older
        )

    def newer(self) -> Q:
        same_time_newer = Q(occurred_at=self.occurred_at, id__gt=self.id)
        return Q(occurred_at__gte=self.occurred_at) & (
            Q(occurred_at__gt=self.occurred_at) | same_time_newer
        )


@dataclass(frozen=True)
class EventFilters:
    """What the explorer narrows events by; empty values do not filter."""

    start: datetime | None = None
    end: datetime | None = None
    client_id: str = ""
    outcome: str = ""
    reason: str = ""
    network: IPAddress | IPNetwork | None = None
    endpoint: str = ""
    source: str = ""
    jti: str = ""


class IpWithin(Func):
    """`source_ip` inside a network. On PostgreSQL the column is `inet` and this is its
    `<<=` operator, which a btree index on the column serves as a range scan. SQLite
    stores addresses as text, which orders neither numerically nor by network, so there
    the test is a Python function registered on each connection (`_sqlite_ip_within`):
    a scan, acceptable at the embedded mode's scale."""

    function = "keyward_ip_within"
    output_field = BooleanField()

    def __init__(self, column: str, network: IPNetwork) -> None:
        network_value = Cast(Value(str(network)), output_field=GenericIPAddressField())
        super().__init__(F(column), network_value)

    def as_postgresql(self, compiler, connection, **extra):
        return self.as_sql(
            compiler, connection, template="%(expressions)s", arg_joiner=" <<= ", **extra
        )


def _sqlite_ip_within(address: str | None, network: str | None) -> bool | None:
    if not address or not network:
        return None
    try:
        return ipaddress.ip_address(address) in ipaddress.ip_network(network, strict=False)
    except (TypeError, ValueError):  # an IPv4 address tested against an IPv6 network
        return False


def sqlite_functions_register(sender, connection, **kwargs) -> None:
    """Connected to `connection_created` by the app config."""
    if connection.vendor == "sqlite":
        connection.connection.create_function(
            "keyward_ip_within", 2, _sqlite_ip_within, deterministic=True
        )


def events_filter(filters: EventFilters) -> QuerySet[TokenEvent]:
    """Events matching `filters`, unordered. Each condition is one indexed column."""
    events = TokenEvent.objects.all()
    if filters.start:
        events = events.filter(occurred_at__gte=filters.start)
    if filters.end:
        events = events.filter(occurred_at__lt=filters.end)
    for field in ("client_id", "outcome", "reason", "endpoint", "source", "jti"):
        value = getattr(filters, field)
        if value:
            events = events.filter(**{field: value})
    network = filters.network
    if isinstance(network, ipaddress.IPv4Network | ipaddress.IPv6Network):
        if network.prefixlen == network.max_prefixlen:
            events = events.filter(source_ip=str(network.network_address))
        else:
            events = events.filter(IpWithin("source_ip", network))
    elif network is not None:
        events = events.filter(source_ip=str(network))
    return events


def _newest_first(events: QuerySet[TokenEvent]) -> QuerySet[TokenEvent]:
    return events.order_by("-occurred_at", "-id")


def _oldest_first(events: QuerySet[TokenEvent]) -> QuerySet[TokenEvent]:
    return events.order_by("occurred_at", "id")


def page_query(
    events: QuerySet[TokenEvent], *, before: Cursor | None = None, size: int = PAGE_SIZE
) -> QuerySet[TokenEvent]:
    """The query of an older page (or the newest): `size + 1` rows from the cursor on; the
    extra row says whether more exist. bench/explorer.py explains this very query."""
    if before is not None:
        events = events.filter(before.older())
    return _newest_first(events)[: size + 1]


@dataclass(frozen=True)
class EventPage:
    """One page, newest first, and the cursors of the pages either side (None: none)."""

    events: list[TokenEvent]
    newer: Cursor | None
    older: Cursor | None

    @property
    def newest(self) -> Cursor | None:
        return Cursor.of(self.events[0]) if self.events else None


def events_page(
    events: QuerySet[TokenEvent],
    *,
    before: Cursor | None = None,
    after: Cursor | None = None,
    size: int = PAGE_SIZE,
) -> EventPage:
    """The page of `events` just older than `before`, just newer than `after`, or the
    newest page, in one query.

    A page reached by "newer" that comes back short has reached the top; the newest page
    is shown instead, so the first page always looks the same."""
    if after is not None:
        rows = list(_oldest_first(events.filter(after.newer()))[: size + 1])
        if len(rows) > size:
            shown = rows[:size][::-1]
            return EventPage(shown, newer=Cursor.of(shown[0]), older=Cursor.of(shown[-1]))
        return events_page(events, size=size)
    rows = list(page_query(events, before=before, size=size))
    shown = rows[:size]
    return EventPage(
        shown,
        newer=Cursor.of(shown[0]) if before is not None and shown else None,
        older=Cursor.of(shown[-1]) if len(rows) > size else None,
    )


def events_newer(events: QuerySet[TokenEvent], *, after: Cursor | None, cap: int = TAIL_CAP):
    """For the live tail: up to `cap` of the newest events newer than `after`, newest
    first, and whether more arrived than were returned (the oldest of them left out)."""
    if after is not None:
        events = events.filter(after.newer())
    rows = list(_newest_first(events)[: cap + 1])
    return rows[:cap], len(rows) > cap


def events_iterate(
    events: QuerySet[TokenEvent], *, chunk_size: int = EXPORT_CHUNK
) -> Iterator[TokenEvent]:
    """Every event in `events`, newest first, read `chunk_size` rows per keyset query.

    Holds one chunk in memory at a time and no transaction or server-side cursor open
    between chunks, so an export of any size neither grows the process nor holds back
    vacuum. Events that arrive meanwhile are newer than the first row, so not included:
    the export is what matched when it started."""
    cursor: Cursor | None = None
    while True:
        page = events if cursor is None else events.filter(cursor.older())
        chunk = list(_newest_first(page)[:chunk_size])
        yield from chunk
        if len(chunk) < chunk_size:
            return
        cursor = Cursor.of(chunk[-1])


def known_client_ids(client_ids: set[str]) -> set[str]:
    """Which of `client_ids` name a registered client (one query per page)."""
    if not client_ids:
        return set()
    return set(Client.objects.filter(client_id__in=client_ids).values_list("client_id", flat=True))


def event_reason_label(reason: str) -> str:
    """The reason in plain words; a code Keyward does not know (kept verbatim from another
    service's logs) is shown as it is."""
    try:
        return TokenEvent.Reason(reason).label
    except ValueError:
        return reason.replace("_", " ")


EXPORT_FIELDS = (
    "occurred_at",
    "source",
    "endpoint",
    "client_id",
    "client_known",
    "outcome",
    "reason",
    "status_code",
    "source_ip",
    "scopes_requested",
    "scopes_granted",
    "subject_client_id",
    "jti",
    "secret_id",
    "user_agent",
    "duration_ms",
    "id",
)


def event_as_dict(event: TokenEvent) -> dict:
    """The event with the export's fields: time in ISO 8601 UTC, id as hex with dashes."""
    row = {name: getattr(event, name) for name in EXPORT_FIELDS}
    row["occurred_at"] = event.occurred_at.astimezone(UTC).isoformat().replace("+00:00", "Z")
    row["id"] = str(event.id)
    return row
