"""Chat and webhook message bodies, each with registry text escaped for its format. Pure (no I/O).

* Slack (Block Kit, ``mrkdwn``): registry text has ``&``, ``<`` and ``>`` escaped (Slack's own rule), so
  it can never form a link, a mention (``<!channel>``) or a broken tag; our links are ``<url|label>``.
* Microsoft Teams (an Adaptive Card in a ``message`` attachment): registry text goes only into
  ``TextRun`` elements, which render no markdown, and ``{{`` is broken up so it cannot call the card's
  DATE()/TIME() functions; JSON encoding does the rest.
* Generic webhooks: one JSON document per event (``generic_payload``); the values are plain data.

Every message links to the review page (one event) or the review queue (a digest).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from registry_app.notifications.items import Item, digest_subject, sections

__all__ = ["CHAT_LIMIT", "generic_payload", "mrkdwn", "slack_message", "teams_message", "teams_text"]

CHAT_LIMIT = 20  # items listed in one chat message; the rest are counted, with a link to the queue
SLACK_SECTION_CHARS = 2900  # Slack refuses a section text over 3,000 characters
CARD_SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"


def mrkdwn(text: str) -> str:
    """Escape Slack's control characters (``&``, ``<``, ``>``); formatting characters stay text-ish."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _slack_link(url: str, label: str) -> str:
    return f"<{mrkdwn(url)}|{mrkdwn(label)}>"


def _slack_sections(lines: list[str]) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    chunk = ""
    for line in lines:
        if chunk and len(chunk) + len(line) + 1 > SLACK_SECTION_CHARS:
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": chunk}})
            chunk = ""
        chunk = f"{chunk}\n{line}" if chunk else line[:SLACK_SECTION_CHARS]
    if chunk:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": chunk}})
    return blocks


def slack_message(items: Sequence[Item], *, queue_url: str) -> dict[str, Any]:
    """A Slack incoming-webhook body telling ``items`` (one event, or a digest)."""
    if len(items) == 1:
        item = items[0]
        lines = [f"*{mrkdwn(item.headline)}*", mrkdwn(item.summary), _slack_link(item.url, "Open the review page")]
        fallback = item.headline
    else:
        fallback = digest_subject(list(items))
        lines = [f"*{mrkdwn(fallback)}*"]
        shown = 0
        for title, group in sections(items):
            lines.append(f"*{mrkdwn(title)}*")
            for item in group:
                if shown >= CHAT_LIMIT:
                    break
                lines.append(f"• {_slack_link(item.url, item.title)}: {mrkdwn(item.summary)}")
                shown += 1
        more = len(items) - shown
        tail = f"…and {more} more. " if more else ""
        lines.append(f"{tail}{_slack_link(queue_url, 'Open the review queue')}")
    return {"text": mrkdwn(fallback), "blocks": _slack_sections(lines)}


def teams_text(text: str) -> str:
    """Registry text for a TextRun (no markdown there): only the card's ``{{FUNCTION()}}`` syntax is broken."""
    return str(text).replace("{{", "{\u200b{")


def _run(text: str, **style: Any) -> dict[str, Any]:
    return {"type": "TextRun", "text": teams_text(text), **style}


def _open(url: str) -> dict[str, Any]:
    return {"type": "Action.OpenUrl", "url": url}


def teams_message(items: Sequence[Item], *, queue_url: str) -> dict[str, Any]:
    """A Teams incoming-webhook body: one Adaptive Card telling ``items``."""
    if len(items) == 1:
        item = items[0]
        body = [
            {"type": "RichTextBlock", "inlines": [_run(item.headline, weight="Bolder")]},
            {"type": "RichTextBlock", "inlines": [_run(item.summary)]},
        ]
        actions = [{"type": "Action.OpenUrl", "title": "Open the review page", "url": item.url}]
    else:
        body = [{"type": "RichTextBlock", "inlines": [_run(digest_subject(list(items)), weight="Bolder")]}]
        shown = 0
        for title, group in sections(items):
            body.append({"type": "RichTextBlock", "inlines": [_run(title, weight="Bolder")], "spacing": "Medium"})
            for item in group:
                if shown >= CHAT_LIMIT:
                    break
                inlines = [_run(item.title, color="Accent", selectAction=_open(item.url)), _run(f": {item.summary}")]
                body.append({"type": "RichTextBlock", "inlines": inlines, "spacing": "Small"})
                shown += 1
        if len(items) > shown:
            body.append({"type": "RichTextBlock", "inlines": [_run(f"…and {len(items) - shown} more.")]})
        actions = [{"type": "Action.OpenUrl", "title": "Open the review queue", "url": queue_url}]
    card = {"$schema": CARD_SCHEMA, "type": "AdaptiveCard", "version": "1.4", "body": body, "actions": actions}
    return {
        "type": "message",
        "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}
        ],
    }


def generic_payload(
    item: Item,
    *,
    delivery_id: int,
    occurred_at: str,
    attempt: int,
    package: Mapping[str, Any],
) -> dict[str, Any]:
    """One event for a generic webhook. ``id`` is the same on every retry of the delivery (receivers drop
    repeats by it); ``data`` holds the event's facts as they were when it happened."""
    return {
        "id": str(delivery_id),
        "event": item.event,
        "kind": item.kind,
        "occurred_at": occurred_at,
        "attempt": attempt,
        "summary": item.headline,
        "package": {**package, "url": item.url},
        "data": dict(item.facts),
    }
