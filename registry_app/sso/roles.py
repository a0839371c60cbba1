"""Pure: IdP groups in the claims -> dashboard roles, through the configured role map.

``OIDC_ROLE_MAP="idp-ml-leads=ml-lead,idp-fairness=fairness,idp-admins=staff"``: each pair maps
one IdP group to one dashboard role; a group may appear twice (two roles) and several groups may
give the same role. Roles named in the map are *managed by the IdP*: at every SSO login the user
holds exactly those of them that their groups give. Roles not named in the map (granted with
``grant_role`` or in the admin) are never touched. ``staff`` is not an auth group but Django's
``is_staff`` flag (admin access, retrying failed pushes); superuser status is never managed.

No Django import: governance/settings.py parses the map with ``parse_role_map`` at start-up.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "STAFF_ROLE",
    "IdentityClaims",
    "RoleMapError",
    "claim_groups",
    "identity_from_claims",
    "managed_roles",
    "parse_role_map",
    "roles_for_groups",
    "username_hint",
]

STAFF_ROLE = "staff"
MAX_ROLE_LENGTH = 150  # auth.Group.name
MAX_USERNAME_LENGTH = 150  # auth.User.username


class RoleMapError(ValueError):
    """OIDC_ROLE_MAP is malformed."""


def parse_role_map(text: str | None) -> dict[str, tuple[str, ...]]:
    """``"g1=role1, g2=role2, g1=role3"`` -> ``{"g1": ("role1", "role3"), "g2": ("role2",)}``.

    Blank input is an empty map. Raises ``RoleMapError`` for a pair without ``=``, an empty side,
    or a role name longer than an auth group name can be.
    """
    mapping: dict[str, list[str]] = {}
    for raw in (text or "").split(","):
        pair = raw.strip()
        if not pair:
            continue
        group, sep, role = (part.strip() for part in pair.partition("="))
        if not sep or not group or not role:
            raise RoleMapError(f"OIDC_ROLE_MAP entry {pair!r}: use idp-group=role")
        if len(role) > MAX_ROLE_LENGTH:
            raise RoleMapError(f"OIDC_ROLE_MAP role {role[:20]!r}...: at most {MAX_ROLE_LENGTH} characters")
        roles = mapping.setdefault(group, [])
        if role not in roles:
            roles.append(role)
    return {group: tuple(roles) for group, roles in mapping.items()}


def managed_roles(role_map: Mapping[str, Iterable[str]]) -> frozenset[str]:
    """Every role the map can give: the IdP owns these."""
    return frozenset(role for roles in role_map.values() for role in roles)


def roles_for_groups(groups: Iterable[str], role_map: Mapping[str, Iterable[str]]) -> frozenset[str]:
    """The roles the IdP groups give (exact, case-sensitive group names; unknown groups give nothing)."""
    return frozenset(role for group in set(groups) for role in role_map.get(group, ()))


def claim_groups(claims: Mapping[str, Any], claim: str) -> tuple[str, ...]:
    """The IdP groups in ``claims[claim]``: a list of strings or one string; anything else is ignored."""
    value = claims.get(claim)
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple):
        return ()
    return tuple(sorted({item.strip() for item in value if isinstance(item, str) and item.strip()}))


def username_hint(claims: Mapping[str, Any]) -> str:
    """A readable username for a new account: the email's local part, else ``preferred_username``,
    reduced to the characters Django usernames allow (letters, digits, ``@.+-_``)."""
    email = claims.get("email")
    candidates = [email.partition("@")[0] if isinstance(email, str) else "", claims.get("preferred_username")]
    for candidate in candidates:
        if not isinstance(candidate, str):
            continue
        cleaned = "".join(ch for ch in candidate.strip() if ch.isalnum() or ch in "@.+-_")
        if cleaned:
            return cleaned[: MAX_USERNAME_LENGTH - 4]  # room for a "-NNN" suffix on a clash
    return "sso-user"


@dataclass(frozen=True)
class IdentityClaims:
    """What a login needs from the verified claims."""

    issuer: str
    subject: str
    email: str
    first_name: str
    last_name: str
    username_hint: str
    groups: tuple[str, ...]


def _text(claims: Mapping[str, Any], name: str, limit: int) -> str:
    value = claims.get(name)
    return value.strip()[:limit] if isinstance(value, str) else ""


def identity_from_claims(claims: Mapping[str, Any], *, groups_claim: str) -> IdentityClaims:
    """Pick the fields out of merged ID-token + userinfo claims (``iss`` and ``sub`` must be present)."""
    issuer, subject = claims.get("iss"), claims.get("sub")
    if not isinstance(issuer, str) or not issuer or not isinstance(subject, str) or not subject:
        raise ValueError("the claims carry no iss or sub")
    first, last = _text(claims, "given_name", 150), _text(claims, "family_name", 150)
    if not first and not last:
        first, _, last = _text(claims, "name", 301).partition(" ")
    return IdentityClaims(
        issuer=issuer,
        subject=subject,
        email=_text(claims, "email", 254),
        first_name=first[:150],
        last_name=last[:150],
        username_hint=username_hint(claims),
        groups=claim_groups(claims, groups_claim),
    )
