"""The retry queue and the dead-letter queue (SQS), and the size check every queued work passes
before the webhook promises a 2xx."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sensor_bridge.model.replies import RequestError
from sensor_bridge.model.work import MAX_REASON_CHARS, WorkItem
from sensor_bridge.retry.plan import next_hop
from sensor_bridge.runtime import clock
from sensor_bridge.runtime.settings import settings
from sensor_bridge.store.aws_clients import sqs

# A reason as large as a bounded one can encode: every character escaped as \u00XX (6 bytes).
_LARGEST_REASON = "\x00" * MAX_REASON_CHARS
# Larger than any attempt count, epoch time or delay the work item will carry.
_LARGEST_NUMBER = 10.0**12 + 0.123456


class NotPersisted(RuntimeError):
    """SQS refused the work: the caller must not acknowledge it (503 to the platform)."""


def schedule(work: WorkItem, wait_seconds: int) -> int:
    """Put the work back on the retry queue to run after `wait_seconds`; the first hop's delay.

    Waits longer than SQS's 900 s go in hops: the message carries `not_before`, and the retry
    function re-queues it without calling the API until that time has come.
    """
    hop = next_hop(wait_seconds)
    not_before = clock.now() + wait_seconds if hop.remaining_seconds > 0 else None
    _send(settings().retry_queue_url, replace(work, not_before=not_before), hop.delay_seconds)
    return hop.delay_seconds


def dead_letter(work: WorkItem, reason: str) -> None:
    _send(settings().dead_letter_queue_url, work.parked(reason), 0)


def check_queueable(work: WorkItem) -> None:
    """Refuse (413) work whose message could outgrow the queues' MaximumMessageSize on its way:
    measured as it will be when largest (two reasons of the longest kind, on the dead-letter
    queue), so that once it is accepted every retry hop and its parking fit."""
    largest = replace(
        work,
        attempts=int(_LARGEST_NUMBER),
        first_seen=_LARGEST_NUMBER,
        last_error=_LARGEST_REASON,
        not_before=_LARGEST_NUMBER,
        parked_reason=_LARGEST_REASON,
        waiting_since=_LARGEST_NUMBER,
        upload_only=True,
        upload_uncertain=True,
    )
    size, limit = message_bytes(largest), settings().queue_max_message_bytes
    if size > limit:
        raise RequestError(
            413,
            "PayloadTooLarge",
            f"device {work.event.device_id[:64]!r}: its work would take up to {size} bytes on the "
            f"retry queue, over the queue's limit of {limit} bytes (MaximumMessageSize): send "
            "fewer or shorter tags, attributes or readings",
        )


def message_bytes(work: WorkItem) -> int:
    """The size SQS counts against MaximumMessageSize: the body's UTF-8 bytes plus each message
    attribute's name, data type and value."""
    body, attributes = _message(work)
    size = len(body.encode("utf-8"))
    for name, attribute in attributes.items():
        size += len(name.encode()) + len(attribute["DataType"].encode())
        size += len(attribute["StringValue"].encode("utf-8"))
    return size


def _message(work: WorkItem) -> tuple[str, dict[str, Any]]:
    attributes = {
        "source": {"DataType": "String", "StringValue": work.event.source},
        "attempts": {"DataType": "Number", "StringValue": str(work.attempts)},
    }
    return work.to_message(), attributes


def message(work: WorkItem, delay_seconds: int) -> dict[str, Any]:
    """The SQS message that carries the work (SendMessage's parameters, less the queue)."""
    body, attributes = _message(work)
    return {"MessageBody": body, "DelaySeconds": delay_seconds, "MessageAttributes": attributes}


def _send(queue_url: str, work: WorkItem, delay_seconds: int) -> None:
    from botocore.exceptions import BotoCoreError, ClientError

    body, attributes = _message(work)
    try:
        sqs().send_message(
            QueueUrl=queue_url, MessageBody=body, DelaySeconds=delay_seconds, MessageAttributes=attributes
        )
    except (BotoCoreError, ClientError) as exc:
        raise NotPersisted(f"queue refused the work: {type(exc).__name__}") from exc
