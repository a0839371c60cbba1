"""``manage.py grant_role USERNAME ROLE [--revoke]``: roles are Django auth groups."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError, CommandParser

from registry_app.permissions import SIGNOFF_ROLES, VIEWER_ROLE

MAX_ROLE_LENGTH = 150  # auth.Group.name


class Command(BaseCommand):
    help = (
        "Give a user a governance role (an auth group, created if needed), or take it away with --revoke. "
        f"Built-in roles: {', '.join((*SIGNOFF_ROLES, VIEWER_ROLE))}; any other role works once a policy requires it."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("role")
        parser.add_argument("--revoke", action="store_true", help="Remove the role instead of granting it.")

    def handle(self, *args: Any, **options: Any) -> None:
        role = str(options["role"]).strip()
        if not role or len(role) > MAX_ROLE_LENGTH:
            raise CommandError(f"A role name must be 1-{MAX_ROLE_LENGTH} characters.")
        user = self._user(str(options["username"]).strip())
        name = user.get_username()
        if options["revoke"]:
            group = Group.objects.filter(name=role).first()
            if group is None or not user.groups.filter(pk=group.pk).exists():
                self.stdout.write(f"{name} does not hold the {role} role; nothing to do.")
                return
            user.groups.remove(group)
            self.stdout.write(self.style.SUCCESS(f"Revoked the {role} role from {name}."))
            return
        group, created = Group.objects.get_or_create(name=role)
        if created:
            self.stdout.write(f"Created the {role} role.")
            if role not in (*SIGNOFF_ROLES, VIEWER_ROLE):
                self.stdout.write(
                    self.style.WARNING(f"Note: {role} is not a built-in role; it counts once a policy requires it.")
                )
        if user.groups.filter(pk=group.pk).exists():
            self.stdout.write(f"{name} already holds the {role} role.")
            return
        user.groups.add(group)
        self.stdout.write(self.style.SUCCESS(f"Granted the {role} role to {name}."))

    def _user(self, username: str) -> Any:
        model = get_user_model()
        field = model.USERNAME_FIELD
        user = model.objects.filter(**{field: username}).first()
        if user is None:
            matches = list(model.objects.filter(**{f"{field}__iexact": username})[:2])
            if len(matches) == 1:
                user = matches[0]
        if user is None:
            raise CommandError(f"There is no user {username!r}.")
        return user
