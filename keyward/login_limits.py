"""Console login limits: django-axes with three counters, each with its own threshold.

Axes counts failed logins in its AccessAttempt rows (one per username, address and user
agent) and compares one number with one limit. Spraying (many usernames from one address)
and distributed guessing (one username from many addresses) each stay under a pair limit,
so this handler sums the same rows three ways and gives each sum its own threshold:

1. username and address together: `AXES_FAILURE_LIMIT` (a user's own typos);
2. one address across usernames: `KEYWARD_LOGIN_FAILURES_PER_ADDRESS`;
3. one username across addresses: `KEYWARD_LOGIN_FAILURES_PER_USERNAME`.

Failures count while their row's last failure is younger than the window (axes's
`AXES_COOLOFF_TIME`). A count at its threshold locks for a cool-off that starts short and
doubles with every further failure (each one possible only after the previous lock ended),
up to a cap: an attacker can keep a username locked only by keeping on guessing, one guess
per ever longer lock, and never for longer than the cap after the attack stops.

Limits 2 and 3 skip a username on an address it signed in from within
`KEYWARD_LOGIN_KNOWN_ADDRESS_DAYS` (axes's AccessLog): someone spraying or guessing from
elsewhere cannot lock an admin out at their usual address; the pair limit still applies.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_client_username
from axes.models import AccessAttempt, AccessLog
from django.conf import settings
from django.db.models import Max, Sum
from django.http import HttpRequest
from django.utils import timezone


@dataclass(frozen=True)
class Limit:
    """One counter: the AccessAttempt fields it groups by, and its threshold."""

    fields: tuple[str, ...]
    threshold: int


def login_limits() -> list[Limit]:
    return [
        Limit(("username", "ip_address"), settings.AXES_FAILURE_LIMIT),
        Limit(("ip_address",), settings.KEYWARD_LOGIN_FAILURES_PER_ADDRESS),
        Limit(("username",), settings.KEYWARD_LOGIN_FAILURES_PER_USERNAME),
    ]


def cool_off(excess: int) -> timedelta:
    """The lock after reaching a threshold and `excess` more failures: doubles, capped."""
    base = timedelta(minutes=settings.KEYWARD_LOGIN_COOLOFF_MINUTES)
    cap = timedelta(minutes=settings.KEYWARD_LOGIN_COOLOFF_MAX_MINUTES)
    return min(base * 2 ** min(excess, 32), cap)


def _is_known_address(username: str | None, ip_address: str | None) -> bool:
    if not username or not ip_address:
        return False
    since = timezone.now() - timedelta(days=settings.KEYWARD_LOGIN_KNOWN_ADDRESS_DAYS)
    return AccessLog.objects.filter(
        username=username, ip_address=ip_address, attempt_time__gte=since
    ).exists()


def _remaining(limit: Limit, subject: dict, now) -> timedelta:
    """How long `limit` still locks `subject` (zero when it does not)."""
    window_start = now - settings.AXES_COOLOFF_TIME
    rows = AccessAttempt.objects.filter(**subject, attempt_time__gte=window_start)
    counted = rows.aggregate(failures=Sum("failures_since_start"), last=Max("attempt_time"))
    failures = counted["failures"] or 0
    if failures < limit.threshold:
        return timedelta(0)
    return max(counted["last"] + cool_off(failures - limit.threshold) - now, timedelta(0))


def lock_remaining(request: HttpRequest, credentials: dict | None = None) -> timedelta:
    """How long the longest of the limits still locks this request's username and address."""
    username = get_client_username(request, credentials)
    ip_address = request.axes_ip_address
    values = {"username": username, "ip_address": ip_address}
    limits = login_limits()
    if _is_known_address(username, ip_address):
        limits = limits[:1]
    now = timezone.now()
    remaining = [
        _remaining(limit, {field: values[field] for field in limit.fields}, now)
        for limit in limits
        if all(values[field] is not None for field in limit.fields)
    ]
    return max(remaining, default=timedelta(0))


class LoginLimitsHandler(AxesDatabaseHandler):
    """AxesDatabaseHandler whose lock decision is `lock_remaining` (see the module doc)."""

    def get_failures(self, request, credentials: dict | None = None) -> int:
        # Axes compares this one number with AXES_FAILURE_LIMIT (in is_locked and when it
        # records a failure): answer the limit itself while any of our counters locks.
        if lock_remaining(request, credentials) > timedelta(0):
            return settings.AXES_FAILURE_LIMIT
        return 0

    def reset_user_attempts(self, request, credentials: dict | None = None) -> int:
        # A successful login clears only its own username+address pair: an attacker who
        # knows one account's password must not clear their address's spraying count, nor
        # an admin's login the count of guesses at their username from elsewhere.
        username = get_client_username(request, credentials)
        count, _ = AccessAttempt.objects.filter(
            username=username, ip_address=request.axes_ip_address
        ).delete()
        return count
