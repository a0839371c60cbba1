"""Endpoint names are links; the endpoint page's "As of…" link opens a filled-in answer (not a 400)."""

from __future__ import annotations

import datetime as dt
import html
import re

import pytest
from django.template import Context, Template
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from registry_app.templatetags.navigation import as_of_url
from tests.audit.builders import cloudtrail, deployment
from tests.factories import EndpointFactory, EndpointVariantFactory, ModelPackageFactory, RegistrySourceFactory

pytestmark = pytest.mark.django_db


def _as_of_href(page: str) -> str:
    match = re.search(r'<a class="button" href="([^"]+)"[^>]*>As of…</a>', page)
    assert match, "no As of… link"
    return html.unescape(match.group(1))


def test_endpoint_page_as_of_link_answers(viewer_client: Client) -> None:
    source = RegistrySourceFactory(name="prod-eu")
    package = ModelPackageFactory(group__source=source)
    endpoint = EndpointFactory(source=source, name="fraud-prod")
    EndpointVariantFactory(endpoint=endpoint, package=package)
    deployment("fraud-prod", package, timezone.now() - dt.timedelta(days=2), None)

    page = viewer_client.get(reverse("registry:endpoint_detail", args=["fraud-prod"])).content.decode()
    href = _as_of_href(page)
    assert href.startswith(reverse("registry:as_of") + "?endpoint=fraud-prod&at=")

    answer = viewer_client.get(href)
    assert answer.status_code == 200
    assert answer.context["answer"].endpoint_name == "fraud-prod"
    assert answer.context["answer"].variants  # what serves now, not "nothing deployed"
    text = answer.content.decode()
    assert 'type="datetime-local"' in text and 'name="at" value="20' in text  # the picker shows the moment


def test_endpoint_known_only_from_cloudtrail(viewer_client: Client) -> None:
    cloudtrail("CreateEndpoint", timezone.now() - dt.timedelta(hours=1), endpoint_name="ghost-ep")
    page = viewer_client.get(reverse("registry:endpoint_detail", args=["ghost-ep"])).content.decode()
    assert viewer_client.get(_as_of_href(page)).status_code == 200


def test_as_of_url_is_encoded_and_in_the_pickers_format() -> None:
    moment = dt.datetime(2025, 3, 14, 11, 30, 59, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert as_of_url("a b&c", moment) == "/as-of/?endpoint=a+b%26c&at=2025-03-14T09%3A30"


def test_endpoint_link_tag_escapes_and_degrades() -> None:
    template = Template("{% load registry_tags %}{% endpoint_link name %}")
    assert template.render(Context({"name": "ep-1"})) == '<a href="/endpoints/ep-1/">ep-1</a>'
    hostile = template.render(Context({"name": '<script>x</script>/"'}))
    assert "<script>" not in hostile and "href" not in hostile and "&lt;script&gt;" in hostile
    assert "href" not in template.render(Context({"name": ""}))


def test_as_of_page_names_link_to_the_endpoint(viewer_client: Client) -> None:
    source = RegistrySourceFactory(name="prod-eu")
    package = ModelPackageFactory(group__source=source)
    EndpointFactory(source=source, name="fraud-prod")
    deployment("fraud-prod", package, timezone.now() - dt.timedelta(days=2), None)
    page = viewer_client.get(as_of_url("fraud-prod")).content.decode()
    assert f'<a href="{reverse("registry:endpoint_detail", args=["fraud-prod"])}">fraud-prod</a>' in page
