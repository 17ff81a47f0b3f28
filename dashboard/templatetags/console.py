"""Template filters and tags every console page uses; a builtin (keyward/settings.py), so
no template has to load it.

- `{{ moment|when }}`: the one date-time format (base.display), in a `<time>` element;
  `{{ moment|when:"never" }}` says what to show when there is none.
- `{% changes entry %}`: an audit entry's before/after as labelled fields (audit.changes),
  rendered by `audit/_changes.html`, on the audit trail and on the client page alike.
- `{{ name|clip:40 }}`: long free text cut to fit, with the whole value in a tooltip.
"""

from __future__ import annotations

import functools

from django import template
from django.contrib.auth.models import User
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.text import capfirst

from audit.changes import entry_changes
from audit.models import AdminAction
from base.display import EMPTY, as_datetime, datetime_html
from base.roles import Role, user_role
from clients.models import Client, Scope, ScopeGrant
from security.models import SecretPolicy

register = template.Library()

# Keys of audit records that are not model fields, or whose model name reads badly.
AUDIT_LABELS = {
    "client_id": "Client ID",
    "can_introspect": "May introspect",
    "access_token_lifetime": "Access-token lifetime (seconds)",
    "allowed_networks": "Allowed networks",
    "owner_email": "Owner",
    "max_secret_age_days": "Maximum secret age (days)",
    "auto_revoke_replaced_after_days": "Auto-revoke replaced secrets after (days)",
    "auto_disable_dormant_after_days": "Auto-disable dormant clients after (days)",
    "hint": "Secret",
    "expires_at": "Expires",
    "secrets": "Valid secrets",
    "new_secret": "New secret",
    "old_secrets": "Previous secrets",
    "grace_seconds": "Previous secrets stay valid for",
    "scope": "Scope",
    "scopes": "Scopes",
    "reason": "Reason",
    "role": "Role",
    "active": "Active",
    "method": "Method",
    "needed_role": "Role needed",
    "next": "Next signing key",
    "promotable_at": "May sign from",
}


@functools.cache
def field_labels() -> dict[str, str]:
    """The models' verbose names, overridden by AUDIT_LABELS. Built once, after app loading."""
    labels: dict[str, str] = {}
    for model in (Client, Scope, ScopeGrant, SecretPolicy, User):
        for field in model._meta.get_fields():
            if hasattr(field, "verbose_name"):
                labels.setdefault(field.name, capfirst(field.verbose_name))
    return labels | AUDIT_LABELS


@register.filter(is_safe=True)
def when(value, empty: str = EMPTY) -> SafeString | str:
    moment = as_datetime(value)
    if moment is None:
        return empty if value in (None, "") else format_html("{}", value)
    return datetime_html(moment)


@register.inclusion_tag("audit/_changes.html")
def changes(entry: AdminAction) -> dict:
    return {"changes": entry_changes(entry.before, entry.after, field_labels())}


@register.filter(is_safe=True)
def clip(value, length: int = 40) -> SafeString:
    text = "" if value is None else str(value)
    if len(text) <= length:
        return format_html("{}", text)
    return format_html('<span title="{}">{}…</span>', text, text[: length - 1].rstrip())


# The console's sections: URL name, label, the least role that sees the link, a longer name
# for links whose label is an abbreviation (title and accessible name), and the template
# of a link that renders itself (Alerts polls its open count).
NAVIGATION = (
    ("dashboard:overview", "Overview", Role.VIEWER, "", ""),
    ("clients:list", "Clients", Role.VIEWER, "", ""),
    ("clients:scope_list", "Scopes", Role.VIEWER, "", ""),
    ("reviews:matrix", "Review", Role.VIEWER, "Scope review", ""),
    ("analytics:events", "Events", Role.VIEWER, "", ""),
    ("audit:list", "Audit", Role.VIEWER, "", ""),
    ("security:health", "Security", Role.VIEWER, "", ""),
    ("alerts:inbox", "Alerts", Role.VIEWER, "", "alerts/_nav_count.html"),
    ("tokens:keys", "Keys", Role.ADMIN, "", ""),
    ("analytics:ingestion_tokens", "Ingestion", Role.ADMIN, "", ""),
    ("dashboard:users", "Users", Role.ADMIN, "", ""),
    ("dashboard:two_factor", "2FA", Role.VIEWER, "Two-factor sign-in", ""),
)


@register.inclusion_tag("dashboard/_navigation.html", takes_context=True)
def navigation(context) -> dict:
    """The section links the user's role may see; the section holding the current page (its
    URL the longest prefix of the path: /clients/scopes/x/ is under Scopes) is marked.
    None while the second sign-in step (two-factor) is pending."""
    request = context.get("request")
    role = user_role(request.user) if request is not None else None
    if role is None or request.session.get("keyward_2fa_pending"):
        return {"items": []}
    links = [
        (reverse(name), label, title, template)
        for name, label, least, title, template in NAVIGATION
        if role >= least
    ]
    path = request.path
    under = [url for url, *_ in links if path == url or (url != "/" and path.startswith(url))]
    current = max(under, key=len, default=None)
    items = [
        {
            "url": url,
            "label": label,
            "title": title,
            "template": template,
            "current": url == current,
        }
        for url, label, title, template in links
    ]
    return {"items": items, "open_alert_count": context.get("open_alert_count")}
