"""AWS IoT Core registry events and the destination confirmation, through the real handler."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from local.stack import LocalStack
from sensor_bridge.model.profiles import device_ref_id
from sensor_bridge.runtime import http as http_client
from sensor_bridge.store import config_source
from tests.conftest import event_body, load_event

SOURCE = "aws-iot-demo"
TOKEN = "local-aws-iot-token"
ENABLE_URL = "https://iot.eu-west-1.amazonaws.com/confirmdestination/AYADeMXLrPrNY2wqJAKsFNn-demo-token-for-the-local-stack-NBJndA"


def send(
    stack: LocalStack,
    name: str,
    *,
    body: Any = None,
    headers: dict[str, str] | None = None,
    source: str = SOURCE,
) -> tuple[int, dict[str, str], Any]:
    event = load_event(name)
    raw = event["body"].encode() if body is None else json.dumps(body).encode()
    path = f"/webhooks/{source}" + (f"?{event['rawQueryString']}" if event["rawQueryString"] else "")
    return stack.invoke("POST", path, headers={**event["headers"], **(headers or {})}, body=raw)


def calls(stack: LocalStack) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = stack.simulator.state()["calls"]
    return result


@pytest.fixture
def fetched(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[httpx.Request]]:
    """The shared HTTP client, answering every request locally and recording it: nothing here
    may reach the internet."""
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, text="confirmed")

    real_client = httpx.Client
    # Every client http_client() builds talks to the mock: the shared one is built afresh below.
    monkeypatch.setattr(
        "sensor_bridge.runtime.http.httpx.Client",
        lambda **kw: real_client(**kw, transport=httpx.MockTransport(answer)),
    )
    http_client.http_client.cache_clear()
    yield seen
    http_client.http_client.cache_clear()


@pytest.fixture
def confirming_source(stack: LocalStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The shipped configuration plus an aws-iot-core source that confirms destinations itself."""
    shipped = (Path(__file__).resolve().parents[2] / "config" / "bridge.yaml").read_text(encoding="utf-8")
    extra = (
        "  aws-iot-live:\n    platform: aws-iot-core\n"
        "    auth: {type: header, header: X-Bridge-Token, secret: aws-iot-demo}\n"
    )
    path = tmp_path / "bridge.yaml"
    path.write_text(shipped.replace("sources:\n", "sources:\n" + extra, 1), encoding="utf-8")
    monkeypatch.setenv("BRIDGE_CONFIG_FILE", str(path))
    from sensor_bridge.runtime.settings import settings

    settings.cache_clear()
    config_source.current_config.cache_clear()
    return "aws-iot-live"


def test_destination_confirmation_gets_the_enable_url_through_the_shared_client(
    confirming_source: str, fetched: list[httpx.Request], stack: LocalStack
) -> None:
    status, _, body = send(stack, "aws-iot-01-destination-confirmation.json", source=confirming_source)

    assert status == 200
    assert body == {"status": "confirmed"}
    assert [(r.method, str(r.url)) for r in fetched] == [("GET", ENABLE_URL)]
    assert calls(stack) == []


@pytest.mark.parametrize(
    "enable_url",
    [
        "https://evil.example.com/confirmdestination/x",
        "http://iot.eu-west-1.amazonaws.com/confirmdestination/x",
        "https://iot.eu-west-1.amazonaws.com:8443/confirmdestination/x",
        "https://user@iot.eu-west-1.amazonaws.com/confirmdestination/x",
        "https://iot.eu-west-1.amazonaws.com.evil.example/confirmdestination/x",
        "https://169.254.169.254/latest/meta-data/",
        # On AWS's host, but a path or query that is not the confirmation's own:
        "https://iot.eu-west-1.amazonaws.com/confirmdestination/../../things?thingName=x",
        "https://iot.eu-west-1.amazonaws.com/confirmdestination/%2e%2e/%2e%2e/things",
        "https://iot.eu-west-1.amazonaws.com/confirmdestination/token/../../things",
        "https://iot.eu-west-1.amazonaws.com/confirmdestination/token?next=/things",
        "https://iot.eu-west-1.amazonaws.com/confirmdestination/token#fragment",
        "https://iot.eu-west-1.amazonaws.com/confirmdestination/",
        "https://iot.eu-west-1.amazonaws.com//confirmdestination/token",
        "https://IOT.eu-west-1.amazonaws.com/confirmdestination/token",
    ],
)
def test_destination_confirmation_with_a_url_off_aws_hosts_is_a_400_and_nothing_is_fetched(
    confirming_source: str, fetched: list[httpx.Request], stack: LocalStack, enable_url: str
) -> None:
    body = {**event_body("aws-iot-01-destination-confirmation.json"), "enableUrl": enable_url}

    status, _, answer = send(
        stack, "aws-iot-01-destination-confirmation.json", body=body, source=confirming_source
    )

    assert status == 400
    assert "enableUrl" in answer["error"]["message"]
    assert fetched == []


def test_destination_confirmation_refused_by_aws_is_a_502(
    confirming_source: str, monkeypatch: pytest.MonkeyPatch, stack: LocalStack
) -> None:
    real_client = httpx.Client
    monkeypatch.setattr(
        "sensor_bridge.runtime.http.httpx.Client",
        lambda **kw: real_client(**kw, transport=httpx.MockTransport(lambda r: httpx.Response(403))),
    )
    http_client.http_client.cache_clear()

    status, _, body = send(stack, "aws-iot-01-destination-confirmation.json", source=confirming_source)
    http_client.http_client.cache_clear()

    assert status == 502
    assert body["error"]["code"] == "ConfirmationFailed"


def test_demo_source_leaves_the_confirmation_to_an_operator_and_fetches_nothing(
    fetched: list[httpx.Request], stack: LocalStack
) -> None:
    status, _, body = send(stack, "aws-iot-01-destination-confirmation.json")

    assert status == 202
    assert body["status"] == "confirmation-pending"
    assert fetched == []


def test_thing_created_integrates_with_type_profile_and_attribute_location(stack: LocalStack) -> None:
    status, _, body = send(stack, "aws-iot-02-thing-created.json")

    assert status == 200
    ref = device_ref_id(SOURCE, "pier-env-11")
    device = calls(stack)[-1]["body"]["integration"]["devices"][0]
    assert device["refId"] == ref
    assert device["props"] == {
        "INTEGRATION_ID": "IMPORT_DEVICE_SDE",
        "NAME": "pier-env-11",
        "LOCATION": {"type": "Point", "coordinates": [-0.1246, 51.5007]},
        "NOTES": "aws-iot-core device pier-env-11 via source aws-iot-demo; model EnvironmentSensor",
    }
    assert [(s["refId"], s["props"]["INTEGRATION_ID"]) for s in device["sensors"]] == [
        (f"{ref}-temperature", "TEMPERATURE_SDE"),
        (f"{ref}-battery", "BATTERY_CHARGE_SDE"),
        (f"{ref}-signal", "SENSOR_SIGNAL_STRENGTH_SDE"),
    ]
    assert body["results"][0]["status"] == "integrated"


def test_thing_updated_with_a_new_location_sends_an_update(stack: LocalStack) -> None:
    send(stack, "aws-iot-02-thing-created.json")
    updated = {
        **event_body("aws-iot-02-thing-created.json"),
        "eventId": "moved-1",
        "operation": "UPDATED",
        "attributes": {"latitude": "51.6", "longitude": "-0.2"},
    }

    status, _, _ = send(stack, "aws-iot-02-thing-created.json", body=updated)

    assert status == 200
    change = calls(stack)[-1]["body"]["integration"]["devices"][0]
    assert change["changeState"] == "update"
    assert change["props"]["LOCATION"] == {"type": "Point", "coordinates": [-0.2, 51.6]}


def test_thing_updated_without_a_visible_change_makes_no_call(stack: LocalStack) -> None:
    send(stack, "aws-iot-04-second-thing-created.json")
    before = len(calls(stack))

    status, _, body = send(stack, "aws-iot-05-thing-updated-unchanged.json")

    assert status == 200
    assert body["results"][0]["status"] == "unchanged"
    assert len(calls(stack)) == before


def test_thing_deleted_removes_the_device(stack: LocalStack) -> None:
    send(stack, "aws-iot-02-thing-created.json")

    status, _, body = send(stack, "aws-iot-03-thing-deleted.json")

    assert status == 200
    assert body["results"][0]["status"] == "removed"
    removal = calls(stack)[-1]["body"]["integration"]["devices"][0]
    assert (removal["changeState"], removal["refId"]) == ("remove", device_ref_id(SOURCE, "pier-env-11"))


def test_thing_type_events_are_ignored(stack: LocalStack) -> None:
    event = {"eventType": "THING_TYPE_EVENT", "eventId": "t1", "operation": "CREATED", "thingTypeName": "X"}

    status, _, body = send(stack, "aws-iot-02-thing-created.json", body=event)

    assert status == 202
    assert body["status"] == "ignored"
    assert calls(stack) == []


def test_thing_event_with_an_unknown_operation_is_a_400_naming_operation(stack: LocalStack) -> None:
    event = {**event_body("aws-iot-02-thing-created.json"), "operation": "RENAMED"}

    status, _, body = send(stack, "aws-iot-02-thing-created.json", body=event)

    assert status == 400
    assert "operation" in body["error"]["message"]


def test_registry_event_without_the_rule_header_gets_401_and_reaches_nothing(stack: LocalStack) -> None:
    event = load_event("aws-iot-02-thing-created.json")
    headers = {k: v for k, v in event["headers"].items() if k != "x-bridge-token"}

    status, _, body = stack.invoke("POST", event["rawPath"], headers=headers, body=event["body"].encode())

    assert status == 401
    assert TOKEN not in json.dumps(body)
    assert calls(stack) == []


@pytest.mark.parametrize("raw", [b"[" * 100_000, b'{"arn": ' * 30_000, b"[" * 200 + b"]" * 200])
def test_destination_confirmation_with_a_deeply_nested_body_is_a_400_and_nothing_is_fetched(
    confirming_source: str, fetched: list[httpx.Request], stack: LocalStack, raw: bytes
) -> None:
    # Answered before authentication: a stranger's body must not crash the handler.
    event = load_event("aws-iot-01-destination-confirmation.json")

    status, _, body = stack.invoke(
        "POST", f"/webhooks/{confirming_source}", headers=event["headers"], body=raw
    )

    assert status == 400
    assert body["error"]["code"] == "InvalidPayload"
    assert fetched == []
    assert calls(stack) == []
