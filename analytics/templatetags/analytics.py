"""{% explore %}: a link to the events explorer filtered to what a table row shows."""

from __future__ import annotations

from django import template

from analytics.charts import Window, explorer_url, window_filters

register = template.Library()


@register.simple_tag
def explore(window: Window | None = None, **filters) -> str:
    """`{% explore window client_id=row.client_id outcome="failure" %}`: the explorer URL
    over `window`'s time range with the filters given (empty ones left out)."""
    if window is not None:
        filters = window_filters(window) | filters
    return explorer_url(**filters)
