"""The Things Stack end to end on the local stack: webhook → Sensor Data, directly or via the queue."""

from __future__ import annotations

import json

from local.stack import LocalStack
from sensor_bridge.model.profiles import device_ref_id
from tests.conftest import load_event


def post_event(stack: LocalStack, name: str) -> tuple[int, dict]:
    event = load_event(name)
    status, _, body = stack.invoke(
        event["requestContext"]["http"]["method"],
        event["rawPath"],
        headers=event["headers"],
        body=event["body"].encode(),
    )
    return status, body


def test_join_accept_creates_node_then_device_and_answers_with_its_ids(stack: LocalStack) -> None:
    status, body = post_event(stack, "ttn-01-join-accept.json")

    assert status == 200
    result = body["results"][0]
    assert result["status"] == "integrated"
    calls = stack.simulator.state()["calls"]
    assert [c["status"] for c in calls] == [200, 200]
    node_call, device_call = (c["body"]["integration"] for c in calls)
    # The node is looked for by its name first (none yet), then created with that name.
    assert [c["status"] for c in stack.simulator.state()["node_list_calls"]] == [200]
    assert node_call == {"changeState": "new", "props": {"NAME": "sensor-bridge: ttn-demo"}, "devices": []}
    device = device_call["devices"][0]
    assert device_call["nodeId"] == result["ids"]["node"]
    assert device["changeState"] == "new"
    assert device["refId"] == device_ref_id("ttn-demo", "bridge-monitoring/strain-gauge-01")
    assert device["props"]["NAME"] == "strain-gauge-01"
    assert device["props"]["INTEGRATION_ID"] == "IMPORT_DEVICE_SDE"
    assert [s["props"]["INTEGRATION_ID"] for s in device["sensors"]] == ["GENERIC_SENSOR_SDE"]
    assert result["ids"]["devices"][0]["id"].endswith("/device")


def test_uplink_with_known_model_uses_its_profile_and_location(stack: LocalStack) -> None:
    status, _ = post_event(stack, "ttn-06-uplink-new-device.json")

    assert status == 200
    device = stack.simulator.state()["calls"][-1]["body"]["integration"]["devices"][0]
    assert device["props"]["LOCATION"] == {"type": "Point", "coordinates": [-0.1246, 51.5007, 12.0]}
    assert {s["props"]["NAME"] for s in device["sensors"]} == {
        "Temperature",
        "Battery Charge Level",
        "Sensor Signal Strength",
    }
    temperature = next(s for s in device["sensors"] if s["props"]["NAME"] == "Temperature")
    assert temperature["props"]["KNOWN_METRICS"] == {"0": "T"}


def test_rate_limited_webhook_is_queued_with_retry_after_delay_then_delivered(stack: LocalStack) -> None:
    stack.simulator.inject({"status": 429, "retry_after": "40", "count": 1})

    status, body = post_event(stack, "ttn-01-join-accept.json")

    assert status == 202
    assert body["results"][0]["status"] == "queued"
    queued = stack.queue_messages("retry")
    assert len(queued) == 1
    assert queued[0]["attempts"] == 1
    delay = queued[0]["_delay_seconds"]
    assert 40 <= delay <= 45  # the Retry-After, plus at most the design's 5 s of jitter
    assert body["results"][0]["retryInSeconds"] == delay

    stack.drain()

    state = stack.simulator.state()
    ref = device_ref_id("ttn-demo", "bridge-monitoring/strain-gauge-01")
    assert state["created"][ref] == 1
    assert stack.queue_messages("retry") == []
    assert stack.queue_messages("dead-letter") == []


def test_wrong_token_is_refused_before_anything_downstream(stack: LocalStack) -> None:
    status, body = post_event(stack, "ttn-09-wrong-token.json")

    assert status == 401
    assert body["error"]["code"] == "Unauthorized"
    assert "local-ttn-webhook-token" not in json.dumps(body)
    assert stack.simulator.state()["calls"] == []
