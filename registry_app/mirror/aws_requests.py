"""Two requests the sync needs in a form ``RegistryClient`` does not offer yet.

- ``search_package_pages``: Search sorted by ``CreationTime``. The full reconciliation walks a group's
  packages in an order nothing changes during the walk; ``RegistryClient.iter_search_package_pages``
  always sorts by ``LastModifiedTime``, which every update (the dashboard's own pushes included) moves.
- ``receive_event_messages``: ReceiveMessage with long polling and the ``ApproximateReceiveCount``
  system attribute (SQS returns attributes only when asked), so a message that keeps failing is
  recognised and dropped after a bound.

Both go through the adapter's own plumbing (``_pages`` / ``_call``: error translation, call counts,
JSON-safe records), so nothing here imports boto3 or sees a botocore exception. They belong in
``registry_app/aws/sagemaker.py`` (owned by another branch): ``iter_search_package_pages(sort_by=...)``
and ``receive_messages(receive_count=True)``; moving them there changes no caller but this module.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from registry_app.aws import sagemaker as adapter
from registry_app.aws.sagemaker import RegistryClient

# SQS long polling allows 1-20 s (botocore ``ReceiveMessageRequest.WaitTimeSeconds``); 0 is short polling,
# which samples only some servers and can answer "no messages" while some wait.
MAX_WAIT_SECONDS = 20
RECEIVE_COUNT = "ApproximateReceiveCount"


def search_package_pages(
    client: RegistryClient, *, group: str, sort_by: str = "CreationTime", ascending: bool = True
) -> Iterator[list[dict[str, Any]]]:
    """One group's packages through Search (100 full records a call), in ``sort_by`` order."""
    params: dict[str, Any] = {
        "Resource": "ModelPackage",
        "MaxResults": adapter.PAGE_SIZE,
        "SortBy": sort_by,
        "SortOrder": "Ascending" if ascending else "Descending",
        "SearchExpression": {"Filters": [{"Name": "ModelPackageGroupName", "Operator": "Equals", "Value": group}]},
    }
    for page in client._pages("sagemaker", "Search", "Results", **params):
        yield [record["ModelPackage"] for record in page if record.get("ModelPackage")]


def receive_event_messages(
    client: RegistryClient, queue_url: str, *, wait_seconds: int, max_messages: int = 10
) -> list[dict[str, Any]]:
    """Up to ``max_messages`` messages, each with ``Attributes.ApproximateReceiveCount``."""
    response = client._call(
        "sqs",
        "ReceiveMessage",
        QueueUrl=queue_url,
        MaxNumberOfMessages=max(1, min(10, max_messages)),
        WaitTimeSeconds=max(1, min(MAX_WAIT_SECONDS, wait_seconds)),
        MessageSystemAttributeNames=[RECEIVE_COUNT],
    )
    return list(response.get("Messages") or [])


def receive_count(message: dict[str, Any]) -> int:
    """How many times SQS has handed this message out (1 on its first receive; 0 when not reported)."""
    value = (message.get("Attributes") or {}).get(RECEIVE_COUNT)
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0
