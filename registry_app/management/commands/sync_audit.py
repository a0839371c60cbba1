from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from registry_app.audit.ingest import ingest_source
from registry_app.models import RegistrySource


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise CommandError(f"--since takes a date like 2025-01-31, not {value!r}") from exc


class Command(BaseCommand):
    help = (
        "Ingest CloudTrail events now (LookupEvents, then the trail's S3 files when a bucket is set), "
        "link them, and rebuild the deployment history of the endpoints they touch."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--source", help="Only this source (default: every enabled source).")
        parser.add_argument(
            "--since",
            type=_date,
            help="Re-read from this day (YYYY-MM-DD): S3 from that day's folder, LookupEvents at most 90 days back.",
        )
        parser.add_argument("--only", choices=("lookup", "s3"), help="Run only one of the two passes (default: both).")
        parser.add_argument(
            "--max-seconds", type=float, default=None, help="Stop cleanly after this long (resumes next run)."
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        sources = RegistrySource.objects.filter(enabled=True)
        if opts["source"]:
            sources = RegistrySource.objects.filter(name=opts["source"])
            if not sources.exists():
                raise CommandError(f"no registry source named {opts['source']!r}")
        if not sources.exists():
            raise CommandError("no enabled registry source: add one with `manage.py add_registry_source`")
        only = opts["only"]
        skipped = False
        for source in sources:
            result = ingest_source(
                source,
                since=opts["since"],
                lookup=only in (None, "lookup"),
                s3=only in (None, "s3"),
                max_seconds=opts["max_seconds"],
            )
            lines = result.lines()
            self.stdout.write(lines[0])
            for line in lines[1:]:
                self.stdout.write(line)
            for op, n in sorted(result.aws_calls.items()):
                self.stdout.write(f"  calls.{op}: {n}")
            for error in result.errors[:20]:
                self.stdout.write(self.style.WARNING(f"  error: {error}"))
            skipped = skipped or result.skipped
        if skipped:
            raise CommandError("at least one source was skipped: another audit ingest holds its lock")
