"""The people of the tests: one user per role, a viewer, an outsider, staff and a registrant.

``make_user`` is the one way tests create a user with roles; ``personas`` (a fixture in the root
conftest) builds the standard cast.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import Group

from tests.factories import UserFactory

# persona name -> the role it holds
ROLE_OF = {"mlead": "ml-lead", "fair": "fairness", "comp": "compliance", "viewer": "viewer"}
REGISTRANT = "registrant"  # a person whose name appears as the package's CreatedBy (never signs)


def make_user(username: str, *roles: str, **extra: Any) -> Any:
    """A user holding ``roles`` (auth groups, created on demand); ``extra`` goes to the factory."""
    user = UserFactory(username=username, **extra)
    for role in roles:
        user.groups.add(Group.objects.get_or_create(name=role)[0])
    return user


def cast() -> dict[str, Any]:
    """One user per role, a viewer, somebody with no role (outsider), staff without a role, and a
    registrant who holds every reviewer role (separation of duties must still refuse them)."""
    users = {name: make_user(name, role) for name, role in ROLE_OF.items()}
    users["nobody"] = make_user("nobody")
    users["staff"] = make_user("operator", is_staff=True)
    users[REGISTRANT] = make_user(REGISTRANT, "ml-lead", "fairness", "compliance")
    return users
