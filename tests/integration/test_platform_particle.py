"""Particle webhooks (form-encoded default body and JSON templates) through the real handler."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl, urlencode

from local.stack import LocalStack
from sensor_bridge.model.profiles import device_ref_id
from tests.conftest import load_event

SOURCE = "particle-demo"
PASSWORD = "local-particle-password"


def send(stack: LocalStack, name: str, *, headers: dict[str, str] | None = None, body: bytes | None = None):  # type: ignore[no-untyped-def]
    event = load_event(name)
    return stack.invoke(
        "POST",
        event["rawPath"],
        headers={**event["headers"], **(headers or {})},
        body=event["body"].encode() if body is None else body,
    )


def calls(stack: LocalStack) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = stack.simulator.state()["calls"]
    return result


def form(name: str, **fields: str) -> bytes:
    values = dict(parse_qsl(load_event(name)["body"]))
    values.update(fields)
    return urlencode(values).encode()


def test_online_status_in_the_default_form_body_integrates_the_device(stack: LocalStack) -> None:
    status, _, body = send(stack, "particle-01-online-form.json")

    assert status == 200
    assert body["results"][0] == {
        **body["results"][0],
        "device": "e00fce68f3a1b2c3d4e5f601",
        "status": "integrated",
    }
    ref = device_ref_id(SOURCE, "e00fce68f3a1b2c3d4e5f601")
    assert calls(stack)[-1]["body"]["integration"]["devices"] == [
        {
            "changeState": "new",
            "refId": ref,
            "props": {
                "INTEGRATION_ID": "IMPORT_DEVICE_SDE",
                "NAME": "e00fce68f3a1b2c3d4e5f601",
                "NOTES": "particle device e00fce68f3a1b2c3d4e5f601 via source particle-demo",
            },
            "sensors": [
                {
                    "changeState": "new",
                    "refId": f"{ref}-generic",
                    "props": {
                        "INTEGRATION_ID": "GENERIC_SENSOR_SDE",
                        "NAME": "Generic sensor",
                        "UNKNOWN_METRICS": {"0": "value"},
                        "UNKNOWN_UNITS": {"0": "unitless"},
                    },
                }
            ],
        }
    ]


def test_json_template_with_product_id_selects_the_product_profile(stack: LocalStack) -> None:
    status, _, _ = send(stack, "particle-02-json-template.json")

    assert status == 200
    device = calls(stack)[-1]["body"]["integration"]["devices"][0]
    assert device["refId"] == device_ref_id(SOURCE, "e00fce68aabbccddeeff0002")
    assert device["props"]["NOTES"].endswith("model product-21783")
    assert [s["props"]["NAME"] for s in device["sensors"]] == [
        "Temperature",
        "Battery Charge Level",
        "Sensor Signal Strength",
    ]


def test_particle_resending_an_event_with_its_event_id_makes_no_second_call(stack: LocalStack) -> None:
    send(stack, "particle-02-json-template.json")
    status, _, body = send(stack, "particle-02-json-template.json")

    assert status == 200
    assert body["results"][0]["status"] == "duplicate"  # not the first answer, as if new
    assert body["results"][0]["firstStatus"] == "integrated"
    assert len(calls(stack)) == 2


def test_offline_status_is_ignored_and_reaches_nothing(stack: LocalStack) -> None:
    status, _, body = send(stack, "particle-03-offline-ignored.json")

    assert status == 202
    assert body == {
        "status": "ignored",
        "reason": "Particle spark/status 'offline' does not announce a device",
    }
    assert calls(stack) == []


def test_coreid_that_is_not_24_hex_digits_is_a_400_naming_coreid(stack: LocalStack) -> None:
    status, _, body = send(
        stack, "particle-01-online-form.json", body=form("particle-01-online-form.json", coreid="xyz")
    )

    assert status == 400
    assert "coreid" in body["error"]["message"]
    assert calls(stack) == []


def test_a_body_that_is_neither_form_nor_json_is_a_415(stack: LocalStack) -> None:
    status, _, body = send(stack, "particle-01-online-form.json", headers={"content-type": "text/plain"})

    assert status == 415
    assert body["error"]["code"] == "UnsupportedMediaType"


def test_wrong_basic_password_gets_401_with_a_challenge_and_reaches_nothing(stack: LocalStack) -> None:
    status, headers, body = send(
        stack, "particle-01-online-form.json", headers={"authorization": "Basic cGFydGljbGU6d3Jvbmc="}
    )

    assert status == 401
    assert headers["WWW-Authenticate"].startswith("Basic")
    assert PASSWORD not in json.dumps(body)
    assert calls(stack) == []


def test_missing_authorization_gets_401(stack: LocalStack) -> None:
    event = load_event("particle-01-online-form.json")
    headers = {k: v for k, v in event["headers"].items() if k != "authorization"}

    status, _, _ = stack.invoke("POST", event["rawPath"], headers=headers, body=event["body"].encode())

    assert status == 401
    assert calls(stack) == []
