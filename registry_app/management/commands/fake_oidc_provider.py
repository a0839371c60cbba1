"""``manage.py fake_oidc_provider [--port 9000] [--redirect-uri URL] [--user name:email:groups]``.

Runs the loopback test identity provider (registry_app/devtools/fake_oidc.py) until Ctrl-C; for
trying single sign-on by hand and for ``make demo``. Never point a real deployment at it.
"""

from __future__ import annotations

import argparse
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from registry_app.devtools import fake_oidc


class Command(BaseCommand):
    help = "Run a fake OpenID Connect provider on loopback (tests and demo only: it approves whoever is picked)."

    def add_arguments(self, parser: CommandParser) -> None:
        fake_oidc.add_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            provider = fake_oidc.provider_from_options(argparse.Namespace(**options))
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        fake_oidc.serve(provider, self.stdout)
