"""Template helpers for navigation (issue 11): endpoint names as links, the as-of link with "now",
values for ``<input type="datetime-local">``, a sync run's error count, and links out of the dashboard
(AWS console for jobs and pipeline executions, repository, commit) built by ``audit.external_links``.

Merged into ``registry_tags`` (so ``{% load registry_tags %}`` brings them); all HTML goes through
``format_html``, nothing from the registry is marked safe.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import template
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.http import urlencode
from django.utils.safestring import SafeString

from registry_app.audit import external_links
from registry_app.audit.evidence_fields import evidence_fields as _evidence_fields
from registry_app.mirror.selectors import METADATA_PROPERTY_LABELS

register = template.Library()

EMPTY = "—"


def endpoint_url(name: Any) -> str:
    """The endpoint page's URL, or "" for a name no endpoint page can have.

    CloudTrail keeps the request parameters of refused calls verbatim, so an endpoint name from an
    event may hold "/" or be empty; such a name is shown as text instead of taking the page down.
    """
    text = str(name or "")
    if not text:
        return ""
    try:
        return reverse("registry:endpoint_detail", args=[text])
    except NoReverseMatch:
        return ""


@register.simple_tag
def endpoint_link(name: Any, css: str = "") -> SafeString:
    """``<a href="/endpoints/<name>/">name</a>``; a name no endpoint page can have (empty, or with "/"
    from a refused CloudTrail call) is shown as text. Use it wherever a template prints an endpoint name."""
    text = str(name or "")
    if not text:
        return format_html('<span class="muted">{}</span>', EMPTY)
    url = endpoint_url(text)
    if not url:
        return format_html('<span class="mono">{}</span>', text)
    if css:
        return format_html('<a class="{}" href="{}">{}</a>', css, url, text)
    return format_html('<a href="{}">{}</a>', url, text)


_METADATA_KEYS = {label: key for key, label in METADATA_PROPERTY_LABELS.items()}
AS_OF_INPUT_FORMAT = "%Y-%m-%dT%H:%M"  # what <input type="datetime-local"> sends (UTC on our pages)


@register.filter
def as_of_url(name: Any, at: Any = None) -> str:
    """``/as-of/?endpoint=<name>&at=<at, default now>`` with ``at`` in the as-of form's own input format."""
    moment = at if isinstance(at, dt.datetime) else timezone.now()
    query = urlencode({"endpoint": str(name or ""), "at": moment.astimezone(dt.UTC).strftime(AS_OF_INPUT_FORMAT)})
    return f"{reverse('registry:as_of')}?{query}"


@register.filter
def when_input(form: Any, name: str) -> str:
    """The value for ``<input type="datetime-local" step="1">`` of a form's date field: the cleaned moment
    in UTC as ``YYYY-MM-DDTHH:MM:SS`` (a browser drops any other shape), else "" (an invalid entry is
    named in the page's error list instead)."""
    cleaned = getattr(form, "cleaned_data", None) or {}
    moment = cleaned.get(name)
    if not isinstance(moment, dt.datetime):
        return ""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")


@register.filter
def run_error_count(run: Any) -> int:
    """A sync run's errors: one per item of ``errors``, or 1 for a run-wide ``error`` alone."""
    errors = getattr(run, "errors", None)
    if isinstance(errors, list) and errors:
        return len(errors)
    return 1 if getattr(run, "error", "") else 0


@register.simple_tag
def outbound_link(url: Any, text: Any, css: str = "mono wrap") -> SafeString:
    """``<a href="url" rel="noopener noreferrer external">text</a>`` for a URL made by
    ``audit.external_links``; with no URL, the text as code."""
    if not url:
        return format_html('<code class="{}">{}</code>', css, text if text not in (None, "") else EMPTY)
    return format_html('<a class="{}" href="{}" rel="noopener noreferrer external">{}</a>', css, url, text)


@register.simple_tag
def console_link(kind: str, value: Any, region: Any = "") -> SafeString:
    """ "AWS console ↗" for a training job, processing job or ``GeneratedBy`` ARN; "" when none can be built."""
    build = {
        "training": external_links.training_job_url,
        "processing": external_links.processing_job_url,
        "generated_by": external_links.generated_by_url,
    }.get(kind)
    url = build(value, str(region or "")) if build else ""
    if not url:
        return format_html("")
    return format_html('<a class="subtle" href="{}" rel="noopener noreferrer external">AWS console ↗</a>', url)


@register.simple_tag
def metadata_property_link(key: Any, value: Any, package: Any = None) -> SafeString:
    """A ``MetadataProperties`` value (key or its label on the review page) as a link where one can be
    built: GeneratedBy (console), Repository (its http(s) URL), CommitId (github.com / gitlab.com)."""
    key = _METADATA_KEYS.get(str(key), str(key))
    region = getattr(getattr(package, "source", None), "region", "") if package is not None else ""
    metadata = getattr(package, "metadata_properties", None) or {}
    url = ""
    if key == "GeneratedBy":
        url = external_links.generated_by_url(value, region)
    elif key == "Repository":
        url = external_links.repository_url(value)
    elif key == "CommitId":
        url = external_links.commit_url(metadata.get("Repository") if isinstance(metadata, dict) else "", value)
    return outbound_link(url, value)


@register.simple_tag
def code_origin(package: Any) -> list[tuple[str, str, str]]:
    """``(label, value, url)`` for the package's GeneratedBy, Repository and commit (MetadataProperties
    .CommitId, else CustomerMetadataProperties.GitCommitSha); url "" where no link can be built."""
    metadata = getattr(package, "metadata_properties", None)
    customer = getattr(package, "customer_metadata", None)
    metadata = metadata if isinstance(metadata, dict) else {}
    customer = customer if isinstance(customer, dict) else {}
    region = getattr(getattr(package, "source", None), "region", "")
    repository = str(metadata.get("Repository") or "")
    commit = str(metadata.get("CommitId") or customer.get("GitCommitSha") or "")
    rows = []
    if metadata.get("GeneratedBy"):
        generated = str(metadata["GeneratedBy"])
        rows.append(("Generated by", generated, external_links.generated_by_url(generated, region)))
    if repository:
        rows.append(("Repository", repository, external_links.repository_url(repository)))
    if commit:
        rows.append(("Commit", commit, external_links.commit_url(repository, commit)))
    return rows


@register.filter
def evidence_fields(raw: Any) -> dict[str, Any]:
    """``{"fields": [(field, value)...], "more": n}`` for the audit pages' evidence definition lists."""
    fields, more = _evidence_fields(raw)
    return {"fields": fields, "more": more}
