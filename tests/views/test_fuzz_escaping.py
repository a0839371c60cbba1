"""Registry-supplied text is data on every page: hostile strings in every field never become markup.

Two passes over the same pages (tests/hostile.py builds the data and parses the HTML):
- every payload of a fixed corpus lands in every field (the corpus rotates over the fields), and
- hypothesis mixes corpus payloads with random text (attribute breakers, bidi and zero-width
  characters, full-width brackets, astral characters) per field.

A page passes when it answers 200, contains no script / handler / script URL / style / foreign
element that our templates do not produce, and every field's token shows on at least one page
(so a field that stopped being rendered, or a page that stopped rendering, fails the test).
"""

from __future__ import annotations

import pytest
from django.db import transaction
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.hostile import FIELDS, PAYLOADS, audit_html, build_site, clamp, rotate_payloads, token

pytestmark = pytest.mark.django_db

HX = {"HX-Request": "true"}


def check_pages(texts: dict[str, str]) -> None:
    site = build_site(texts)
    client = Client()
    client.force_login(site.user)
    shown: set[str] = set()
    problems: list[str] = []
    requests = [(label, url, {}) for label, url in site.pages.items()]
    requests += [("groups search (htmx)", site.pages["groups search"], HX), ("queue (htmx)", site.pages["queue"], HX)]
    for label, url, headers in requests:
        response = client.get(url, headers=headers)
        if response.status_code != 200:
            problems.append(f"{label}: HTTP {response.status_code}")
            continue
        audit = audit_html(response.content.decode())
        problems.extend(f"{label}: {finding}" for finding in audit.findings)
        shown.update(name for i, name in enumerate(FIELDS) if audit.shows(token(i)))
    missing = [name for name in FIELDS if name not in shown]
    assert not problems, "\n".join(problems)
    assert not missing, f"fields no page showed (so their escaping went untested): {missing}"


@pytest.mark.parametrize("round_no", range(len(PAYLOADS)))
def test_every_payload_in_every_field(round_no: int) -> None:
    check_pages(rotate_payloads(round_no))


_TRICKY = st.sampled_from(
    [*"<>\"'`&/=;:()[]{}%\\ \t\n", "\u202e", "\u200b", "\ufeff", "\u2028", "\uff1c", "\u0130", "\u00e9", "\U0001f600"]
)
_TEXT = st.text(_TRICKY | st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=24)
_FIELD_TEXT = st.lists(st.one_of(st.sampled_from(PAYLOADS), _TEXT), min_size=1, max_size=3).map("".join)
_TEXTS = st.fixed_dictionaries({name: _FIELD_TEXT for name in FIELDS}).map(
    lambda raw: {name: clamp(name, token(i) + raw[name]) for i, name in enumerate(FIELDS)}
)


@settings(
    max_examples=15,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(texts=_TEXTS)
def test_hypothesis_hostile_strings_in_every_field(texts: dict[str, str]) -> None:
    # One savepoint per example, rolled back, so examples never see each other's rows.
    with transaction.atomic():
        check_pages(texts)
        transaction.set_rollback(True)
