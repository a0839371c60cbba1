"""SSO logins: find or create the user for a verified identity, apply the IdP's roles, audit it.

Matching: a user is the same person when the ID token's ``iss`` and ``sub`` are the same (``sub``
is the one claim an OpenID provider promises never to reassign; emails and names change). The
link is kept without a new table: an SSO account's password field holds the unusable marker
``!sso$<sha256(iss, sub)>`` (Django treats any password starting with ``!`` as unusable, so such
an account can never log in with a password and cannot reset one by email). A new account's
username comes from the email's local part (then ``preferred_username``), with ``-2``, ``-3``...
on a clash, so an IdP user never takes over an existing local account of the same name. An
administrator who sets a local password on an SSO account turns it into a local account: the
next SSO login of that person creates a new account.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import IntegrityError, connection, transaction

from registry_app.audit.log import audit_append, audit_context
from registry_app.models import AuditLogEntry
from registry_app.sso.roles import STAFF_ROLE, IdentityClaims, managed_roles, roles_for_groups

__all__ = ["RoleChange", "SSOLoginRefused", "sso_link", "sso_user_login", "sso_user_roles_sync"]

logger = logging.getLogger(__name__)
LINK_PREFIX = "!sso$"
MAX_USERNAME_SUFFIX = 1000


class SSOLoginRefused(Exception):
    """The identity is valid but may not log in (several linked accounts, account creation off)."""


@dataclass(frozen=True)
class RoleChange:
    granted: tuple[str, ...]
    revoked: tuple[str, ...]
    roles: tuple[str, ...]  # the IdP-managed roles the user holds after the login


def sso_link(issuer: str, subject: str) -> str:
    """The unusable-password marker that ties an account to (issuer, sub)."""
    digest = hashlib.sha256(f"{issuer}\n{subject}".encode()).hexdigest()
    return f"{LINK_PREFIX}{digest}"


def _lock_identity(link: str) -> None:
    """Serialise two first logins of one person, so they cannot create two accounts.

    PostgreSQL: a transaction-scoped advisory lock on the link; SQLite's IMMEDIATE transactions
    already hold the database's single write lock from BEGIN.
    """
    if connection.vendor == "postgresql":
        key = int(link[len(LINK_PREFIX) : len(LINK_PREFIX) + 15], 16)  # 60 bits: fits a signed bigint
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])


def _create_user(identity: IdentityClaims, link: str) -> Any:
    model = get_user_model()
    base = identity.username_hint
    for attempt in range(1, MAX_USERNAME_SUFFIX + 1):
        username = base if attempt == 1 else f"{base}-{attempt}"
        if model.objects.filter(**{f"{model.USERNAME_FIELD}__iexact": username}).exists():
            continue
        try:
            with transaction.atomic():
                user = model(
                    **{model.USERNAME_FIELD: username},
                    email=identity.email,
                    first_name=identity.first_name,
                    last_name=identity.last_name,
                )
                user.password = link
                user.save()
                return user
        except IntegrityError:  # taken between the check and the insert
            continue
    raise SSOLoginRefused(f"no free username from {base!r}")


def _update_profile(user: Any, identity: IdentityClaims) -> None:
    changed = []
    for name in ("email", "first_name", "last_name"):
        value = getattr(identity, name)
        if value and getattr(user, name) != value:
            setattr(user, name, value)
            changed.append(name)
    if changed:
        user.save(update_fields=changed)


def sso_user_roles_sync(user: Any, groups: tuple[str, ...], role_map: Mapping[str, tuple[str, ...]]) -> RoleChange:
    """Make the user's IdP-managed roles exactly those their groups give; leave other roles alone.

    Runs in the caller's transaction. Group membership changes write ``role.granted`` /
    ``role.revoked`` audit entries (through the role signal, in the caller's ``audit_context``);
    a change of ``is_staff`` writes one here.
    """
    managed = managed_roles(role_map)
    wanted = roles_for_groups(groups, role_map)
    group_roles_managed = managed - {STAFF_ROLE}
    held = set(user.groups.filter(name__in=group_roles_managed).values_list("name", flat=True))
    to_add = sorted((wanted - {STAFF_ROLE}) - held)
    to_remove = sorted(held - wanted)
    if to_add:
        user.groups.add(*[Group.objects.get_or_create(name=name)[0] for name in to_add])
    if to_remove:
        user.groups.remove(*Group.objects.filter(name__in=to_remove))
    granted, revoked = list(to_add), list(to_remove)
    if STAFF_ROLE in managed and bool(user.is_staff) != (STAFF_ROLE in wanted):
        user.is_staff = STAFF_ROLE in wanted
        user.save(update_fields=["is_staff"])
        (granted if user.is_staff else revoked).append(STAFF_ROLE)
        verb = "granted" if user.is_staff else "revoked"
        audit_append(
            f"role.{verb}",
            actor=_idp_actor(),
            via=AuditLogEntry.Via.WEB,
            subject=user,
            before=None if user.is_staff else {"role": STAFF_ROLE},
            after={"role": STAFF_ROLE} if user.is_staff else None,
            message=f"Role {STAFF_ROLE} {verb} {'to' if user.is_staff else 'from'} {user.get_username()}",
        )
    if hasattr(user, "_governance_roles"):  # permissions.user_roles caches on the user object
        del user._governance_roles
    held_after = (held | set(to_add)) - set(to_remove)
    if STAFF_ROLE in managed and user.is_staff:
        held_after.add(STAFF_ROLE)
    return RoleChange(granted=tuple(sorted(granted)), revoked=tuple(sorted(revoked)), roles=tuple(sorted(held_after)))


def _idp_actor() -> str:
    return f"sso:{settings.OIDC_PROVIDER_NAME}"[:150]


def sso_user_login(identity: IdentityClaims, *, correlation_id: str = "") -> Any:
    """The account for a verified identity, with its profile and IdP-managed roles brought up to date.

    Transaction: one atomic block (lookup or creation, profile fields, roles, audit entries); no
    network call inside. Audit: ``sso.login`` (issuer, subject, IdP groups, roles after, what
    changed) plus one ``role.granted``/``role.revoked`` per change; Django's ``user_logged_in``
    adds the usual ``login`` entry when the view logs the user in.
    Raises ``SSOLoginRefused`` when several accounts carry the link, the account is deactivated, or
    it does not exist and creation is switched off.
    """
    model = get_user_model()
    link = sso_link(identity.issuer, identity.subject)
    role_map = settings.OIDC_ROLE_MAP
    with (
        transaction.atomic(),
        audit_context(actor=_idp_actor(), via=AuditLogEntry.Via.WEB, correlation_id=correlation_id),
    ):
        _lock_identity(link)
        users = list(model.objects.filter(password=link)[:2])
        if len(users) > 1:
            raise SSOLoginRefused(f"several accounts are linked to {identity.issuer} subject {identity.subject}")
        created = not users
        if created:
            if not settings.OIDC_CREATE_USER:
                raise SSOLoginRefused("no account is linked to this identity and OIDC_CREATE_USER is off")
            user = _create_user(identity, link)
        else:
            user = users[0]
            if not user.is_active:
                raise SSOLoginRefused(f"the account {user.get_username()} is deactivated")
            _update_profile(user, identity)
        change = sso_user_roles_sync(user, identity.groups, role_map) if role_map else RoleChange((), (), ())
        audit_append(
            "sso.login",
            actor=user,
            via=AuditLogEntry.Via.WEB,
            subject=user,
            after={
                "issuer": identity.issuer,
                "subject": identity.subject,
                "idp_groups": list(identity.groups),
                "managed_roles": list(change.roles),
                "granted": list(change.granted),
                "revoked": list(change.revoked),
                "account_created": created,
            },
            message=(
                f"{user.get_username()} authenticated through {settings.OIDC_PROVIDER_NAME}"
                f"{' (new account)' if created else ''}; IdP-managed roles: {', '.join(change.roles) or 'none'}"
            ),
            correlation_id=correlation_id,
        )
    logger.info(
        "sso login %s (created=%s) granted=%s revoked=%s", user.get_username(), created, change.granted, change.revoked
    )
    return user
