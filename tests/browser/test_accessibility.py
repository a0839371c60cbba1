"""In Chromium: axe-core finds no serious or critical accessibility violation on the main pages.

axe-core (tests/browser/vendor/, from the npm registry; see its README for the version) is injected into
every page of the test's browser context as a Playwright init script (not subject to the page's CSP),
never served by the app. Pages: login, queue, review page, group page, audit search, endpoint page, the
as-of answer, bypasses and sync status, at a desktop (1360 px) and a narrow (800 px) width, on a site
with data (tests/hostile.py ``build_site`` with ordinary texts). Also: the skip link is the first thing
the keyboard reaches and lands on ``<main id="main">``, focused controls show an outline, and a table
wider than its box becomes a focusable region (static/registry_app/a11y.js).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.browser.watch import watch
from tests.hostile import FIELDS, build_site, clamp

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

AXE = Path(__file__).parent / "vendor" / "axe.min.js"
WIDTHS = (1360, 800)
PAGES = ("queue", "review page", "group", "audit search", "endpoint", "as-of", "bypasses", "sync")
BLOCKING = ("serious", "critical")

RUN_AXE = """async () => {
  const results = await axe.run(document, {resultTypes: ["violations"]});
  return results.violations.map(v => ({
    id: v.id, impact: v.impact, help: v.help,
    targets: v.nodes.slice(0, 5).map(n => n.target.join(" ")),
    count: v.nodes.length,
  }));
}"""


def ordinary_texts() -> dict[str, str]:
    """Plain, realistic-looking registry text for every field ``build_site`` stores."""
    return {name: clamp(name, f"demo-{name.replace('_', '-')}") for name in FIELDS}


def blocking_violations(page: Any) -> list[dict[str, Any]]:
    return [v for v in page.evaluate(RUN_AXE) if v["impact"] in BLOCKING]


def describe(found: dict[str, list[dict[str, Any]]]) -> str:
    lines = []
    for where, violations in found.items():
        for v in violations:
            lines.append(f"{where}: {v['id']} ({v['impact']}, {v['count']} nodes: {v['help']}) at {v['targets']}")
    return "\n".join(lines)


@pytest.mark.parametrize("width", WIDTHS)
def test_main_pages_have_no_serious_or_critical_violations(live_server: Any, browser: Any, width: int) -> None:
    site = build_site(ordinary_texts())
    state = watch(browser)
    # An init script, like watch()'s own: the page's strict CSP (script-src 'self') refuses the inline
    # <script> that page.add_script_tag would add, and axe must not be served by the app.
    state.context.add_init_script(path=str(AXE))
    page = state.page
    page.set_viewport_size({"width": width, "height": 900})
    found: dict[str, list[dict[str, Any]]] = {}
    try:
        page.goto(f"{live_server.url}/accounts/login/")
        found["login"] = blocking_violations(page)
        state.log_in(live_server.url, site.user.get_username())
        for label in PAGES:
            response = page.goto(live_server.url + site.pages[label])
            assert response is not None and response.status == 200, label
            page.wait_for_load_state("load")
            found[label] = blocking_violations(page)
    finally:
        state.context.close()
    found = {where: violations for where, violations in found.items() if violations}
    assert not found, f"axe-core at {width} px:\n{describe(found)}"


def test_skip_link_reaches_main_and_focus_is_visible(live_server: Any, browser: Any) -> None:
    site = build_site(ordinary_texts())
    state = watch(browser)
    page = state.page
    try:
        state.log_in(live_server.url, site.user.get_username())
        page.goto(live_server.url + site.pages["queue"])
        skip = page.locator("a.skip-link")
        assert skip.get_attribute("href") == "#main"
        assert skip.bounding_box() is None or skip.bounding_box()["y"] < 0  # hidden until focused
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.className") == "skip-link"
        box = skip.bounding_box()
        assert box is not None and box["y"] >= 0 and box["height"] > 0  # shown on focus
        page.keyboard.press("Enter")
        assert page.evaluate("location.hash") == "#main"
        assert page.evaluate("document.activeElement.id") == "main"
        page.keyboard.press("Tab")  # the first control inside main
        outline = page.evaluate(
            "(() => { const s = getComputedStyle(document.activeElement);"
            " return [document.activeElement.tagName, s.outlineStyle, parseFloat(s.outlineWidth)]; })()"
        )
        assert outline[1] != "none" and outline[2] >= 2, outline
        for selector in ("main input:not([type=hidden])", "main select", "main button"):
            control = page.locator(selector).first
            if control.count():
                control.focus()
                page.keyboard.press("Shift+Tab")
                page.keyboard.press("Tab")  # keyboard focus, so :focus-visible applies
                style = page.evaluate(
                    "(() => { const s = getComputedStyle(document.activeElement);"
                    " return [s.outlineStyle, parseFloat(s.outlineWidth)]; })()"
                )
                assert style[0] != "none" and style[1] >= 2, (selector, style)
    finally:
        state.context.close()


def test_a_wide_table_becomes_a_focusable_labelled_region(live_server: Any, browser: Any) -> None:
    site = build_site(ordinary_texts())
    state = watch(browser)
    page = state.page
    try:
        state.log_in(live_server.url, site.user.get_username())
        page.set_viewport_size({"width": 800, "height": 900})
        page.goto(live_server.url + site.pages["bypasses"])
        box = page.locator(".table-scroll").first
        assert page.evaluate("(el) => el.scrollWidth > el.clientWidth", box.element_handle())
        assert box.get_attribute("tabindex") == "0" and box.get_attribute("role") == "region"
        assert box.get_attribute("aria-label")
        page.set_viewport_size({"width": 2400, "height": 900})  # fits again: no needless tab stop
        # Polled with evaluate (CDP, not page script): wait_for_function evals its predicate, which the CSP refuses.
        for _ in range(50):
            if page.evaluate("() => !document.querySelector('.table-scroll').hasAttribute('tabindex')"):
                break
            page.wait_for_timeout(100)
        else:
            pytest.fail("the table fits at 2400 px but keeps its tab stop")
        state.assert_clean("bypasses")  # the script runs under the strict CSP
    finally:
        state.context.close()
