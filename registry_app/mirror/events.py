"""EventBridge events from the source's SQS queue: each names a package or a card to refresh now.

An event may be stale or delivered twice, so it is only a hint: the named resource is described for its
current state and applied like any sync. A message is deleted once handled, or at once if it is not an event.
"""

from __future__ import annotations

from typing import Any

from registry_app.mirror import mapping as sync
from registry_app.mirror.card_sync import store_card
from registry_app.mirror.reconcile import RegistrySync
from registry_app.models import ModelCard


def consume_events(syncer: RegistrySync, *, max_batches: int = 10) -> None:
    """Drain EventBridge events from the source's SQS queue, refreshing just the named resources."""
    queue = syncer.source.events_queue_url
    if not queue:
        return
    syncer.ensure_account()
    syncer.load_groups()
    for _ in range(max_batches):
        messages = syncer.client.receive_messages(queue, wait_seconds=0)
        if not messages:
            return
        for message in messages:
            _handle_event(syncer, queue, message)


def _handle_event(syncer: RegistrySync, queue: str, message: dict[str, Any]) -> None:
    receipt = message.get("ReceiptHandle", "")
    try:
        detail_type, detail = sync.parse_event(message.get("Body", ""))
    except sync.RecordError as exc:
        syncer.error(f"event {message.get('MessageId', '?')}", f"discarded: {exc}")
        syncer.client.delete_message(queue, receipt)
        return
    syncer.count("events_received")
    if detail_type == "SageMaker Model Package State Change":
        arn = detail.get("ModelPackageArn")
        if arn and (detail.get("ModelPackageVersion") is not None or str(arn).rsplit("/", 1)[-1].isdigit()):
            # The event may be stale or duplicated: describe for the current truth.
            syncer.refresh_package(str(arn))
            syncer.count("events_applied")
    elif detail_type == "SageMaker Model Card State Change":
        name = detail.get("ModelCardName")
        if name:
            card = ModelCard.objects.filter(source=syncer.source, name=name).first()
            store_card(syncer, str(name), card)
            syncer.count("events_applied")
    else:
        syncer.count("events_ignored")
    # Retryable AWS errors propagate before this line, leaving the message for redelivery.
    syncer.client.delete_message(queue, receipt)
