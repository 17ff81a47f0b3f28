"""Request-level helpers every app needs: who is calling, and whether htmx wants a fragment."""

from __future__ import annotations

import functools
import ipaddress

from django.http import HttpRequest
from django.utils.http import url_has_allowed_host_and_scheme

from base.conf import setting

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@functools.lru_cache(maxsize=8)
def networks_parse(entries: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    """CIDRs (a bare address is /32 or /128); entries that do not parse are left out."""
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(str(entry).strip(), strict=False))
        except ValueError:
            continue
    return tuple(networks)


def ip_parse(value: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(value.strip())
    except ValueError:
        return None


# Parsing and printing an address with ipaddress costs ~30k instructions, 2-3% of a token
# request (callgrind), and the same few socket or proxy addresses come back on every
# request. Bounded, so a flood from many addresses only churns it.
@functools.lru_cache(maxsize=4096)
def _ip_text(value: str) -> str | None:
    """`value` as a canonical address, or None when it is not one."""
    address = ip_parse(value)
    return str(address) if address is not None else None


def client_ip(request: HttpRequest) -> str | None:
    """The socket address, or behind a trusted proxy the right-most untrusted X-Forwarded-For hop.

    Hops left of a trusted proxy are written by whoever the proxy talked to, so only the
    right-most address the proxies did not add themselves can be believed. The token
    service (allowlists, rate limits, events) and the audit trail both use this rule.
    """
    remote_addr = request.META.get("REMOTE_ADDR") or ""
    trusted_entries = setting("KEYWARD_TRUSTED_PROXIES")
    if not trusted_entries:
        return _ip_text(remote_addr)
    remote = ip_parse(remote_addr)
    if remote is None:
        return None
    trusted = networks_parse(tuple(trusted_entries))
    if not any(remote in network for network in trusted):
        return str(remote)
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    for hop in reversed(forwarded.split(",")):
        address = ip_parse(hop)
        if address is None:
            break  # a garbled hop: stop trusting the chain
        if not any(address in network for network in trusted):
            return str(address)
    return str(remote)


def wants_fragment(request: HttpRequest) -> bool:
    """An htmx request for a region of the page. A history-restore request (after a cache
    miss) needs the whole page back."""
    return bool(getattr(request, "htmx", False)) and not request.htmx.history_restore_request


def safe_next_url(request: HttpRequest) -> str:
    """`next` from the form or query when it points at one of our own pages, else ""."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    safe = url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return target if target and safe else ""
