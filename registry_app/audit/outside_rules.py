"""What makes an approval-status change an *outside* decision, shared by the writer that flags one
(``outside_decisions``) and the as-of answer that explains an approval (``as_of_status``). Pure.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

__all__ = ["PUSH_EXPLAINS_WITHIN", "STATUS_EVENT_NAMES", "request_status"]

# A dashboard push explains a change when it was sent (or is being sent) this recently.
PUSH_EXPLAINS_WITHIN = dt.timedelta(hours=6)
# The CloudTrail calls that can set a package's approval status.
STATUS_EVENT_NAMES = ("UpdateModelPackage", "CreateModelPackage")


def request_status(raw: Any) -> str:
    """``modelApprovalStatus`` of a CloudTrail record's ``requestParameters`` (either casing)."""
    if not isinstance(raw, dict):
        return ""
    params = raw.get("requestParameters")
    if not isinstance(params, dict):
        return ""
    for key in ("modelApprovalStatus", "ModelApprovalStatus"):
        if params.get(key):
            return str(params[key])
    return ""
