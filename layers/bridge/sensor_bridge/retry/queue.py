"""The retry queue and the dead-letter queue (SQS)."""

from __future__ import annotations

from dataclasses import replace

from sensor_bridge.model.work import WorkItem
from sensor_bridge.retry.plan import next_hop
from sensor_bridge.runtime import clock
from sensor_bridge.runtime.settings import settings
from sensor_bridge.store.aws_clients import sqs


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
    _send(settings().dead_letter_queue_url, replace(work, parked_reason=reason, not_before=None), 0)


def _send(queue_url: str, work: WorkItem, delay_seconds: int) -> None:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        sqs().send_message(
            QueueUrl=queue_url,
            MessageBody=work.to_message(),
            DelaySeconds=delay_seconds,
            MessageAttributes={
                "source": {"DataType": "String", "StringValue": work.event.source},
                "attempts": {"DataType": "Number", "StringValue": str(work.attempts)},
            },
        )
    except (BotoCoreError, ClientError) as exc:
        raise NotPersisted(f"queue refused the work: {type(exc).__name__}") from exc
