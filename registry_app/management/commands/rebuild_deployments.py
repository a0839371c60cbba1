from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from registry_app.audit.deployments import rebuild_deployments
from registry_app.audit.ingest_run import acquire_audit_lock, release_audit_lock
from registry_app.models import RegistrySource


class Command(BaseCommand):
    help = "Rebuild endpoint deployment history (EndpointDeployment) from CloudTrail events and the mirror."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--endpoint", help="Only this endpoint (name, case-insensitive).")
        parser.add_argument("--source", help="Only this source.")

    def handle(self, *args: Any, **opts: Any) -> None:
        sources = list(RegistrySource.objects.all())
        if opts["source"]:
            sources = [s for s in sources if s.name == opts["source"]]
            if not sources:
                raise CommandError(f"no registry source named {opts['source']!r}")
        # The audit ingest rebuilds under the same per-source lock: never interleave with it.
        tokens: list[tuple[RegistrySource, str]] = []
        try:
            for source in sources:
                token = acquire_audit_lock(source)
                if token is None:
                    raise CommandError(f"an audit ingest of {source.name} is running; try again when it ends")
                tokens.append((source, token))
            total_rows = 0
            endpoints: list[str] = []
            for source in sources if opts["source"] else [None]:
                result = rebuild_deployments(opts["endpoint"], source=source)
                total_rows += result.rows
                endpoints += result.endpoints
        finally:
            for source, token in tokens:
                release_audit_lock(source, token)
        if opts["endpoint"] and not endpoints:
            raise CommandError(f"no endpoint named {opts['endpoint']!r} in CloudTrail events or the mirror")
        self.stdout.write(f"Rebuilt {len(endpoints)} endpoint(s), {total_rows} deployment row(s)")
        for name in endpoints:
            self.stdout.write(f"  {name}")
