"""``manage.py create_api_token NAME [--expires-days N] [--scope S ...] [--replace]``: a bearer token
for the deploy-gate API, printed once (only its hash is stored). Revoke it in the admin."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from registry_app.gate.tokens import token_create
from registry_app.models import ApiToken


class Command(BaseCommand):
    help = (
        "Create an API token for a service account (svc-NAME, created on first use) and print it once. "
        f"Scopes: {', '.join(ApiToken.Scope.values)} (default: both)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="Who uses the token, e.g. the pipeline's name (letters, digits, _ . -)")
        parser.add_argument("--expires-days", type=int, default=None, help="Expire after N days (default: never)")
        parser.add_argument(
            "--scope",
            action="append",
            choices=ApiToken.Scope.values,
            dest="scopes",
            help="Repeat for several; default: every scope",
        )
        parser.add_argument(
            "--replace", action="store_true", help="Revoke the live token of this name and create a new one"
        )
        parser.add_argument("--token-only", action="store_true", help="Print the token alone (for scripts)")

    def handle(self, *args: Any, **options: Any) -> None:
        scopes = options["scopes"] or list(ApiToken.Scope.values)
        try:
            token, raw = token_create(
                name=str(options["name"]),
                scopes=scopes,
                expires_days=options["expires_days"],
                replace=bool(options["replace"]),
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        if options["token_only"]:
            self.stdout.write(raw)
            return
        expires = f"expires {token.expires_at:%Y-%m-%d %H:%M} UTC" if token.expires_at else "never expires"
        self.stdout.write(
            f"API token {token.name} for service account {token.user.get_username()}: "
            f"scopes {' '.join(token.scopes)}; {expires}."
        )
        self.stdout.write(raw)
        self.stdout.write(
            self.style.WARNING("Store it now: it is not shown again (only its hash is kept). Revoke it in the admin.")
        )
