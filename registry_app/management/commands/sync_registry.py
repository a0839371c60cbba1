from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from registry_app.mirror.execute import sync_source
from registry_app.models import RegistrySource, SyncRun


class Command(BaseCommand):
    help = "Sync SageMaker Model Registry into the mirror now (same code as the Celery task)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--source", help="Only this source (default: every enabled source).")
        parser.add_argument("--full", action="store_true", help="Full reconciliation instead of incremental.")
        parser.add_argument("--endpoints", action="store_true", help="Only model cards and endpoints.")
        parser.add_argument("--events", action="store_true", help="Only drain the EventBridge SQS queue.")

    def handle(self, *args: Any, **opts: Any) -> None:
        sources = RegistrySource.objects.filter(enabled=True)
        if opts["source"]:
            sources = RegistrySource.objects.filter(name=opts["source"])
            if not sources.exists():
                raise CommandError(f"no registry source named {opts['source']!r}")
        if not sources.exists():
            raise CommandError("no enabled registry source: add one with `manage.py add_registry_source`")
        mode = SyncRun.Mode.INCREMENTAL
        if opts["full"]:
            mode = SyncRun.Mode.FULL
        elif opts["endpoints"]:
            mode = SyncRun.Mode.ENDPOINTS
        elif opts["events"]:
            mode = SyncRun.Mode.EVENT
        failed = False
        for source in sources:
            run = sync_source(source, mode=mode, trigger=SyncRun.Trigger.COMMAND)
            self.stdout.write(
                f"{source.name} ({source.region}): {run.get_mode_display()} {run.status} in {run.duration_s or 0:.1f}s"
                f" — {run.total_calls} AWS calls"
            )
            for key, value in sorted((run.counts or {}).items()):
                self.stdout.write(f"  {key}: {value}")
            for op, n in sorted((run.aws_calls or {}).items()):
                self.stdout.write(f"  calls.{op}: {n}")
            for err in run.errors[:20]:
                self.stdout.write(self.style.WARNING(f"  error: {err['subject']}: {err['message']}"))
            if run.error:
                self.stdout.write(self.style.ERROR(f"  failed: {run.error}"))
            failed = failed or run.status in (SyncRun.Status.FAILED, SyncRun.Status.SKIPPED)
        if failed:
            raise CommandError("at least one sync failed or was skipped")
