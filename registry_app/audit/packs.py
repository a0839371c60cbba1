"""Auditor packs: zip files of everything the audit knows about one package version, or about a period.

A pack is written entry by entry into a ``SpooledTemporaryFile`` (memory up to ``PACK_SPOOL_BYTES``,
then disk) and sent with ``FileResponse``; ``README.txt`` lists the SHA-256 of every other file in the
pack. Who may download one: ``exports.can_export``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import tempfile
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import IO, Any

from django.http import FileResponse
from django.utils import timezone

from registry_app.audit.bypasses import outside_decision_row
from registry_app.audit.exports import TIMELINE_COLUMNS, csv_chunks, export_file_name, json_array_chunks, timeline_rows
from registry_app.audit.finding_export import FINDING_COLUMNS, finding_rows, findings_for
from registry_app.audit.pack_evidence import VALIDATION_NOTE, chain_state, validation_rows
from registry_app.audit.search import SearchFilters, audit_search_stream
from registry_app.audit.timeline import TimelineFilters, package_scope, timeline_stream
from registry_app.audit.timeline_items import audit_raw, deployment_raw, policy_version_fields, push_raw
from registry_app.audit.values import to_json
from registry_app.models import (
    AuditLogEntry,
    CloudTrailEvent,
    Decision,
    EndpointDeployment,
    EvaluationReport,
    Finding,
    Metric,
    ModelPackage,
    OutsideDecision,
    PushOutbox,
    SignOff,
)
from registry_app.review.state import package_fingerprint

__all__ = ["PACK_SPOOL_BYTES", "package_pack", "pack_response", "period_pack"]

PACK_SPOOL_BYTES = 16 * 1024 * 1024


@dataclass
class _Pack:
    """A zip being written to a spooled temporary file, remembering each entry's SHA-256."""

    # Left open on purpose: FileResponse streams it and closes it.
    file: IO[bytes] = field(default_factory=lambda: tempfile.SpooledTemporaryFile(max_size=PACK_SPOOL_BYTES))  # noqa: SIM115
    manifest: list[tuple[str, str, int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.zip = zipfile.ZipFile(self.file, "w", compression=zipfile.ZIP_DEFLATED)

    def write(self, name: str, chunks: Iterable[str | bytes]) -> None:
        digest = hashlib.sha256()
        size = 0
        with self.zip.open(name, "w", force_zip64=True) as handle:
            for chunk in chunks:
                data = chunk.encode("utf-8") if isinstance(chunk, str) else chunk
                digest.update(data)
                size += len(data)
                handle.write(data)
        self.manifest.append((name, digest.hexdigest(), size))

    def write_json(self, name: str, value: Any) -> None:
        self.write(name, [to_json(value) + "\n"])

    def finish(self, header: str) -> IO[bytes]:
        lines = [header.rstrip(), "", "Files (sha256, bytes, name); verify with `sha256sum`:", ""]
        lines += [f"{sha}  {size:>12}  {name}" for name, sha, size in self.manifest]
        lines += ["", "sha256sum format:", ""] + [f"{sha}  {name}" for name, sha, _ in self.manifest]
        self.zip.writestr("README.txt", "\n".join(lines) + "\n")
        self.zip.close()
        self.file.seek(0)
        return self.file


def pack_response(file: IO[bytes], filename: str) -> FileResponse:
    response = FileResponse(file, as_attachment=True, filename=filename, content_type="application/zip")
    response["Cache-Control"] = "no-store"
    return response


def _signoff_dict(signoff: SignOff) -> dict[str, Any]:
    return {
        "id": signoff.pk,
        "evidence_id": f"signoff:{signoff.pk}",
        "user": signoff.user.get_username(),
        "role": signoff.role,
        "decision": signoff.decision,
        "comment": signoff.comment,
        "fingerprint": signoff.fingerprint,
        "fingerprint_detail": signoff.fingerprint_detail,
        "created_at": signoff.created_at,
        "stale_at": signoff.stale_at,
        "stale_reason": signoff.stale_reason,
        **policy_version_fields(signoff),
    }


def _decision_dict(decision: Decision) -> dict[str, Any]:
    return {
        "id": decision.pk,
        "evidence_id": f"decision:{decision.pk}",
        "package_arn": decision.package.arn,
        "kind": decision.kind,
        "status": decision.status,
        "description": decision.description,
        "decided_by": decision.decided_by.get_username() if decision.decided_by else None,
        "created_at": decision.created_at,
        **policy_version_fields(decision),
    }


def _push_dict(push: PushOutbox) -> dict[str, Any]:
    return {"evidence_id": f"push:{push.pk}", "package_arn": push.package.arn, **push_raw(push)}


def _deployment_dict(deployment: EndpointDeployment) -> dict[str, Any]:
    return {"evidence_id": f"deployment:{deployment.pk}", **deployment_raw(deployment)}


def _audit_dict(entry: AuditLogEntry) -> dict[str, Any]:
    return {"evidence_id": f"audit:#{entry.seq}", **audit_raw(entry)}


def _package_dict(package: ModelPackage) -> dict[str, Any]:
    names = (
        "arn",
        "version",
        "description",
        "approval_status",
        "approval_description",
        "package_status",
        "registration_type",
        "lifecycle_stage",
        "lifecycle_stage_status",
        "created_at",
        "created_by",
        "last_modified_at",
        "last_modified_by",
        "customer_metadata",
        "metadata_properties",
        "inference_specification",
        "model_metrics",
        "first_seen_at",
        "last_synced_at",
        "deleted_at",
        "raw",
    )
    return {
        "group": package.group.name,
        "source": package.group.source.name,
        **{name: getattr(package, name) for name in names},
    }


def _card_dict(package: ModelPackage, signoffs: list[SignOff]) -> dict[str, Any]:
    """The model card as the mirror holds it, and whether each sign-off reviewed this very card."""
    try:
        _, detail = package_fingerprint(package)
        current_part: Any = detail.get("card")
    except Exception as exc:  # noqa: BLE001 - the pack must still be produced; the failure is recorded in it
        current_part = {"error": f"could not fingerprint the card: {exc!r}"}
    card = package.model_card
    if card is not None:
        value: dict[str, Any] = {
            "origin": "standalone",
            "name": card.name,
            "arn": card.arn,
            "version": card.version,
            "status": card.status,
            "content_hash": card.content_hash,
            "created_at": card.created_at,
            "last_modified_at": card.last_modified_at,
            "content": card.content,
            "content_error": card.content_error,
        }
    elif package.embedded_card_content is not None:
        value = {"origin": "embedded", "status": package.embedded_card_status, "content": package.embedded_card_content}
    else:
        value = {"origin": None, "note": "The package has no model card."}
    value["fingerprint_card_part_now"] = current_part
    value["reviewed_by"] = [
        {
            "signoff_id": s.pk,
            "user": s.user.get_username(),
            "role": s.role,
            "signed_at": s.created_at,
            "card_part_reviewed": (s.fingerprint_detail or {}).get("card"),
            "same_card_as_now": (s.fingerprint_detail or {}).get("card") == current_part,
        }
        for s in signoffs
    ]
    return value


def _slot_name(index: int, slot: str) -> str:
    return f"evaluation_reports/{index:02d}_{re.sub(r'[^A-Za-z0-9._-]+', '_', slot)}.json"


def package_pack(package: ModelPackage, *, user: Any) -> tuple[IO[bytes], str]:
    """The auditor pack of one package version: (zip file positioned at 0, file name)."""
    pack = _Pack()
    pack.write_json("package.json", _package_dict(package))

    signoffs = list(
        SignOff.objects.filter(package=package).select_related("user", "policy_version").order_by("created_at", "pk")
    )
    pack.write_json("model_card.json", _card_dict(package, signoffs))

    reports = list(EvaluationReport.objects.filter(package=package).order_by("slot"))
    index = []
    for number, report in enumerate(reports, start=1):
        name = _slot_name(number, report.slot)
        index.append(
            {
                "file": name,
                "slot": report.slot,
                "s3_uri": report.s3_uri,
                "status": report.status,
                "kind": report.kind,
                "content_type": report.content_type,
                "declared_digest": report.content_digest,
                "sha256_as_fetched": report.sha256,
                "size_bytes": report.size_bytes,
                "fetched_at": report.fetched_at,
                "error": report.error,
            }
        )
        pack.write_json(name, report.document)
    pack.write_json("evaluation_reports/index.json", index)
    metrics = (
        Metric.objects.filter(package=package)
        .select_related("report")
        .order_by("report__slot", "kind", "name", "facet")
        .iterator(chunk_size=1000)
    )
    pack.write(
        "evaluation_reports/metrics.csv",
        csv_chunks(
            ("slot", "kind", "name", "value", "standard_deviation", "facet", "stage"),
            (
                {
                    "slot": m.report.slot,
                    "kind": m.kind,
                    "name": m.name,
                    "value": m.value,
                    "standard_deviation": m.standard_deviation,
                    "facet": m.facet,
                    "stage": m.stage,
                }
                for m in metrics
            ),
        ),
    )

    signoff_rows = [_signoff_dict(s) for s in signoffs]
    pack.write_json("signoffs.json", signoff_rows)
    pack.write(
        "signoffs.csv",
        csv_chunks(
            (
                "evidence_id",
                "user",
                "role",
                "decision",
                "created_at",
                "stale_at",
                "fingerprint",
                "comment",
                "policy_version",
                "policy_version_number",
                "stale_reason",
            ),
            signoff_rows,
        ),
    )
    decisions = Decision.objects.filter(package=package).select_related("decided_by", "package", "policy_version")
    pack.write_json("decisions.json", [_decision_dict(d) for d in decisions.order_by("created_at", "pk")])
    pushes = PushOutbox.objects.filter(package=package).select_related("package").order_by("created_at")
    pack.write_json("pushes.json", [_push_dict(p) for p in pushes])
    outside = OutsideDecision.objects.filter(package=package).select_related("package__group", "event")
    pack.write_json("outside_decisions.json", [outside_decision_row(o) for o in outside.order_by("observed_at")])
    deployments = EndpointDeployment.objects.filter(package=package).order_by("started_at", "pk")
    pack.write_json("deployments.json", [_deployment_dict(d) for d in deployments])
    finding_list = list(
        finding_rows(
            findings_for(Finding.objects.filter(group_id=package.group_id, package__version__lte=package.version))
        )
    )
    pack.write_json("findings.json", finding_list)
    pack.write("findings.csv", csv_chunks(FINDING_COLUMNS, finding_list))

    scope = package_scope(package)
    filters = TimelineFilters()
    pack.write("timeline.csv", csv_chunks(TIMELINE_COLUMNS, timeline_rows(timeline_stream(scope, filters))))
    pack.write("timeline.json", json_array_chunks(item.export_row() for item in timeline_stream(scope, filters)))
    events = CloudTrailEvent.objects.filter(package=package).order_by("event_time", "pk")
    pack.write("cloudtrail.json", json_array_chunks((e.raw for e in events.iterator(chunk_size=500)), wrap="Records"))
    pack.write("cloudtrail_validation.json", json_array_chunks(validation_rows(events)))
    entries = AuditLogEntry.objects.filter(package=package).order_by("seq").iterator(chunk_size=1000)
    pack.write("audit_log.json", json_array_chunks(_audit_dict(entry) for entry in entries))
    pack.write_json("audit_chain.json", chain_state())

    now = timezone.now()
    header = "\n".join(
        [
            f"Auditor pack: model package {package.group.name} version {package.version}",
            f"Package ARN: {package.arn}",
            f"Registry source: {package.group.source.name} ({package.group.source.region})",
            f"Generated: {now.isoformat()} by {user.get_username()}",
            "",
            "package.json            the package record as mirrored (raw DescribeModelPackage included)",
            "model_card.json         the model card (content + version) and which sign-offs reviewed this card",
            "evaluation_reports/     each report document as fetched, index.json (digests), metrics.csv (parsed)",
            "signoffs.json/.csv      sign-offs with roles, fingerprints, fingerprint details and policy version",
            "decisions.json          dashboard decisions (with policy version);  pushes.json  their outbox rows",
            "outside_decisions.json  status changes made outside the dashboard",
            "deployments.json        endpoint deployment windows of this version",
            "findings.json/.csv      findings raised on this version or earlier ones of its group (all states)",
            "timeline.csv/.json      the merged audit timeline (evidence ids per row)",
            "cloudtrail.json         raw CloudTrail records about this package ({'Records': [...]})",
            VALIDATION_NOTE,
            "audit_log.json          the dashboard's audit-log entries for this package, with hashes;",
            "audit_chain.json        the chain's verification and head at export time, and the anchor written then",
        ]
    )
    filename = export_file_name(f"audit-pack-{package.group.name}-v{package.version}-{now:%Y%m%dT%H%M%SZ}", "zip")
    return pack.finish(header), filename


def period_pack(since: dt.datetime, until: dt.datetime, *, user: Any) -> tuple[IO[bytes], str]:
    """The auditor pack of a period: every CloudTrail record, audit entry, sign-off, decision,
    push, outside decision and deployment window in ``[since, until]``."""
    pack = _Pack()
    window = {"since": since.isoformat(), "until": until.isoformat()}
    events = CloudTrailEvent.objects.filter(event_time__gte=since, event_time__lte=until).order_by("event_time", "pk")
    pack.write("cloudtrail.json", json_array_chunks((e.raw for e in events.iterator(chunk_size=1000)), wrap="Records"))
    pack.write("cloudtrail_validation.json", json_array_chunks(validation_rows(events)))
    entries = (
        AuditLogEntry.objects.filter(created_at__gte=since, created_at__lte=until)
        .order_by("seq")
        .iterator(chunk_size=1000)
    )
    pack.write("audit_log.json", json_array_chunks(_audit_dict(entry) for entry in entries))
    pack.write_json("audit_chain.json", chain_state())
    search = SearchFilters(since=since, until=until)
    pack.write("audit_search.csv", csv_chunks(TIMELINE_COLUMNS, timeline_rows(audit_search_stream(search))))

    signoffs = (
        SignOff.objects.filter(created_at__gte=since, created_at__lte=until)
        .select_related("user", "package")
        .order_by("created_at", "pk")
    )
    pack.write(
        "signoffs.json",
        json_array_chunks(
            {**_signoff_dict(s), "package_arn": s.package.arn} for s in signoffs.iterator(chunk_size=1000)
        ),
    )
    decisions = (
        Decision.objects.filter(created_at__gte=since, created_at__lte=until)
        .select_related("decided_by", "package")
        .order_by("created_at", "pk")
    )
    pack.write("decisions.json", json_array_chunks(_decision_dict(d) for d in decisions.iterator(chunk_size=1000)))
    pushes = (
        PushOutbox.objects.filter(created_at__gte=since, created_at__lte=until)
        .select_related("package")
        .order_by("created_at")
    )
    pack.write("pushes.json", json_array_chunks(_push_dict(p) for p in pushes.iterator(chunk_size=1000)))
    outside = (
        OutsideDecision.objects.filter(observed_at__gte=since, observed_at__lte=until)
        .select_related("package__group", "event")
        .order_by("observed_at", "pk")
    )
    pack.write(
        "outside_decisions.json",
        json_array_chunks(outside_decision_row(o) for o in outside.iterator(chunk_size=1000)),
    )
    deployments = (
        EndpointDeployment.objects.filter(started_at__lte=until)
        .exclude(ended_at__lt=since)
        .order_by("endpoint_name", "started_at", "pk")
    )
    pack.write(
        "deployments.json", json_array_chunks(_deployment_dict(d) for d in deployments.iterator(chunk_size=1000))
    )
    raised = findings_for(Finding.objects.filter(raised_at__gte=since, raised_at__lte=until))
    pack.write("findings.json", json_array_chunks(finding_rows(raised.iterator(chunk_size=1000))))
    pack.write_json("period.json", window)

    now = timezone.now()
    header = "\n".join(
        [
            f"Auditor pack for the period {since.isoformat()} to {until.isoformat()}",
            f"Generated: {now.isoformat()} by {user.get_username()}",
            "",
            "cloudtrail.json         raw CloudTrail records in the period ({'Records': [...]})",
            VALIDATION_NOTE,
            "audit_log.json          the dashboard's audit-log entries in the period, with hashes",
            "audit_chain.json        the chain's verification and head at export time, and the anchor written then",
            "audit_search.csv        CloudTrail calls and audit entries merged, newest first (evidence ids)",
            "signoffs.json, decisions.json, pushes.json, outside_decisions.json   created in the period",
            "deployments.json        deployment windows overlapping the period",
            "findings.json           findings raised in the period, with their current state",
        ]
    )
    filename = export_file_name(f"audit-pack-{since:%Y%m%d}-{until:%Y%m%d}-{now:%Y%m%dT%H%M%SZ}", "zip")
    return pack.finish(header), filename
