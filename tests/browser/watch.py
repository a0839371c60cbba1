"""A browser context that records what a strict CSP blocked, page errors, and htmx requests.

Every page of the context gets an init script (run by the browser itself, not subject to the
page's CSP) that collects ``securitypolicyviolation`` events into ``window.__cspViolations``; the
console's "Refused to ..." CSP messages, uncaught page errors and every request carrying
``HX-Request`` (i.e. made by htmx) are kept on the Python side.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

COLLECT_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__cspViolations.push({directive: e.violatedDirective, blocked: e.blockedURI, sample: e.sample,
                               source: e.sourceFile, line: e.lineNumber});
});
"""

_CSP_CONSOLE = re.compile(r"Content Security Policy|Refused to (execute|load|apply|evaluate|run)", re.I)
PASSWORD = "pw-test-123!"  # tests.factories.UserFactory's


@dataclass
class Watch:
    context: Any
    page: Any
    console_csp: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    htmx_requests: list[str] = field(default_factory=list)

    def violations(self) -> list[Any]:
        return list(self.page.evaluate("window.__cspViolations || []")) + list(self.console_csp)

    def assert_clean(self, where: str) -> None:
        violations = self.violations()
        assert not violations, f"{where}: CSP violations {violations}"
        assert not self.page_errors, f"{where}: page errors {self.page_errors}"

    def log_in(self, base_url: str, username: str, password: str = PASSWORD) -> None:
        self.page.goto(f"{base_url}/accounts/login/")
        self.assert_clean("login page")
        self.page.fill("#id_username", username)
        self.page.fill("#id_password", password)
        self.page.click("button[type=submit]")
        self.page.wait_for_url(re.compile(r".*/groups/.*"))


def watch(browser: Any) -> Watch:
    context = browser.new_context()
    context.add_init_script(COLLECT_VIOLATIONS)
    page = context.new_page()
    state = Watch(context, page)
    page.on("console", lambda msg: state.console_csp.append(msg.text) if _CSP_CONSOLE.search(msg.text) else None)
    page.on("pageerror", lambda error: state.page_errors.append(str(error)))
    page.on(
        "request",
        lambda request: state.htmx_requests.append(request.url) if request.headers.get("hx-request") else None,
    )
    return state
