"""``manage.py sync_audit``: the CloudTrail ingest now (LookupEvents, the trail's S3 files and digests), or
with ``--backfill`` the trail's history in the foreground (what the background slices do)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from registry_app.audit.backfill import backfill_source
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
        parser.add_argument(
            "--backfill",
            action="store_true",
            help="Read the trail's S3 history (older than the first S3 pass) now, newest day first, slice after "
            "slice until its first file (the background backfill's work; --max-seconds bounds each slice).",
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        sources = RegistrySource.objects.filter(enabled=True)
        if opts["source"]:
            sources = RegistrySource.objects.filter(name=opts["source"])
            if not sources.exists():
                raise CommandError(f"no registry source named {opts['source']!r}")
        if not sources.exists():
            raise CommandError("no enabled registry source: add one with `manage.py add_registry_source`")
        if opts["backfill"]:
            self._backfill(list(sources), opts["max_seconds"])
            return
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

    def _backfill(self, sources: list[RegistrySource], max_seconds: float | None) -> None:
        for source in sources:
            while True:
                result = backfill_source(source, max_seconds=max_seconds or 600.0)
                self.stdout.write(result.line())
                for error in result.s3.errors[:20]:
                    self.stdout.write(self.style.WARNING(f"  error: {error}"))
                if result.skipped:
                    raise CommandError(f"{source.name}: another backfill slice holds the lease; try again later")
                if not result.more:
                    break
