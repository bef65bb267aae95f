"""Readings end to end: every platform's reading message, through the real handlers and queues,
becomes exactly the observations the simulator stored (sensor ids, timestamps, values); a reading
for a new device arrives after its onboarding; a repeated message uploads once; a 429 on upload
is delivered later; a reading mapped to an undeclared metric is refused at start."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from local.provision import LOCAL_WEBHOOK_SECRETS
from local.stack import LocalStack
from sensor_bridge.model.config import ConfigError, parse_config
from sensor_bridge.model.profiles import device_ref_id
from tests.conftest import load_event


def post(stack: LocalStack, name: str, body: Any = None) -> tuple[int, Any]:
    """An events/ sample through the real webhook handler; Standard Webhooks ones signed now."""
    event = load_event(name)
    if body is not None:
        event["body"] = json.dumps(body)
    headers = dict(event["headers"])
    if "webhook-signature" in headers:
        secret = LOCAL_WEBHOOK_SECRETS["generic-demo"]
        now = datetime.now(UTC)
        headers["webhook-timestamp"] = str(int(now.timestamp()))
        headers["webhook-signature"] = Webhook(secret).sign(headers["webhook-id"], now, event["body"])
    path = event["rawPath"] + (f"?{event['rawQueryString']}" if event.get("rawQueryString") else "")
    status, _, answer = stack.invoke("POST", path, headers=headers, body=event["body"].encode())
    return status, answer


def state(stack: LocalStack) -> dict[str, Any]:
    return stack.simulator.state()


def sensor_id(stack: LocalStack, source: str, device: str, sensor_name: str) -> str:
    ref = device_ref_id(source, device)
    found = [
        s["id"]
        for d in state(stack)["devices"]
        if d["refId"] == ref and not d["removed"]
        for s in d["sensors"]
        if s["props"].get("NAME") == sensor_name and not s["removed"]
    ]
    assert len(found) == 1, found
    return str(found[0])


def stored(stack: LocalStack) -> list[dict[str, Any]]:
    return [{k: o[k] for k in ("sensorId", "timestamp", "values")} for o in state(stack)["observations"]]


# (events before, the reading event, source, device, sensor NAME, timestamp, values)
CASES = [
    (
        [],
        "ttn-06-uplink-new-device.json",
        "ttn-demo",
        "bridge-monitoring/env-node-04",
        "Temperature",
        "2025-11-28T00:01:00.000Z",
        {"T": 23.2},
    ),
    (
        [],
        "chirpstack-02-up-abp-device.json",
        "chirpstack-demo",
        "0202020202020202",
        "Light Level",
        "2025-11-28T00:01:00.000Z",
        {"illuminance": 312.5},
    ),
    (
        [],
        "particle-02-json-template.json",
        "particle-demo",
        "e00fce68aabbccddeeff0002",
        "Temperature",
        "2025-11-28T00:04:00.000Z",
        {"T": 21.4},
    ),
    (
        ["azure-02-device-created.json"],
        "azure-06-device-telemetry.json",
        "azure-demo",
        "bridge-hub/lux-sensor-07",
        "Light Level",
        "2025-11-28T00:10:00.000Z",  # iothub-creation-time-utc: the device's own time
        {"illuminance": 418.0},
    ),
    (
        ["aws-iot-04-second-thing-created.json"],
        "aws-iot-06-telemetry.json",
        "aws-iot-demo",
        "quay-meter-12",
        "Electricity Usage",
        "2025-11-28T00:14:00.000Z",  # the rule's timestamp()
        {"energy": 1532.25},
    ),
    (
        ["generic-01-device-created.json"],
        "generic-02-reading.json",
        "generic-demo",
        "acme-th-0042",
        "Temperature",
        "2025-11-28T00:09:30.000Z",
        {"T": 4.5},
    ),
]


@pytest.mark.parametrize(("before", "reading", "source", "device", "sensor", "timestamp", "values"), CASES)
def test_a_reading_becomes_exactly_the_observations_stored(
    stack: LocalStack,
    before: list[str],
    reading: str,
    source: str,
    device: str,
    sensor: str,
    timestamp: str,
    values: dict[str, float],
) -> None:
    for name in before:
        assert post(stack, name)[0] == 200
    status, answer = post(stack, reading)

    assert status == 200, answer  # the API has the device
    assert answer["results"][0]["readingsForwarded"] == 0  # its reading waits for the next batch
    assert stored(stack) == []
    stack.drain()
    expected = {
        "sensorId": sensor_id(stack, source, device, sensor),
        "timestamp": timestamp,
        "values": values,
    }
    assert stored(stack) == [expected]


def test_a_reading_for_a_new_device_waits_with_its_onboarding_and_arrives_after_it(stack: LocalStack) -> None:
    stack.simulator.inject({"status": 429, "retry_after": 30, "operation": "integrate"})

    status, answer = post(stack, "ttn-06-uplink-new-device.json")

    assert status == 202
    assert answer["results"][0]["status"] == "queued"
    assert stored(stack) == []  # never sent against a sensor id that does not exist yet
    (queued,) = stack.queue_messages("retry")
    assert queued["event"]["reading"]["fields"] == {"temperature": 23.2}
    stack.drain()
    calls = state(stack)["calls"]
    uploads = state(stack)["upload_calls"]
    assert [c["status"] for c in calls] == [429, 200, 200]  # node and device, then the upload
    assert [u["status"] for u in uploads] == [202]
    assert stored(stack)[0]["sensorId"] == sensor_id(
        stack, "ttn-demo", "bridge-monitoring/env-node-04", "Temperature"
    )


def test_a_repeated_reading_message_uploads_once(stack: LocalStack) -> None:
    first = post(stack, "chirpstack-02-up-abp-device.json")
    stack.drain()
    again = post(stack, "chirpstack-02-up-abp-device.json")
    stack.drain()

    # Answered from the idempotency record: a duplicate, which carries no reading of its own.
    (delivered,), (repeated,) = first[1]["results"], again[1]["results"]
    assert (again[0], repeated["status"], repeated["firstStatus"]) == (first[0], "duplicate", "integrated")
    assert (repeated["ids"], "readingsForwarded" in repeated) == (delivered["ids"], False)
    assert len(state(stack)["upload_calls"]) == 1
    assert len(stored(stack)) == 1


def test_a_429_on_upload_is_delivered_later_and_the_device_is_not_created_twice(stack: LocalStack) -> None:
    stack.simulator.inject({"status": 429, "retry_after": 20, "operation": "upload"})

    status, answer = post(stack, "particle-02-json-template.json")

    assert status == 200
    assert answer["results"][0]["status"] == "integrated"
    stack.poll_once()
    assert [u["status"] for u in state(stack)["upload_calls"]] == [429]
    assert stored(stack) == []
    (waiting,) = stack.queue_messages("retry")
    assert waiting["_delay_seconds"] >= 20  # the API's Retry-After
    stack.drain()
    assert [u["status"] for u in state(stack)["upload_calls"]] == [429, 202]
    assert stored(stack) == [
        {
            "sensorId": sensor_id(stack, "particle-demo", "e00fce68aabbccddeeff0002", "Temperature"),
            "timestamp": "2025-11-28T00:04:00.000Z",
            "values": {"T": 21.4},
        }
    ]
    assert max(state(stack)["created"].values()) == 1
    assert stack.queue_messages("dead-letter") == []


def test_a_redelivered_work_item_does_not_upload_again(stack: LocalStack) -> None:
    stack.simulator.inject({"status": 503, "operation": "upload"})
    assert post(stack, "chirpstack-02-up-abp-device.json")[0] == 200
    (message,) = stack.queue_messages("retry")
    body = json.dumps({k: v for k, v in message.items() if k != "_delay_seconds"})
    stack.drain()
    assert len(stored(stack)) == 1

    from sensor_bridge.retry.worker import process_batch

    answers = process_batch([("again", body)])  # SQS hands the same message over once more

    assert answers["again"].status == "unchanged"  # type: ignore[union-attr]
    assert len(stored(stack)) == 1
    assert [u["status"] for u in state(stack)["upload_calls"]] == [503, 202]


def test_a_refused_upload_is_parked_with_the_reason_and_counted(stack: LocalStack) -> None:
    stack.simulator.inject({"status": 422, "operation": "upload"})

    assert post(stack, "ttn-06-uplink-new-device.json")[0] == 200
    stack.drain()

    (parked,) = stack.queue_messages("dead-letter")
    assert parked["parked_reason"].startswith("422")
    assert parked["event"]["reading"]["fields"] == {"temperature": 23.2}


def test_a_reading_mapped_to_an_undeclared_metric_is_refused_at_start() -> None:
    text = (
        "sources: {}\ndefault_profile:\n  name: g\n  sensors:\n"
        "    - {key: g, integration_id: GENERIC_SENSOR_SDE, name: G, unknown_metrics: [value],"
        " readings: {temperature: temp}}\n"
    )
    with pytest.raises(
        ConfigError, match="reading for metric 'temperature', which the sensor does not declare"
    ):
        parse_config(text, origin="bridge.yaml")
