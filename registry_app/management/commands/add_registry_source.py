from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from registry_app.models import RegistrySource


class Command(BaseCommand):
    help = "Create or update a registry source (an AWS account/region to mirror)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")
        parser.add_argument("--region", required=True)
        parser.add_argument("--role-arn", default="")
        parser.add_argument("--external-id", default="")
        parser.add_argument("--cloudtrail-bucket", default="")
        parser.add_argument("--cloudtrail-prefix", default="")
        parser.add_argument("--events-queue-url", default="")
        parser.add_argument("--disabled", action="store_true", help="Create the source disabled.")

    def handle(self, *args: Any, **opts: Any) -> None:
        source = RegistrySource.objects.filter(name=opts["name"]).first() or RegistrySource(name=opts["name"])
        created = source.pk is None
        source.region = opts["region"]
        source.role_arn = opts["role_arn"]
        source.external_id = opts["external_id"]
        source.cloudtrail_bucket = opts["cloudtrail_bucket"]
        source.cloudtrail_prefix = opts["cloudtrail_prefix"]
        source.events_queue_url = opts["events_queue_url"]
        source.enabled = not opts["disabled"]
        try:
            source.full_clean()
        except ValidationError as exc:
            raise CommandError("; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())) from exc
        source.save()
        self.stdout.write(f"{'Created' if created else 'Updated'} registry source {source}")
