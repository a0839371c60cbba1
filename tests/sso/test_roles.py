"""The pure part: parsing OIDC_ROLE_MAP, groups -> roles, claims -> identity."""

from __future__ import annotations

import pytest

from registry_app.sso.roles import (
    RoleMapError,
    claim_groups,
    identity_from_claims,
    managed_roles,
    parse_role_map,
    roles_for_groups,
    username_hint,
)

MAP_TEXT = (
    "idp-ml-leads=ml-lead, idp-fairness=fairness,idp-compliance=compliance,"
    "idp-admins=staff,idp-leads=ml-lead,idp-admins=compliance"
)


def test_parse_role_map() -> None:
    assert parse_role_map(MAP_TEXT) == {
        "idp-ml-leads": ("ml-lead",),
        "idp-fairness": ("fairness",),
        "idp-compliance": ("compliance",),
        "idp-admins": ("staff", "compliance"),
        "idp-leads": ("ml-lead",),
    }
    assert parse_role_map("") == parse_role_map(None) == parse_role_map(" , ") == {}
    assert parse_role_map("a=b,a=b") == {"a": ("b",)}


@pytest.mark.parametrize("text", ["idp-admins", "=staff", "idp-admins=", "a=b,c", "a=" + "r" * 151])
def test_parse_role_map_refuses_malformed_pairs(text: str) -> None:
    with pytest.raises(RoleMapError):
        parse_role_map(text)


def test_roles_for_groups() -> None:
    role_map = parse_role_map(MAP_TEXT)
    assert managed_roles(role_map) == {"ml-lead", "fairness", "compliance", "staff"}
    assert roles_for_groups(["idp-admins", "idp-leads", "unknown"], role_map) == {"staff", "compliance", "ml-lead"}
    assert roles_for_groups(["IDP-ADMINS", "idp-admins "], role_map) == frozenset()  # exact names only
    assert roles_for_groups([], role_map) == frozenset()


def test_claim_groups_accepts_lists_and_single_strings_only() -> None:
    assert claim_groups({"groups": ["b", "a", "a", " ", 3, None]}, "groups") == ("a", "b")
    assert claim_groups({"groups": "admins"}, "groups") == ("admins",)
    assert claim_groups({"roles": ["x"]}, "roles") == ("x",)
    assert claim_groups({"groups": {"a": 1}}, "groups") == ()
    assert claim_groups({}, "groups") == ()


def test_username_hint() -> None:
    assert username_hint({"email": "Jo.Smith+x@acme.example"}) == "Jo.Smith+x"
    assert username_hint({"email": "", "preferred_username": "j smith!"}) == "jsmith"
    assert username_hint({"email": "<>@x"}) == "sso-user"
    assert len(username_hint({"email": "a" * 300 + "@x"})) == 146


def test_identity_from_claims() -> None:
    identity = identity_from_claims(
        {"iss": "https://idp", "sub": "42", "email": "a@b.c", "name": "Ann Lee Smith", "roles": ["r1"]},
        groups_claim="roles",
    )
    assert (identity.first_name, identity.last_name, identity.groups) == ("Ann", "Lee Smith", ("r1",))
    assert identity.username_hint == "a"
    given = identity_from_claims(
        {"iss": "i", "sub": "s", "given_name": "G", "family_name": "F", "name": "X Y"}, groups_claim="g"
    )
    assert (given.first_name, given.last_name) == ("G", "F")
    with pytest.raises(ValueError):
        identity_from_claims({"iss": "i", "sub": ""}, groups_claim="groups")
