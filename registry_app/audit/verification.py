"""``verify_audit``: the hash chain walked end to end (``chain``), then compared with the anchors
written outside the database (``anchors``), and the result recorded (``AuditVerification``).

Against the anchors, newest first:

* an anchor naming an entry past the database's head: the tail was cut (*truncated*), and the first
  missing sequence number is the head's + 1;
* an anchor whose entry is there with another hash: the chain was rewritten (*rewritten*) after the
  newest anchor that still matches, so the first changed sequence number is that one's + 1;
* the newest anchor matching: the chain is whole up to it (entries after it are newer than it).

A failure is logged as an error, e-mailed to staff (``alerts``) and shown by ``/metrics``
(``governance_audit_verification_ok``); ``/readyz`` is left alone: the site still serves.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.utils import timezone

from registry_app.audit.alerts import alert_verification
from registry_app.audit.anchors import Anchor, AnchorStore, anchor_store
from registry_app.audit.chain import ChainReport, verify_audit_chain
from registry_app.aws.errors import AwsError
from registry_app.models import AuditAnchor, AuditLogEntry, AuditVerification

__all__ = ["AnchorCheck", "check_against_anchors", "verify_audit"]

log = logging.getLogger("registry_app.audit.verify")

Problem = AuditVerification.Problem
MAX_ANCHORS_READ = 200  # how far back a rewritten chain is traced (newest anchors first)


@dataclass
class AnchorCheck:
    problem: str = ""
    first_bad_seq: int | None = None
    detail: str = ""
    anchor: Anchor | None = None
    location: str = ""


def _hashes(seqs: list[int]) -> dict[int, str]:
    return dict(AuditLogEntry.objects.filter(seq__in=seqs).values_list("seq", "hash"))


def check_against_anchors(head_seq: int | None, store: AnchorStore) -> AnchorCheck:
    """Compare the database's chain (already verified on its own) with the stored anchors."""
    check = AnchorCheck()
    head = head_seq or 0
    newest: tuple[str, Anchor] | None = None
    mismatched: Anchor | None = None
    matched: Anchor | None = None
    for read, (location, anchor) in enumerate(store.newest_first(), start=1):
        if newest is None:
            newest = (location, anchor)
        if anchor.seq is not None and anchor.seq <= head:
            if _hashes([anchor.seq]).get(anchor.seq) == anchor.hash:
                matched = anchor
                break
            mismatched = mismatched or anchor
        if read >= MAX_ANCHORS_READ:
            break
    if newest is None:
        return check
    check.location, check.anchor = newest
    top = newest[1]
    since = f" (the newest anchor still matching is #{matched.seq}, written {matched.anchored_at})" if matched else ""
    if mismatched is not None:
        check.problem = Problem.REWRITTEN
        check.first_bad_seq = (matched.seq or 0) + 1 if matched else 1
        check.detail = (
            f"entry #{mismatched.seq} does not have the hash the anchor of {mismatched.anchored_at} records "
            f"({mismatched.hash[:16]}…): entries from #{check.first_bad_seq} on were rewritten{since}"
        )
    elif top.seq is not None and top.seq > head:
        check.problem = Problem.TRUNCATED
        check.first_bad_seq = head + 1
        gone = f"entry #{top.seq} was" if top.seq == head + 1 else f"entries #{head + 1}–#{top.seq} were"
        check.detail = (
            f"the log ends at #{head} but the anchor written {top.anchored_at} ({check.location}) records "
            f"#{top.seq}: {gone} deleted{since}"
        )
    return check


def verify_audit(*, trigger: str = "command", chunk_size: int = 2000, alert: bool = True) -> AuditVerification:
    """Walk the chain, compare it with the anchors, record the result, alert staff on a failure."""
    started = timezone.now()
    report: ChainReport = verify_audit_chain(chunk_size=chunk_size)
    check = AnchorCheck()
    store: AnchorStore | None = None
    try:
        store = anchor_store()
        check = check_against_anchors(report.head_seq, store)
        if check.anchor is None and _anchors_were_written(store.location):
            check.problem = Problem.NO_ANCHOR
            check.detail = f"anchors were written to {store.location} but none can be read there (deleted?)"
    except (AwsError, OSError, ValueError) as exc:
        check = AnchorCheck(problem=Problem.NO_ANCHOR, detail=f"the anchors could not be read: {exc}")
    problem, first_bad, detail = check.problem, check.first_bad_seq, check.detail
    if report.problem is not None:  # the chain's own break comes first: it is where tampering starts
        problem, first_bad, detail = report.problem.kind, report.problem.seq, str(report.problem)
    anchor = check.anchor
    verification = AuditVerification.objects.create(
        started_at=started,
        finished_at=timezone.now(),
        ok=not problem,
        checked=report.checked,
        head_seq=report.head_seq,
        head_hash=report.head_hash if report.head_seq else "",
        anchor_seq=anchor.seq if anchor else None,
        anchor_hash=anchor.hash if anchor else "",
        anchor_at=anchor.anchored_time if anchor else None,
        anchor_location=(check.location or (store.location if store else ""))[:1200],
        problem=problem,
        first_bad_seq=first_bad,
        detail=detail or _ok_detail(report, anchor, store),
        trigger=trigger,
    )
    if problem:
        log.error("audit verification FAILED (%s): %s", problem, detail)
        if alert:
            alert_verification(verification.pk)
    return verification


def _anchors_were_written(location: str) -> bool:
    """Whether this dashboard wrote anchors there before (a hint from the database: an empty store
    on a fresh install is normal, one that lost every anchor is not)."""
    return AuditAnchor.objects.filter(error="", location__startswith=location).exclude(seq=None).exists()


def _ok_detail(report: ChainReport, anchor: Anchor | None, store: AnchorStore | None) -> str:
    where = store.location if store else "the anchor store"
    if anchor is None:
        return f"{report.checked} entries verified; no anchor in {where} yet"
    return f"{report.checked} entries verified; consistent with the anchor of {anchor.anchored_at} (#{anchor.seq})"
