from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from registry_app.devtools.demo_seed import seed_registry


class Command(BaseCommand):
    help = (
        "Create a realistic demo SageMaker Model Registry (groups, versions, reports, model cards, endpoints) "
        "in whatever AWS_ENDPOINT_URL points at. Meant for moto; does nothing if already seeded."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--region", default="eu-west-1")
        parser.add_argument("--second-region", default="us-east-1")
        parser.add_argument("--bucket", default="acme-ml-artifacts")

    def handle(self, *args: Any, **opts: Any) -> None:
        summary = seed_registry(region=opts["region"], second_region=opts["second_region"], bucket=opts["bucket"])
        lines = summary.lines()
        style = self.style.WARNING if summary.skipped else self.style.SUCCESS
        self.stdout.write(style(lines[0]))
        for line in lines[1:]:
            self.stdout.write(line)
