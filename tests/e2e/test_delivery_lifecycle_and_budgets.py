"""Deletions that overtake a queued creation, one SQS message in two invocations at once, and the
time budget that keeps every API call inside its invocation."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import boto3

import retry_handler
import webhook_handler
from local.apigw import LambdaContext, sqs_event
from local.stack import LocalStack
from sensor_bridge.model.profiles import device_ref_id
from sensor_bridge.runtime.budget import BUDGET_SPENT
from sensor_bridge.sensor_data.limiter import BUDGET_SHORT
from tests.conftest import load_event
from tests.scenario import device_calls

AWS_SOURCE = "aws-iot-demo"


def thing_ref(stack: LocalStack, event_name: str) -> str:
    body = json.loads(load_event(event_name)["body"])
    return device_ref_id(AWS_SOURCE, body["thingName"])


def test_device_deleted_while_its_creation_waits_on_the_queue_is_never_created(stack: LocalStack) -> None:
    # The node exists; the thing's creation then meets a 429 and waits on the retry queue.
    stack.post_event(load_event("aws-iot-04-second-thing-created.json"))
    stack.simulator.inject({"status": 429, "retry_after": "30", "count": 1})
    created_status, created = stack.post_event(load_event("aws-iot-02-thing-created.json"))
    assert created_status == 202
    assert created["results"][0]["status"] == "queued"

    deleted_status, deleted = stack.post_event(load_event("aws-iot-03-thing-deleted.json"))
    stack.drain()

    assert deleted_status == 200
    # The creation has not reached the API: nothing to remove, and the tombstone stops it.
    assert deleted["results"][0]["status"] == "unknown-device"
    ref = thing_ref(stack, "aws-iot-02-thing-created.json")
    state = stack.simulator.state()
    assert state["created"].get(ref, 0) == 0
    assert [d for d in state["devices"] if d["refId"] == ref] == []
    assert stack.queue_messages("retry") == []
    assert stack.queue_messages("dead-letter") == []


def test_device_created_again_after_its_deletion_is_created(stack: LocalStack) -> None:
    stack.post_event(load_event("aws-iot-02-thing-created.json"))
    stack.post_event(load_event("aws-iot-03-thing-deleted.json"))
    stack.advance(5)
    recreated = load_event("aws-iot-02-thing-created.json")
    body = json.loads(recreated["body"])
    body["eventId"] = "a-later-creation-of-the-same-thing"
    body["timestamp"] += 3_600_000  # an hour after the deletion
    recreated["body"] = json.dumps(body)

    status, answer = stack.post_event(recreated)

    assert status == 200
    assert answer["results"][0]["status"] == "integrated"
    ref = thing_ref(stack, "aws-iot-02-thing-created.json")
    live = [d for d in stack.simulator.state()["devices"] if d["refId"] == ref and not d["removed"]]
    assert len(live) == 1


def test_creation_redelivered_after_its_deletion_is_not_created(stack: LocalStack) -> None:
    """Platforms redeliver out of order (Event Grid for up to 24 h): the event's own time decides."""
    stack.post_event(load_event("aws-iot-04-second-thing-created.json"))  # the node exists
    # The creation is first refused (the queue is out, or the platform's call timed out) ...
    deleted_status, _ = stack.post_event(load_event("aws-iot-03-thing-deleted.json"))
    stack.advance(600)
    # ... and comes again after the deletion was processed. It happened before the deletion.
    status, answer = stack.post_event(load_event("aws-iot-02-thing-created.json"))

    assert deleted_status == 200
    assert status == 200
    assert answer["results"][0]["status"] == "superseded"
    ref = thing_ref(stack, "aws-iot-02-thing-created.json")
    assert stack.simulator.state()["created"].get(ref, 0) == 0


def test_one_retry_message_in_two_invocations_at_once_creates_one_device(stack: LocalStack) -> None:
    assert stack.resources is not None
    stack.post_event(load_event("ttn-02-join-accept-second-device.json"))  # the node exists
    stack.simulator.inject({"status": 503, "count": 1})
    status, _ = stack.post_event(load_event("ttn-01-join-accept.json"))
    assert status == 202
    stack.advance(3600)
    message = boto3.client("sqs").receive_message(
        QueueUrl=stack.resources.retry_queue_url, AttributeNames=["All"], MessageAttributeNames=["All"]
    )["Messages"][0]
    event = sqs_event([message], stack.resources.retry_queue_arn)
    # SQS delivers at least once: the same message reaches two invocations. The API is slow, so
    # the two deliveries overlap.
    stack.simulator.inject({"latency_ms": 400, "count": 2})
    answers: list[Any] = []
    threads = [
        threading.Thread(
            target=lambda: answers.append(
                retry_handler.lambda_handler(event, LambdaContext("RetryFunction", timeout_seconds=60))
            )
        )
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    ref = device_ref_id("ttn-demo", "bridge-monitoring/strain-gauge-01")
    assert stack.simulator.state()["created"][ref] == 1
    assert len(answers) == 2
    new_calls = [
        d
        for c in device_calls(stack)
        for d in c["body"]["integration"]["devices"]
        if d["refId"] == ref and c["status"] == 200
    ]
    assert [d["changeState"] for d in new_calls] == ["new"]


def test_webhook_with_too_little_time_left_queues_without_calling_the_api(stack: LocalStack) -> None:
    stack.post_event(load_event("ttn-02-join-accept-second-device.json"))
    calls_before = len(stack.simulator.state()["calls"])

    # 1.2 s left: after the 1 s reserve for queueing, no call fits.
    answer = webhook_handler.lambda_handler(
        load_event("ttn-01-join-accept.json"), LambdaContext("WebhookFunction", timeout_seconds=1.2)
    )

    assert answer["statusCode"] == 202
    result = json.loads(answer["body"])["results"][0]
    assert result["status"] == "queued"
    assert result["detail"] == BUDGET_SPENT
    assert len(stack.simulator.state()["calls"]) == calls_before
    queued = stack.queue_messages("retry")
    assert [m["event"]["device_id"] for m in queued] == ["bridge-monitoring/strain-gauge-01"]
    stack.drain()
    ref = device_ref_id("ttn-demo", "bridge-monitoring/strain-gauge-01")
    assert stack.simulator.state()["created"][ref] == 1


def test_slow_api_call_is_cut_at_the_remaining_budget_not_the_configured_timeout(stack: LocalStack) -> None:
    stack.post_event(load_event("ttn-02-join-accept-second-device.json"))
    stack.simulator.inject({"latency_ms": 3000, "count": 1})
    context = LambdaContext("WebhookFunction", timeout_seconds=2.0)

    answer = webhook_handler.lambda_handler(load_event("ttn-01-join-accept.json"), context)

    # The call got what was left (about 1 s), timed out, and the work was queued in time.
    assert answer["statusCode"] == 202
    assert context.get_remaining_time_in_millis() > 0
    assert [m["event"]["device_id"] for m in stack.queue_messages("retry")] == [
        "bridge-monitoring/strain-gauge-01"
    ]
    # The simulator still finishes the abandoned request (the real API would too): wait for it,
    # so it does not land in the next test's clean state.
    deadline = time.monotonic() + 5
    while len(stack.simulator.state()["calls"]) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(stack.simulator.state()["calls"]) == 3  # node, the first device, the abandoned call


def test_same_event_arriving_while_the_first_is_in_progress_is_asked_to_resend(stack: LocalStack) -> None:
    stack.post_event(load_event("ttn-02-join-accept-second-device.json"))  # the node exists
    stack.simulator.inject({"latency_ms": 600, "count": 1})
    event = load_event("ttn-01-join-accept.json")
    start = threading.Barrier(2)
    answers: list[dict[str, Any]] = []

    def deliver() -> None:
        start.wait()
        answers.append(webhook_handler.lambda_handler(event, LambdaContext("WebhookFunction")))

    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    first, second = sorted(answers, key=lambda a: a["statusCode"])
    assert first["statusCode"] == 200
    assert second["statusCode"] == 503
    assert json.loads(second["body"])["error"]["code"] == "EventInProgress"
    assert second["headers"]["Retry-After"] == "5"
    # The platform sends it again: a duplicate of the first delivery, and nothing is created twice.
    resent = webhook_handler.lambda_handler(event, LambdaContext("WebhookFunction"))
    assert resent["statusCode"] == 200
    (repeated,), (delivered,) = json.loads(resent["body"])["results"], json.loads(first["body"])["results"]
    assert (repeated["status"], repeated["firstStatus"]) == ("duplicate", delivered["status"])
    ref = device_ref_id("ttn-demo", "bridge-monitoring/strain-gauge-01")
    assert stack.simulator.state()["created"][ref] == 1


def test_while_a_retry_after_runs_no_call_is_sent_and_the_work_waits_for_it(stack: LocalStack) -> None:
    stack.post_event(load_event("ttn-02-join-accept-second-device.json"))  # the node exists
    stack.simulator.inject({"status": 429, "retry_after": "30", "count": 1})
    first_status, _ = stack.post_event(load_event("ttn-01-join-accept.json"))
    calls_after_429 = len(stack.simulator.state()["calls"])
    stack.advance(10)

    status, answer = stack.post_event(load_event("ttn-03-join-accept-third-device.json"))

    assert first_status == 202
    assert status == 202
    result = answer["results"][0]
    assert result["status"] == "queued"
    assert result["detail"] == BUDGET_SHORT
    assert len(stack.simulator.state()["calls"]) == calls_after_429  # nothing sent
    held = next(m for m in stack.queue_messages("retry") if m["event"]["device_id"].endswith("tilt-meter-03"))
    assert 20 <= held["_delay_seconds"] <= 26  # the 20 s left of the Retry-After, plus at most 5 s jitter
    stack.drain()
    created = stack.simulator.state()["created"]
    for device in ("strain-gauge-01", "tilt-meter-03"):
        assert created[device_ref_id("ttn-demo", f"bridge-monitoring/{device}")] == 1
