from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

ROLES = ("ml-lead", "fairness", "compliance", "viewer")

# (username, first name, last name, role group or "" for the superuser, what they do in the demo)
DEMO_USERS: tuple[tuple[str, str, str, str, str], ...] = (
    ("admin", "Ada", "Admin", "", "superuser: Django admin, sync controls"),
    ("mlead", "Morgan", "Lee", "ml-lead", "ML lead sign-off"),
    ("fairness", "Farah", "Nasser", "fairness", "fairness review sign-off"),
    ("compliance", "Conor", "Walsh", "compliance", "compliance sign-off"),
    ("viewer", "Vera", "Novak", "viewer", "read-only"),
)
EMAIL_DOMAIN = "acme.example"


class Command(BaseCommand):
    help = "Create (or reset) the demo role groups and one login per role, then print the logins."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--password", default="demo-governance", help="Password for every demo user.")

    def handle(self, *args: Any, **opts: Any) -> None:
        password: str = opts["password"]
        with transaction.atomic():
            groups = {name: Group.objects.get_or_create(name=name)[0] for name in ROLES}
            for username, first, last, role, _ in DEMO_USERS:
                self._upsert(username, first, last, role, password, groups)
        self.stdout.write(self.style.SUCCESS(f"Demo users ready ({len(DEMO_USERS)} logins, roles: {', '.join(ROLES)})"))
        rows = [("login", "password", "role", "email", "can")] + [
            (username, password, role or "superuser", f"{username}@{EMAIL_DOMAIN}", note)
            for username, _, _, role, note in DEMO_USERS
        ]
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        for index, row in enumerate(rows):
            self.stdout.write(
                ("  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))).rstrip()
            )
            if index == 0:
                self.stdout.write("  " + "  ".join("-" * width for width in widths))

    def _upsert(self, username: str, first: str, last: str, role: str, password: str, groups: dict[str, Group]) -> None:
        user_model = get_user_model()
        user = user_model.objects.filter(username=username).first() or user_model(username=username)
        user.email = f"{username}@{EMAIL_DOMAIN}"
        user.first_name = first
        user.last_name = last
        user.is_active = True
        user.is_staff = not role
        user.is_superuser = not role
        user.set_password(password)
        user.save()
        user.groups.set([groups[role]] if role else [])
