"""Template tags every console form uses: its one-time token and its error summary."""

from __future__ import annotations

from django import template
from django.utils.html import format_html

from base.once import FORM_TOKEN_FIELD, form_token_issue

register = template.Library()
SUMMARY_LABEL_MAX = 40


@register.simple_tag(takes_context=True)
def form_token(context) -> str:
    """<input type=hidden> carrying a new one-time token (base/once.py, form_once)."""
    return format_html(
        '<input type="hidden" name="{}" value="{}">',
        FORM_TOKEN_FIELD,
        form_token_issue(context["request"]),
    )


@register.inclusion_tag("base/_error_summary.html")
def error_summary(form) -> dict:
    """The form's errors listed at its top, each linking to its field; keyward.js moves
    focus to the summary when the page (or an htmx swap) shows one."""
    items = [{"anchor": "", "label": "", "message": error} for error in form.non_field_errors()]
    for field in form:
        # A long label (a confirmation sentence) would only repeat what its message says.
        label = field.label if len(field.label or "") <= SUMMARY_LABEL_MAX else ""
        for error in field.errors:
            items.append({"anchor": field.id_for_label or "", "label": label, "message": error})
    return {"items": items}
