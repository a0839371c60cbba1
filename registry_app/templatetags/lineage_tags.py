"""Provenance on the pages: the review page's Provenance section, the endpoint page's rollback plan, and
the lineage graph drawn as a server-side SVG (no JavaScript; CSP allows neither inline scripts nor
``style=`` attributes, so every colour comes from classes in app.css).

Every piece of registry text reaches the HTML through ``format_html`` (escaped); the SVG's numbers
are computed here. The two sections are inclusion tags so that each page includes them in one line.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any
from urllib.parse import urlencode

from django import template
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from registry_app.audit.rollback import rollback_plan
from registry_app.mirror.provenance_selectors import GraphView, package_provenance
from registry_app.models import LineageEntity

register = template.Library()

NODE_W, NODE_H, GAP_X, GAP_Y, PAD = 190, 46, 56, 14, 8
LABEL_CHARS = 28
_KIND_LABELS = {"training": "Training job", "processing": "Processing job"}


@register.inclusion_tag("registry_app/partials/provenance.html")
def provenance_section(package: Any, baseline: Any = None) -> dict[str, Any]:
    """The review page's Provenance section (``baseline``: the group's approved version, if any)."""
    return {"package": package, "prov": package_provenance(package, baseline or None)}


@register.inclusion_tag("registry_app/partials/rollback_plan.html")
def rollback_section(overview: Any) -> dict[str, Any]:
    """The endpoint page's rollback plan (steps shown, never run)."""
    return {"overview": overview, "plan": rollback_plan(overview)}


@register.filter
def uri_tail(value: Any, parts: int = 2) -> str:
    """The last ``parts`` segments of a URI or ARN (``…/train/2025-01/``), for narrow cells."""
    text = str(value or "")
    segments = [s for s in text.rstrip("/").split("/") if s]
    if len(segments) <= parts + 1:
        return text
    return "…/" + "/".join(segments[-parts:]) + ("/" if text.endswith("/") else "")


@register.filter
def seconds(value: Any) -> str:
    """``2 h 05 min`` / ``42 min 10 s`` / ``9 s``."""
    if not isinstance(value, int) or value < 0:
        return "—"
    hours, rest = divmod(value, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


@register.filter
def impact_url(value: Any, kind: str = "data") -> str:
    """``/lineage/?data=…`` (or ``artifact`` / ``job``) for a location, ARN or job name; "" for a data
    location the impact page does not take (only ``s3://`` locations are asked about)."""
    text = str(value or "")
    if not text or (kind == "data" and not text.startswith("s3://")):
        return ""
    return f"{reverse('registry:lineage')}?{urlencode({kind: text})}"


# --------------------------------------------------------------------------------------------- the graph


def node_kind(entity: LineageEntity) -> str:
    if entity.job_kind:
        return entity.job_kind
    return {"Artifact": "artifact", "Context": "context", "Action": "action"}.get(entity.lineage_type, "component")


def node_text(entity: LineageEntity, relation: str) -> tuple[str, str, str]:
    """(kind label, short label, full text) of a vertex."""
    if relation == "self":
        return "This package", uri_tail(entity.source_uri, 2) or "model package", entity.source_uri or entity.arn
    if entity.job_kind:
        return _KIND_LABELS.get(entity.job_kind, "Job"), entity.job_name, entity.arn
    kind = entity.entity_type or entity.lineage_type or "Entity"
    if "@sha256:" in entity.source_uri:  # an image by digest: its repository and the digest's start
        repository, _, digest = entity.source_uri.partition("@")
        label = f"{repository.rsplit('/', 1)[-1]}@{digest[7:19]}"
    elif entity.source_uri:
        label = uri_tail(entity.source_uri, 2)
    else:
        label = entity.name or entity.arn.rsplit("/", 1)[-1]
    return kind, label, entity.source_uri or entity.name or entity.arn


def node_link(entity: LineageEntity) -> str:
    if entity.job_kind and entity.job_name:
        return impact_url(entity.job_name, "job")
    if entity.source_uri.startswith("s3://"):
        return impact_url(entity.source_uri, "data")
    if entity.lineage_type == "Artifact":
        return impact_url(entity.arn, "artifact")
    return ""


def layers(ids: list[int], edges: list[tuple[int, int, str]]) -> dict[int, int]:
    """Column of each vertex: the longest path reaching it (sources in column 0); cycles are cut."""
    incoming: dict[int, list[int]] = defaultdict(list)
    outgoing: dict[int, list[int]] = defaultdict(list)
    for source, destination, _ in edges:
        if source != destination:
            outgoing[source].append(destination)
            incoming[destination].append(source)
    pending = {i: len(set(incoming[i])) for i in ids}
    column = {i: 0 for i in ids}
    ready = [i for i in ids if pending[i] == 0]
    done: set[int] = set()
    while ready:
        current = ready.pop(0)
        done.add(current)
        for following in set(outgoing[current]):
            column[following] = max(column[following], column[current] + 1)
            pending[following] -= 1
            if pending[following] == 0:
                ready.append(following)
    for left in [i for i in ids if i not in done]:  # on a cycle: after its placed predecessors
        column[left] = max([column[p] + 1 for p in incoming[left] if p in done] or [0])
    return column


@register.simple_tag
def lineage_graph(graph: GraphView | None) -> SafeString:
    """The package's lineage as an SVG: data and jobs on the left, the package to their right."""
    if graph is None or not graph.entities:
        return format_html('<p class="muted">{}</p>', "No lineage recorded.")
    ids = [e.pk for e in graph.entities]
    column = layers(ids, graph.edges)
    rows: dict[int, list[LineageEntity]] = defaultdict(list)
    for entity in sorted(graph.entities, key=lambda e: (node_kind(e), e.entity_type, e.source_uri, e.arn)):
        rows[column[entity.pk]].append(entity)
    where: dict[int, tuple[int, int]] = {}
    for col, members in rows.items():
        for index, entity in enumerate(members):
            where[entity.pk] = (PAD + col * (NODE_W + GAP_X), PAD + index * (NODE_H + GAP_Y))
    width = PAD * 2 + (max(rows) + 1) * NODE_W + max(rows) * GAP_X
    height = PAD * 2 + max(len(m) for m in rows.values()) * (NODE_H + GAP_Y) - GAP_Y
    paths = format_html_join("", "{}", ((_edge(where[s], where[d], kind),) for s, d, kind in graph.edges))
    nodes = format_html_join(
        "", "{}", ((_node(entity, graph.relations.get(entity.pk, ""), where[entity.pk]),) for entity in graph.entities)
    )
    return format_html(
        '<svg class="lineage-graph" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" '
        'aria-label="{label}"><title>{label}</title>'
        '<defs><marker id="lineage-arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path class="lineage-arrow" d="M 0 0 L 10 5 L 0 10 z"></path></marker></defs>'
        '<g class="lineage-edges">{paths}</g><g class="lineage-nodes">{nodes}</g></svg>',
        w=width,
        h=height,
        label="Lineage: what went into this package and what read it",
        paths=paths,
        nodes=nodes,
    )


def _edge(start: tuple[int, int], end: tuple[int, int], kind: str) -> SafeString:
    x1, y1 = start[0] + NODE_W, start[1] + NODE_H // 2
    x2, y2 = end[0], end[1] + NODE_H // 2
    if x2 <= x1:  # same column or backwards: leave from the bottom instead
        x1, y1 = start[0] + NODE_W // 2, start[1] + NODE_H
    bend = max(24, (x2 - x1) // 2)
    return format_html(
        '<path class="lineage-edge" d="M {} {} C {} {}, {} {}, {} {}" marker-end="url(#lineage-arrow)">'
        "<title>{}</title></path>",
        x1,
        y1,
        x1 + bend,
        y1,
        x2 - bend,
        y2,
        x2,
        y2,
        kind or "association",
    )


def _node(entity: LineageEntity, relation: str, at: tuple[int, int]) -> SafeString:
    kind_label, label, full = node_text(entity, relation)
    short = label if len(label) <= LABEL_CHARS else "…" + label[-(LABEL_CHARS - 1) :]
    classes = f"lineage-node lineage-{node_kind(entity)} lineage-{relation or 'related'}"
    body = format_html(
        '<g class="{cls}" transform="translate({x} {y})"><title>{full}</title>'
        '<rect width="{w}" height="{h}" rx="6"></rect>'
        '<text class="lineage-kind" x="10" y="17">{kind}</text>'
        '<text class="lineage-label" x="10" y="35">{label}</text></g>',
        cls=classes,
        x=at[0],
        y=at[1],
        full=f"{kind_label}: {full}",
        w=NODE_W,
        h=NODE_H,
        kind=kind_label,
        label=short,
    )
    link = node_link(entity)
    return format_html('<a href="{}">{}</a>', link, body) if link else body
