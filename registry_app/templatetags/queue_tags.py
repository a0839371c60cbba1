"""The queue's table rows, rendered in Python (``{% queue_row item %}``, ``{% decided_row item %}``).

A page holds 50 rows of about 30 template nodes each; the template engine spent ~7 ms of CPU on
them, more than the rest of the page together. As Django's admin renders its result rows
(``items_for_result``), each row here is one ``format_html`` call: every value is escaped, the
markup is the template's. The rows carry everything precomputed (``review.queue``): no query here.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import template
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from registry_app.review.policy_versions import decided_under
from registry_app.review.queue import DecidedItem, QueueItem
from registry_app.templatetags.registry_tags import EMPTY, status_badge

register = template.Library()

_DASH = format_html('<span class="muted">{}</span>', EMPTY)


def _when(value: dt.datetime | None) -> SafeString | str:
    """As ``registry_tags.when`` (the same markup), with ``strftime`` for Django's ``Y-m-d H:i``
    date format: a third of a row's time went to the general formatter."""
    if not isinstance(value, dt.datetime):
        return EMPTY
    local = timezone.localtime(value) if timezone.is_aware(value) else value
    stamp = local.isoformat()
    return format_html('<time datetime="{}" title="{}">{}</time>', stamp, stamp, local.strftime("%Y-%m-%d %H:%M"))


def _chips(roles: list[str], css: str) -> SafeString:
    return format_html_join("", '<span class="{}">{}</span>', ((css, role) for role in roles))


def _missing(item: QueueItem) -> SafeString:
    """What the version waits for, in the status's words (``review.status``): never an empty cell."""
    status = item.status
    if status is None or status.kind == "pending" and status.missing_roles:
        return _chips(item.missing_roles, "chip")
    if status.kind == "blocked":
        chips = _chips(list(status.missing_roles), "chip")
        return format_html(
            '<span class="badge {}">Blocked: {}</span> {}', status.badge, "; ".join(status.blocked_by), chips
        )
    return format_html('<span class="badge {}" title="{}">{}</span>', status.badge, status.detail, status.label)


def _gates(item: QueueItem) -> SafeString:
    status = item.status
    if status is not None and status.blocked_by:
        return format_html('<span class="badge badge-rejected">{}</span>', f"{len(status.blocked_by)} failing")
    return format_html('<span class="subtle">{}</span>', "none failing")


def _mine(item: QueueItem) -> SafeString:
    if item.signable_roles:
        return _chips(item.signable_roles, "chip chip-mine")
    if item.signed_by_me:
        return format_html('<span class="subtle">{}</span>', "signed")
    return _DASH


@register.simple_tag
def queue_row(item: QueueItem) -> SafeString:
    """One pending row: package and policy, age, SLA badge, gates, status (roles still missing), what I may sign."""
    return format_html(
        '<tr class="sla-row sla-row-{sla}">\n'
        '  <td>\n    <a href="{group_url}">{group}</a> /\n'
        '    <a class="strong" href="{review_url}">v{version}</a>\n'
        '    <div class="subtle">policy {policy}</div>\n  </td>\n'
        '  <td class="nowrap">{age}<div class="subtle">{created}</div></td>\n'
        '  <td><span class="badge sla-badge sla-{sla}" title="Review SLA {hours} h">{sla_label}</span></td>\n'
        "  <td>{gates}</td>\n  <td>{missing}</td>\n  <td>{mine}</td>\n</tr>\n",
        sla=item.sla,
        group_url=item.group_url,
        group=item.group_name,
        review_url=item.review_url,
        version=item.version,
        policy=item.policy_name,
        age=item.age_label,
        created=_when(item.created_at),
        hours=item.sla_hours,
        sla_label=item.sla_label,
        gates=_gates(item),
        missing=_missing(item),
        mine=_mine(item),
    )


def _push(item: DecidedItem) -> SafeString:
    push = item.push
    if push is None:
        return _DASH
    attempts = format_html(' <span class="subtle">{} attempts</span>', push.attempts) if push.attempts > 1 else ""
    return format_html('<span class="badge push-{}">{}</span>{}', push.state, push.get_state_display(), attempts)


@register.simple_tag
def decided_row(item: DecidedItem) -> SafeString:
    """One decision: when, package, status, kind, who, and its newest push."""
    decision = item.decision
    who: Any = (
        decision.decided_by.get_username()
        if decision.decided_by
        else format_html('<span class="muted">{}</span>', "policy")
    )
    return format_html(
        '<tr>\n  <td class="nowrap">{at}</td>\n'
        '  <td><a href="{group_url}">{group}</a> / <a class="strong" href="{package_url}">v{version}</a></td>\n'
        '  <td>{status}</td>\n  <td>{kind} <span class="subtle decided-under">{under}</span></td>\n'
        "  <td>{who}</td>\n  <td>{push}</td>\n</tr>\n",
        at=_when(decision.created_at),
        group_url=item.group_url,
        group=item.package.group.name,
        package_url=item.package_url,
        version=item.package.version,
        status=status_badge(decision.status),
        kind=format_html(
            "{}{}",
            decision.get_kind_display(),
            format_html('<div class="subtle">with conditions {}</div>', ", ".join(item.conditions))
            if item.conditions
            else "",
        ),
        under=decided_under(decision),
        who=who,
        push=_push(item),
    )
