"""Constants, errors and text helpers shared by the policy engine (pure)."""

from __future__ import annotations

import math
import re
import unicodedata

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
# Periodic revalidation (issue 15): how often an approved version is re-reviewed, and the grace after that.
MAX_REVALIDATE_EVERY_DAYS = 3660
DEFAULT_REVALIDATION_GRACE_DAYS = 30
MAX_REVALIDATION_GRACE_DAYS = 365
DESCRIPTION_LIMIT = 1024  # SageMaker ApprovalDescription maximum length
ELLIPSIS = "…"

METRIC_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]{0,127}")
ROLE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}")
NUMBER_RE = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
# Operators (and common mistakes, so the error can say what is wrong rather than "cannot parse").
OP_SEARCH_RE = re.compile(r"(?<![A-Za-z0-9_.\-])abs<=|>=|<=|==|!=|=>|=<|≥|≤|>|<|=")
OP_ALIASES = {"≥": ">=", "≤": "<="}
ABS_LHS_RE = re.compile(r"abs\s*\(\s*(?P<body>[^()]*?)\s*\)", re.IGNORECASE)
_FLAG_EXTRA_CHARS = frozenset("_.:/=+-@")
POLICY_KEYS = frozenset(
    {
        "name",
        "required_roles",
        "require_card_approved",
        "gates",
        "sla_hours",
        "role_flags",
        "accept_automated_approvals",
        "revalidate_every_days",
        "revalidation_grace_days",
        "finding_blocking_severities",
    }
)
# Finding severities, mildest first; the ones that block approval unless a policy says otherwise.
FINDING_SEVERITIES: tuple[str, ...] = ("low", "medium", "high", "critical")
DEFAULT_FINDING_BLOCKING: tuple[str, ...] = ("high", "critical")
AUTOMATED_APPROVAL_KEYS = frozenset({"principals", "gates_must_pass"})
MAX_PRINCIPAL_PATTERNS = 20
MAX_PRINCIPAL_PATTERN_LENGTH = 2048  # an IAM ARN's maximum length


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


def fmt_threshold(value: float) -> str:
    """Shortest text that parses back to exactly ``value`` (``0.85``, ``4.0``, ``1e-05``)."""
    return repr(float(value))


def fmt_value(value: float, *, distinct_from: float | None = None) -> str:
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


def norm_name(name: str) -> str:
    return name.strip().casefold()


def norm_facet(facet: str) -> str:
    return re.sub(r"\s+", "", facet).casefold()


def default_flag_for_role(role: str) -> str:
    """Metadata flag a role writes when no explicit mapping exists: ``data-privacy`` -> ``DataPrivacyApproved``."""
    if role in DEFAULT_ROLE_FLAGS:
        return DEFAULT_ROLE_FLAGS[role]
    parts = [p for p in re.split(r"[^0-9A-Za-z]+", role) if p]
    return "".join(p[:1].upper() + p[1:] for p in parts) + "Approved"


def valid_flag_key(key: str) -> bool:
    """SageMaker CustomerMetadataProperties key: ``^[\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]{1,128}$``."""
    if not 1 <= len(key) <= 128:
        return False
    return all(ch in _FLAG_EXTRA_CHARS or unicodedata.category(ch)[0] in "LZN" for ch in key)


def plain_text(text: str) -> str:
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


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"
