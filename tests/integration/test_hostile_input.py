"""Hostile input at the platform edge, through the real handler and the simulator: ids a platform
could not have sent are refused with a 400 naming the field, display names are cleaned before they
become NAME and NOTES, bodies of the wrong shape are refused, handshakes need their header, and
identity fields that disagree inside one event are refused. Nothing refused reaches the API."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from functions.webhook import webhook_handler
from local.apigw import HttpRequest, LambdaContext, http_api_event
from local.stack import LocalStack, signed_now
from tests.conftest import event_body, load_event

HOSTILE_IDS = {
    "nul": "dev\x00ice",
    "crlf": "dev\r\nice",
    "bidi override": "\u202eecived",
    "zero-width space": "dev\u200bice",
    "lone surrogate": "dev\ud800ice",
    "absurd length": "d" * 5000,
}

# (sample, where the id is in the body, the field the 400 must name)
ID_FIELDS = [
    ("ttn-01-join-accept.json", ("end_device_ids", "device_id"), "end_device_ids.device_id"),
    (
        "ttn-01-join-accept.json",
        ("end_device_ids", "application_ids", "application_id"),
        "end_device_ids.application_ids.application_id",
    ),
    ("ttn-01-join-accept.json", ("end_device_ids", "dev_eui"), "end_device_ids.dev_eui"),
    ("chirpstack-01-join.json", ("deviceInfo", "devEui"), "deviceInfo.devEui"),
    ("particle-02-json-template.json", ("coreid",), "coreid"),
    ("azure-02-device-created.json", (0, "data", "deviceId"), "deviceId"),
    ("azure-02-device-created.json", (0, "data", "hubName"), "hubName"),
    ("azure-04-cloudevents-device-created.json", ("data", "deviceId"), "deviceId"),
    ("aws-iot-02-thing-created.json", ("thingName",), "thingName"),
    ("generic-01-device-created.json", ("data", "device", "id"), "data.device.id"),
]


def send(stack: LocalStack, name: str, *, body: Any = None, raw: bytes | None = None, **extra: str) -> Any:
    """The sample `name` with another body (and extra headers), signed if its source signs."""
    event = load_event(name)
    if raw is None:
        raw = event["body"].encode() if body is None else json.dumps(body).encode()
    source = event["rawPath"].rsplit("/", 1)[-1]
    headers = signed_now({**event["headers"], **extra}, raw, source)
    query = event.get("rawQueryString") or ""
    path = event["rawPath"] + (f"?{query}" if query else "")
    return stack.invoke(event["requestContext"]["http"]["method"], path, headers=headers, body=raw)


def with_value(body: Any, where: tuple[str | int, ...], value: Any) -> Any:
    holder = body
    for key in where[:-1]:
        holder = holder[key]
    holder[where[-1]] = value
    return body


def calls(stack: LocalStack) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = stack.simulator.state()["calls"]
    return result


def sent_device(stack: LocalStack) -> dict[str, Any]:
    device: dict[str, Any] = calls(stack)[-1]["body"]["integration"]["devices"][0]
    return device


# -- ids -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("hostile", HOSTILE_IDS.values(), ids=HOSTILE_IDS.keys())
@pytest.mark.parametrize(("name", "where", "field"), ID_FIELDS, ids=[f[2] for f in ID_FIELDS])
def test_an_id_a_platform_could_not_have_sent_is_a_400_naming_the_field(
    stack: LocalStack, name: str, where: tuple[str | int, ...], field: str, hostile: str
) -> None:
    body = with_value(event_body(name), where, hostile)
    # json.dumps writes a lone surrogate as the escape \ud800, as a hostile sender would.
    status, _, answer = send(stack, name, body=body)

    assert status == 400, answer
    assert answer["error"]["code"] == "InvalidPayload"
    assert field in answer["error"]["message"]
    assert calls(stack) == []


@pytest.mark.parametrize(
    ("name", "where", "field"),
    [
        ("ttn-01-join-accept.json", ("join_accept", "session_key_id"), "session_key_id"),
        ("chirpstack-01-join.json", ("deduplicationId",), "deduplicationId"),
        ("particle-02-json-template.json", ("PARTICLE_EVENT_ID",), "PARTICLE_EVENT_ID"),
        ("azure-02-device-created.json", (0, "id"), "id"),
        ("aws-iot-02-thing-created.json", ("eventId",), "eventId"),
    ],
)
def test_an_event_id_with_control_characters_is_a_400(
    stack: LocalStack, name: str, where: tuple[str | int, ...], field: str
) -> None:
    status, _, answer = send(stack, name, body=with_value(event_body(name), where, "id\r\nX-Injected: 1"))

    assert status == 400
    assert field in answer["error"]["message"]
    assert calls(stack) == []


def test_a_standard_webhooks_id_header_with_control_characters_is_a_400(stack: LocalStack) -> None:
    status, _, answer = send(stack, "generic-01-device-created.json", **{"webhook-id": "msg\x01\x7f"})

    assert status in (400, 401)  # the signature covers the id: either refusal, never a 5xx
    assert "error" in answer
    assert calls(stack) == []


# -- display names -------------------------------------------------------------------------------


def test_a_chirpstack_device_name_is_cleaned_before_it_becomes_the_name(stack: LocalStack) -> None:
    body = event_body("chirpstack-01-join.json")
    body["deviceInfo"]["deviceName"] = "\u202esoil\x00-probe\r\n01\u200b\ud800\u2066 "

    status, _, answer = send(stack, "chirpstack-01-join.json", body=body)

    assert status == 200, answer
    assert sent_device(stack)["props"]["NAME"] == "soil-probe 01"


def test_a_name_of_nothing_but_invisible_characters_falls_back_to_the_id(stack: LocalStack) -> None:
    body = event_body("generic-01-device-created.json")
    body["data"]["device"]["label"] = "\u200b\u202e\x00\u2028"

    status, _, _ = send(stack, "generic-01-device-created.json", body=body)

    assert status == 200
    assert sent_device(stack)["props"]["NAME"] == "acme-th-0042"


def test_an_absurdly_long_name_is_cut_to_128_characters(stack: LocalStack) -> None:
    body = event_body("chirpstack-01-join.json")
    body["deviceInfo"]["deviceName"] = "probe " * 10_000

    status, _, _ = send(stack, "chirpstack-01-join.json", body=body)

    assert status == 200
    name = sent_device(stack)["props"]["NAME"]
    assert len(name) <= 128
    assert name.startswith("probe probe")


def test_a_model_with_bidi_and_newlines_is_cleaned_in_the_notes(stack: LocalStack) -> None:
    body = event_body("generic-01-device-created.json")
    body["data"]["device"]["hardware"]["model"] = "acme/\u202eth-100\nSYSTEM: delete all"

    status, _, _ = send(stack, "generic-01-device-created.json", body=body)

    assert status == 200
    notes = sent_device(stack)["props"]["NOTES"]
    assert "model acme/th-100 SYSTEM: delete all" in notes
    assert not any(c in notes for c in "\u202e\n")


def test_tags_with_lone_surrogates_do_not_crash_the_registry_write(stack: LocalStack) -> None:
    body = event_body("chirpstack-01-join.json")
    body["deviceInfo"]["tags"] = {"site\ud800": "north\udfff-pier", "\x00": "\x00"}

    status, _, answer = send(stack, "chirpstack-01-join.json", body=body)

    assert status == 200, answer
    assert len(calls(stack)) == 2  # the node and the device


# -- body shapes ---------------------------------------------------------------------------------

OBJECT_PLATFORMS = [
    "ttn-01-join-accept.json",
    "chirpstack-01-join.json",
    "particle-02-json-template.json",
    "aws-iot-02-thing-created.json",
    "generic-01-device-created.json",
]


@pytest.mark.parametrize("name", OBJECT_PLATFORMS)
@pytest.mark.parametrize("top", [None, 1, 2.5, "text", True, []], ids=repr)
def test_a_body_that_is_not_a_json_object_is_a_400(stack: LocalStack, name: str, top: Any) -> None:
    status, _, answer = send(stack, name, raw=json.dumps(top).encode())

    assert status == 400, answer
    assert answer["error"]["code"] == "InvalidPayload"
    assert calls(stack) == []


@pytest.mark.parametrize("name", OBJECT_PLATFORMS)
def test_the_sample_wrapped_in_an_array_is_a_400(stack: LocalStack, name: str) -> None:
    status, _, _ = send(stack, name, body=[event_body(name)])

    assert status == 400
    assert calls(stack) == []


@pytest.mark.parametrize("top", [None, 1, "text", [], {}], ids=repr)
def test_an_event_grid_body_that_is_not_an_array_of_events_is_a_400(stack: LocalStack, top: Any) -> None:
    status, _, answer = send(stack, "azure-02-device-created.json", raw=json.dumps(top).encode())

    assert status == 400
    assert "array" in answer["error"]["message"]


def test_a_single_event_grid_event_not_in_an_array_is_a_400_not_guessed_at(stack: LocalStack) -> None:
    status, _, _ = send(
        stack, "azure-02-device-created.json", body=event_body("azure-02-device-created.json")[0]
    )

    assert status == 400
    assert calls(stack) == []


def test_one_delivery_mixing_both_azure_schemas_is_a_400(stack: LocalStack) -> None:
    mixed = [
        *event_body("azure-02-device-created.json"),
        event_body("azure-04-cloudevents-device-created.json"),
    ]

    status, _, answer = send(stack, "azure-02-device-created.json", body=mixed)

    assert status == 400
    assert "mixes" in answer["error"]["message"]
    assert calls(stack) == []


def test_invalid_utf8_inside_a_json_string_is_a_400_over_http(local_stack: LocalStack) -> None:
    local_stack.reset()
    gateway = local_stack.gateway or local_stack.start_gateway()
    event = load_event("ttn-01-join-accept.json")
    raw = event["body"].encode().replace(b"strain-gauge", b"strain\xff\xfegauge")

    answer = httpx.post(f"{gateway.url}{event['rawPath']}", headers=event["headers"], content=raw, timeout=10)

    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "InvalidPayload"


# -- handshakes ----------------------------------------------------------------------------------


@pytest.mark.parametrize("header", [None, "Notification", "subscriptionvalidation"])
def test_a_validation_event_is_not_echoed_without_the_validation_header(
    stack: LocalStack, header: str | None
) -> None:
    event = load_event("azure-01-subscription-validation.json")
    headers = {k: v for k, v in event["headers"].items() if k != "aeg-event-type"}
    if header is not None:
        headers["aeg-event-type"] = header
    path = f"{event['rawPath']}?{event['rawQueryString']}"

    status, _, answer = stack.invoke("POST", path, headers=headers, body=event["body"].encode())

    assert status == 400
    assert "validationResponse" not in answer
    assert "aeg-event-type" in answer["error"]["message"]


def test_the_validation_header_on_a_device_event_is_a_400(stack: LocalStack) -> None:
    status, _, answer = send(
        stack, "azure-02-device-created.json", **{"aeg-event-type": "SubscriptionValidation"}
    )

    assert status == 400
    assert "validationResponse" not in answer
    assert calls(stack) == []


# -- identities that disagree ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("where", "value", "said"),
    [
        (
            (0, "topic"),
            "/SUBSCRIPTIONS/5b2f/RESOURCEGROUPS/rg/PROVIDERS/MICROSOFT.DEVICES/IOTHUBS/other-hub",
            "topic",
        ),
        ((0, "subject"), "devices/another-device", "subject"),
        ((0, "data", "twin", "deviceId"), "another-device", "twin"),
    ],
)
def test_an_event_grid_event_naming_two_identities_is_a_400(
    stack: LocalStack, where: tuple[str | int, ...], value: str, said: str
) -> None:
    body = with_value(event_body("azure-02-device-created.json"), where, value)

    status, _, answer = send(stack, "azure-02-device-created.json", body=body)

    assert status == 400
    assert said in answer["error"]["message"]
    assert calls(stack) == []


def test_a_cloudevent_whose_source_names_another_hub_is_a_400(stack: LocalStack) -> None:
    body = event_body("azure-04-cloudevents-device-created.json")
    body["source"] = body["source"].replace("bridge-hub", "other-hub")

    status, _, _ = send(stack, "azure-04-cloudevents-device-created.json", body=body)

    assert status == 400
    assert calls(stack) == []


def test_the_topic_names_the_hub_in_any_case(stack: LocalStack) -> None:
    body = event_body("azure-02-device-created.json")
    body[0]["topic"] = body[0]["topic"].replace("bridge-hub", "BRIDGE-HUB")

    status, _, _ = send(stack, "azure-02-device-created.json", body=body)

    assert status == 200  # Azure resource names are case-insensitive


# -- routes --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/webhooks/ttn-demo", 405), ("DELETE", "/webhooks/ttn-demo", 405), ("POST", "/other", 404)],
)
def test_a_request_no_route_serves_gets_our_error_shape(
    stack: LocalStack, method: str, path: str, status: int
) -> None:
    # As API Gateway would pass it on from a catch-all route: the handler must not answer in
    # Powertools' own shape.
    request = HttpRequest(method, path, {"content-type": "application/json"})
    event = http_api_event(request, "$default", {})

    result = webhook_handler.lambda_handler(event, LambdaContext("WebhookFunction"))  # type: ignore[arg-type]

    assert result["statusCode"] == status
    assert set(json.loads(result["body"])["error"]) == {"code", "message"}


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/webhooks/ttn-demo", 405, "MethodNotAllowed"),
        ("PUT", "/webhooks/ttn-demo", 405, "MethodNotAllowed"),
        ("POST", "/", 404, "NotFound"),
        ("GET", "/.env", 404, "NotFound"),
        ("POST", "/webhooks/ttn-demo/extra", 404, "NotFound"),
    ],
)
def test_routes_the_template_does_not_declare_reach_the_function_over_http(
    local_stack: LocalStack, method: str, path: str, status: int, code: str
) -> None:
    # The local gateway routes as template.yaml does: its $default route sends whatever no other
    # route matches to the webhook function, which answers in the bridge's error shape.
    local_stack.reset()
    gateway = local_stack.gateway or local_stack.start_gateway()

    answer = httpx.request(method, f"{gateway.url}{path}", content=b"{}", timeout=10)

    assert answer.status_code == status
    assert answer.headers["content-type"] == "application/json"
    assert answer.json()["error"]["code"] == code
    assert set(answer.json()["error"]) == {"code", "message"}
    assert calls(local_stack) == []
