"""``manage.py check_registry_source NAME``: does the source's identity have every read permission?"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from registry_app.aws.permissions import DENIED, check_source
from registry_app.aws.session import SourceConfig
from registry_app.models import EvaluationReport, RegistrySource


class Command(BaseCommand):
    help = (
        "Exercise every read permission the dashboard needs against a source's account (one cheap call "
        "each) and print allowed / denied / not checkable, with the IAM statement to add for each denial. "
        "Exits non-zero when anything is denied. Never writes and never consumes queued events."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="The registry source (see add_registry_source).")
        parser.add_argument("--report-uri", default="", help="An s3:// evaluation report to test s3:GetObject on.")

    def handle(self, *args: Any, **opts: Any) -> None:
        source = RegistrySource.objects.filter(name=opts["name"]).first()
        if source is None:
            raise CommandError(f"no registry source named {opts['name']!r}")
        report_uri = opts["report_uri"] or (
            EvaluationReport.objects.filter(package__source=source, s3_uri__startswith="s3://")
            .order_by("-fetched_at", "-pk")
            .values_list("s3_uri", flat=True)
            .first()
            or ""
        )
        results = check_source(
            SourceConfig.from_source(source),
            queue_url=source.events_queue_url,
            trail_bucket=source.cloudtrail_bucket,
            report_uri=report_uri,
        )
        self.stdout.write(f"{source} {'via ' + source.role_arn if source.role_arn else '(own credentials)'}")
        width = max(len(r.action) for r in results)
        for result in results:
            style = {DENIED: self.style.ERROR, "allowed": self.style.SUCCESS}.get(result.status, self.style.WARNING)
            line = f"  {result.action:<{width}}  {style(result.status)}"
            self.stdout.write(line + (f"  — {result.detail}" if result.detail else ""))
        denied = [r for r in results if r.status == DENIED]
        if denied:
            self.stdout.write("\nAdd these statements (see docs/iam/README.md):")
            for result in denied:
                where = f" to {result.policy}" if result.policy else ""
                self.stdout.write(f"  {result.action}{where}:")
                self.stdout.write("    " + json.dumps(result.statement, indent=2).replace("\n", "\n    "))
            raise CommandError(f"{len(denied)} permission(s) denied: " + ", ".join(r.action for r in denied))
        self.stdout.write(self.style.SUCCESS("No permission denied."))
