"""Every main page carries a strict Content-Security-Policy and security headers, and its HTML needs
no exception to it: no inline script, no event-handler attribute, no style attribute or element."""

from __future__ import annotations

import pytest
from django.test import Client, override_settings
from django.urls import reverse

from tests.hostile import audit_html, benign_texts, build_site

pytestmark = pytest.mark.django_db

EXPECTED_DIRECTIVES = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'"],
    "img-src": ["'self'", "data:"],
    "object-src": ["'none'"],
    "base-uri": ["'self'"],
    "frame-ancestors": ["'none'"],
    "form-action": ["'self'"],
}


def parse_csp(header: str) -> dict[str, list[str]]:
    directives: dict[str, list[str]] = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            directives[words[0]] = words[1:]
    return directives


def main_pages() -> tuple[Client, dict[str, str]]:
    site = build_site(benign_texts())
    pages = {
        label: url
        for label, url in site.pages.items()
        if label in {"groups", "group", "review page", "package timeline", "audit search", "as-of", "queue", "sync"}
    }
    pages |= {
        "profile": reverse("registry:profile"),
        "group timeline": site.pages["group timeline"],
        "endpoint": site.pages["endpoint"],
        "bypasses": site.pages["bypasses"],
        "admin index": reverse("admin:index"),
    }
    site.user.is_superuser = True  # the admin's change lists need permissions
    site.user.save(update_fields=["is_superuser"])
    pages["admin changelist"] = reverse("admin:auth_user_changelist")
    pages["admin change form"] = reverse("admin:auth_user_change", args=[site.user.pk])
    client = Client()
    client.force_login(site.user)
    return client, pages


def assert_strict(response, label: str) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == 200, f"{label}: HTTP {response.status_code}"
    header = response.get("Content-Security-Policy")
    assert header, f"{label}: no Content-Security-Policy header"
    directives = parse_csp(header)
    for name, sources in EXPECTED_DIRECTIVES.items():
        assert directives.get(name) == sources, f"{label}: {name} is {directives.get(name)}"
    assert "'unsafe-inline'" not in header and "'unsafe-eval'" not in header, f"{label}: {header}"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"
    assert response["X-Content-Type-Options"] == "nosniff"
    audit = audit_html(response.content.decode())
    # Our pages must pass the full audit; Django's admin serves its own script URLs and icons.
    findings = audit.csp_findings if label.startswith("admin") else audit.findings
    assert not findings, f"{label}:\n" + "\n".join(str(f) for f in findings)


def test_main_pages_need_no_csp_exception() -> None:
    client, pages = main_pages()
    for label, url in pages.items():
        assert_strict(client.get(url), label)


def test_htmx_partials_need_no_csp_exception() -> None:
    client, pages = main_pages()
    for label in ("groups", "queue", "package timeline"):
        response = client.get(pages[label], headers={"HX-Request": "true"})
        assert response.status_code == 200
        audit = audit_html(response.content.decode())
        assert not audit.findings, f"{label} (htmx):\n" + "\n".join(str(f) for f in audit.findings)


def test_login_and_lockout_pages_need_no_csp_exception() -> None:
    assert_strict(Client().get(reverse("login")), "login")
    assert_strict(Client().get(reverse("admin:login")), "admin login")


def test_base_template_turns_off_htmx_eval_and_inline_styles() -> None:
    client, pages = main_pages()
    html = client.get(pages["groups"]).content.decode()
    assert (
        """<meta name="htmx-config" content='{"includeIndicatorStyles": false, "allowEval": false, """
        """"allowScriptTags": false}'>"""
    ) in html
    scripts = [line.strip() for line in html.splitlines() if "<script" in line]
    assert scripts == [
        '<script src="/static/registry_app/htmx.min.js" defer></script>',
        '<script src="/static/registry_app/review.js" defer></script>',
        '<script src="/static/registry_app/a11y.js" defer></script>',
    ]


@override_settings(
    CONTENT_SECURITY_POLICY={"DIRECTIVES": {**EXPECTED_DIRECTIVES, "form-action": ["'self'", "https://idp.example"]}}
)
def test_form_action_follows_the_configured_policy() -> None:
    directives = parse_csp(Client().get(reverse("login"))["Content-Security-Policy"])
    assert directives["form-action"] == ["'self'", "https://idp.example"]
