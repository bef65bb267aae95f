"""ChirpStack v4 HTTP integration through the real webhook handler and the Sensor Data simulator."""

from __future__ import annotations

import base64
import json
from typing import Any

from local.stack import LocalStack
from sensor_bridge.model.profiles import device_ref_id
from sensor_bridge.retry.route import SEEN_BEFORE
from tests.conftest import load_event

SOURCE = "chirpstack-demo"
TOKEN = "local-chirpstack-token"


def send(stack: LocalStack, name: str, **changes: Any) -> tuple[int, dict[str, str], Any]:
    event = load_event(name)
    headers = {**event["headers"], **changes.get("headers", {})}
    for dropped in changes.get("drop", ()):
        headers.pop(dropped, None)
    body = base64.b64decode(event["body"]) if event["isBase64Encoded"] else event["body"].encode()
    if "body" in changes:
        body = json.dumps(changes["body"]).encode()
    query = changes.get("query", event["rawQueryString"])
    return stack.invoke("POST", f"{event['rawPath']}?{query}", headers=headers, body=body)


def calls(stack: LocalStack) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = stack.simulator.state()["calls"]
    return result


def test_join_integrates_the_device_with_its_chirpstack_name_and_device_profile(stack: LocalStack) -> None:
    status, _, body = send(stack, "chirpstack-01-join.json")

    assert status == 200
    assert body["results"][0]["status"] == "integrated"
    node_call, device_call = (c["body"]["integration"] for c in calls(stack))
    assert node_call == {"changeState": "new", "props": {"NAME": f"sensor-bridge: {SOURCE}"}, "devices": []}
    ref = device_ref_id(SOURCE, "0101010101010101")
    assert device_call == {
        "nodeId": body["results"][0]["ids"]["node"],
        "devices": [
            {
                "changeState": "new",
                "refId": ref,
                "props": {
                    "INTEGRATION_ID": "IMPORT_DEVICE_SDE",
                    "NAME": "soil-probe-01",
                    "NOTES": 'Soil moisture probe (ChirpStack device profile "Soil moisture v2")',
                },
                "sensors": [
                    {
                        "changeState": "new",
                        "refId": f"{ref}-moisture",
                        "props": {"INTEGRATION_ID": "MOISTURE_SDE", "NAME": "Soil Moisture"},
                    },
                    {
                        "changeState": "new",
                        "refId": f"{ref}-battery",
                        "props": {"INTEGRATION_ID": "BATTERY_CHARGE_SDE", "NAME": "Battery Charge Level"},
                    },
                ],
            }
        ],
    }


def test_uplink_of_an_abp_device_onboards_it_with_the_profile_its_tags_select(stack: LocalStack) -> None:
    status, _, _ = send(stack, "chirpstack-02-up-abp-device.json")

    assert status == 200
    device = calls(stack)[-1]["body"]["integration"]["devices"][0]
    assert device["refId"] == device_ref_id(SOURCE, "0202020202020202")
    assert device["props"]["NAME"] == "lux-meter-02"
    assert "LOCATION" not in device["props"]  # rxInfo locations are the gateway's, not the device's
    assert [s["props"] for s in device["sensors"]] == [
        {
            "INTEGRATION_ID": "LIGHT_SDE",
            "NAME": "Light Level",
            "UNKNOWN_METRICS": {"0": "illuminance"},  # what its readings are uploaded as
            "UNKNOWN_UNITS": {"0": "lx"},
        }
    ]


def test_join_delivered_twice_with_one_deduplication_id_makes_one_call(stack: LocalStack) -> None:
    first = send(stack, "chirpstack-01-join.json")
    second = send(stack, "chirpstack-01-join.json")

    assert first[0] == second[0] == 200
    (delivered,), (repeated,) = first[2]["results"], second[2]["results"]
    assert delivered["status"] == "integrated"
    # The repeat says it is one, with what happened the first time (and the same ids).
    assert repeated == {
        "device": delivered["device"],
        "status": "duplicate",
        "detail": SEEN_BEFORE,
        "profile": delivered["profile"],
        "ids": delivered["ids"],
        "firstStatus": "integrated",
    }
    assert second[2]["status"] == "duplicate"
    assert len(calls(stack)) == 2  # the node and the device, once


def test_status_event_is_ignored_with_the_reason_and_reaches_nothing(stack: LocalStack) -> None:
    status, _, body = send(stack, "chirpstack-03-status-ignored.json")

    assert status == 202
    assert body["status"] == "ignored"
    assert "'status'" in body["reason"]
    assert calls(stack) == []


def test_protobuf_body_is_refused_with_415_saying_to_choose_json(stack: LocalStack) -> None:
    status, _, body = send(stack, "chirpstack-04-protobuf-body.json")

    assert status == 415
    assert body["error"]["code"] == "UnsupportedMediaType"
    assert "JSON marshaler" in body["error"]["message"]
    assert calls(stack) == []


def test_join_without_dev_eui_is_a_400_naming_the_field(stack: LocalStack) -> None:
    payload = json.loads(load_event("chirpstack-01-join.json")["body"])
    del payload["deviceInfo"]["devEui"]

    status, _, body = send(stack, "chirpstack-01-join.json", body=payload)

    assert status == 400
    assert body["error"]["code"] == "InvalidPayload"
    assert "deviceInfo.devEui" in body["error"]["message"]
    assert calls(stack) == []


def test_missing_event_query_parameter_is_a_400(stack: LocalStack) -> None:
    status, _, body = send(stack, "chirpstack-01-join.json", query="")

    assert status == 400
    assert "event" in body["error"]["message"]


def test_wrong_token_gets_401_without_revealing_the_secret_and_reaches_nothing(stack: LocalStack) -> None:
    status, _, body = send(stack, "chirpstack-01-join.json", headers={"x-bridge-token": "guess"})

    assert status == 401
    assert body["error"]["code"] == "Unauthorized"
    assert TOKEN not in json.dumps(body)
    assert calls(stack) == []


def test_missing_token_header_gets_401_even_for_a_protobuf_body(stack: LocalStack) -> None:
    status, _, _ = send(stack, "chirpstack-04-protobuf-body.json", drop=["x-bridge-token"])

    assert status == 401  # authentication comes before the body is looked at
    assert calls(stack) == []
