"""In Chromium: hostile registry content never runs, on the review page, the group page and the timelines.

Every registry-supplied field holds an ``<img onerror>``, a ``<script>``, an ``<svg onload>`` and a
``javascript:`` link, each setting ``window.__xss``. The pages are checked twice: with the production
CSP, and with the CSP header switched off, so escaping alone is proved to be enough (the CSP is the
second line). A control page that does inject the same markup shows the detector works.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.test import override_settings

from tests.browser.watch import watch
from tests.hostile import FIELDS, build_site, clamp, token

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

HOSTILE = (
    '<img src=x onerror="window.__xss=1">'
    "<script>window.__xss=1</script>"
    "<svg onload=window.__xss=1></svg>"
    '<a id=xss-link href="javascript:window.__xss=1">click me</a>'
    "\"'><img src=x onerror=window.__xss=1>"
)
PAGES = ("review page", "group", "package timeline", "group timeline", "endpoint", "audit search", "groups search")

INJECTED = """() => ({
  xss: typeof window.__xss,
  handlers: [...document.querySelectorAll("*")].flatMap(
      el => [...el.attributes].filter(a => a.name.toLowerCase().startsWith("on")).map(a => el.tagName + " " + a.name)),
  scriptUrls: [...document.querySelectorAll("[href], [src], [action], [formaction]")].flatMap(
      el => ["href", "src", "action", "formaction"].map(n => el.getAttribute(n) || "")
          .filter(v => /^\\s*javascript:/i.test(v))),
  inlineScripts: [...document.scripts].filter(s => !s.src).length,
  images: document.images.length,
})"""


def hostile_texts() -> dict[str, str]:
    return {name: clamp(name, token(i) + HOSTILE) for i, name in enumerate(FIELDS)}


def check_pages(live_server: Any, browser: Any, *, csp: bool) -> None:
    site = build_site(hostile_texts())
    state = watch(browser)
    page = state.page
    try:
        state.log_in(live_server.url, site.user.get_username())
        for label in PAGES:
            response = page.goto(live_server.url + site.pages[label])
            assert response is not None and response.status == 200, label
            assert ("content-security-policy" in response.headers) is csp, label
            page.wait_for_load_state("load")
            for summary in page.locator("details > summary").all()[:5]:
                summary.click()  # raw events and JSON open too
            page.wait_for_timeout(300)  # let any image error / svg load event fire
            found = page.evaluate(INJECTED)
            assert "zq00q" in page.content() or label not in {"group", "review page"}, f"{label}: data not shown"
            assert found == {"xss": "undefined", "handlers": [], "scriptUrls": [], "inlineScripts": 0, "images": 0}, (
                label,
                found,
            )
            assert not state.page_errors, (label, state.page_errors)
        # htmx swaps hostile content in too: the live search re-renders the table with it.
        page.goto(f"{live_server.url}/groups/")
        with page.expect_response(lambda r: "/groups/?" in r.url):
            page.fill("#id_q", "zq")
        page.wait_for_timeout(300)
        assert page.evaluate(INJECTED)["xss"] == "undefined"
    finally:
        state.context.close()


def test_hostile_registry_text_never_runs(live_server, browser) -> None:  # type: ignore[no-untyped-def]
    check_pages(live_server, browser, csp=True)


@override_settings(CONTENT_SECURITY_POLICY=None)
def test_escaping_alone_stops_it_without_the_csp(live_server, browser) -> None:  # type: ignore[no-untyped-def]
    check_pages(live_server, browser, csp=False)


def test_the_detector_sees_markup_that_does_run(browser) -> None:  # type: ignore[no-untyped-def]
    state = watch(browser)
    try:
        state.page.set_content(f"<!doctype html><title>control</title><body>{HOSTILE}</body>")
        state.page.wait_for_timeout(300)
        found = state.page.evaluate(INJECTED)
        assert found["xss"] == "number"
        assert found["handlers"] and found["scriptUrls"] and found["inlineScripts"] == 1 and found["images"] == 2
    finally:
        state.context.close()
