"""Approval policies: which sign-offs and evidence a model package needs before it is approved.

This package is pure: plain frozen dataclasses in, a result out. No ORM, no I/O, no boto3,
so the views, the Celery tasks and the tests can all call it with values they already hold.

* ``gates``: ``MetricGate`` parses and checks ``auc >= 0.85``-style gates.
* ``spec``: ``PolicySpec`` describes a policy (JSON-config friendly via ``from_dict``);
  ``select_policy`` picks the policy for a model package group (group-name or tag overrides).
* ``evaluate``: ``evaluate`` turns sign-offs, normalised metrics and the model-card status into a
  decision, ``role_flags_for`` the flags it writes; ``check_can_sign`` enforces separation of
  duties before a sign-off is recorded.
* ``writeback``: ``approval_description`` builds what is written back to
  SageMaker; ``sla_state`` classifies how long a package has waited for review.

The names below are the engine's public API; import them from ``registry_app.review.policy``.
"""

from __future__ import annotations

from registry_app.review.policy.basics import (
    APPROVE,
    APPROVED,
    DEFAULT_ROLE_FLAGS,
    DEFAULT_ROLES,
    DEFAULT_SLA_HOURS,
    DESCRIPTION_LIMIT,
    GATE_OPS,
    MAX_SLA_HOURS,
    PENDING,
    PENDING_MANUAL_APPROVAL,
    REJECT,
    REJECTED,
    PolicyError,
    SignOffNotAllowed,
    default_flag_for_role,
)
from registry_app.review.policy.evaluate import (
    GateResult,
    MetricObservation,
    PolicyResult,
    RoleProgress,
    SignOffView,
    check_can_sign,
    evaluate,
    role_flags_for,
)
from registry_app.review.policy.gates import MetricGate
from registry_app.review.policy.spec import DEFAULT_POLICY, PolicyOverride, PolicySpec, select_policy
from registry_app.review.policy.writeback import approval_description, sla_state

__all__ = [
    "APPROVE",
    "APPROVED",
    "DEFAULT_POLICY",
    "DEFAULT_ROLE_FLAGS",
    "DEFAULT_ROLES",
    "DEFAULT_SLA_HOURS",
    "DESCRIPTION_LIMIT",
    "GATE_OPS",
    "MAX_SLA_HOURS",
    "PENDING",
    "PENDING_MANUAL_APPROVAL",
    "REJECT",
    "REJECTED",
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
