"""``manage.py verify_audit``: check the audit log's hash chain end to end and against the latest anchor
kept outside the database; exit code 1 when either check fails."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from registry_app.audit.anchors import anchor_head, anchor_store
from registry_app.audit.verification import verify_audit
from registry_app.models import AuditAnchor


class Command(BaseCommand):
    help = (
        "Verify the audit log's hash chain (edited, deleted or reordered entries) and compare it with the "
        "newest anchor written outside the database (AUDIT_ANCHOR_S3_URI, else VAR_DIR/audit-anchors.jsonl): "
        "a cut or rewritten tail is reported with the first missing sequence number. Exits with status 1 "
        "when a check fails; staff are e-mailed."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--chunk-size", type=int, default=2000, help="Rows read per database round trip.")
        parser.add_argument(
            "--anchor", action="store_true", help="After a successful check, anchor the current head too."
        )
        parser.add_argument("--no-alert", action="store_true", help="Do not e-mail staff about a failure.")

    def handle(self, *args: Any, **options: Any) -> None:
        result = verify_audit(
            trigger="command", chunk_size=max(1, int(options["chunk_size"])), alert=not options["no_alert"]
        )
        try:
            protection = anchor_store().protection()
        except ValueError as exc:
            protection = str(exc)
        where = result.anchor_location or "(no anchor store configured)"
        self.stdout.write(f"Anchors: {where} [{protection}]")
        if result.anchor_seq is not None:
            self.stdout.write(f"Newest anchor: #{result.anchor_seq} {result.anchor_hash} written {result.anchor_at}")
        if not result.ok:
            first = f"; first missing or changed entry #{result.first_bad_seq}" if result.first_bad_seq else ""
            raise CommandError(
                f"Audit chain BROKEN [{result.problem}{first}; {result.checked} entries before it verified]: "
                f"{result.detail}",
                returncode=1,
            )
        if result.head_seq is None:
            self.stdout.write(self.style.SUCCESS(f"Audit chain OK: the log is empty. {result.detail}"))
        else:
            self.stdout.write(
                self.style.SUCCESS(
                    f"Audit chain OK: {result.checked} entries, head #{result.head_seq} hash {result.head_hash}. "
                    f"{result.detail}"
                )
            )
        if options["anchor"]:
            anchor = anchor_head(AuditAnchor.Reason.COMMAND)
            status = f"error: {anchor.error}" if anchor.error else anchor.location
            self.stdout.write(f"Anchored head #{anchor.seq}: {status}")
