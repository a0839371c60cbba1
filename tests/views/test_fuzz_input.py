"""No input makes a 500: hypothesis throws arbitrary strings, unicode, huge and boundary values, and
hand-made page cursors at every GET parameter (and path argument) of every route, as each persona
that sees the route differently (tests/views/fuzz_routes.py declares them).

A response passes when it is not a 5xx, shows no traceback, and, when it is a 400, is our page
naming the field (or our JSON error), never Django's DEBUG page. Streaming answers (exports, packs)
are read to the end, so an error in the middle of a download counts too. The number of examples
is bounded per parameter (``Route.examples_per_param``), so the whole file stays well within a
minute on two cores.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.db import transaction
from django.test import Client
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from registry_app.models import PushOutbox, SignOff, SyncRun
from registry_app.models.registry import Endpoint
from tests.factories import UserFactory
from tests.hostile import benign_texts, build_site
from tests.views.fuzz_routes import (
    ADMIN,
    ANON,
    COMPLIANCE,
    HEADERS,
    ROUTES,
    VIEWER,
    AdminRoute,
    Route,
    admin_changelists,
    edges,
    path_strategy,
    query_strategy,
    url_patterns,
)

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent.parent
DEBUG_PAGE = re.compile(rb"You(?:&#x27;|\xe2\x80\x99|')re seeing this error because you have|Traceback")
HYPOTHESIS = {
    "deadline": None,
    "database": None,
    "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
}


# --------------------------------------------------------------------------------------------- the site


def _clients(site: Any) -> dict[str, Client]:
    viewer = UserFactory(username="fuzz-viewer")
    viewer.groups.add(Group.objects.get_or_create(name="viewer")[0])
    compliance = UserFactory(username="fuzz-compliance")
    compliance.groups.add(Group.objects.get_or_create(name="compliance")[0])
    people = {
        VIEWER: viewer,
        COMPLIANCE: compliance,
        ADMIN: UserFactory(username="fuzz-admin", is_staff=True, is_superuser=True),
    }
    clients = {ANON: Client()}
    for persona, user in people.items():
        clients[persona] = Client()
        clients[persona].force_login(user)
    return clients


def _real_arguments(site: Any) -> dict[str, Any]:
    package = site.package
    push = PushOutbox.objects.create(package=package, kind="status", expected_status="x", state="failed")
    return {
        "group_name": package.group.name,
        "group": package.group.name,  # the API's path arguments
        "version": package.version,
        "name": Endpoint.objects.values_list("name", flat=True).first(),
        "push_id": push.pk,
        "source_name": package.group.source.name,
        "run_id": SyncRun.objects.order_by("pk").values_list("pk", flat=True).first(),
        "signoff_id": SignOff.objects.order_by("pk").values_list("pk", flat=True).first() or 1,
        "finding_id": 1,
        "action": "close",
        "uidb64": "MQ",
        "token": "c3j2ab-0123456789abcdef0123456789abcdef",
    }


@pytest.fixture
def site() -> dict[str, Any]:
    built = build_site(benign_texts())
    return {"clients": _clients(built), "real": _real_arguments(built)}


# --------------------------------------------------------------------------------------------- the check


def _body(response: Any) -> bytes:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content)
    return response.content


def check(client: Client, url: str, query: dict[str, list[str]], headers: dict[str, str]) -> None:
    response = client.get(url, query, headers=headers)
    body = _body(response)
    where = f"GET {url} {query!r} {headers!r}"
    assert response.status_code < 500, f"{where} -> {response.status_code}"
    assert not DEBUG_PAGE.search(body), f"{where} showed a traceback or the DEBUG page"
    if response.status_code == 400:
        # Our pages say what is wrong in an alert (the bad-request page, the as-of form with its errors).
        # The API answers {"error": code, "detail": what is accepted}.
        is_json = response["Content-Type"].startswith("application/json")
        ours = b'role="alert"' in body or (is_json and (b'"fields"' in body or b'"detail"' in body))
        assert ours, f"{where}: a 400 that is not our error page: {body[:300]!r}"


def _rolled_back(client: Client, url: str, query: dict[str, list[str]], headers: dict[str, str]) -> None:
    with transaction.atomic():  # an export writes its audit entry: roll each request back
        check(client, url, query, headers)
        transaction.set_rollback(True)


def sweep_route(site: dict[str, Any], route: Route, persona: str) -> None:
    """Every edge value of its kind, alone, in every parameter (as CSV exports for compliance)."""
    pattern = url_patterns()[route.name]
    client = site["clients"][persona]
    url = reverse(route.name, kwargs={name: site["real"][name] for name in pattern.pattern.converters})
    base = {name: [site["real"][value[1:]] if value.startswith("@") else value] for name, value in route.base}
    if persona == COMPLIANCE and "format" in route.params:
        base["format"] = ["csv"]  # the viewer's sweep covers the page; compliance's covers the export
    for name, kind in route.kinds().items():
        for value in edges(kind):
            _rolled_back(client, url, {**base, name: [value]}, {})


def fuzz_route(site: dict[str, Any], route: Route, persona: str) -> None:
    pattern = url_patterns()[route.name]
    client = site["clients"][persona]
    queries = query_strategy(route.params, route.kinds(), route.choices())
    requests = st.tuples(path_strategy(pattern, site["real"]), queries, HEADERS)

    @settings(max_examples=max(4, route.examples_per_param * len(route.params)), **HYPOTHESIS)
    @given(requests)
    def run(request: tuple[dict[str, Any], dict[str, list[str]], dict[str, str]]) -> None:
        arguments, query, headers = request
        _rolled_back(client, reverse(route.name, kwargs=arguments), query, headers)

    run()


# --------------------------------------------------------------------------------------------- the tests

CASES = [(name, persona) for name, route in ROUTES.items() for persona in route.personas]


@pytest.mark.parametrize(("name", "persona"), CASES, ids=[f"{name}-{persona}" for name, persona in CASES])
def test_no_input_makes_a_500(site: dict[str, Any], name: str, persona: str) -> None:
    sweep_route(site, ROUTES[name], persona)
    fuzz_route(site, ROUTES[name], persona)


def test_no_input_makes_a_500_in_the_admin(site: dict[str, Any]) -> None:
    client = site["clients"][ADMIN]

    def fuzz(route: AdminRoute) -> None:
        @settings(max_examples=8, **HYPOTHESIS)
        @given(query_strategy(route.params, {}, {}))
        def run(query: dict[str, list[str]]) -> None:
            check(client, reverse(route.url_name), query, {})

        run()

    for route in admin_changelists():
        fuzz(route)


def test_every_route_is_declared() -> None:
    """A new route must be added to fuzz_routes.ROUTES (with the parameters its view reads)."""
    assert set(url_patterns()) - set(ROUTES) == set()
    assert set(ROUTES) - set(url_patterns()) == set(), "a declared route no longer exists"


_RAW_GET = re.compile(r"""\bGET(?:\.get\(|\[)\s*["']([^"']+)["']""")


def test_every_raw_get_parameter_is_declared() -> None:
    """Parameters a view reads straight from request.GET (not through a form) are fuzzed too."""
    declared = {param for route in ROUTES.values() for param in route.params} | {"format"}
    read = set()
    for folder in ("registry_app/views", "registry_app/sso"):
        for module in (ROOT / folder).glob("*.py"):
            read |= set(_RAW_GET.findall(module.read_text()))
    assert read - declared == set()
    assert {"source", "error"} <= read  # the scan finds what it should
