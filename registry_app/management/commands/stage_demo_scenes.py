from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from registry_app.devtools.demo_scenes import stage_demo_scenes


class Command(BaseCommand):
    help = (
        "Demo only: after the first sync, make an outside approval in the registry, a revocation and a push "
        "conflict (registry_app/devtools/demo_scenes.py); run an incremental sync afterwards."
    )

    def handle(self, *args: Any, **opts: Any) -> None:
        summary = stage_demo_scenes()
        played, skipped = len(summary.done), len(summary.skipped)
        self.stdout.write(self.style.SUCCESS(f"Demo scenes: {played} played, {skipped} skipped"))
        for line in summary.lines():
            self.stdout.write(line)
