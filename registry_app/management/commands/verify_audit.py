"""``manage.py verify_audit``: check the whole audit-log hash chain; exit code 1 when it is broken."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from registry_app.audit.chain import verify_audit_chain


class Command(BaseCommand):
    help = (
        "Verify the audit log's hash chain (edited, deleted or reordered entries) and name the first "
        "broken entry. Exits with status 1 when the chain is broken."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--chunk-size", type=int, default=2000, help="Rows read per database round trip.")

    def handle(self, *args: Any, **options: Any) -> None:
        report = verify_audit_chain(chunk_size=max(1, int(options["chunk_size"])))
        if report.problem is not None:
            raise CommandError(
                f"Audit chain BROKEN at {report.problem} "
                f"[{report.problem.kind}; {report.checked} entries before it verified]",
                returncode=1,
            )
        if report.head_seq is None:
            self.stdout.write(self.style.SUCCESS("Audit chain OK: the log is empty."))
            return
        self.stdout.write(
            self.style.SUCCESS(
                f"Audit chain OK: {report.checked} entries, head #{report.head_seq} hash {report.head_hash}"
            )
        )
