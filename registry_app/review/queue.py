"""Review queues: what waits for my sign-off, everything pending, and what was recently decided.

Constant query counts, whatever the number of pending packages or sign-offs. The "mine" and
"all" tabs read: the user's roles (``permissions.user_roles``, cached on the user for the request),
the stored policies, the pending packages (with card), their groups (with source), then their
sign-offs, metrics, report digests and undelivered decision pushes as plain rows: 8 queries (3 when
nothing is pending; just the roles when "mine" is asked by someone holding no sign-off role). "decided"
reads the decisions (with package, group, source and user) and their pushes: 2 queries.
``queue_counts`` is the "mine" tab tallied per role; the nav counts and an unfiltered tab of the
same request share one computation (memoised on the user object, like the roles).

Each row is ``review.state.verdict`` and ``review.state.signable_roles`` on those rows: the same
computation as the review page and the sign-off service (a sign-off counts while it is current;
metric gates and the card check are evaluated; a package the dashboard already decided, its
decision push not yet delivered, waits for nobody).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db.models import F, Prefetch, QuerySet
from django.db.models.fields.json import KeyTransform
from django.utils import timezone

from registry_app.models import (
    ApprovalPolicy,
    Decision,
    EvaluationReport,
    Metric,
    ModelPackage,
    ModelPackageGroup,
    PushOutbox,
    SignOff,
)
from registry_app.models.registry import ApprovalStatus
from registry_app.permissions import SIGNOFF_ROLES, VIEWER_ROLE, user_roles
from registry_app.review.policies import resolve_policy
from registry_app.review.policy import MetricObservation, PolicySpec, SignOffView, sla_state
from registry_app.review.state import (
    PENDING_OUTCOME,
    effective_status,
    package_fingerprint,
    signable_roles,
    signoff_view,
    verdict,
)

UNDELIVERED_STATES = PushOutbox.UNDELIVERED_STATES

__all__ = [
    "DECIDED_DAYS",
    "SLA_LABELS",
    "TABS",
    "QueueItem",
    "TagFilter",
    "queue_counts",
    "archive_preview",
    "push_with_package",
    "nav_cache_key",
    "queue_cache_clear",
    "queue_for_user",
]

TABS: dict[str, str] = {"mine": "My queue", "all": "All pending", "decided": "Recently decided"}
SLA_LABELS: dict[str, str] = {"ok": "OK", "due_soon": "Due soon", "overdue": "Overdue"}
DECIDED_DAYS = 30
log = logging.getLogger(__name__)

DEFAULT_LIMIT = 200
_MEMO_ATTR = "_governance_queue"

# Pending rows are fingerprinted, which reads the reviewed JSON columns; these it does not need.
_PENDING_DEFERRED = ("raw", "last_modified_by", "model_card__content", "model_card__content_error")
# The decided list needs none of the large JSON columns of a package.
_DEFERRED = (
    "raw",
    "inference_specification",
    "model_metrics",
    "embedded_card_content",
    "metadata_properties",
    "customer_metadata",
    "last_modified_by",
)


@dataclass(frozen=True)
class QueueItem:
    """One row of a queue tab. Pending tabs fill the policy/SLA fields; "decided" fills decision/push."""

    package: ModelPackage
    policy_name: str = ""
    sla_hours: int = 0
    sla: str = ""  # "ok" | "due_soon" | "overdue"
    age_hours: float = 0.0
    missing_roles: list[str] = field(default_factory=list)
    signable_roles: list[str] = field(default_factory=list)  # roles I hold that still need a sign-off
    signed_by_me: bool = False
    outcome: str = "Pending"  # what the current sign-offs already decide: Pending | Approved | Rejected
    decision: Decision | None = None
    push: PushOutbox | None = None

    @property
    def age_label(self) -> str:
        """``5 h`` under two days, ``3.5 d`` after."""
        if self.age_hours < 48:
            return f"{int(self.age_hours)} h"
        return f"{self.age_hours / 24.0:.1f} d"

    @property
    def sla_label(self) -> str:
        return SLA_LABELS.get(self.sla, self.sla)

    @property
    def needs_me(self) -> bool:
        return bool(self.signable_roles)


@dataclass(frozen=True)
class TagFilter:
    key: str
    value: str | None  # None: the group has the key, whatever its value

    @classmethod
    def parse(cls, text: str) -> TagFilter | None:
        """``RiskTier:High`` (key and exact value) or ``RiskTier`` (key present); blank means no filter."""
        text = (text or "").strip()
        if not text:
            return None
        key, sep, value = text.partition(":")
        key = key.strip()
        if not key:
            return None
        return cls(key=key, value=value.strip() if sep else None)

    def apply(self, queryset: QuerySet[Any], field_path: str) -> QuerySet[Any]:
        """Keep rows whose tags JSON object (``{key: value}``) matches, on SQLite and PostgreSQL alike.

        The key is a parameter, never part of a lookup path, so any tag key is safe.
        """
        queryset = queryset.filter(**{f"{field_path}__has_key": self.key})
        if self.value is None:
            return queryset
        return queryset.alias(_tag_value=KeyTransform(self.key, field_path)).filter(_tag_value=self.value)


# --------------------------------------------------------------------------------------------- pending


@dataclass(frozen=True)
class _ReportDigest:
    """What ``package_fingerprint`` reads of a report (``values_list`` rows: no model instances)."""

    slot: str
    sha256: str
    content_digest: str
    s3_uri: str


@dataclass(frozen=True)
class _DecisionPush:
    """What ``effective_status`` reads of an undelivered decision push."""

    kind: str
    state: str
    target_status: str
    created_at: dt.datetime


def _pending_packages(group: str, tag: TagFilter | None) -> list[ModelPackage]:
    """Pending, live packages with what the policy, the fingerprint and the effective status need.

    5 queries (1 when nothing is pending): the packages (with card), their groups (with source,
    one instance per group), then sign-offs, report digests and undelivered decision pushes as
    plain rows; a page of 2,000 pending packages builds no model instance for those.
    """
    pending = ModelPackage.objects.filter(
        approval_status=ApprovalStatus.PENDING, deleted_at__isnull=True, group__deleted_at__isnull=True
    )
    if group:
        pending = pending.filter(group__name=group)
    if tag is not None:
        pending = tag.apply(pending, "group__tags")
    packages = list(
        pending.select_related("model_card")
        .defer(*_PENDING_DEFERRED)
        .prefetch_related(Prefetch("group", queryset=ModelPackageGroup.objects.select_related("source")))
        # Oldest first: created_at is SageMaker's CreationTime; the mirror's first_seen_at fills gaps.
        .order_by(F("created_at").asc(nulls_last=True), "first_seen_at", "pk")
    )
    if not packages:
        return []
    ids = pending.values("pk")
    views: dict[int, list[SignOffView]] = defaultdict(list)
    username = f"user__{get_user_model().USERNAME_FIELD}"
    for package_id, *row in (
        SignOff.objects.filter(package__in=ids)
        .order_by("created_at", "pk")
        .values_list(
            "package_id", "user_id", username, "role", "decision", "fingerprint", "stale_at", "created_at", "comment"
        )
    ):
        views[package_id].append(signoff_view(*row))
    reports: dict[int, list[_ReportDigest]] = defaultdict(list)
    for package_id, *digest in (
        EvaluationReport.objects.filter(package__in=ids)
        .order_by("slot")
        .values_list("package_id", "slot", "sha256", "content_digest", "s3_uri")
    ):
        reports[package_id].append(_ReportDigest(*digest))
    metrics: dict[int, list[MetricObservation]] = defaultdict(list)
    for package_id, name, value, facet, kind in Metric.objects.filter(package__in=ids).values_list(
        "package_id", "name", "value", "facet", "kind"
    ):
        metrics[package_id].append(MetricObservation(name=name, value=value, facet=facet, kind=kind))
    pushes: dict[int, list[_DecisionPush]] = defaultdict(list)
    for package_id, *push in (
        PushOutbox.objects.filter(package__in=ids, kind=PushOutbox.Kind.DECISION, state__in=UNDELIVERED_STATES)
        .exclude(target_status="")
        .values_list("package_id", "kind", "state", "target_status", "created_at")
    ):
        pushes[package_id].append(_DecisionPush(*push))
    for package in packages:
        package.signoff_views = views[package.pk]  # type: ignore[attr-defined]
        package.metric_observations = metrics[package.pk]  # type: ignore[attr-defined]
        package.undelivered_decisions = pushes[package.pk]  # type: ignore[attr-defined]
        # package_fingerprint reads ``package.reports.all()``, which serves a filled prefetch cache.
        cache = package.__dict__.setdefault("_prefetched_objects_cache", {})
        cache["reports"] = reports[package.pk]
    return packages


def _pending_item(
    package: ModelPackage, policy: PolicySpec, *, user: Any, roles: set[str], now: dt.datetime
) -> QueueItem:
    """One pending row: ``review.state.verdict`` and ``signable_roles``, as the review page computes them."""
    views: list[SignOffView] = package.signoff_views  # type: ignore[attr-defined]
    # Marked-stale rows never count, so without an unmarked one the fingerprint cannot matter.
    unmarked = any(not v.fingerprint.startswith("stale:") for v in views)
    fingerprint = package_fingerprint(package, policy=policy)[0] if unmarked else "-"
    state = verdict(
        package,
        policy=policy,
        signoffs=views,
        metrics=package.metric_observations,  # type: ignore[attr-defined]
        fingerprint=fingerprint,
        status=effective_status(package, package.undelivered_decisions),  # type: ignore[attr-defined]
    )
    signed_by_me = any(v.user_id == user.pk and v.fingerprint == fingerprint for v in views)
    wanted = roles & set(state.missing_roles)
    signable = signable_roles(state, package, user, wanted, only_held=True).roles if wanted else []
    created = package.created_at or package.first_seen_at
    sla, age_hours = sla_state(created, now, policy.sla_hours)
    return QueueItem(
        package=package,
        policy_name=policy.name,
        sla_hours=policy.sla_hours,
        sla=sla,
        age_hours=age_hours,
        missing_roles=state.missing_roles,
        signable_roles=signable,
        signed_by_me=signed_by_me,
        outcome=state.outcome if state.outcome != PENDING_OUTCOME else "Pending",
    )


def _signing_roles(user: Any) -> set[str]:
    """The roles the user may sign in (a policy may require roles beyond ``SIGNOFF_ROLES``; viewers sign nothing)."""
    if not getattr(user, "is_authenticated", False):
        return set()
    return {role for role in user_roles(user) if role != VIEWER_ROLE}


def _pending_items(user: Any, *, group: str, tag: TagFilter | None) -> list[QueueItem]:
    """Every pending, live package (filtered) as seen by ``user``; memoised on the user object.

    The user object lives for one request (like the roles ``permissions.user_roles`` caches on
    it), so the nav counts and the queue tab of one page share one computation. A view that
    changes sign-offs and then renders counts calls ``queue_cache_clear`` in between.
    """
    memo: dict[Any, Any] | None = getattr(user, _MEMO_ATTR, None)
    if memo is None:
        memo = {}
        setattr(user, _MEMO_ATTR, memo)
    key = (group, tag)
    if key not in memo:
        if "policies" not in memo:
            memo["policies"] = list(ApprovalPolicy.objects.all())
        roles = _signing_roles(user)
        now = timezone.now()
        memo[key] = [
            _pending_item(package, resolve_policy(memo["policies"], package.group), user=user, roles=roles, now=now)
            for package in _pending_packages(group, tag)
        ]
    items: list[QueueItem] = memo[key]
    return items


def nav_cache_key(user: Any) -> str:
    return f"queue-nav-counts:{user.pk}"


def queue_cache_clear(user: Any) -> None:
    """Forget the memoised queue of ``user`` (after a sign-off, before rendering fresh counts)."""
    if hasattr(user, _MEMO_ATTR):
        delattr(user, _MEMO_ATTR)
    if getattr(user, "pk", None) is not None:
        try:
            cache.delete(nav_cache_key(user))
        except Exception as exc:  # noqa: BLE001 - cache (Redis) down: the entry expires on its own
            log.warning("queue nav cache unavailable (%s): entry left to expire", type(exc).__name__)


# --------------------------------------------------------------------------------------------- decided


def _decided_items(*, group: str, tag: TagFilter | None, limit: int) -> list[QueueItem]:
    since = timezone.now() - dt.timedelta(days=DECIDED_DAYS)
    decisions = (
        Decision.objects.filter(created_at__gte=since)
        .select_related("package__group__source", "decided_by")
        .defer(*(f"package__{name}" for name in _DEFERRED))
        .prefetch_related(Prefetch("pushes", queryset=PushOutbox.objects.order_by("-created_at"), to_attr="push_rows"))
        .order_by("-created_at", "-pk")
    )
    if group:
        decisions = decisions.filter(package__group__name=group)
    if tag is not None:
        decisions = tag.apply(decisions, "package__group__tags")
    items = []
    for decision in decisions[:limit]:
        pushes: list[PushOutbox] = decision.push_rows  # type: ignore[attr-defined]
        items.append(QueueItem(package=decision.package, decision=decision, push=pushes[0] if pushes else None))
    return items


# --------------------------------------------------------------------------------------------- public


def queue_for_user(
    user: Any, *, tab: str = "mine", group: str = "", tag: str = "", limit: int = DEFAULT_LIMIT
) -> list[QueueItem]:
    """The rows of one queue tab, for ``user``.

    * ``mine``: pending, live packages with a role the user holds still needing approvals, on which
      the user holds no current sign-off (in any role), which they did not register, and which no
      current rejection or undelivered decision has decided; oldest first.
    * ``all``: every pending, live package, oldest first (``signable_roles`` still says what the user could sign).
    * ``decided``: the decisions of the last ``DECIDED_DAYS`` days, newest first, with their newest push.

    ``group`` filters by exact group name, ``tag`` by ``Key:Value`` (or ``Key``) on the group's tags.
    Queries: see the module docstring (constant in the number of packages and sign-offs).
    """
    tag_filter = TagFilter.parse(tag)
    limit = max(1, min(int(limit), 1000))
    if tab == "decided":
        return _decided_items(group=group, tag=tag_filter, limit=limit)
    if tab != "all":
        if not _signing_roles(user):
            return []
        return [item for item in _pending_items(user, group=group, tag=tag_filter) if item.needs_me][:limit]
    return _pending_items(user, group=group, tag=tag_filter)[:limit]


def queue_counts(user: Any) -> dict[str, int]:
    """``{role: packages waiting for me in that role}`` for every sign-off role the user holds (zeros kept).

    Roles are in ``SIGNOFF_ROLES`` order. Anonymous users get ``{}`` without a query.
    """
    roles = _signing_roles(user)
    if not roles:
        return {}
    order = list(SIGNOFF_ROLES)
    counts = {role: 0 for role in sorted(roles, key=lambda r: (order.index(r) if r in order else len(order), r))}
    for item in _pending_items(user, group="", tag=None):
        for role in item.signable_roles:
            if role in counts:
                counts[role] += 1
    return counts


# --------------------------------------------------------------------------------------------- lookups


def push_with_package(push_id: Any) -> PushOutbox | None:
    return PushOutbox.objects.select_related("package__group__source").filter(pk=push_id).first()


def archive_preview(group: ModelPackageGroup) -> list[ModelPackage]:
    """The live versions an archive of ``group`` would reject, newest first (2 queries).

    As ``services.decisions.group_archive`` decides: every live version whose effective status (a
    decision still on its way counts) is not already Rejected.
    """
    packages = (
        ModelPackage.objects.filter(group=group, deleted_at__isnull=True)
        .defer(*_DEFERRED)
        .prefetch_related(
            Prefetch(
                "pushes",
                queryset=PushOutbox.objects.filter(kind=PushOutbox.Kind.DECISION, state__in=UNDELIVERED_STATES),
                to_attr="undelivered_decisions",
            )
        )
        .order_by("-version")
    )
    return [
        package
        for package in packages
        if effective_status(package, package.undelivered_decisions) != ApprovalStatus.REJECTED  # type: ignore[attr-defined]
    ]
