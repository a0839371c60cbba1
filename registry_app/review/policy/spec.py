"""Policies: what a group requires (roles, gates, card, SLA, flags) and which policy applies (pure)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from registry_app.review.policy.basics import (
    AUTOMATED_APPROVAL_KEYS,
    DEFAULT_FINDING_BLOCKING,
    DEFAULT_REVALIDATION_GRACE_DAYS,
    DEFAULT_ROLE_FLAGS,
    DEFAULT_ROLES,
    DEFAULT_SLA_HOURS,
    FINDING_SEVERITIES,
    MAX_PRINCIPAL_PATTERN_LENGTH,
    MAX_PRINCIPAL_PATTERNS,
    MAX_REVALIDATE_EVERY_DAYS,
    MAX_REVALIDATION_GRACE_DAYS,
    MAX_SLA_HOURS,
    POLICY_KEYS,
    ROLE_RE,
    PolicyError,
    default_flag_for_role,
    valid_flag_key,
)
from registry_app.review.policy.gates import MetricGate

# --------------------------------------------------------------------------------------------
# Automated approvals
# --------------------------------------------------------------------------------------------

# The partition, service and account are literal (a pattern can never reach another account);
# ``*`` is allowed in the resource part only.
_PRINCIPAL_PATTERN_RE = re.compile(r"arn:aws[a-z-]*:(?:iam|sts)::\d{12}:[^\s]+")
_ASSUMED_ROLE_RE = re.compile(r"arn:(aws[a-z-]*):sts::(\d{12}):assumed-role/([^/]+)/.+")


def principal_arns(arn: str) -> list[str]:
    """The ARNs a principal is known by: itself, and for an assumed-role session
    (``arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION``) its role's ``arn:aws:iam::ACCOUNT:role/ROLE``
    (without the role's path, which the session ARN does not carry)."""
    found = [arn] if arn else []
    match = _ASSUMED_ROLE_RE.fullmatch(arn or "")
    if match:
        partition, account, role = match.groups()
        found.append(f"arn:{partition}:iam::{account}:role/{role}")
    return found


@dataclass(frozen=True)
class AutomatedApprovals:
    """Approvals made outside the dashboard that a policy accepts for deployment: the low-risk
    pattern where a pipeline's condition step approves a version on its metrics.

    ``principals``: IAM ARN patterns of who may approve automatically, ``*`` matching any run of
    characters, e.g. ``arn:aws:iam::111122223333:role/Pipeline*``. A session of an assumed role is
    matched by its own ARN and by its role's ARN (``principal_arns``). ``gates_must_pass``: the
    policy's metric gates must pass on the version's current metrics (and the policy must have gates).
    """

    principals: tuple[str, ...]
    gates_must_pass: bool = True

    def __post_init__(self) -> None:
        principals = tuple(self.principals) if isinstance(self.principals, list | tuple) else ()
        if not principals:
            raise PolicyError("accept_automated_approvals.principals must list at least one IAM ARN pattern")
        if len(principals) > MAX_PRINCIPAL_PATTERNS:
            raise PolicyError(f"accept_automated_approvals.principals: at most {MAX_PRINCIPAL_PATTERNS} patterns")
        for pattern in principals:
            if (
                not isinstance(pattern, str)
                or len(pattern) > MAX_PRINCIPAL_PATTERN_LENGTH
                or not _PRINCIPAL_PATTERN_RE.fullmatch(pattern)
            ):
                raise PolicyError(
                    f"accept_automated_approvals: {str(pattern)[:80]!r} is not an IAM ARN pattern like "
                    "'arn:aws:iam::111122223333:role/Pipeline*' (partition, service iam or sts and a 12-digit "
                    "account written out; '*' only in the resource part)"
                )
        if not isinstance(self.gates_must_pass, bool):
            raise PolicyError("accept_automated_approvals.gates_must_pass must be true or false")
        object.__setattr__(self, "principals", principals)

    def matching_pattern(self, arn: str) -> str | None:
        """The first pattern that ``arn`` (or its role's ARN) matches, else None."""
        names = principal_arns(arn)
        for pattern in self.principals:
            regex = ".*".join(re.escape(part) for part in pattern.split("*"))
            if any(re.fullmatch(regex, name) for name in names):
                return pattern
        return None

    @classmethod
    def from_dict(cls, data: Any, policy_name: str) -> AutomatedApprovals | None:
        if data is None:
            return None
        if not isinstance(data, Mapping):
            raise PolicyError(
                f"policy {policy_name!r}: accept_automated_approvals must be an object "
                '{"principals": [...], "gates_must_pass": true} or null'
            )
        unknown = sorted(str(k) for k in data if k not in AUTOMATED_APPROVAL_KEYS)
        if unknown:
            raise PolicyError(
                f"policy {policy_name!r}: unknown accept_automated_approvals key(s): {', '.join(unknown)}"
            )
        principals = data.get("principals")
        if isinstance(principals, str) or not isinstance(principals, Sequence):
            raise PolicyError(f"policy {policy_name!r}: accept_automated_approvals.principals must be a list")
        try:
            return cls(tuple(principals), data.get("gates_must_pass", True))
        except PolicyError as exc:
            raise PolicyError(f"policy {policy_name!r}: {exc}") from exc

    def to_dict(self) -> dict[str, Any]:
        return {"principals": list(self.principals), "gates_must_pass": self.gates_must_pass}


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
    # None: only the dashboard's own approvals count for deployment (the deploy gate, docs/deploy-gate.md).
    accept_automated_approvals: AutomatedApprovals | None = None
    # Periodic revalidation: None = never; else an approved version is due this many days after its
    # approval (or last passed revalidation), and overdue ``revalidation_grace_days`` later.
    revalidate_every_days: int | None = None
    revalidation_grace_days: int = DEFAULT_REVALIDATION_GRACE_DAYS
    # Severities whose findings block approval by default when raised (the reviewer may change it).
    finding_blocking_severities: tuple[str, ...] = DEFAULT_FINDING_BLOCKING

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise PolicyError("a policy needs a non-empty name")
        if len(self.name) > 128:
            raise PolicyError(f"policy name {self.name[:40]!r}… is longer than 128 characters")
        if not isinstance(self.required_roles, Mapping) or not self.required_roles:
            raise PolicyError(f"policy {self.name!r}: required_roles must list at least one role")
        roles: dict[str, int] = {}
        for role, count in self.required_roles.items():
            if not isinstance(role, str) or not ROLE_RE.fullmatch(role):
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
            if not isinstance(flag, str) or not valid_flag_key(flag):
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
        automated = self.accept_automated_approvals
        if automated is not None:
            if not isinstance(automated, AutomatedApprovals):
                raise PolicyError(f"policy {self.name!r}: accept_automated_approvals must be AutomatedApprovals")
            if automated.gates_must_pass and not gates:
                raise PolicyError(
                    f"policy {self.name!r}: accept_automated_approvals with gates_must_pass needs at least one gate "
                    "(otherwise an automated approval would be accepted on no evidence at all)"
                )
        self._check_revalidation()
        object.__setattr__(self, "finding_blocking_severities", _blocking_severities(self))
        object.__setattr__(self, "required_roles", roles)
        object.__setattr__(self, "role_flags", flags)
        object.__setattr__(self, "gates", gates)

    def _check_revalidation(self) -> None:
        every, grace = self.revalidate_every_days, self.revalidation_grace_days
        if every is not None:
            if isinstance(every, bool) or not isinstance(every, int):
                raise PolicyError(
                    f"policy {self.name!r}: revalidate_every_days must be a whole number of days or null "
                    f"(never), got {every!r}"
                )
            if not 1 <= every <= MAX_REVALIDATE_EVERY_DAYS:
                raise PolicyError(
                    f"policy {self.name!r}: revalidate_every_days must be between 1 and "
                    f"{MAX_REVALIDATE_EVERY_DAYS} (or null for never), got {every}"
                )
        if isinstance(grace, bool) or not isinstance(grace, int):
            raise PolicyError(
                f"policy {self.name!r}: revalidation_grace_days must be a whole number of days, got {grace!r}"
            )
        if not 0 <= grace <= MAX_REVALIDATION_GRACE_DAYS:
            raise PolicyError(
                f"policy {self.name!r}: revalidation_grace_days must be between 0 and "
                f"{MAX_REVALIDATION_GRACE_DAYS}, got {grace}"
            )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PolicySpec:
        """Build a policy from JSON-shaped data (gates as strings). Missing keys take the defaults."""
        if not isinstance(data, Mapping):
            raise PolicyError(f"a policy must be a JSON object, got {type(data).__name__}")
        unknown = sorted(str(k) for k in data if k not in POLICY_KEYS)
        if unknown:
            raise PolicyError(f"unknown policy key(s): {', '.join(unknown)}; allowed: {', '.join(sorted(POLICY_KEYS))}")
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
                if not isinstance(flag, str) or not valid_flag_key(flag):
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

        if "finding_blocking_severities" in data:
            severities = data["finding_blocking_severities"]
            if isinstance(severities, str) or not isinstance(severities, Sequence):
                raise PolicyError(
                    f'policy {name!r}: finding_blocking_severities must be a list like ["high", "critical"]'
                )
            kwargs["finding_blocking_severities"] = tuple(severities)
        for key in ("require_card_approved", "sla_hours", "revalidate_every_days", "revalidation_grace_days"):
            if key in data:
                kwargs[key] = data[key]
        kwargs["accept_automated_approvals"] = AutomatedApprovals.from_dict(
            data.get("accept_automated_approvals"), name
        )
        return cls(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        """JSON-shaped form; ``PolicySpec.from_dict(p.to_dict()) == p``."""
        return (
            {
                "name": self.name,
                "required_roles": dict(self.required_roles),
                "require_card_approved": self.require_card_approved,
                "gates": [str(g) for g in self.gates],
                "sla_hours": self.sla_hours,
                "role_flags": dict(self.role_flags),
            }
            | (
                {"accept_automated_approvals": self.accept_automated_approvals.to_dict()}
                if self.accept_automated_approvals is not None
                else {}
            )
            | (
                {
                    "revalidate_every_days": self.revalidate_every_days,
                    "revalidation_grace_days": self.revalidation_grace_days,
                }
                if self.revalidate_every_days is not None
                or self.revalidation_grace_days != DEFAULT_REVALIDATION_GRACE_DAYS
                else {}
            )
            | (
                # Only when not the default: the stored policies' digests (review_rows.policy_digest) stay put.
                {"finding_blocking_severities": list(self.finding_blocking_severities)}
                if self.finding_blocking_severities != DEFAULT_FINDING_BLOCKING
                else {}
            )
        )

    def flag_for(self, role: str) -> str:
        return self.role_flags.get(role) or default_flag_for_role(role)


def _blocking_severities(policy: PolicySpec) -> tuple[str, ...]:
    """The policy's blocking severities, validated and in severity order (no duplicates)."""
    raw = policy.finding_blocking_severities
    if isinstance(raw, str) or not isinstance(raw, Sequence):
        raise PolicyError(f"policy {policy.name!r}: finding_blocking_severities must be a list of severities")
    for severity in raw:
        if severity not in FINDING_SEVERITIES:
            raise PolicyError(
                f"policy {policy.name!r}: unknown finding severity {str(severity)[:40]!r} in "
                f"finding_blocking_severities (one of {', '.join(FINDING_SEVERITIES)})"
            )
    return tuple(s for s in FINDING_SEVERITIES if s in raw)


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
