"""Presentational helpers for the registry pages: badges, principals, numbers, times, charts.

Everything that reaches HTML goes through ``format_html``/``format_html_join`` (which escape their
arguments) or is returned as plain text for the template's autoescaping. Nothing here marks
registry-supplied text as safe.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from django import template
from django.utils import timezone
from django.utils.dateformat import format as date_format
from django.utils.html import format_html
from django.utils.safestring import SafeString

from registry_app.evidence.curves import curve_svg, series
from registry_app.evidence.matrix import confusion_view
from registry_app.evidence.numbers import as_float, plain
from registry_app.templatetags import navigation as _navigation

register = template.Library()

EMPTY = "—"

_BADGE_BY_STATUS: dict[str, str] = {
    # Approval (SageMaker ModelApprovalStatus)
    "pendingmanualapproval": "pending",
    "approved": "approved",
    "rejected": "rejected",
    # Package status, endpoints
    "completed": "approved",
    "inservice": "approved",
    "pending": "pending",
    "inprogress": "running",
    "updating": "running",
    "creating": "running",
    "failed": "rejected",
    "deleting": "deleted",
    "deleted": "deleted",
    # Model cards
    "pendingreview": "pending",
    "draft": "muted",
    "archived": "deleted",
    # Sync runs
    "queued": "muted",
    "running": "running",
    "succeeded": "approved",
    "partial": "pending",
    "skipped": "muted",
    # Evaluation reports
    "ok": "approved",
    "fetch_error": "rejected",
    "parse_error": "rejected",
    "digest_mismatch": "rejected",
    "too_large": "rejected",
    # Observations
    "created": "approved",
    "updated": "running",
    "restored": "running",
    # Reproducibility
    "missing": "rejected",
    "shared": "info",
}

_LABEL_BY_STATUS: dict[str, str] = {
    "pendingmanualapproval": "Pending",
    "pendingreview": "Pending review",
    "inprogress": "In progress",
    "inservice": "In service",
    "fetch_error": "Fetch error",
    "parse_error": "Parse error",
    "digest_mismatch": "Digest mismatch",
    "too_large": "Too large",
    "ok": "OK",
}


@register.filter
def badge_class(status: Any) -> str:
    """CSS class for a status badge: pending amber, approved green, rejected red, deleted grey."""
    key = str(status or "").strip().lower()
    return f"badge badge-{_BADGE_BY_STATUS.get(key, 'neutral')}"


@register.filter
def status_label(status: Any) -> str:
    text = str(status or "").strip()
    if not text:
        return EMPTY
    return _LABEL_BY_STATUS.get(text.lower(), text[:1].upper() + text[1:])


@register.simple_tag
def status_badge(status: Any, label: Any = None) -> SafeString:
    """``<span class="badge badge-approved">Approved</span>``; an empty status renders a dash."""
    if not status:
        return format_html('<span class="muted">{}</span>', EMPTY)
    return format_html('<span class="{}">{}</span>', badge_class(status), label or status_label(status))


# The endpoint page's URL, or "" for a name no endpoint page can have (navigation.endpoint_url).
register.filter("endpoint_url", _navigation.endpoint_url)


@register.filter
def principal(user_context: Any) -> str:
    """A SageMaker ``UserContext`` as one name: IamIdentity.SourceIdentity or .Arn, else UserProfileName."""
    if not isinstance(user_context, dict):
        return EMPTY
    identity = user_context.get("IamIdentity")
    if isinstance(identity, dict):
        for key in ("SourceIdentity", "Arn"):
            if identity.get(key):
                return str(identity[key])
    for key in ("UserProfileName", "UserProfileArn"):
        if user_context.get(key):
            return str(user_context[key])
    if isinstance(identity, dict) and identity.get("PrincipalId"):
        return str(identity["PrincipalId"])
    return EMPTY


@register.filter
def num(value: Any, digits: int = 4) -> str:
    """Floats for people: ``0.91200`` -> ``0.912``, ``0.0002`` -> ``0.0002``; never scientific notation."""
    return plain(value, digits)


@register.filter
def headline(metric: Any) -> str:
    """A headline metric as ``auc 0.912``."""
    if metric is None:
        return EMPTY
    return f"{metric.name} {num(metric.value)}"


@register.filter
def duration(seconds: Any) -> str:
    """Seconds (or a ``timedelta``) for people: ``42.0 s``, ``3 min 05 s``, ``2 h 10 min``."""
    if seconds is None:
        return EMPTY
    if isinstance(seconds, dt.timedelta):
        seconds = seconds.total_seconds()
    try:
        total = float(seconds)
    except (TypeError, ValueError):
        return EMPTY
    if total < 60:
        return f"{total:.1f} s"
    minutes, secs = divmod(int(round(total)), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


@register.filter
def when(value: Any) -> SafeString | str:
    """A timestamp as ``<time>`` in the site's time zone, the exact ISO value in its tooltip."""
    if not isinstance(value, dt.datetime):
        return EMPTY
    local = timezone.localtime(value) if timezone.is_aware(value) else value
    return format_html(
        '<time datetime="{}" title="{}">{}</time>',
        local.isoformat(),
        local.isoformat(),
        date_format(local, "Y-m-d H:i"),
    )


@register.filter
def pretty_json(value: Any) -> str:
    """Indented JSON as plain text (the template escapes it)."""
    return json.dumps(value, indent=2, sort_keys=True, default=str)


@register.filter
def calls_by_operation(aws_calls: Any) -> list[tuple[str, int]]:
    """``SyncRun.aws_calls`` as (operation, count), busiest first."""
    if not isinstance(aws_calls, dict):
        return []
    pairs = []
    for name, count in aws_calls.items():
        try:
            pairs.append((str(name), int(count)))
        except (TypeError, ValueError):
            continue
    return sorted(pairs, key=lambda pair: (-pair[1], pair[0]))


@register.filter
def run_error(error: Any) -> dict[str, str]:
    """One ``SyncRun.errors`` item (``{"subject", "message"}`` or a bare string) as subject/message."""
    if isinstance(error, dict):
        return {"subject": str(error.get("subject") or ""), "message": str(error.get("message") or "")}
    return {"subject": "", "message": str(error)}


@register.filter
def humanise(key: Any) -> str:
    """``packages_created`` -> ``Packages created``."""
    text = str(key or "").replace("_", " ").strip()
    return text[:1].upper() + text[1:]


_CURVE_TITLES = {"roc": "ROC curve", "precision_recall": "Precision–recall curve"}


@register.filter
def curve_title(key: Any) -> str:
    """Title of an evaluation-report curve (``roc``, ``precision_recall``, ``roc_2``...)."""
    text = str(key or "")
    base, _, suffix = text.rpartition("_")
    if base and suffix.isdigit() and base in _CURVE_TITLES:
        return f"{_CURVE_TITLES[base]} ({suffix})"
    return _CURVE_TITLES.get(text) or humanise(text)


@register.filter
def dict_items(mapping: Any) -> list[tuple[str, Any]]:
    """A JSON object's items sorted by key (``.items`` in a template would look up a key called "items")."""
    if not isinstance(mapping, dict):
        return []
    return sorted(((str(key), value) for key, value in mapping.items()), key=lambda pair: pair[0])


@register.filter
def tag_pairs(tags: Any) -> list[tuple[str, str]]:
    """Resource tags as (key, value), from a ``{key: value}`` map or AWS's ``[{"Key", "Value"}]`` list."""
    if isinstance(tags, dict):
        return [(str(k), "" if v is None else str(v)) for k, v in sorted(tags.items(), key=lambda kv: str(kv[0]))]
    if isinstance(tags, list):
        return [(str(tag.get("Key", "")), str(tag.get("Value") or "")) for tag in tags if isinstance(tag, dict)]
    return []


# --------------------------------------------------------------------------------------------- charts
# Thin wrappers: the charts are drawn by registry_app.evidence (pure, escaped with format_html).


@register.inclusion_tag("registry_app/partials/matrix.html")
def matrix_table(matrix: Any, caption: str = "", kind: str = "") -> dict[str, Any]:
    """A confusion matrix with class labels, counts and row percentages (rows actual, columns predicted)."""
    return {"caption": caption, "view": confusion_view(matrix, kind)}


@register.simple_tag
def curve_chart(
    curve: Any,
    title: str = "",
    baseline: Any = None,
    baseline_label: str = "",
    stated: Any = None,
    baseline_stated: Any = None,
) -> SafeString:
    """An SVG line chart of ``{"x", "y", "x_label", "y_label"}``, AUC in the legend, ``baseline`` overlaid."""
    if not isinstance(curve, dict):
        return format_html('<span class="muted">{}</span>', EMPTY)
    lines = [s for s in (series("This version", curve, as_float(stated)),) if s is not None]
    if not lines:
        return format_html('<span class="muted">{}</span>', "No plottable points")
    if isinstance(baseline, dict):
        overlay = series(baseline_label or "Approved version", baseline, as_float(baseline_stated), baseline=True)
        if overlay is not None:
            lines.append(overlay)
    x_label, y_label = str(curve.get("x_label") or "x"), str(curve.get("y_label") or "y")
    diagonal = x_label.lower().startswith("false positive")
    return curve_svg(title, x_label, y_label, lines, diagonal=diagonal)


# ============================================================================================
# Navigation (issue 11): endpoint links, the as-of link, date pickers, sync-run error counts and
# links out (console, repository, commit) live in templatetags/navigation.py; they are loaded with
# this library so every template that loads registry_tags has them. Keep other additions above.
# ============================================================================================

register.tags.update(_navigation.register.tags)
register.filters.update(_navigation.register.filters)
