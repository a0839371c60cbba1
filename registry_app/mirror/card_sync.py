"""Standalone model cards: described, stored with their parsed content, and linked to their packages.

Part of the cards-and-endpoints pass (``endpoints.cards_and_endpoints``) and of EventBridge events.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from registry_app.aws.errors import AwsError
from registry_app.mirror import cards
from registry_app.mirror import mapping as sync
from registry_app.mirror.context import SyncContext
from registry_app.models import ModelCard, ModelPackage
from registry_app.review.on_sync import (  # governance: stale sign-offs, the stored review state
    card_link_observed,
    card_observed,
    card_stored,
)


def sync_cards(ctx: SyncContext) -> None:
    """Mirror the standalone cards packages refer to (by ``ModelCardName`` metadata, else the group's
    name), re-describing only those whose status or modification time changed, and link packages to them."""
    summaries: dict[str, dict[str, Any]] = {}
    try:
        for page in ctx.client.iter_model_card_pages():
            summaries.update({s["ModelCardName"]: s for s in page if s.get("ModelCardName")})
    except AwsError as exc:
        ctx.error("ListModelCards", str(exc))
        return
    # Card names are matched without regard to case: a name taken from a card ARN is lower-cased.
    by_lower = {name.lower(): name for name in summaries}
    existing = {c.name.lower(): c for c in ModelCard.objects.filter(source=ctx.source)}
    packages = list(
        ModelPackage.objects.filter(source=ctx.source).values_list(
            "id", "customer_metadata", "group__name", "model_card_id"
        )
    )
    wanted: dict[int, str] = {}
    for pk, meta, group_name, _ in packages:
        referenced = sync.referenced_card(meta)
        name = by_lower.get(referenced.lower(), referenced) if referenced else by_lower.get(group_name.lower(), "")
        if name:
            wanted[pk] = name
    for name in sorted(set(wanted.values())):
        summary = summaries.get(name)
        card = existing.get(name.lower())
        if summary is None:
            if card is not None and card.deleted_at is None:
                card.deleted_at = timezone.now()
                card.save(update_fields=["deleted_at"])
                ctx.count("cards_deleted")
            continue
        modified = sync.parse_time(summary.get("LastModifiedTime"))
        if (
            card is not None
            and card.deleted_at is None
            and card.last_modified_at == modified
            and (card.status == summary.get("ModelCardStatus"))
        ):
            continue
        existing[name.lower()] = store_card(ctx, name, card)
    card_ids = {key: c.pk for key, c in existing.items() if c is not None}
    for pk, _meta, _group, current in packages:
        target = card_ids.get(wanted.get(pk, "").lower())
        if target != current:
            with transaction.atomic():
                ModelPackage.objects.filter(pk=pk).update(model_card_id=target)
                card_link_observed(pk)
            ctx.count("card_links_changed")


def store_card(
    ctx: SyncContext, name: str, card: ModelCard | None, *, raise_aws_errors: bool = False
) -> ModelCard | None:
    """Describe one card and store it; new content makes the sign-offs of the packages linked to it stale.

    A failed describe is recorded and the stored card kept, or, with ``raise_aws_errors`` (events, which
    must know whether to keep their message), raised."""
    try:
        record = ctx.client.describe_model_card(name)
        fields = sync.card_fields(record)
    except AwsError as exc:
        if raise_aws_errors:
            raise
        ctx.error(f"DescribeModelCard {name}", str(exc))
        return card
    except sync.RecordError as exc:
        ctx.error(f"DescribeModelCard {name}", str(exc))
        return card
    try:
        content = cards.parse_card_content(record.get("Content"))
        fields.update(content=content, content_error="", content_hash=cards.content_hash(content))
    except cards.CardContentError as exc:
        fields.update(content=None, content_error=str(exc), content_hash="")
    if card is None:
        card = ModelCard.objects.create(source=ctx.source, **fields)
        ctx.count("cards_created")
        return card
    content_changed = (card.version, card.content_hash) != (fields["version"], fields["content_hash"])
    for key, value in fields.items():
        setattr(card, key, value)
    card.deleted_at = None
    with transaction.atomic():
        card.save()
        if content_changed:
            ctx.count("stale_signoffs", card_observed(card))
        card_stored(card)
    ctx.count("cards_updated")
    return card
