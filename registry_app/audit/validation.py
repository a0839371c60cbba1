"""How a CloudTrail event's validation state reads wherever it is shown as evidence (timelines,
search, the as-of answer, exports, auditor packs). Pure: works on rows already read, with their
``trail_file`` selected (``select_related``), never a query of its own."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from registry_app.models import CloudTrailEvent, TrailLogFile

__all__ = ["FILE_STATES", "Validation", "event_validation", "file_validation"]

# state -> what people read. "failed" always comes with its reason.
FILE_STATES: dict[str, str] = {
    TrailLogFile.State.VALIDATED: "validated",
    TrailLogFile.State.PENDING: "no digest yet",
    TrailLogFile.State.FAILED: "validation failed",
    "lookup": "not validated: from LookupEvents (no trail file read yet)",
    "unchecked": "not validated: read without digest validation",
}


@dataclass(frozen=True)
class Validation:
    state: str  # validated | pending | failed | lookup | unchecked
    reason: str = ""
    file: str = ""  # s3://bucket/key of the log file, when there is one
    digest: str = ""

    @property
    def label(self) -> str:
        return FILE_STATES.get(self.state, self.state)

    @property
    def text(self) -> str:
        """One line: ``validated`` / ``no digest yet`` / ``validation failed: <reason>``."""
        return f"{self.label}: {self.reason}" if self.reason and self.state == TrailLogFile.State.FAILED else self.label

    @property
    def tone(self) -> str:
        return {"validated": "approved", "failed": "rejected", "pending": "pending"}.get(self.state, "neutral")

    def as_dict(self) -> dict[str, Any]:
        return {"state": self.state, "label": self.label, "reason": self.reason, "file": self.file}


def file_validation(trail_file: TrailLogFile) -> Validation:
    return Validation(
        state=trail_file.state,
        reason=trail_file.reason,
        file=f"s3://{trail_file.bucket}/{trail_file.key}",
    )


def event_validation(event: CloudTrailEvent) -> Validation:
    """The validation state of one stored event (its ``trail_file`` must be selected already)."""
    if event.trail_file_id is not None and event.trail_file is not None:
        return file_validation(event.trail_file)
    if event.via == CloudTrailEvent.Via.S3:
        return Validation("unchecked")
    return Validation("lookup")
