"""The outside probe's requests (issue 14) answer 4xx with our page, DEBUG on or off; bad input in
general: 400 naming the field (JSON when JSON was asked for), NUL refused, 413 for oversized bodies;
and logged-in responses are never cached.
"""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import quote

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from tests.hostile import benign_texts, build_site
from tests.personas import make_user

pytestmark = pytest.mark.django_db

PROBE_CURSOR = "MjAyNS0wMS0wMVQwMDowMDowMCswMDowMHxhdWRpdHwnJycnJycnJycn"  # 2025-01-01...|audit|''''''''''
YEAR_ONE_CURSOR = base64.urlsafe_b64encode(b"0001-01-01T00:00:00+00:00|audit|00000000000000000001").decode()
YEAR_ONE_OUTSIDE = base64.urlsafe_b64encode(b"0001-01-01T00:00:00+00:00|outside|00000000000000000001").decode()
DEBUG_PAGE_MARKERS = ("DEBUG = True", "Traceback", "technical_500", "Request Method:")


@pytest.fixture
def site() -> Any:
    return build_site(benign_texts())


def _probe_requests(site: Any) -> list[tuple[str, str, str]]:
    """(persona, URL, the field the answer must name), as the probe sent them."""
    group = site.package.group.name
    endpoint = site.pages["endpoint"]
    package_timeline = reverse("registry:package_audit", args=[group, site.package.version])
    group_timeline = reverse("registry:group_audit", args=[group])
    q = quote  # the probe's "+01:00" offsets, percent-encoded as a browser sends them
    requests = [
        ("viewer", "/audit/?since=9999-12-31T23:59:59-01:00", "since"),
        ("viewer", f"/audit/?since={q('0001-01-01T00:00:00+01:00')}", "since"),
        ("viewer", "/audit/?until=9999-12-31T23:59:59-01:00", "until"),
        ("viewer", f"/audit/?until={q('0001-01-01T00:00:00+01:00')}", "until"),
        ("viewer", f"/as-of/?endpoint=x&at={q('9999-12-31T23:59:59-01:00')}", "at"),
        ("viewer", f"/as-of/?endpoint=x&at={q('0001-01-01T00:00:00+01:00')}", "at"),
        ("compliance", "/audit/pack.zip?until=0001-01-01", "until"),
        ("compliance", f"/audit/pack.zip?since={q('0001-01-01T00:00:00+01:00')}", "since"),
        ("viewer", f"/audit/bypasses/?before={PROBE_CURSOR}", "before"),
        ("viewer", f"/audit/bypasses/?before={YEAR_ONE_OUTSIDE}", "before"),
    ]
    for page in ("/audit/", package_timeline, group_timeline, endpoint):
        requests.append(("viewer", f"{page}?before={PROBE_CURSOR}", "before"))
        requests.append(("viewer", f"{page}?before={YEAR_ONE_CURSOR}", "before"))
    for page in (package_timeline, group_timeline, endpoint):
        requests.append(("viewer", f"{page}?after={PROBE_CURSOR}", "after"))
        requests.append(("viewer", f"{page}?after={YEAR_ONE_CURSOR}", "after"))
    return requests


@pytest.mark.parametrize("debug", [False, True], ids=["debug-off", "debug-on"])
def test_the_probes_requests_answer_400_naming_the_field(site: Any, settings: Any, debug: bool) -> None:
    settings.DEBUG = debug
    clients = {}
    for persona, role in (("viewer", "viewer"), ("compliance", "compliance")):
        clients[persona] = Client(raise_request_exception=False)
        clients[persona].force_login(make_user(f"probe-{persona}", role))
    requests = _probe_requests(site)
    assert len(requests) == 24
    for persona, url, field in requests:
        response = clients[persona].get(url)
        html = response.content.decode()
        assert response.status_code == 400, (url, response.status_code)
        assert field in html, (url, "the answer must name the field")
        assert not any(marker in html for marker in DEBUG_PAGE_MARKERS), url


def test_the_400_names_the_accepted_form(client: Client, personas: dict[str, Any]) -> None:
    client.force_login(personas["viewer"])
    html = client.get("/audit/?since=9999-12-31T23:59:59-01:00").content.decode()
    assert '<span class="err-subject">since</span>' in html
    assert "ISO-8601 date or time between 1900-01-01 and 9000-01-01" in html
    html = client.get(f"/audit/bypasses/?before={PROBE_CURSOR}").content.decode()
    assert "page link is malformed" in html


def test_a_json_request_gets_a_json_error(client: Client, personas: dict[str, Any]) -> None:
    client.force_login(personas["comp"])
    response = client.get("/audit/?format=json&since=0001-01-01T00:00:00%2B01:00")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["error"] == "Audit search"
    assert "ISO-8601" in body["fields"]["since"][0]
    accept_json = client.get("/groups/?page=x", headers={"Accept": "application/json"})
    assert accept_json.status_code == 400 and "page" in accept_json.json()["fields"]


def test_filters_and_sources_are_strict(client: Client, personas: dict[str, Any], site: Any) -> None:
    client.force_login(personas["viewer"])
    group = site.package.group.name
    for url, field in [
        ("/groups/?status=bogus", "status"),
        ("/groups/?page=0", "page"),
        ("/queue/?tab=everything", "tab"),
        (f"/groups/{group}/?source=not%20a%20slug", "source"),
        (f"/packages/{group}/{site.package.version}/?source=" + "x" * 65, "source"),
        ("/audit/?kind=nope", "kind"),
        ("/audit/bypasses/?status=Maybe", "status"),
    ]:
        response = client.get(url)
        assert response.status_code == 400, url
        assert f'<span class="err-subject">{field}</span>' in response.content.decode(), url


@pytest.mark.parametrize(
    "url",
    [
        "/groups/?q=a%00b",
        "/groups/x%00y/",
        "/audit/?actor=%00",
        "/admin/registry_app/syncrun/?q=%00",
        "/accounts/login/?next=%00",
    ],
)
def test_nul_characters_are_refused_everywhere(client: Client, personas: dict[str, Any], url: str) -> None:
    """PostgreSQL cannot hold NUL in text: any query with one would be a 500 there."""
    client.force_login(personas["staff"])
    response = client.get(url)
    assert response.status_code == 400
    assert "NUL characters" in response.content.decode()


def test_nul_in_a_form_field_is_refused(client: Client, personas: dict[str, Any]) -> None:
    client.force_login(personas["viewer"])
    response = client.post("/profile/", {"wanted": "decided\x00"})
    assert response.status_code == 400
    assert '<span class="err-subject">wanted</span>' in response.content.decode()


# --------------------------------------------------------------------------------------------- request bodies


@pytest.mark.parametrize("debug", [False, True], ids=["debug-off", "debug-on"])
def test_a_10_mb_multipart_post_is_refused_unread(
    client: Client, personas: dict[str, Any], settings: Any, debug: bool
) -> None:
    settings.DEBUG = debug
    client.force_login(personas["viewer"])
    payload = b"x" * (10 * 1024 * 1024)
    response = client.post("/profile/", {"wanted": "decided", "file": SimpleUploadedFile("big.bin", payload)})
    assert response.status_code == 413
    html = response.content.decode()
    assert "at most 1,048,576 bytes" in html
    assert not any(marker in html for marker in DEBUG_PAGE_MARKERS)


def test_a_large_form_body_is_refused(client: Client, personas: dict[str, Any]) -> None:
    client.force_login(personas["viewer"])
    response = client.post("/profile/", "wanted=" + "x" * 2_000_000, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 413


def test_too_many_fields_is_a_400_not_the_debug_page(client: Client, personas: dict[str, Any], settings: Any) -> None:
    settings.DEBUG = True
    client.force_login(personas["viewer"])
    body = "&".join(f"f{n}=1" for n in range(1500))
    response = client.post("/profile/", body, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400
    assert not any(marker in response.content.decode() for marker in DEBUG_PAGE_MARKERS)


def test_a_normal_form_still_works(client: Client, personas: dict[str, Any]) -> None:
    client.force_login(personas["viewer"])
    response = client.post("/profile/", {"wanted": ["decided"]})
    assert response.status_code == 302


# --------------------------------------------------------------------------------------------- caching


def test_logged_in_pages_are_never_stored(client: Client, personas: dict[str, Any], site: Any) -> None:
    client.force_login(personas["comp"])
    for label, url in site.pages.items():
        response = client.get(url)
        assert response.status_code == 200, label
        cache_control = response["Cache-Control"]
        assert "no-store" in cache_control and "private" in cache_control, (label, cache_control)
    bad = client.get("/audit/?since=nonsense")
    assert bad.status_code == 400 and "no-store" in bad["Cache-Control"]
    export = client.get("/audit/?format=csv")
    assert "no-store" in export["Cache-Control"]


def test_anonymous_requests_load_no_session_for_it(client: Client, django_assert_num_queries: Any) -> None:
    with django_assert_num_queries(0):
        response = client.get("/healthz")
    assert "Cookie" not in response.get("Vary", "")  # the session was never read
    assert client.get("/accounts/login/")["Cache-Control"].count("no-store") == 1  # Django's own never_cache


@pytest.mark.parametrize("debug", [False, True], ids=["debug-off", "debug-on"])
def test_a_foreign_host_header_is_a_plain_400(settings: Any, debug: bool) -> None:
    settings.DEBUG = debug
    response = Client(raise_request_exception=False).get("/accounts/login/", HTTP_HOST="evil.example")
    assert response.status_code == 400
    assert response.content == b"This site is not served under that host name.\n"
