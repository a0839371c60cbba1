"""Versions of one group side by side: metrics (with deltas against the first), policy gates, model-card
sections, reproducibility properties and the inference specification, each row marked when the versions
differ. Also the approved version's curves that the review page overlays on this version's charts.

Read only, and a constant number of queries whatever the number of versions, metrics or groups:
``compare_versions`` reads the packages (with their cards), their metrics and the policy rows (3 queries);
``baseline_curves`` reads the approved version's reports (1 query, none without an approved version; its
metrics come from the review selector's prefetch).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db.models import Prefetch

from registry_app.evidence.numbers import EMPTY, DeltaView, delta_view, plain, value_text
from registry_app.evidence.trend import Trend, trends
from registry_app.mirror.cards import card_status_of
from registry_app.mirror.selectors import METADATA_PROPERTY_LABELS, card_view
from registry_app.models import ApprovalPolicy, EvaluationReport, Metric, ModelPackage, ModelPackageGroup
from registry_app.models.registry import REPRODUCIBILITY_KEYS, ApprovalStatus
from registry_app.review.policies import resolve_policy
from registry_app.review.policy import MetricObservation, PolicySpec, evaluate

MAX_VERSIONS = 6
MIN_VERSIONS = 2
_DEFERRED = ("raw", "model_metrics")


@dataclass(frozen=True)
class MetricCell:
    value: str
    delta: DeltaView | None  # against the first version compared; None in the first column


@dataclass(frozen=True)
class MetricRow:
    name: str
    kind: str
    facet: str
    stage: str
    cells: list[MetricCell]
    differs: bool


@dataclass(frozen=True)
class GateCell:
    status: str  # "pass" | "fail" | "missing"
    observed: str
    reason: str


@dataclass(frozen=True)
class GateRow:
    gate: str
    cells: list[GateCell]
    differs: bool


@dataclass(frozen=True)
class TextRow:
    label: str
    values: list[str]  # "" when the version has nothing for it

    @property
    def differs(self) -> bool:
        return len(set(self.values)) > 1

    @property
    def cells(self) -> list[tuple[str, bool]]:
        """Each value and whether it differs from the first version's."""
        first = self.values[0] if self.values else ""
        return [(value, i > 0 and value != first) for i, value in enumerate(self.values)]


@dataclass
class Comparison:
    group: ModelPackageGroup
    packages: list[ModelPackage]  # in version order
    missing: list[int]  # requested versions the group does not have
    policy: PolicySpec | None = None
    metrics: list[MetricRow] = field(default_factory=list)
    gates: list[GateRow] = field(default_factory=list)
    overview: list[TextRow] = field(default_factory=list)
    card: list[TextRow] = field(default_factory=list)
    reproducibility: list[TextRow] = field(default_factory=list)
    inference: list[TextRow] = field(default_factory=list)

    @property
    def differences(self) -> int:
        rows: list[Any] = [*self.metrics, *self.gates, *self.overview, *self.card, *self.reproducibility]
        return sum(1 for row in [*rows, *self.inference] if row.differs)


# --------------------------------------------------------------------------------------------- selector


def compare_versions(group: ModelPackageGroup, versions: list[int]) -> Comparison:
    """The comparison of ``versions`` of ``group`` (already found through the permission-filtered lookup)."""
    wanted = sorted(set(versions))
    packages = list(
        ModelPackage.objects.filter(group=group, version__in=wanted)
        .select_related("model_card")
        .defer(*_DEFERRED)
        .prefetch_related(Prefetch("metrics", queryset=Metric.objects.order_by("kind", "stage", "name", "facet", "pk")))
        .order_by("version")
    )
    found = {p.version for p in packages}
    comparison = Comparison(group=group, packages=packages, missing=[v for v in wanted if v not in found])
    if not packages:
        return comparison
    policy = resolve_policy(ApprovalPolicy.objects.all(), group)
    metrics = [list(p.metrics.all()) for p in packages]
    comparison.policy = policy
    comparison.metrics = metric_rows(metrics)
    comparison.gates = gate_rows(policy, packages, metrics)
    comparison.overview = overview_rows(packages)
    comparison.card = card_rows(packages)
    comparison.reproducibility = reproducibility_rows(packages)
    comparison.inference = inference_rows(packages)
    return comparison


def _key(m: Metric) -> tuple[str, str, str, str]:
    return (m.kind, m.stage, m.name.casefold(), "".join(m.facet.split()).casefold())


def metric_rows(per_version: list[list[Metric]]) -> list[MetricRow]:
    """A row per metric any version reports; deltas are against the first (oldest) version's value."""
    tables: list[dict[tuple[str, str, str, str], Metric]] = []
    order: dict[tuple[str, str, str, str], Metric] = {}
    for metrics in per_version:
        table: dict[tuple[str, str, str, str], Metric] = {}
        for m in metrics:
            table.setdefault(_key(m), m)
            order.setdefault(_key(m), m)
        tables.append(table)
    rows = []
    for key, sample in sorted(order.items(), key=lambda item: item[0]):
        present = [table.get(key) for table in tables]
        reference = present[0].value if present[0] is not None else None
        cells = []
        for i, m in enumerate(present):
            value = m.value if m is not None else None
            delta = None if i == 0 else delta_view(sample.name, sample.kind, value, reference)
            cells.append(MetricCell(plain(value) if m is not None else EMPTY, delta))
        shown = {cell.value for cell in cells}
        rows.append(MetricRow(sample.name, sample.kind, sample.facet, sample.stage, cells, len(shown) > 1))
    return rows


def gate_rows(policy: PolicySpec, packages: list[ModelPackage], metrics: list[list[Metric]]) -> list[GateRow]:
    """Each policy gate evaluated on each version's metrics (sign-offs play no part in a gate)."""
    results = [
        evaluate(
            policy,
            signoffs=[],
            metrics=[MetricObservation(name=m.name, value=m.value, facet=m.facet, kind=m.kind) for m in found],
            card_status=card_status_of(package),
            current_fingerprint="",
        ).gates
        for package, found in zip(packages, metrics, strict=True)
    ]
    rows = []
    for i, gate in enumerate(policy.gates):
        cells = [GateCell(r[i].status, plain(r[i].observed), r[i].reason) for r in results]
        rows.append(
            GateRow(str(gate), cells, len({c.status for c in cells}) > 1 or len({c.observed for c in cells}) > 1)
        )
    return rows


def _rows(labels: list[str], per_version: list[dict[str, str]]) -> list[TextRow]:
    """A row per label some version has a value for (a field empty everywhere is left out)."""
    rows = [TextRow(label, [values.get(label, "") for values in per_version]) for label in labels]
    return [row for row in rows if any(row.values)]


def _union(per_version: list[dict[str, str]]) -> list[str]:
    return list(dict.fromkeys(label for values in per_version for label in values))


def overview_rows(packages: list[ModelPackage]) -> list[TextRow]:
    per_version = [
        {
            "Approval": p.approval_status or "",
            "Package status": p.package_status or "",
            "Created": p.created_at.strftime("%Y-%m-%d %H:%M") if p.created_at else "",
            "Deleted from the registry": "yes" if p.deleted_at else "",
            "Model card status": card_status_of(p),
            "Description": p.description or "",
        }
        for p in packages
    ]
    return _rows(_union(per_version), per_version)


def _card_field_text(field_: Any) -> str:
    if field_.items:
        return "; ".join(field_.items)
    if field_.table:
        return "; ".join(f"{k}: {v}" for k, v in field_.table)
    if field_.matrix is not None or field_.curve is not None:
        return value_text(field_.matrix if field_.matrix is not None else field_.curve)
    return field_.value or ""


def card_rows(packages: list[ModelPackage]) -> list[TextRow]:
    """Model-card fields, labelled ``Section: field``, in the order the versions' cards give them."""
    per_version = []
    for p in packages:
        view = card_view(p)
        values = {
            f"{section.title}: {card_field.label}": _card_field_text(card_field)
            for section in view.sections
            for card_field in section.fields
        }
        per_version.append(values)
    return _rows(_union(per_version), per_version)


def reproducibility_rows(packages: list[ModelPackage]) -> list[TextRow]:
    per_version = []
    for p in packages:
        customer = p.customer_metadata if isinstance(p.customer_metadata, dict) else {}
        props = p.metadata_properties if isinstance(p.metadata_properties, dict) else {}
        values = {key: value_text(customer.get(key)) for key in REPRODUCIBILITY_KEYS}
        for key, label in METADATA_PROPERTY_LABELS.items():
            values[label] = value_text(props.get(key))
        for key, value in props.items():
            if key not in METADATA_PROPERTY_LABELS:
                values[f"Metadata property {key}"] = value_text(value)
        per_version.append(values)
    return _rows(_union(per_version), per_version)


_SPEC_LISTS = (
    ("SupportedContentTypes", "Request content types"),
    ("SupportedResponseMIMETypes", "Response MIME types"),
    ("SupportedRealtimeInferenceInstanceTypes", "Real-time instance types"),
    ("SupportedTransformInstanceTypes", "Batch transform instance types"),
)


def inference_rows(packages: list[ModelPackage]) -> list[TextRow]:
    per_version = []
    for p in packages:
        spec = p.inference_specification if isinstance(p.inference_specification, dict) else {}
        containers = [c for c in spec.get("Containers") or [] if isinstance(c, dict)]
        values: dict[str, str] = {}
        for i, c in enumerate(containers, start=1):
            prefix = f"Container {i}: " if len(containers) > 1 else ""
            source = c.get("ModelDataSource") if isinstance(c.get("ModelDataSource"), dict) else {}
            s3 = source.get("S3DataSource") if isinstance(source.get("S3DataSource"), dict) else {}
            values[f"{prefix}Image"] = value_text(c.get("Image"))
            values[f"{prefix}Image digest"] = value_text(c.get("ImageDigest"))
            values[f"{prefix}Model data"] = value_text(c.get("ModelDataUrl") or s3.get("S3Uri"))
            values[f"{prefix}Framework"] = " ".join(
                value_text(c.get(k)) for k in ("Framework", "FrameworkVersion") if c.get(k)
            )
        for key, label in _SPEC_LISTS:
            items = spec.get(key)
            values[label] = ", ".join(value_text(v) for v in items) if isinstance(items, list) else ""
        per_version.append(values)
    return _rows(_union(per_version), per_version)


# --------------------------------------------------------------------------------------------- overlay


@dataclass(frozen=True)
class BaselineEvidence:
    """The approved version's curves by report slot, and the curve areas its reports state."""

    version: int
    curves: dict[str, dict[str, Any]]  # slot -> {curve key -> curve}
    stated: dict[str, dict[str, float]]  # slot -> {lower-case metric name -> value}, facet-less metrics


def baseline_curves(baseline: ModelPackage | None) -> BaselineEvidence | None:
    """What the review page overlays: ``baseline``'s report curves (1 query; 0 without a baseline)."""
    if baseline is None or baseline.approval_status != ApprovalStatus.APPROVED:
        return None
    reports = list(EvaluationReport.objects.filter(package=baseline).only("pk", "slot", "curves"))
    slot_of = {r.pk: r.slot for r in reports}
    curves = {r.slot: r.curves for r in reports if isinstance(r.curves, dict) and r.curves}
    stated: dict[str, dict[str, float]] = {}
    # The review selector prefetched the baseline's metrics; reading them here costs no query.
    for m in baseline.metrics.all():
        if not m.facet and m.value is not None and m.report_id in slot_of:
            stated.setdefault(slot_of[m.report_id], {}).setdefault(m.name.lower(), m.value)
    return BaselineEvidence(baseline.version, curves, stated)


# --------------------------------------------------------------------------------------------- trend


def group_trends(versions: list[Any]) -> list[Trend]:
    """The headline metrics across a group's live versions (``mirror.selectors.VersionRow``s, whose packages
    carry the prefetched ``headline_candidates``; no query), approved versions marked."""
    return trends(
        (
            row.package.version,
            row.package.approval_status == ApprovalStatus.APPROVED,
            [(m.name, m.value) for m in getattr(row.package, "headline_candidates", [])],
        )
        for row in versions
        if row.package.deleted_at is None
    )
