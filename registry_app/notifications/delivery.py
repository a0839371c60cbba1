"""E-mail messages from outbox rows: one row as its own message, several as one digest; links to the pages.

* ``email_message`` renders ``registry_app/email/<kind>`` (plain text and HTML) for one item, and
  ``registry_app/email/digest`` for several (the ones due together for one person: a batch of review
  requests, the first sync of a source, the daily digest). HTML autoescapes registry text; the .txt
  templates turn autoescape off; the subject goes through ``one_line`` (no header injection).
* Headers: ``X-Governance-Notification`` lists the outbox rows the message tells, so a duplicate (a
  worker killed after the SMTP server accepted the message, before it recorded it) can be recognised;
  ``Auto-Submitted: auto-generated`` (RFC 3834) keeps vacation replies away.
* The SMTP conversation itself, and what happens on errors, is ``sender``'s.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import NoReverseMatch, reverse

from registry_app.models import ModelPackage, ModelPackageGroup, NotificationKind
from registry_app.notifications.items import Item, digest_subject, display_name, one_line, sections

__all__ = ["SUBJECT_PREFIX", "email_message", "one_line", "package_url", "package_urls", "queue_url"]

SUBJECT_PREFIX = "[Model governance]"
TEMPLATE_DIR = "registry_app/email"
DIGEST_LIMIT = 200  # items listed in one digest; the rest are counted, with a link to the queue
TEMPLATES: dict[str, str] = {
    NotificationKind.REVIEW_REQUESTED: "review_requested",
    NotificationKind.SLA_REMINDER: "sla_reminder",
    NotificationKind.DECIDED: "decided",
    NotificationKind.REVOKED: "decided",
    NotificationKind.CONFLICT: "conflict",
    NotificationKind.REVALIDATION_DUE: "revalidation_due",
    NotificationKind.FINDING_RAISED: "finding_raised",
}
NOTIFICATION_HEADER = "X-Governance-Notification"


def _absolute(path: str) -> str:
    return f"{settings.SITE_URL}{path}"


def package_urls(packages: Iterable[ModelPackage]) -> dict[int, str]:
    """Absolute links to the package (review) pages, ``?source=`` added only where a group of the same name
    exists in another source. One query whatever the number of packages (``login_required`` sends
    anonymous readers through login)."""
    packages = list(packages)
    names = {p.group.name for p in packages}
    sources_by_name: dict[str, set[int]] = {}
    for name, source_id in ModelPackageGroup.objects.filter(name__in=names).values_list("name", "source_id"):
        sources_by_name.setdefault(name, set()).add(source_id)
    urls = {}
    for package in packages:
        group = package.group
        try:
            path = reverse("registry:package_detail", args=[group.name, package.version])
        except NoReverseMatch:  # not a SageMaker name (they cannot hold "/"): the group search finds it
            urls[package.pk] = _absolute(reverse("registry:group_list") + "?" + urlencode({"q": group.name}))
            continue
        if len(sources_by_name.get(group.name, ())) > 1:
            path += "?" + urlencode({"source": group.source.name})
        urls[package.pk] = _absolute(path)
    return urls


def package_url(package: ModelPackage) -> str:
    """Absolute link to one package page (see ``package_urls``)."""
    return package_urls([package])[package.pk]


def queue_url() -> str:
    return _absolute(reverse("registry:queue"))


def _base_context(user: Any) -> dict[str, Any]:
    return {
        "recipient": user,
        "recipient_name": display_name(user),
        "site_url": settings.SITE_URL,
        "profile_url": _absolute(reverse("registry:profile")),
    }


def _render(template: str, context: Mapping[str, Any]) -> tuple[str, str]:
    """(plain text, HTML)."""
    text = render_to_string(f"{TEMPLATE_DIR}/{template}.txt", dict(context))
    html = render_to_string(f"{TEMPLATE_DIR}/{template}.html", dict(context))
    return text, html


def _single(user: Any, item: Item, package: ModelPackage) -> tuple[str, str, str]:
    context = {
        **_base_context(user),
        **item.facts,
        "package": package,
        "group_name": package.group.name,
        "version": package.version,
        "package_url": item.url,
    }
    text, html = _render(TEMPLATES[item.kind], context)
    return item.headline, text, html


def _digest(user: Any, items: Sequence[Item]) -> tuple[str, str, str]:
    shown = list(items[:DIGEST_LIMIT])
    context = {
        **_base_context(user),
        "sections": sections(shown),
        "count": len(items),
        "more": len(items) - len(shown),
        "package_url": queue_url(),  # the base template's button and link
        "queue_url": queue_url(),
    }
    text, html = _render("digest", context)
    return digest_subject(list(items)), text, html


def email_message(
    user: Any, items: Sequence[Item], packages: Mapping[int, ModelPackage], *, package_ids: Mapping[int, int]
) -> EmailMultiAlternatives:
    """One message to ``user`` telling ``items`` (``package_ids``: row id -> package id)."""
    if len(items) == 1 and items[0].kind in TEMPLATES:
        item = items[0]
        subject, text, html = _single(user, item, packages[package_ids[item.row_id]])
    else:
        subject, text, html = _digest(user, items)
    message = EmailMultiAlternatives(
        subject=one_line(f"{SUBJECT_PREFIX} {subject}"),
        body=text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[user.email],
        headers={
            NOTIFICATION_HEADER: ",".join(str(item.row_id) for item in items),
            "Auto-Submitted": "auto-generated",
        },
    )
    message.attach_alternative(html, "text/html")
    return message
