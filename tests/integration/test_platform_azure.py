"""Azure IoT Hub lifecycle events via Event Grid (both schemas and both handshakes), real handler."""

from __future__ import annotations

import json
from typing import Any

from local.stack import LocalStack
from sensor_bridge.model.profiles import device_ref_id
from tests.conftest import event_body, load_event

SOURCE = "azure-demo"
CODE = "local-azure-code"


def send(
    stack: LocalStack,
    name: str,
    *,
    body: Any = None,
    query: str | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], Any]:
    event = load_event(name)
    raw = event.get("body", "").encode() if body is None else json.dumps(body).encode()
    path = f"{event['rawPath']}?{event['rawQueryString'] if query is None else query}"
    return stack.invoke(
        event["requestContext"]["http"]["method"],
        path,
        headers={**event["headers"], **(headers or {})},
        body=raw,
    )


def calls(stack: LocalStack) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = stack.simulator.state()["calls"]
    return result


def test_subscription_validation_is_answered_with_the_validation_code(stack: LocalStack) -> None:
    status, _, body = send(stack, "azure-01-subscription-validation.json")

    assert status == 200
    assert body == {"validationResponse": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6"}
    assert calls(stack) == []


def test_subscription_validation_without_the_secret_code_gets_401(stack: LocalStack) -> None:
    status, _, body = send(stack, "azure-01-subscription-validation.json", query="")

    assert status == 401
    assert "validationResponse" not in body


def test_cloudevents_options_handshake_allows_the_requesting_origin(stack: LocalStack) -> None:
    status, headers, _ = send(stack, "azure-03-cloudevents-validation.json")

    assert status == 200
    assert headers["WebHook-Allowed-Origin"] == "eventgrid.azure.net"
    assert headers["WebHook-Allowed-Rate"] == "*"
    assert calls(stack) == []


def test_cloudevents_options_without_request_origin_is_a_400_naming_the_header(stack: LocalStack) -> None:
    event = load_event("azure-03-cloudevents-validation.json")
    status, _, body = stack.invoke("OPTIONS", f"{event['rawPath']}?code={CODE}", headers={})

    assert status == 400
    assert "WebHook-Request-Origin" in body["error"]["message"]


def test_device_created_integrates_with_twin_tags_profile_and_twin_location(stack: LocalStack) -> None:
    status, _, body = send(stack, "azure-02-device-created.json")

    assert status == 200
    ref = device_ref_id(SOURCE, "bridge-hub/lux-sensor-07")
    assert calls(stack)[-1]["body"]["integration"] == {
        "nodeId": body["results"][0]["ids"]["node"],
        "devices": [
            {
                "changeState": "new",
                "refId": ref,
                "props": {
                    "INTEGRATION_ID": "IMPORT_DEVICE_SDE",
                    "NAME": "lux-sensor-07",
                    "LOCATION": {"type": "Point", "coordinates": [-122.3321, 47.6062]},
                    "NOTES": "azure-iot-hub device bridge-hub/lux-sensor-07 via source azure-demo",
                },
                "sensors": [
                    {
                        "changeState": "new",
                        "refId": f"{ref}-light",
                        "props": {
                            "INTEGRATION_ID": "LIGHT_SDE",
                            "NAME": "Light Level",
                            "UNKNOWN_METRICS": {"0": "illuminance"},
                            "UNKNOWN_UNITS": {"0": "lx"},
                        },
                    }
                ],
            }
        ],
    }


def test_single_cloudevent_device_created_uses_the_reported_location(stack: LocalStack) -> None:
    status, _, _ = send(stack, "azure-04-cloudevents-device-created.json")

    assert status == 200
    device = calls(stack)[-1]["body"]["integration"]["devices"][0]
    assert device["refId"] == device_ref_id(SOURCE, "bridge-hub/gateway-08")
    assert device["props"]["LOCATION"] == {"type": "Point", "coordinates": [-122.33, 47.61, 56.0]}


def test_cloudevents_batch_acts_on_created_devices_and_skips_connections(stack: LocalStack) -> None:
    created = event_body("azure-04-cloudevents-device-created.json")
    connected = {
        **created,
        "id": "c0",
        "type": "Microsoft.Devices.DeviceConnected",
        "data": {"deviceId": "x"},
    }

    status, _, body = send(
        stack,
        "azure-04-cloudevents-device-created.json",
        body=[connected, created],
        headers={"content-type": "application/cloudevents-batch+json; charset=utf-8"},
    )

    assert status == 200
    assert [r["device"] for r in body["results"]] == ["bridge-hub/gateway-08"]
    assert len(calls(stack)) == 2


def test_device_deleted_removes_a_device_the_bridge_created(stack: LocalStack) -> None:
    send(stack, "azure-02-device-created.json")
    deleted: Any = event_body("azure-05-device-deleted-not-ours.json")
    deleted[0]["data"]["deviceId"] = deleted[0]["data"]["twin"]["deviceId"] = "lux-sensor-07"
    deleted[0]["subject"] = "devices/lux-sensor-07"

    status, _, body = send(stack, "azure-05-device-deleted-not-ours.json", body=deleted)

    assert status == 200
    assert body["results"][0]["status"] == "removed"
    assert calls(stack)[-1]["body"]["integration"]["devices"] == [
        {
            "changeState": "remove",
            "refId": device_ref_id(SOURCE, "bridge-hub/lux-sensor-07"),
            "props": {},
            "sensors": [],
        }
    ]


def test_device_deleted_for_a_device_the_bridge_never_created_makes_no_call(stack: LocalStack) -> None:
    status, _, body = send(stack, "azure-05-device-deleted-not-ours.json")

    assert status == 200
    assert body["results"][0]["status"] == "unknown-device"
    assert "nothing to remove" in body["results"][0]["detail"]
    assert calls(stack) == []


def test_redelivered_event_grid_event_makes_no_second_call(stack: LocalStack) -> None:
    send(stack, "azure-02-device-created.json")
    status, _, _ = send(stack, "azure-02-device-created.json")

    assert status == 200
    assert len(calls(stack)) == 2


def test_connection_events_only_are_ignored_with_the_reason(stack: LocalStack) -> None:
    events: Any = event_body("azure-02-device-created.json")
    events[0]["eventType"] = "Microsoft.Devices.DeviceConnected"

    status, _, body = send(stack, "azure-02-device-created.json", body=events)

    assert status == 202
    assert body["status"] == "ignored"
    assert "Microsoft.Devices.DeviceConnected" in body["reason"]
    assert calls(stack) == []


def test_device_created_without_device_id_is_a_400_naming_the_field(stack: LocalStack) -> None:
    events: Any = event_body("azure-02-device-created.json")
    del events[0]["data"]["deviceId"]

    status, _, body = send(stack, "azure-02-device-created.json", body=events)

    assert status == 400
    assert "deviceId" in body["error"]["message"]


def test_wrong_code_gets_401_without_revealing_it_and_reaches_nothing(stack: LocalStack) -> None:
    status, _, body = send(stack, "azure-02-device-created.json", query="code=nope")

    assert status == 401
    assert CODE not in json.dumps(body)
    assert calls(stack) == []
