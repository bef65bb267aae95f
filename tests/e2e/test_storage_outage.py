"""DynamoDB throttled under the webhook (issue #9): the platform is asked to send again, in our
error shape with a Retry-After, and the resend is delivered once; never a 500 crash."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from local.stack import LocalStack
from sensor_bridge.runtime.process import reset_process_state
from tests.scenario import Ledger, tts_event

THROTTLED = (
    "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
    "com.amazon.coral.availability#ThrottlingException",
)


class _Body:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


@pytest.fixture(params=THROTTLED, ids=lambda t: t.rsplit("#", 1)[-1])
def dynamodb_throttled(request: pytest.FixtureRequest) -> Iterator[dict[str, int]]:
    """Every DynamoDB request the functions' clients send is answered as a throttled table
    answers it, through botocore's own send hook, until the test lifts it."""
    from botocore.awsrequest import AWSResponse

    state = {"on": 1, "refused": 0}

    def refuse(request: Any, **_: Any) -> Any:
        if not state["on"]:
            return None
        state["refused"] += 1
        headers = {"x-amzn-RequestId": str(uuid.uuid4()), "Content-Type": "application/x-amz-json-1.0"}
        body = json.dumps({"__type": request_type, "message": "throttled"}).encode()
        return AWSResponse(request.url, 400, headers, _Body(body))

    request_type = request.param
    events = boto3._get_default_session().events
    events.register("before-send.dynamodb", refuse, unique_id="test-throttle")
    reset_process_state()  # the functions' clients are made again, on the hooked session
    yield state
    events.unregister("before-send.dynamodb", unique_id="test-throttle")
    reset_process_state()


def test_a_throttled_registry_answers_503_with_retry_after_and_the_resend_is_delivered(
    stack: LocalStack, ledger: Ledger, dynamodb_throttled: dict[str, int]
) -> None:
    event = tts_event(device=f"throttled-{uuid.uuid4().hex[:6]}")

    status, headers, body = stack.invoke(
        "POST", event["rawPath"], headers=event["headers"], body=event["body"].encode()
    )

    assert dynamodb_throttled["refused"] > 0
    assert status == 503, body
    assert headers.get("Retry-After") == "5"
    assert body["error"]["code"] == "StorageUnavailable"
    assert stack.simulator.state()["devices"] == []
    dynamodb_throttled["on"] = 0
    status, body = ledger.post(event)
    assert status == 200, body
    assert [r["status"] for r in body["results"]] == ["integrated"]
    ledger.check()
