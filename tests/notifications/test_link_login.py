"""The emailed link leads through login back to the review page."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.test import Client

from registry_app.tasks import notify_review_requested_task

from .conftest import SITE

pytestmark = pytest.mark.django_db


def test_emailed_link_goes_through_login_back_to_the_package(
    mailoutbox: list[Any], reviewers: dict[str, Any], package
) -> None:
    notify_review_requested_task(package.pk)
    message = next(m for m in mailoutbox if m.to == ["lena@example.com"])
    html_links = re.findall(r'href="([^"]+/packages/[^"]+)"', message.alternatives[0][0])
    assert html_links and set(html_links) == {f"{SITE}/packages/credit-risk/3/"}
    link = urlsplit(html_links[0])
    assert f"{link.scheme}://{link.netloc}" == SITE

    client = Client()
    anonymous = client.get(link.path)
    assert anonymous.status_code == 302
    assert anonymous["Location"] == "/accounts/login/?next=/packages/credit-risk/3/"

    login_page = client.get(anonymous["Location"])
    assert login_page.status_code == 200
    assert b'name="next" value="/packages/credit-risk/3/"' in login_page.content

    logged_in = client.post(
        anonymous["Location"],
        {"username": "lena", "password": "pw-test-123!", "next": "/packages/credit-risk/3/"},
    )
    assert logged_in.status_code == 302
    assert logged_in["Location"] == "/packages/credit-risk/3/"

    page = client.get(logged_in["Location"])
    assert page.status_code == 200
    assert b"credit-risk" in page.content
