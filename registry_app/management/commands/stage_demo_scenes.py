from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from registry_app.audit.ingest import ingest_source
from registry_app.devtools.demo_policy_versions import stage_policy_versions
from registry_app.devtools.demo_revalidation import seed_revalidation_demo
from registry_app.devtools.demo_scenes import stage_demo_scenes
from registry_app.mirror.execute import sync_source
from registry_app.models import RegistrySource, SyncRun


class Command(BaseCommand):
    help = (
        "Demo only: after the first sync, make an outside approval in the registry, a revocation and a push "
        "conflict (registry_app/devtools/demo_scenes.py), then an incremental sync so the mirror observes them "
        "and a CloudTrail S3 pass so the outside decisions name who made them."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--no-sync", action="store_true", help="Skip the incremental sync afterwards.")

    def handle(self, *args: Any, **opts: Any) -> None:
        summary = stage_demo_scenes()
        played, skipped = len(summary.done), len(summary.skipped)
        self.stdout.write(self.style.SUCCESS(f"Demo scenes: {played} played, {skipped} skipped"))
        for line in [*summary.lines(), f"  policy versions: {stage_policy_versions() or 'already published'}"]:
            self.stdout.write(line)
        self.stdout.write("Revalidation: " + "; ".join(seed_revalidation_demo()))  # issue 15: due and overdue
        if opts["no_sync"]:
            return
        for source in RegistrySource.objects.filter(enabled=True):
            run = sync_source(source, mode=SyncRun.Mode.INCREMENTAL, trigger=SyncRun.Trigger.COMMAND)
            self.stdout.write(f"  incremental sync {source.name}: {run.status}, {run.total_calls} AWS calls")
            if run.status in (SyncRun.Status.FAILED, SyncRun.Status.SKIPPED):
                raise CommandError(f"the incremental sync of {source.name} failed: {run.error}")
        # The trail delivered the Studio calls (and a backfill digest): read them now rather than at
        # beat's next S3 pass, so /audit/bypasses/ names who decided from the first page view.
        for source in RegistrySource.objects.filter(enabled=True).exclude(cloudtrail_bucket=""):
            result = ingest_source(source, lookup=False)
            self.stdout.write(f"  CloudTrail S3 pass {source.name}: {len(result.errors)} errors")
