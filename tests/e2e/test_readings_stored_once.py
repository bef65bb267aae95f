"""Nothing stored twice: an upload whose answer was lost after the API stored it.

The simulator's `after_apply` faults store the observations and then drop the connection, answer
502, or hold the answer past the bridge's call timeout (2 s, API_TIMEOUT_SECONDS) and drop it.
The upload has no idempotency key: the retried work must look (`POST /data/observations`) before
it sends again. Everything goes through the real handlers and queues on the local stack, with the
simulator over HTTP; the tests count what the simulator stored and which calls reached it.
"""

from __future__ import annotations

import io
import json
import time
from typing import Any

import pytest

from local.stack import LocalStack
from sensor_bridge.retry import redrive
from sensor_bridge.store.dynamodb_registry import DynamoDBRegistry
from tests.e2e.test_readings_end_to_end import post, sensor_id, state, stored

EVENT = "chirpstack-02-up-abp-device.json"  # a new device and its reading: onboarded, then uploaded
OBSERVATION = {"timestamp": "2025-11-28T00:01:00.000Z", "values": {"illuminance": 312.5}}


def the_observation(stack: LocalStack) -> dict[str, Any]:
    return {"sensorId": sensor_id(stack, "chirpstack-demo", "0202020202020202", "Light Level"), **OBSERVATION}


def statuses(stack: LocalStack, log: str) -> list[int]:
    return [call["status"] for call in state(stack)[log]]


def recorded_uploads(stack: LocalStack) -> list[dict[str, Any]]:
    """The upload calls, once the simulator has recorded them: it records a call when its fault
    ends, and a timed-out one's 2.3 s may end after the bridge's retry already ran."""
    waited = 0.0
    while not state(stack)["upload_calls"] and waited < 5:
        time.sleep(0.1)  # the simulator's thread, on the real clock
        waited += 0.1
    return list(state(stack)["upload_calls"])


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param({"drop": True, "after_apply": True}, id="dropped-after-apply"),
        pytest.param({"status": 502, "after_apply": True}, id="502-after-apply"),
        pytest.param({"drop": True, "after_apply": True, "latency_ms": 2300}, id="timeout-after-apply"),
    ],
)
def test_an_upload_stored_but_not_answered_is_looked_up_not_sent_again(
    stack: LocalStack, fault: dict[str, Any]
) -> None:
    stack.simulator.inject({**fault, "operation": "upload"})

    assert post(stack, EVENT)[0] == 200
    stack.drain()

    assert stored(stack) == [the_observation(stack)]  # exactly once
    (upload,) = recorded_uploads(stack)  # the one that was applied: nothing re-sent
    assert upload["applied"] is True
    (query,) = state(stack)["query_calls"]
    assert query["status"] == 200
    assert query["body"]["sensorIds"] == [the_observation(stack)["sensorId"]]
    assert stack.queue_messages("retry") == []
    assert stack.queue_messages("dead-letter") == []


def test_an_upload_that_failed_before_it_was_stored_is_looked_up_then_sent_once(stack: LocalStack) -> None:
    stack.simulator.inject({"status": 503, "operation": "upload"})  # a 5xx: stored or not, unknown

    assert post(stack, EVENT)[0] == 200
    stack.drain()

    assert stored(stack) == [the_observation(stack)]
    assert statuses(stack, "upload_calls") == [503, 202]
    assert statuses(stack, "query_calls") == [200]  # found nothing stored, so it was sent


def test_a_failed_query_sends_nothing_blind_and_is_asked_again(stack: LocalStack) -> None:
    stack.simulator.inject(
        {"drop": True, "after_apply": True, "operation": "upload"},
        {"status": 503, "operation": "query"},
        {"drop": True, "operation": "query"},
    )

    assert post(stack, EVENT)[0] == 200
    stack.drain()

    assert stored(stack) == [the_observation(stack)]
    assert statuses(stack, "upload_calls") == [0]  # the dropped one, applied: never sent again
    assert statuses(stack, "query_calls") == [503, 0, 200]
    assert stack.queue_messages("dead-letter") == []


def test_a_refused_upload_is_not_looked_up(stack: LocalStack) -> None:
    stack.simulator.inject({"status": 429, "retry_after": 5, "operation": "upload"})

    assert post(stack, EVENT)[0] == 200
    stack.drain()

    assert stored(stack) == [the_observation(stack)]
    assert statuses(stack, "upload_calls") == [429, 202]
    assert state(stack)["query_calls"] == []  # a 429 is a definite refusal: nothing to look up


def test_a_message_received_again_after_its_upload_was_stored_uploads_nothing(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An invocation that stored the reading and stopped before it said so (killed at its
    deadline, the registry's mark not written): SQS hands the message out again."""
    monkeypatch.setattr(DynamoDBRegistry, "record_uploaded", _unavailable)
    assert post(stack, EVENT)[0] == 200
    (message,) = stack.queue_messages("retry")
    stack.drain()
    assert stored(stack) == [the_observation(stack)]
    monkeypatch.undo()

    answer = retry_handler(stack, message, receive_count=2)

    assert answer == {"batchItemFailures": []}
    assert stored(stack) == [the_observation(stack)]
    assert statuses(stack, "upload_calls") == [202]
    assert statuses(stack, "query_calls") == [200]


def test_one_reading_queued_twice_is_uploaded_once(stack: LocalStack) -> None:
    """A webhook answered 5xx after it queued the reading is resent, and queues it again under
    the same work id: both copies can come in one batch, before the registry marks either."""
    import boto3

    assert post(stack, EVENT)[0] == 200
    (message,) = stack.queue_messages("retry")
    assert stack.resources is not None
    body = json.dumps(without_delay(message))
    boto3.client("sqs").send_message(QueueUrl=stack.resources.retry_queue_url, MessageBody=body)

    stack.drain()

    assert stored(stack) == [the_observation(stack)]
    assert statuses(stack, "upload_calls") == [202]


@pytest.mark.parametrize("drained_between", [False, True], ids=["one-batch", "two-batches"])
def test_a_reading_message_received_twice_after_its_first_answer_was_lost_uploads_once(
    stack: LocalStack, drained_between: bool
) -> None:
    """The platform resends a message whose first answer never reached it (a 5xx or a kill after
    the reading was queued, before the idempotency record was written): the resend queues the
    reading again, as the same work, and the registry's mark of the first upload stops it."""
    import boto3

    assert post(stack, EVENT)[0] == 200
    if drained_between:
        stack.drain()
    assert stack.resources is not None
    table = boto3.resource("dynamodb").Table(stack.resources.idempotency_table)
    for item in table.scan()["Items"]:  # as if the first answer's record had not been written
        table.delete_item(Key={"id": item["id"]})

    assert post(stack, EVENT)[0] == 200
    stack.drain()

    assert stored(stack) == [the_observation(stack)]
    assert statuses(stack, "upload_calls") == [202]


def test_a_stored_reading_sqs_dead_lettered_itself_is_looked_up_not_stored_again_after_a_move(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A long DynamoDB outage: the upload is stored but the registry's mark cannot be written, so
    every receive fails the message, and SQS moves it to the dead-letter queue after
    maxReceiveCount, with the body it was queued with (no `upload_uncertain`). The operator's
    redrive sends it as a new message, received once: the redrive marks it, so it looks first."""
    monkeypatch.setattr(DynamoDBRegistry, "record_uploaded", _throttled)
    assert post(stack, EVENT)[0] == 200
    stack.drain()
    assert stored(stack) == [the_observation(stack)]
    (parked,) = stack.queue_messages("dead-letter")
    assert parked["parked_reason"] is None  # SQS's own redrive: no reason, no mark of ours
    assert "upload_uncertain" not in parked
    monkeypatch.undo()  # DynamoDB is back

    out = io.StringIO()
    assert redrive.main(["move"], out=out) == 0
    stack.drain()

    assert stored(stack) == [the_observation(stack)]  # once
    assert statuses(stack, "upload_calls") == [202]
    assert stack.queue_messages("dead-letter") == []
    assert stack.queue_messages("retry") == []


def test_copies_of_one_reading_whose_look_up_waits_all_go_back_marked(stack: LocalStack) -> None:
    """Two copies of one work in one retry batch: the first is the platform's resend (unmarked),
    the second the copy whose upload was stored but not answered. The copy kept is looked up; the
    query answers 429; both go back on the queue, and both must keep the mark: the unmarked one,
    received alone later, would upload blind and store the reading twice."""
    import boto3

    assert post(stack, EVENT)[0] == 200
    (resent,) = stack.take_messages("retry")
    stack.simulator.inject({"drop": True, "after_apply": True, "operation": "upload"})
    retry_handler(stack, resent, receive_count=1)  # stored, its answer lost: queued again, marked
    (uncertain,) = stack.take_messages("retry")
    assert uncertain["upload_uncertain"] is True
    stack.simulator.inject({"status": 429, "retry_after": 5, "operation": "query"})

    retry_batch(stack, [resent, uncertain], receive_count=1)

    queued = stack.take_messages("retry")
    assert len(queued) == 2
    assert [work.get("upload_uncertain") for work in queued] == [True, True]
    (resent_again,) = [work for work in queued if work["attempts"] == resent["attempts"] + 1]
    assert stack.resources is not None
    body = json.dumps(without_delay(resent_again))
    boto3.client("sqs").send_message(QueueUrl=stack.resources.retry_queue_url, MessageBody=body)
    stack.drain()  # the resend's copy alone: looked up, found stored, not sent
    assert stored(stack) == [the_observation(stack)]
    assert statuses(stack, "upload_calls") == [0]
    assert statuses(stack, "query_calls") == [429, 200]


def _unavailable(*_: Any, **__: Any) -> None:
    raise RuntimeError("the registry is out")


def _throttled(*_: Any, **__: Any) -> None:
    from botocore.exceptions import ClientError

    error = {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}}
    raise ClientError(error, "UpdateItem")


def without_delay(work: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in work.items() if k != "_delay_seconds"}


def retry_handler(stack: LocalStack, work: dict[str, Any], *, receive_count: int) -> Any:
    """The retry function on one SQS record of this work, as the event source mapping builds it."""
    return retry_batch(stack, [work], receive_count=receive_count)


def retry_batch(stack: LocalStack, works: list[dict[str, Any]], *, receive_count: int) -> Any:
    """The retry function on a batch of SQS records, one per work, in order."""
    from local.apigw import LambdaContext, sqs_event

    messages = [
        {
            "MessageId": f"again-{n}",
            "ReceiptHandle": f"r-{n}",
            "Body": json.dumps(without_delay(work)),
            "Attributes": {"ApproximateReceiveCount": str(receive_count)},
        }
        for n, work in enumerate(works)
    ]
    assert stack.resources is not None
    event = sqs_event(messages, stack.resources.retry_queue_arn)
    return stack.poller.handler(event, LambdaContext("sensor-bridge-retry", timeout_seconds=60))
