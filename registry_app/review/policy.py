"""Approval policies: which sign-offs and evidence a model package needs before it is approved.

This module is pure: plain frozen dataclasses in, a result out. No ORM, no I/O, no boto3,
so the views, the Celery tasks and the tests can all call it with values they already hold.

* ``MetricGate`` / ``PolicySpec`` describe a policy (JSON-config friendly via ``from_dict``).
* ``select_policy`` picks the policy for a model package group (group-name or tag overrides).
* ``evaluate`` turns sign-offs, normalised metrics and the model-card status into a decision.
* ``check_can_sign`` enforces separation of duties before a sign-off is recorded.
* ``approval_description`` / ``role_flags_for`` build what is written back to SageMaker.
* ``sla_state`` classifies how long a package has waited for review.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "DEFAULT_POLICY",
    "DEFAULT_ROLE_FLAGS",
    "DEFAULT_ROLES",
    "GATE_OPS",
    "GateResult",
    "MetricGate",
    "MetricObservation",
    "PolicyError",
    "PolicyOverride",
    "PolicyResult",
    "PolicySpec",
    "RoleProgress",
    "SignOffNotAllowed",
    "SignOffView",
    "approval_description",
    "check_can_sign",
    "default_flag_for_role",
    "evaluate",
    "role_flags_for",
    "select_policy",
    "sla_state",
]

# --------------------------------------------------------------------------------------------
# Constants and errors
# --------------------------------------------------------------------------------------------

APPROVED = "Approved"
REJECTED = "Rejected"
PENDING = "Pending"
PENDING_MANUAL_APPROVAL = "PendingManualApproval"

APPROVE = "approve"
REJECT = "reject"

GATE_OPS: tuple[str, ...] = (">=", ">", "<=", "<", "==", "abs<=")

DEFAULT_ROLES: dict[str, int] = {"ml-lead": 1, "fairness": 1, "compliance": 1}
DEFAULT_ROLE_FLAGS: dict[str, str] = {
    "ml-lead": "MLEngineerApproved",
    "fairness": "FairnessApproved",
    "compliance": "ComplianceApproved",
}
DEFAULT_SLA_HOURS = 72
MAX_SLA_HOURS = 24 * 366
DUE_SOON_FRACTION = 0.75
DESCRIPTION_LIMIT = 1024  # SageMaker ApprovalDescription maximum length
ELLIPSIS = "…"

_METRIC_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]{0,127}")
_ROLE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}")
_NUMBER_RE = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
# Operators (and common mistakes, so the error can say what is wrong rather than "cannot parse").
_OP_SEARCH_RE = re.compile(r"(?<![A-Za-z0-9_.\-])abs<=|>=|<=|==|!=|=>|=<|≥|≤|>|<|=")
_OP_ALIASES = {"≥": ">=", "≤": "<="}
_ABS_LHS_RE = re.compile(r"abs\s*\(\s*(?P<body>[^()]*?)\s*\)", re.IGNORECASE)
_FLAG_EXTRA_CHARS = frozenset("_.:/=+-@")
_POLICY_KEYS = frozenset({"name", "required_roles", "require_card_approved", "gates", "sla_hours", "role_flags"})


class PolicyError(ValueError):
    """A policy, gate or policy input is invalid. The message is meant for the person editing it."""


class SignOffNotAllowed(Exception):
    """A user may not record this sign-off. ``code`` is a stable machine-readable reason."""

    def __init__(self, message: str, *, code: str = "not_allowed") -> None:
        super().__init__(message)
        self.message = message
        self.code = code


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------


def _fmt_threshold(value: float) -> str:
    """Shortest text that parses back to exactly ``value`` (``0.85``, ``4.0``, ``1e-05``)."""
    return repr(float(value))


def _fmt_value(value: float, *, distinct_from: float | None = None) -> str:
    """Readable observed value: 2-4 decimals for ordinary magnitudes, ``g`` format otherwise.

    When rounding would make the value print identically to the threshold it is compared
    with (``0.84999`` vs ``0.85``) the exact ``repr`` is used so the sentence is not absurd.
    """
    if not math.isfinite(value):
        text = repr(value)
    elif value == 0 or 1e-3 <= abs(value) < 1e6:
        text = f"{value:.4f}".rstrip("0")
        whole, _, frac = text.partition(".")
        text = f"{whole}.{frac.ljust(2, '0')}"
    else:
        text = f"{value:.4g}"
    if distinct_from is not None and value != distinct_from:
        try:
            same = float(text) == distinct_from
        except ValueError:
            same = False
        if same:
            text = repr(float(value))
    return text


def _norm_name(name: str) -> str:
    return name.strip().casefold()


def _norm_facet(facet: str) -> str:
    return re.sub(r"\s+", "", facet).casefold()


def default_flag_for_role(role: str) -> str:
    """Metadata flag a role writes when no explicit mapping exists: ``data-privacy`` -> ``DataPrivacyApproved``."""
    if role in DEFAULT_ROLE_FLAGS:
        return DEFAULT_ROLE_FLAGS[role]
    parts = [p for p in re.split(r"[^0-9A-Za-z]+", role) if p]
    return "".join(p[:1].upper() + p[1:] for p in parts) + "Approved"


def _valid_flag_key(key: str) -> bool:
    """SageMaker CustomerMetadataProperties key: ``^[\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]{1,128}$``."""
    if not 1 <= len(key) <= 128:
        return False
    return all(ch in _FLAG_EXTRA_CHARS or unicodedata.category(ch)[0] in "LZN" for ch in key)


def _plain_text(text: str) -> str:
    """Collapse whitespace and drop control/format/unassigned/surrogate characters."""
    out: list[str] = []
    for ch in text:
        cat = unicodedata.category(ch)
        if ch.isspace() or cat in ("Zl", "Zp"):
            out.append(" ")
        elif cat[0] == "C":  # Cc, Cf, Cs, Co, Cn
            continue
        else:
            out.append(ch)
    return re.sub(r" {2,}", " ", "".join(out)).strip()


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


# --------------------------------------------------------------------------------------------
# Metric gates
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MetricGate:
    """A threshold on one normalised evaluation metric, e.g. ``auc >= 0.85`` or ``abs(DPPL) <= 0.1``."""

    metric: str
    op: str
    threshold: float
    facet: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.metric, str) or not _METRIC_NAME_RE.fullmatch(self.metric):
            raise PolicyError(
                f"invalid metric name {self.metric!r}: use letters, digits, '_', '.' or '-', starting with a letter"
            )
        if self.op not in GATE_OPS:
            raise PolicyError(f"unsupported operator {self.op!r}; use one of {', '.join(GATE_OPS)}")
        if isinstance(self.threshold, bool) or not isinstance(self.threshold, int | float):
            raise PolicyError(f"threshold for {self.metric} must be a number, got {self.threshold!r}")
        threshold = float(self.threshold)
        if not math.isfinite(threshold):
            raise PolicyError(f"threshold for {self.metric} must be a finite number, got {self.threshold!r}")
        if self.op == "abs<=" and threshold < 0:
            raise PolicyError(f"abs({self.metric}) <= {threshold!r} can never pass: the threshold is negative")
        if not isinstance(self.facet, str):
            raise PolicyError(f"facet for {self.metric} must be text")
        facet = self.facet.strip()
        if any(ch in "[]()" for ch in facet) or any(unicodedata.category(ch)[0] == "C" for ch in facet):
            raise PolicyError(
                f"invalid facet {self.facet!r}: brackets, parentheses and control characters are not allowed"
            )
        object.__setattr__(self, "threshold", threshold)
        object.__setattr__(self, "facet", facet)

    @classmethod
    def parse(cls, text: str) -> MetricGate:
        """Parse ``"auc >= 0.85"``, ``"mse<=4"``, ``"abs(DPPL) <= 0.1"``, ``"DPPL[Gender=0] <= 0.1"``."""
        if not isinstance(text, str):
            raise PolicyError(f"a metric gate must be text like 'auc >= 0.85', got {type(text).__name__}")
        source = text.strip()
        if not source:
            raise PolicyError("empty metric gate; expected something like 'auc >= 0.85'")
        # Hide facet contents (which may contain '=' or '<') from the operator search.
        masked = re.sub(r"\[[^\]]*\]", lambda m: "[" + "#" * (len(m.group()) - 2) + "]", source)
        op_match = _OP_SEARCH_RE.search(masked)
        if op_match is None:
            raise PolicyError(
                f"no comparison operator in gate {text!r}; expected '<metric> <op> <number>' "
                f"with op one of {', '.join(GATE_OPS)}, e.g. 'auc >= 0.85'"
            )
        op = _OP_ALIASES.get(op_match.group(), op_match.group())
        if op not in GATE_OPS:
            raise PolicyError(f"unsupported operator {op!r} in gate {text!r}; use one of >=, >, <=, <, ==")
        lhs = source[: op_match.start()].strip()
        rhs = source[op_match.end() :].strip()
        if _OP_SEARCH_RE.search(re.sub(r"\[[^\]]*\]", "[]", rhs)):
            raise PolicyError(f"gate {text!r} has more than one comparison operator")
        if not rhs:
            raise PolicyError(f"gate {text!r} has no threshold after {op!r}")
        if not _NUMBER_RE.fullmatch(rhs):
            raise PolicyError(f"threshold {rhs!r} in gate {text!r} is not a number")
        threshold = float(rhs)
        if not math.isfinite(threshold):
            raise PolicyError(f"threshold {rhs!r} in gate {text!r} is not a finite number")

        abs_match = _ABS_LHS_RE.fullmatch(lhs)
        if abs_match is not None:
            if op not in ("<=", "abs<="):
                raise PolicyError(f"abs(...) gates only support '<=' (as in 'abs(DPPL) <= 0.1'), got {op!r}")
            op = "abs<="
            lhs = abs_match.group("body")
        if not lhs:
            raise PolicyError(f"gate {text!r} has no metric name before {op_match.group()!r}")
        name_match = re.fullmatch(r"(?P<name>[^\[\]\s]+)\s*(?:\[(?P<facet>[^\[\]]*)\])?", lhs)
        if name_match is None:
            raise PolicyError(
                f"cannot read metric {lhs!r} in gate {text!r}; expected a name with an optional facet, "
                "e.g. 'DPPL[Gender=0]'"
            )
        name = name_match.group("name")
        facet_text = name_match.group("facet")
        if facet_text is not None and not facet_text.strip():
            raise PolicyError(f"empty facet brackets in gate {text!r}; write e.g. 'DPPL[Gender=0]' or drop the []")
        return cls(metric=name, op=op, threshold=threshold, facet=(facet_text or "").strip())

    @property
    def subject(self) -> str:
        """``auc`` or ``DPPL[Gender=0]``."""
        return f"{self.metric}[{self.facet}]" if self.facet else self.metric

    def __str__(self) -> str:
        if self.op == "abs<=":
            return f"abs({self.subject}) <= {_fmt_threshold(self.threshold)}"
        return f"{self.subject} {self.op} {_fmt_threshold(self.threshold)}"

    def holds(self, value: float) -> bool:
        """Whether an observed value satisfies the gate (``==`` tolerates float rounding)."""
        t = self.threshold
        if self.op == ">=":
            return value >= t
        if self.op == ">":
            return value > t
        if self.op == "<=":
            return value <= t
        if self.op == "<":
            return value < t
        if self.op == "==":
            return math.isclose(value, t, rel_tol=1e-9, abs_tol=1e-12)
        return abs(value) <= t  # abs<=

    def badness(self, value: float) -> float:
        """Larger means further from passing; used to pick the worst of several observations."""
        t = self.threshold
        if self.op in (">=", ">"):
            return t - value
        if self.op in ("<=", "<"):
            return value - t
        if self.op == "==":
            return abs(value - t)
        return abs(value) - t


# --------------------------------------------------------------------------------------------
# Policies
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PolicySpec:
    """An approval policy. ``role_flags`` is normalised to exactly one flag per required role."""

    name: str
    required_roles: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_ROLES))
    require_card_approved: bool = False
    gates: tuple[MetricGate, ...] = ()
    sla_hours: int = DEFAULT_SLA_HOURS
    role_flags: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_ROLE_FLAGS))

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise PolicyError("a policy needs a non-empty name")
        if len(self.name) > 128:
            raise PolicyError(f"policy name {self.name[:40]!r}… is longer than 128 characters")
        if not isinstance(self.required_roles, Mapping) or not self.required_roles:
            raise PolicyError(f"policy {self.name!r}: required_roles must list at least one role")
        roles: dict[str, int] = {}
        for role, count in self.required_roles.items():
            if not isinstance(role, str) or not _ROLE_RE.fullmatch(role):
                raise PolicyError(
                    f"policy {self.name!r}: invalid role name {role!r} "
                    "(letters, digits, '_', '.', '-'; up to 64 characters)"
                )
            if isinstance(count, bool) or not isinstance(count, int):
                raise PolicyError(
                    f"policy {self.name!r}: sign-off count for {role!r} must be an integer, got {count!r}"
                )
            if count < 1:
                raise PolicyError(f"policy {self.name!r}: role {role!r} needs at least 1 sign-off, got {count}")
            roles[role] = count
        if not isinstance(self.role_flags, Mapping):
            raise PolicyError(f"policy {self.name!r}: role_flags must map role names to metadata keys")
        flags: dict[str, str] = {}
        for role in roles:
            flag = self.role_flags.get(role) or default_flag_for_role(role)
            if not isinstance(flag, str) or not _valid_flag_key(flag):
                raise PolicyError(
                    f"policy {self.name!r}: metadata flag {flag!r} for role {role!r} is not a valid "
                    "CustomerMetadataProperties key (1-128 letters, digits, spaces or _ . : / = + - @)"
                )
            flags[role] = flag
        seen: dict[str, str] = {}
        for role, flag in flags.items():
            if flag in seen:
                raise PolicyError(f"policy {self.name!r}: roles {seen[flag]!r} and {role!r} both write flag {flag!r}")
            seen[flag] = role
        gates = tuple(self.gates)
        for gate in gates:
            if not isinstance(gate, MetricGate):
                raise PolicyError(f"policy {self.name!r}: gates must be MetricGate values, got {gate!r}")
        if isinstance(self.sla_hours, bool) or not isinstance(self.sla_hours, int):
            raise PolicyError(
                f"policy {self.name!r}: sla_hours must be a whole number of hours, got {self.sla_hours!r}"
            )
        if not 1 <= self.sla_hours <= MAX_SLA_HOURS:
            raise PolicyError(f"policy {self.name!r}: sla_hours must be between 1 and {MAX_SLA_HOURS}")
        if not isinstance(self.require_card_approved, bool):
            raise PolicyError(f"policy {self.name!r}: require_card_approved must be true or false")
        object.__setattr__(self, "required_roles", roles)
        object.__setattr__(self, "role_flags", flags)
        object.__setattr__(self, "gates", gates)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PolicySpec:
        """Build a policy from JSON-shaped data (gates as strings). Missing keys take the defaults."""
        if not isinstance(data, Mapping):
            raise PolicyError(f"a policy must be a JSON object, got {type(data).__name__}")
        unknown = sorted(str(k) for k in data if k not in _POLICY_KEYS)
        if unknown:
            raise PolicyError(
                f"unknown policy key(s): {', '.join(unknown)}; allowed: {', '.join(sorted(_POLICY_KEYS))}"
            )
        if "name" not in data:
            raise PolicyError("a policy needs a 'name'")
        name = data["name"]
        if not isinstance(name, str):
            raise PolicyError(f"policy name must be text, got {name!r}")
        kwargs: dict[str, Any] = {"name": name}

        if "required_roles" in data:
            roles = data["required_roles"]
            if not isinstance(roles, Mapping):
                raise PolicyError(f"policy {name!r}: required_roles must be an object of role -> count")
            if not roles:
                raise PolicyError(f"policy {name!r}: required_roles must list at least one role")
            kwargs["required_roles"] = dict(roles)
        role_names = set(kwargs.get("required_roles", DEFAULT_ROLES))

        if "role_flags" in data:
            flags = data["role_flags"]
            if not isinstance(flags, Mapping):
                raise PolicyError(f"policy {name!r}: role_flags must be an object of role -> metadata key")
            stray = sorted(str(r) for r in flags if r not in role_names)
            if stray:
                raise PolicyError(
                    f"policy {name!r}: role_flags names role(s) not in required_roles: {', '.join(stray)}"
                )
            for role, flag in flags.items():
                if not isinstance(flag, str) or not _valid_flag_key(flag):
                    raise PolicyError(
                        f"policy {name!r}: metadata flag {flag!r} for role {role!r} is not a valid "
                        "CustomerMetadataProperties key (1-128 letters, digits, spaces or _ . : / = + - @)"
                    )
            kwargs["role_flags"] = dict(flags)

        if "gates" in data:
            raw_gates = data["gates"]
            if isinstance(raw_gates, str) or not isinstance(raw_gates, Sequence):
                raise PolicyError(f"policy {name!r}: gates must be a list of strings like 'auc >= 0.85'")
            gates: list[MetricGate] = []
            for raw in raw_gates:
                if isinstance(raw, MetricGate):
                    gates.append(raw)
                    continue
                if not isinstance(raw, str):
                    raise PolicyError(f"policy {name!r}: each gate must be a string like 'auc >= 0.85', got {raw!r}")
                try:
                    gates.append(MetricGate.parse(raw))
                except PolicyError as exc:
                    raise PolicyError(f"policy {name!r}: {exc}") from exc
            kwargs["gates"] = tuple(gates)

        for key in ("require_card_approved", "sla_hours"):
            if key in data:
                kwargs[key] = data[key]
        return cls(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        """JSON-shaped form; ``PolicySpec.from_dict(p.to_dict()) == p``."""
        return {
            "name": self.name,
            "required_roles": dict(self.required_roles),
            "require_card_approved": self.require_card_approved,
            "gates": [str(g) for g in self.gates],
            "sla_hours": self.sla_hours,
            "role_flags": dict(self.role_flags),
        }

    def flag_for(self, role: str) -> str:
        return self.role_flags.get(role) or default_flag_for_role(role)


DEFAULT_POLICY = PolicySpec(name="default")


@dataclass(frozen=True)
class PolicyOverride:
    """Applies ``policy`` to one group (``group_name``) or to groups tagged ``tag_key=tag_value``."""

    policy: PolicySpec
    group_name: str = ""
    tag_key: str = ""
    tag_value: str = ""
    priority: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.policy, PolicySpec):
            raise PolicyError("a policy override needs a PolicySpec")
        if bool(self.group_name) == bool(self.tag_key):
            raise PolicyError(f"override for policy {self.policy.name!r} must set exactly one of group_name or tag_key")
        if self.tag_value and not self.tag_key:
            raise PolicyError(f"override for policy {self.policy.name!r} sets tag_value without tag_key")
        if isinstance(self.priority, bool) or not isinstance(self.priority, int):
            raise PolicyError(f"override for policy {self.policy.name!r}: priority must be an integer")

    def matches_group(self, group_name: str) -> bool:
        # SageMaker resource names are unique case-insensitively (ARNs are lower-cased).
        return bool(self.group_name) and self.group_name.casefold() == group_name.casefold()

    def matches_tags(self, tags: Mapping[str, str]) -> bool:
        # Tags are case-sensitive in AWS; the value must match exactly ("" matches only an empty value).
        return bool(self.tag_key) and self.tag_key in tags and tags[self.tag_key] == self.tag_value


def select_policy(
    group_name: str,
    group_tags: dict[str, str],
    overrides: list[PolicyOverride],
    default: PolicySpec,
) -> PolicySpec:
    """The policy for a group: a group-name override beats any tag override, which beats ``default``.

    Among several candidates of the same kind the highest ``priority`` wins; ties are broken by
    policy name (then tag key/value) so the choice never depends on list order.
    """

    def rank(o: PolicyOverride) -> tuple[int, str, str, str]:
        return (-o.priority, o.policy.name, o.tag_key, o.tag_value)

    by_name = [o for o in overrides if o.matches_group(group_name)]
    if by_name:
        return min(by_name, key=rank).policy
    tags = group_tags or {}
    by_tag = [o for o in overrides if o.matches_tags(tags)]
    if by_tag:
        return min(by_tag, key=rank).policy
    return default


# --------------------------------------------------------------------------------------------
# Evaluation inputs and results
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MetricObservation:
    """One normalised metric value from an evaluation report (``kind`` e.g. model_quality, bias)."""

    name: str
    value: float | None
    facet: str = ""
    kind: str = ""


@dataclass(frozen=True)
class SignOffView:
    """A recorded sign-off. ``fingerprint`` identifies the reviewed content at signing time."""

    user_id: int
    username: str
    role: str
    decision: str  # "approve" | "reject"
    fingerprint: str
    signed_at: datetime
    comment: str = ""

    def __post_init__(self) -> None:
        if self.decision not in (APPROVE, REJECT):
            raise PolicyError(f"sign-off decision must be 'approve' or 'reject', got {self.decision!r}")

    @property
    def is_approval(self) -> bool:
        return self.decision == APPROVE


@dataclass(frozen=True)
class GateResult:
    gate: MetricGate
    status: str  # "pass" | "fail" | "missing"
    observed: float | None
    reason: str


@dataclass(frozen=True)
class RoleProgress:
    role: str
    needed: int
    approvals: list[SignOffView]
    stale: list[SignOffView]
    rejections: list[SignOffView]

    @property
    def satisfied(self) -> bool:
        """Enough current approvals and no current rejection in this role."""
        return len(self.approvals) >= self.needed and not self.rejections

    @property
    def remaining(self) -> int:
        return max(0, self.needed - len(self.approvals))


@dataclass(frozen=True)
class PolicyResult:
    decision: str  # "Approved" | "Rejected" | "Pending"
    gates: list[GateResult]
    roles: list[RoleProgress]
    card_check: str  # "pass" | "fail" | "not_required"
    card_reason: str
    reasons: list[str]

    @property
    def all_gates_pass(self) -> bool:
        return all(g.status == "pass" for g in self.gates)

    @property
    def missing_roles(self) -> list[str]:
        return [r.role for r in self.roles if r.remaining > 0]


# --------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Tally:
    """Sign-offs sorted out: current ones per role, stale ones, and ones ignored for SoD."""

    current: dict[str, list[SignOffView]]
    stale: dict[str, list[SignOffView]]
    ignored: list[tuple[SignOffView, SignOffView]]  # (ignored, the sign-off that user made first)


def _tally(signoffs: Iterable[SignOffView], current_fingerprint: str) -> _Tally:
    # 1. Each (user, role) counts once: the latest sign-off supersedes earlier ones (re-sign after stale).
    latest: dict[tuple[int, str], SignOffView] = {}
    for s in signoffs:
        key = (s.user_id, s.role)
        if key not in latest or s.signed_at >= latest[key].signed_at:
            latest[key] = s
    ordered = sorted(latest.values(), key=lambda s: (s.signed_at, s.user_id, s.role))
    current: dict[str, list[SignOffView]] = {}
    stale: dict[str, list[SignOffView]] = {}
    first_role_of_user: dict[int, SignOffView] = {}
    ignored: list[tuple[SignOffView, SignOffView]] = []
    for s in ordered:
        if s.fingerprint != current_fingerprint:
            stale.setdefault(s.role, []).append(s)
            continue
        # 2. Separation of duties (defence in depth): a person's current sign-offs count for one role only,
        #    the one they signed first.
        first = first_role_of_user.get(s.user_id)
        if first is not None:
            ignored.append((s, first))
            continue
        first_role_of_user[s.user_id] = s
        current.setdefault(s.role, []).append(s)
    return _Tally(current=current, stale=stale, ignored=ignored)


def _role_progress(policy: PolicySpec, tally: _Tally) -> list[RoleProgress]:
    progress: list[RoleProgress] = []
    for role, needed in policy.required_roles.items():
        current = tally.current.get(role, [])
        progress.append(
            RoleProgress(
                role=role,
                needed=needed,
                approvals=[s for s in current if s.is_approval],
                stale=list(tally.stale.get(role, [])),
                rejections=[s for s in current if not s.is_approval],
            )
        )
    return progress


def _evaluate_gate(gate: MetricGate, metrics: Sequence[MetricObservation]) -> GateResult:
    name = _norm_name(gate.metric)
    candidates = [m for m in metrics if _norm_name(m.name) == name]
    if gate.facet:
        facet = _norm_facet(gate.facet)
        candidates = [m for m in candidates if _norm_facet(m.facet) == facet]
    if not candidates:
        where = f" for facet {gate.facet}" if gate.facet else ""
        return GateResult(gate, "missing", None, f"no metric named {gate.metric}{where} in the evaluation reports")

    def label(m: MetricObservation) -> str:
        return f"{gate.metric}[{m.facet}]" if m.facet else gate.metric

    present: list[tuple[MetricObservation, float]] = [
        (m, float(m.value)) for m in candidates if m.value is not None and not math.isnan(m.value)
    ]
    absent = [m for m in candidates if m.value is None or math.isnan(m.value)]
    failing = [(m, v) for m, v in present if not gate.holds(v)]
    t_text = _fmt_threshold(gate.threshold)

    if failing:
        worst, value = max(failing, key=lambda mv: gate.badness(mv[1]))
        reason = _fail_sentence(gate, label(worst), value, t_text)
        others = [label(m) for m, _ in failing if m is not worst]
        if others:
            reason += f"; also failing: {', '.join(others)}"
        if absent:
            reason += f"; no value for: {', '.join(label(m) for m in absent)}"
        return GateResult(gate, "fail", value, reason)
    if absent:
        labels = ", ".join(label(m) for m in absent)
        return GateResult(gate, "missing", None, f"{labels} has no value in the evaluation reports")
    worst, value = max(present, key=lambda mv: gate.badness(mv[1]))
    reason = _pass_sentence(gate, label(worst), value, t_text)
    if len(present) > 1:
        reason += f" (worst of {len(present)} values)"
    return GateResult(gate, "pass", value, reason)


_PASS_SYMBOL = {">=": "≥", ">": ">", "<=": "≤", "<": "<", "==": "=", "abs<=": "≤"}


def _pass_sentence(gate: MetricGate, label: str, value: float, t_text: str) -> str:
    if gate.op == "abs<=":
        return f"|{label}| = {_fmt_value(abs(value), distinct_from=gate.threshold)} ≤ {t_text}"
    if gate.op == "==":
        return f"{label} = {_fmt_value(value)} equals {t_text}"
    return f"{label} = {_fmt_value(value, distinct_from=gate.threshold)} {_PASS_SYMBOL[gate.op]} {t_text}"


def _fail_sentence(gate: MetricGate, label: str, value: float, t_text: str) -> str:
    shown = _fmt_value(value, distinct_from=gate.threshold)
    if gate.op == ">=":
        return f"{label} = {shown} is below {t_text}"
    if gate.op == ">":
        return f"{label} = {shown} is not above {t_text}"
    if gate.op == "<=":
        return f"{label} = {shown} is above {t_text}"
    if gate.op == "<":
        return f"{label} = {shown} is not below {t_text}"
    if gate.op == "==":
        return f"{label} = {shown} is not equal to {t_text}"
    magnitude = _fmt_value(abs(value), distinct_from=gate.threshold)
    return f"|{label}| = {magnitude} (value {shown}) is above {t_text}"


def _card_check(policy: PolicySpec, card_status: str | None) -> tuple[str, str]:
    if not policy.require_card_approved:
        return "not_required", "the policy does not require an approved model card"
    if card_status is None or not card_status.strip():
        return "fail", "the package has no model card; the policy requires an Approved model card"
    if card_status.strip() == APPROVED:
        return "pass", "the model card is Approved"
    return "fail", f"the model card is {card_status.strip()}; the policy requires it to be Approved"


def evaluate(
    policy: PolicySpec,
    *,
    signoffs: list[SignOffView],
    metrics: list[MetricObservation],
    card_status: str | None,
    current_fingerprint: str,
) -> PolicyResult:
    """Decide ``Approved`` / ``Rejected`` / ``Pending`` for one package under ``policy``.

    * Any current (non-stale) rejection -> Rejected, including one in a role the policy no longer
      requires (a reviewer's objection is never dropped silently).
    * Every role has its current approvals, every gate passes and the card check does not fail -> Approved.
    * Otherwise Pending; ``reasons`` says what is missing. Failing gates never auto-reject.
    """
    tally = _tally(signoffs, current_fingerprint)
    roles = _role_progress(policy, tally)
    gates = [_evaluate_gate(g, metrics) for g in policy.gates]
    card_check, card_reason = _card_check(policy, card_status)

    rejections = sorted(
        (s for group in tally.current.values() for s in group if not s.is_approval),
        key=lambda s: (s.signed_at, s.user_id),
    )
    if rejections:
        rejected_because: list[str] = []
        for s in rejections:
            suffix = "" if s.role in policy.required_roles else " (a role this policy does not require)"
            comment = _plain_text(s.comment)
            rejected_because.append(f"rejected by {s.role} {s.username}{suffix}" + (f": {comment}" if comment else ""))
        return PolicyResult(REJECTED, gates, roles, card_check, card_reason, rejected_because)

    reasons: list[str] = []
    for r in roles:
        if r.satisfied:
            continue
        have = len(r.approvals)
        text = f"{r.role} needs {r.remaining} more approval{'s' if r.remaining != 1 else ''} ({have} of {r.needed})"
        if r.stale:
            redo = ", ".join(f"{s.username}'s {'approval' if s.is_approval else 'rejection'}" for s in r.stale)
            text += f"; stale and must be redone because the package changed since: {redo}"
        reasons.append(text)
    for ignored, first in tally.ignored:
        if ignored.role in policy.required_roles:
            reasons.append(
                f"{ignored.username}'s {ignored.role} sign-off does not count: they already signed as "
                f"{first.role} and one person signs at most one role"
            )
    for g in gates:
        if g.status == "fail":
            reasons.append(f"gate {g.gate} failed: {g.reason}")
        elif g.status == "missing":
            reasons.append(f"gate {g.gate} cannot be checked: {g.reason}")
    if card_check == "fail":
        reasons.append(card_reason)

    blocking = any(not r.satisfied for r in roles) or any(g.status != "pass" for g in gates) or card_check == "fail"
    if not blocking:
        return PolicyResult(APPROVED, gates, roles, card_check, card_reason, [])
    return PolicyResult(PENDING, gates, roles, card_check, card_reason, reasons)


def role_flags_for(policy: PolicySpec, signoffs: list[SignOffView], current_fingerprint: str) -> dict[str, str]:
    """``{flag: "true"}`` for each role with all its required current approvals (and no current rejection)."""
    roles = _role_progress(policy, _tally(signoffs, current_fingerprint))
    return {policy.flag_for(r.role): "true" for r in roles if r.satisfied}


# --------------------------------------------------------------------------------------------
# Sign-off permission (separation of duties)
# --------------------------------------------------------------------------------------------


def check_can_sign(
    policy: PolicySpec,
    *,
    user_id: int,
    username: str,
    user_roles: set[str],
    role: str,
    signoffs: list[SignOffView],
    current_fingerprint: str,
    registered_by_user_id: int | None,
    package_status: str,
    package_deleted: bool,
) -> None:
    """Raise ``SignOffNotAllowed`` unless ``user_id`` may now record a sign-off in ``role``.

    Checked in this order: package deleted, package already decided, role not required by the
    policy, user lacks the role, user registered the package, user already holds a current
    sign-off on this package (any role; re-signing the same role after it went stale is fine),
    role already has all its approvals.
    """
    if package_deleted:
        raise SignOffNotAllowed(
            "This model package has been deleted from the registry and can no longer be signed off.", code="deleted"
        )
    if package_status != PENDING_MANUAL_APPROVAL:
        raise SignOffNotAllowed(
            f"This model package was already decided (status {package_status or 'unknown'}); "
            "only packages pending manual approval can be signed off.",
            code="already_decided",
        )
    if role not in policy.required_roles:
        required = ", ".join(policy.required_roles)
        raise SignOffNotAllowed(
            f"The {role!r} role is not required by policy {policy.name!r} (required roles: {required}).",
            code="role_not_required",
        )
    if role not in user_roles:
        raise SignOffNotAllowed(f"{username} does not hold the {role} role.", code="role_not_held")
    if registered_by_user_id is not None and registered_by_user_id == user_id:
        raise SignOffNotAllowed(
            f"{username} registered this model package and cannot sign it off (separation of duties).",
            code="registrant",
        )
    tally = _tally(signoffs, current_fingerprint)
    mine = [s for group in tally.current.values() for s in group if s.user_id == user_id]
    mine += [ignored for ignored, _ in tally.ignored if ignored.user_id == user_id]
    if mine:
        earlier = min(mine, key=lambda s: s.signed_at)
        if earlier.role == role:
            raise SignOffNotAllowed(
                f"{username} has already signed off this model package as {role}.", code="already_signed"
            )
        raise SignOffNotAllowed(
            f"{username} already signed off this model package as {earlier.role}; one person may sign "
            "at most one role on a package (separation of duties).",
            code="separation_of_duties",
        )
    approvals = [s for s in tally.current.get(role, []) if s.is_approval]
    needed = policy.required_roles[role]
    if len(approvals) >= needed:
        raise SignOffNotAllowed(f"The {role} role already has its {_plural(needed, 'sign-off')}.", code="role_complete")


# --------------------------------------------------------------------------------------------
# What is written back to SageMaker
# --------------------------------------------------------------------------------------------


def _truncate(text: str, cap: int) -> str:
    if len(text) <= cap:
        return text
    if cap <= 0:
        return ""
    if cap == 1:
        return ELLIPSIS
    return text[: cap - 1].rstrip() + ELLIPSIS


def _largest_fitting(render: Callable[[int], str], hi: int, limit: int) -> str | None:
    """The rendering for the largest cap in [0, hi] that fits in ``limit``, or None."""
    lo, best = 0, None
    while lo <= hi:
        mid = (lo + hi) // 2
        text = render(mid)
        if len(text) <= limit:
            best = text
            lo = mid + 1
        else:
            hi = mid - 1
    return best


def approval_description(
    policy: PolicySpec,
    signoffs: list[SignOffView],
    *,
    decision: str,
    limit: int = DESCRIPTION_LIMIT,
) -> str:
    """The SageMaker ``ApprovalDescription`` for a decision, never longer than ``limit`` characters.

    ``Approved``: the approvers of each required role, in policy order, with their sign-off dates (UTC).
    ``Rejected``: the rejecting reviewers with their comments. The caller passes the sign-offs that
    count (this function has no fingerprint to judge staleness). Comments are shortened first, then
    names, then (as a last resort) the whole text, always marked with "…".
    """
    if decision not in (APPROVED, REJECTED):
        raise PolicyError(f"decision must be {APPROVED!r} or {REJECTED!r}, got {decision!r}")
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise PolicyError(f"limit must be a positive integer, got {limit!r}")

    latest: dict[tuple[int, str], SignOffView] = {}
    for s in signoffs:
        key = (s.user_id, s.role)
        if key not in latest or s.signed_at >= latest[key].signed_at:
            latest[key] = s
    role_order = {role: i for i, role in enumerate(policy.required_roles)}
    wanted = APPROVE if decision == APPROVED else REJECT
    chosen = sorted(
        (s for s in latest.values() if s.decision == wanted and (s.role in role_order or wanted == REJECT)),
        key=lambda s: (role_order.get(s.role, len(role_order)), s.signed_at, s.user_id),
    )
    entries = [
        (
            _plain_text(s.role),
            _plain_text(s.username) or f"user {s.user_id}",
            _date(s.signed_at),
            _plain_text(s.comment),
        )
        for s in chosen
    ]

    def render(name_cap: int, comment_cap: int) -> str:
        if decision == APPROVED:
            if not entries:
                return "Approved via governance dashboard"
            body = ", ".join(f"{role} {_truncate(name, name_cap)} ({day})" for role, name, day, _ in entries)
            return f"Approved via governance dashboard: {body}"
        if not entries:
            return "Rejected via governance dashboard"
        parts = []
        for role, name, _, comment in entries:
            part = f"{role} {_truncate(name, name_cap)}"
            short = _truncate(comment, comment_cap)
            parts.append(f"{part}: {short}" if short else part)
        return "Rejected by " + "; ".join(parts)

    max_name = max((len(e[1]) for e in entries), default=0)
    max_comment = max((len(e[3]) for e in entries), default=0)
    text = render(max_name, max_comment)
    if len(text) <= limit:
        return text
    fitted = _largest_fitting(lambda c: render(max_name, c), max_comment, limit)
    if fitted is None:
        fitted = _largest_fitting(lambda n: render(max(n, 1), 0), max_name, limit)
    if fitted is None:
        fitted = _truncate(render(1, 0), limit)
    return fitted


def _date(moment: datetime) -> str:
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.date().isoformat()


# --------------------------------------------------------------------------------------------
# Review SLA
# --------------------------------------------------------------------------------------------


def sla_state(created_at: datetime, now: datetime, sla_hours: int) -> tuple[str, float]:
    """``("ok" | "due_soon" | "overdue", age_hours)``.

    ``due_soon`` from 75% of the SLA used; ``overdue`` once the age is strictly past the SLA
    (a package exactly at its deadline is still due_soon). A creation time in the future
    (clock skew) counts as age 0.
    """
    if isinstance(sla_hours, bool) or not isinstance(sla_hours, int) or sla_hours < 1:
        raise PolicyError(f"sla_hours must be a positive integer, got {sla_hours!r}")
    age_hours = max(0.0, (now - created_at).total_seconds() / 3600.0)
    if age_hours > sla_hours:
        return "overdue", age_hours
    if age_hours >= DUE_SOON_FRACTION * sla_hours:
        return "due_soon", age_hours
    return "ok", age_hours
