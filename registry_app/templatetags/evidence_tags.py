"""Evidence on the review, group and comparison pages: deltas that say better or worse in words as well as
colour, metric names with their meaning in ``<abbr title>``, report charts with the approved version
overlaid, and the group's metric trend. Markup only through ``format_html``; registry text stays escaped.
"""

from __future__ import annotations

from typing import Any

from django import template
from django.utils.html import format_html
from django.utils.safestring import SafeString

from registry_app.evidence.curves import curve_order, stated_area
from registry_app.evidence.glossary import Term, lookup
from registry_app.evidence.numbers import NO_DELTA, DeltaView, delta_view
from registry_app.evidence.trend import Trend, chart_groups, trend_svg
from registry_app.templatetags.registry_tags import curve_chart, curve_title

register = template.Library()


@register.simple_tag
def delta_badge(view: DeltaView | None) -> SafeString:
    """``↑ +0.0002 better``: arrow, signed plain decimal, word, and a sentence for screen readers."""
    view = view or NO_DELTA
    if view.meaning == "none":
        return format_html('<span class="muted" title="{}">{}</span>', view.spoken, view.text)
    return format_html(
        '<span class="{}"><span aria-hidden="true">{} {}{}</span><span class="visually-hidden">{}</span></span>',
        view.css,
        view.arrow,
        view.text,
        f" {view.word}" if view.word else "",
        view.spoken,
    )


@register.simple_tag
def metric_delta(name: Any, kind: Any, value: Any, baseline: Any) -> SafeString:
    """The delta of ``value`` from ``baseline`` for metric ``name`` of report ``kind``."""
    return delta_badge(delta_view(str(name or ""), str(kind or ""), value, baseline))


@register.simple_tag
def metric_name(name: Any) -> SafeString:
    """A metric name, with its full name and fair range in ``<abbr title>`` when the glossary knows it."""
    text = str(name or "")
    term = lookup(text)
    if term is None:
        return format_html('<span class="mono">{}</span>', text)
    return format_html('<abbr class="mono" title="{}">{}</abbr>', term.title, text)


@register.simple_tag
def metric_meaning(name: Any) -> str:
    """The full name of a known metric ("" otherwise), shown next to it where there is room."""
    term = lookup(str(name or ""))
    return term.name if term else ""


@register.simple_tag
def metric_fair(name: Any) -> str:
    term = lookup(str(name or ""))
    return term.fair if term else ""


@register.simple_tag
def glossary_terms(names: Any) -> list[Term]:
    """The glossary entries of the metrics named (once each, bias metrics first), for a visible legend."""
    found: dict[str, Term] = {}
    for name in names or []:
        term = lookup(str(getattr(name, "name", name) or ""))
        if term is not None:
            found.setdefault(term.short, term)
    return sorted(found.values(), key=lambda t: (t.stage == "quality", t.stage, t.short))


def _stated(report: Any) -> dict[str, float]:
    metrics = getattr(report, "metrics", None)
    if metrics is None:
        return {}
    return {m.name.lower(): m.value for m in metrics.all() if not m.facet and m.value is not None}


@register.inclusion_tag("registry_app/partials/report_charts.html")
def report_charts(report: Any, baseline: Any = None) -> dict[str, Any]:
    """One report's confusion matrix and curves; ``baseline`` (``review.compare.BaselineEvidence``) overlaid."""
    stated = _stated(report)
    curves = report.curves if isinstance(getattr(report, "curves", None), dict) else {}
    base_curves = baseline.curves.get(report.slot, {}) if baseline is not None else {}
    base_stated = baseline.stated.get(report.slot, {}) if baseline is not None else {}
    charts = []
    for key in sorted(curves, key=curve_order):
        title = curve_title(key)
        overlay = base_curves.get(key)
        label = f"Approved v{baseline.version}" if baseline is not None and overlay is not None else ""
        chart = curve_chart(
            curves[key],
            title,
            baseline=overlay,
            baseline_label=label,
            stated=stated_area(key, stated),
            baseline_stated=stated_area(key, base_stated),
        )
        charts.append((title, chart, bool(label)))
    return {
        "report": report,
        "charts": charts,
        "kind": getattr(report, "kind", ""),
        "baseline_version": baseline.version if baseline is not None else None,
    }


@register.simple_tag
def trend_charts(found: list[Trend]) -> SafeString:
    """The group's metric trends: unit-interval metrics on one chart, others on their own."""
    charts = [
        format_html(
            '<figure class="trend">{}<figcaption>{}</figcaption></figure>',
            trend_svg(group, title := "Trend of " + ", ".join(t.metric for t in group)),
            title,
        )
        for group in chart_groups(found)
    ]
    if not charts:
        return format_html('<p class="muted">{}</p>', "No headline metric to chart yet.")
    return format_html('<div class="charts">{}</div>', format_html("".join(["{}"] * len(charts)), *charts))
