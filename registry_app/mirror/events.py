"""EventBridge events from the source's SQS queue: each names a package or a card to refresh now.

An event may be stale or delivered twice, so it is only a hint: the named resource is described for its
current state and applied like any sync.

A message is deleted only once its refresh committed (or there is nothing to refresh: not an event, an
event of another kind, a resource gone from the registry, a record that cannot be mirrored). When the
refresh fails on AWS (throttling, 5xx, a denied call), the message stays: SQS hands it out again after
its visibility timeout. Each receive asks for ``ApproximateReceiveCount``, so a message that keeps
failing is recorded on the run and dropped once it has been received ``MAX_RECEIVES`` times; the nightly
full reconciliation covers what it named. Receives long-poll (``WAIT_SECONDS``) and the drain is bounded.
"""

from __future__ import annotations

import time
from typing import Any

from registry_app.aws.errors import AwsError, NotFoundError
from registry_app.mirror import aws_requests
from registry_app.mirror import mapping as sync
from registry_app.mirror.card_sync import store_card
from registry_app.mirror.reconcile import RegistrySync
from registry_app.models import ModelCard

MAX_RECEIVES = 5  # a message still failing on its fifth receive is dropped (and recorded)
WAIT_SECONDS = 1  # long polling: asks every SQS server, answers as soon as a message is there
MAX_BATCHES = 10  # receives per run (10 messages each)
DRAIN_SECONDS = 60.0  # and no receive starts after this long, so one run stays short

PACKAGE_EVENT = "SageMaker Model Package State Change"
CARD_EVENT = "SageMaker Model Card State Change"


def consume_events(syncer: RegistrySync, *, max_batches: int = MAX_BATCHES) -> None:
    """Drain EventBridge events from the source's SQS queue, refreshing just the named resources."""
    queue = syncer.source.events_queue_url
    if not queue:
        return
    syncer.ensure_account()
    syncer.load_groups()
    deadline = time.monotonic() + DRAIN_SECONDS
    for _ in range(max_batches):
        if time.monotonic() > deadline:
            return
        messages = aws_requests.receive_event_messages(syncer.client, queue, wait_seconds=WAIT_SECONDS)
        if not messages:
            return
        for message in messages:
            _handle_event(syncer, queue, message)


def _handle_event(syncer: RegistrySync, queue: str, message: dict[str, Any]) -> None:
    receipt = message.get("ReceiptHandle", "")
    message_id = str(message.get("MessageId", "?"))
    try:
        detail_type, detail = sync.parse_event(message.get("Body", ""))
    except sync.RecordError as exc:
        syncer.error(f"event {message_id}", f"discarded: {exc}")
        syncer.client.delete_message(queue, receipt)
        return
    syncer.count("events_received")
    failure: AwsError | None = None
    if detail_type == PACKAGE_EVENT:
        arn = detail.get("ModelPackageArn")
        if arn and (detail.get("ModelPackageVersion") is not None or str(arn).rsplit("/", 1)[-1].isdigit()):
            # The event may be stale or duplicated: describe for the current truth.
            failure = syncer.refresh_package(str(arn))
            if failure is None:
                syncer.count("events_applied")
    elif detail_type == CARD_EVENT:
        name = detail.get("ModelCardName")
        if name:
            failure = _refresh_card(syncer, str(name))
            if failure is None:
                syncer.count("events_applied")
    else:
        syncer.count("events_ignored")
    if failure is None:
        syncer.client.delete_message(queue, receipt)
        return
    received = aws_requests.receive_count(message)
    if received >= MAX_RECEIVES:
        syncer.error(
            f"event {message_id}",
            f"dropped after {received} receives, its refresh failing each time: {failure} "
            "(the nightly full reconciliation covers it)",
        )
        syncer.count("events_dropped")
        syncer.client.delete_message(queue, receipt)
        return
    # Left on the queue: SQS delivers it again once its visibility timeout has passed.
    syncer.count("events_retry_later")


def _refresh_card(syncer: RegistrySync, name: str) -> AwsError | None:
    """Describe and store one card; a card gone from the registry is left to the cards pass."""
    card = ModelCard.objects.filter(source=syncer.source, name__iexact=name).first()
    try:
        store_card(syncer, name, card, raise_aws_errors=True)
    except NotFoundError:
        syncer.count("vanished_before_describe")
    except AwsError as exc:
        syncer.error(f"DescribeModelCard {name}", str(exc))
        return exc
    return None
