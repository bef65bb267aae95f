"""A large Azure Event Grid delivery is handled as one batch: 1,400 DeviceCreated events (251 KB)
in one POST, through the real webhook handler, answered 2xx; every device reaches Sensor Data
once; a resend of the same delivery is answered from its one idempotency record and does nothing again.

How long the answer takes is a benchmark (`python -m bench.event_grid_batch`), not asserted here:
the 140 SendMessageBatch calls that queue the rest read the invocation's deadline, and what the
bridge keeps back for them is an estimate of SQS's speed, which moto on this shared machine,
under load, can miss. The answer is then a 503 (nothing promised) and the delivery is sent again,
as Event Grid does; what the first try delivered is not delivered twice. The function is given
30 s instead of the template's 4 s, so that a loaded machine still gets there in a few tries."""

from __future__ import annotations

import time
from typing import Any

import boto3
import pytest

from bench.devices import EVENT_GRID_HUB, event_grid_batch, event_grid_device_id
from local.stack import LocalStack
from sensor_bridge.model.profiles import device_ref_id
from sensor_bridge.runtime.settings import settings

SOURCE = "azure-demo"
PATH = f"/webhooks/{SOURCE}?code=local-azure-code"
HEADERS = {"content-type": "application/json", "aeg-event-type": "Notification"}
EVENTS = 1400


def post(stack: LocalStack, body: bytes, function_seconds: float = 30) -> tuple[int, Any]:
    status, _, answer = stack.invoke(
        "POST", PATH, headers=HEADERS, body=body, function_seconds=function_seconds
    )
    return status, answer


def post_until_accepted(stack: LocalStack, body: bytes, tries: int = 5) -> tuple[int, Any]:
    """Send the delivery again after a 5xx, as Event Grid does (it retries for 24 h)."""
    statuses = []
    for _ in range(tries):
        status, answer = post(stack, body)
        if status < 500:
            return status, answer
        statuses.append(status)
    raise AssertionError(f"the delivery was never accepted: {statuses}")


def idempotency_records() -> int:
    table = settings().idempotency_table
    return int(boto3.client("dynamodb").scan(TableName=table, Select="COUNT")["Count"])


def created(stack: LocalStack) -> dict[str, int]:
    refs = {device_ref_id(SOURCE, f"{EVENT_GRID_HUB}/{event_grid_device_id(i)}") for i in range(EVENTS)}
    counts: dict[str, int] = stack.simulator.state()["created"]
    return {ref: counts.get(ref, 0) for ref in refs}


def test_a_1400_event_delivery_is_accepted_as_one_batch_and_every_device_arrives_once(
    stack: LocalStack,
) -> None:
    body = event_grid_batch(EVENTS)
    assert 250_000 < len(body) < 256 * 1024

    status, answer = post_until_accepted(stack, body)

    assert status == 202
    assert len(answer["results"]) + answer["queued"]["devices"] == EVENTS
    assert idempotency_records() == 1  # one record for the delivery, not one per event
    stack.drain()
    assert set(created(stack).values()) == {1}
    assert stack.queue_messages("dead-letter") == []

    calls = len(stack.simulator.state()["calls"])
    again_status, again = post(stack, body)  # Event Grid resends a delivery it saw no 2xx for

    # Nothing done again: each event a duplicate, saying what happened the first time.
    assert (again_status, again["status"], again["queued"]) == (status, "duplicate", answer["queued"])
    assert [(r["status"], r["firstStatus"], r.get("ids")) for r in again["results"]] == [
        ("duplicate", r["status"], r.get("ids")) for r in answer["results"]
    ]
    assert stack.queue_messages("retry") == []
    stack.drain()
    assert len(stack.simulator.state()["calls"]) == calls
    assert set(created(stack).values()) == {1}


def test_an_event_repeated_within_a_delivery_counts_once(stack: LocalStack) -> None:
    body = event_grid_batch(3)[:-1] + b"," + event_grid_batch(1)[1:]  # event 0 again, at the end

    status, answer = post(stack, body)

    assert 200 <= status < 300
    assert answer["repeatedEvents"] == 1
    stack.drain()
    assert set(created(stack).values()) == {0, 1}
    assert sum(created(stack).values()) == 3


def test_a_delivery_a_throttling_sqs_cannot_queue_in_time_is_answered_503_and_its_resend_arrives_once(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQS throttles: each SendMessageBatch takes 0.5 s, so the rest of the delivery cannot be
    queued in the template's 4 s. The sends stop in time and the answer is a 503 (nothing
    promised), not a Lambda timeout; Event Grid sends the delivery again, and once SQS is quick
    again every device arrives once: what the first try delivered or queued is not lost, nor
    done twice. (The local stack does not kill a function at its timeout: the test looks at when
    the sends reached SQS.)"""
    from moto.sqs.models import SQSBackend

    arrived: list[float] = []
    quick = SQSBackend.send_message_batch

    def throttled(self: SQSBackend, *args: Any, **kwargs: Any) -> Any:
        arrived.append(time.monotonic())
        time.sleep(0.5)
        return quick(self, *args, **kwargs)

    monkeypatch.setattr(SQSBackend, "send_message_batch", throttled)
    body = event_grid_batch(EVENTS)

    started = time.monotonic()
    status, answer = post(stack, body, function_seconds=4)
    answered = time.monotonic()
    monkeypatch.undo()

    assert status == 503, answer
    assert answer["error"]["code"] == "ServiceUnavailable"
    assert arrived  # it got as far as queueing the rest
    assert max(arrived) < started + 4  # no send reached SQS after Lambda would have killed it
    assert answered - started < 5  # the sends it had left to make would have taken ~9 s
    status, answer = post_until_accepted(stack, body)
    assert status == 202
    stack.drain()
    assert set(created(stack).values()) == {1}
    assert stack.queue_messages("dead-letter") == []
