"""What an as-of answer cites: ``Evidence`` references, ``Fact`` lines, and how a deployment window's
``evidence`` JSON (written by ``deployments``) reads as references and as what is missing. No queries.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from registry_app.audit.params import parse_when
from registry_app.audit.values import iso
from registry_app.models import EndpointDeployment

__all__ = ["Evidence", "Fact", "deployment_evidence", "deployment_missing"]


@dataclass(frozen=True)
class Evidence:
    ref: str  # "cloudtrail:<eventID>", "observation:<id>", "signoff:<id>", "deployment:<id>", ...
    at: dt.datetime | None = None
    note: str = ""
    validation: str = ""  # a CloudTrail call's: validated / no digest yet / validation failed: why
    validation_tone: str = ""

    def as_dict(self) -> dict[str, Any]:
        out = {"ref": self.ref, "at": iso(self.at), "note": self.note}
        if self.validation:
            out["validation"] = self.validation
        return out


@dataclass
class Fact:
    name: str
    value: str
    evidence: list[Evidence] = field(default_factory=list)
    missing: str = ""  # what is not known, instead of a guess
    link: str = ""  # a page that says more (an approval made outside the dashboard: its bypasses entry)
    link_text: str = ""

    def as_dict(self) -> dict[str, Any]:
        out = {
            "fact": self.name,
            "value": self.value,
            "evidence": [e.as_dict() for e in self.evidence],
            "missing": self.missing,
        }
        if self.link:
            out["link"] = self.link
        return out


def deployment_evidence(deployment: EndpointDeployment) -> list[Evidence]:
    """Evidence refs of a deployment window. The rebuild (``services.deployments``) writes
    ``{"events": {step: eventID}, "ended_by": eventID, "mirror": {...}, "missing": [...]}``; other
    keys are shown as they are."""
    refs = [Evidence(f"deployment:{deployment.pk}", deployment.started_at, "deployment window")]
    evidence = deployment.evidence if isinstance(deployment.evidence, dict) else {}
    for key, value in sorted(evidence.items()):
        if key in ("missing", "mirror_disagrees"):
            continue  # not evidence: see deployment_missing
        if key == "events" and isinstance(value, dict):
            for step, event_id in sorted(value.items()):
                if event_id:
                    refs.append(Evidence(f"cloudtrail:{event_id}", None, f"{step} call"))
        elif key in ("ended_by",) and isinstance(value, str) and value:
            refs.append(Evidence(f"cloudtrail:{value}", deployment.ended_at, "ended by this call"))
        elif isinstance(value, dict):
            note = ", ".join(f"{k}={v}" for k, v in sorted(value.items()) if v not in (None, ""))
            refs.append(Evidence(f"{key}:{deployment.endpoint_name}", None, note))
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, dict) and (item.get("event_id") or item.get("eventID")):
                    ident = item.get("event_id") or item.get("eventID")
                    refs.append(Evidence(f"cloudtrail:{ident}", _parse_any(item.get("event_time")), key))
                elif isinstance(item, str) and item:
                    prefix = "cloudtrail" if "event" in key.lower() else key
                    refs.append(Evidence(f"{prefix}:{item}", None, key))
        elif value not in (None, ""):
            prefix = "cloudtrail" if "event" in key.lower() else key
            refs.append(Evidence(f"{prefix}:{value}", None, key))
    return refs


def deployment_missing(deployment: EndpointDeployment) -> list[str]:
    """What the rebuild could not prove about a window (its ``missing`` links, mirror disagreements)."""
    evidence = deployment.evidence if isinstance(deployment.evidence, dict) else {}
    missing = [str(line) for line in evidence.get("missing") or [] if line]
    disagrees = evidence.get("mirror_disagrees")
    if isinstance(disagrees, dict) and disagrees:
        missing.append(
            "The registry mirror disagrees with CloudTrail about this window "
            f"({', '.join(f'{k}={v}' for k, v in sorted(disagrees.items()))}); the update may have failed."
        )
    if not deployment.package_arn:
        missing.append("No model package is known for this variant (its CreateModel call is not in CloudTrail).")
    return missing


def _parse_any(value: Any) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, str):
        try:
            return parse_when(value)
        except ValueError:
            return None
    return None
