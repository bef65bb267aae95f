"""Platform adapters on their own: hostile bodies, event times, which location counts.

Requests are built from the replayed events in events/ (the same bodies the local stack sends),
changed where a test needs it; nothing here authenticates or delivers.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from sensor_bridge.model.config import Source, load_config_file
from sensor_bridge.model.device_event import DeviceEvent, Lifecycle, Location
from sensor_bridge.model.replies import RequestError
from sensor_bridge.model.request import WebhookRequest
from sensor_bridge.platforms import platform_for
from sensor_bridge.platforms.base import (
    MAX_JSON_DEPTH,
    ParseResult,
    form_body,
    instant,
    iso_instant,
    json_body,
)
from tests.conftest import event_body, load_event

SHIPPED = Path(__file__).resolve().parents[2] / "config" / "bridge.yaml"
SOURCES = load_config_file(SHIPPED).sources


def epoch(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def request(
    name: str, *, body: Any = None, raw: bytes | None = None, source: str | None = None
) -> WebhookRequest:
    event = load_event(name)
    source = source or event["rawPath"].rsplit("/", 1)[-1]
    if raw is None:
        raw = event["body"].encode() if body is None else json.dumps(body).encode()
    return WebhookRequest(
        method="POST",
        source=source,
        headers={k.lower(): v for k, v in event["headers"].items()},
        query=dict(event.get("queryStringParameters") or {}),
        body=raw,
    )


def parse(name: str, *, body: Any = None, source: Source | None = None) -> ParseResult:
    req = request(name, body=body)
    chosen = source or SOURCES[req.source]
    return platform_for(chosen.platform).parse(req, req.source, chosen)


def only(result: ParseResult) -> DeviceEvent:
    assert len(result.events) == 1, result
    return result.events[0]


def json_request(raw: bytes) -> WebhookRequest:
    return WebhookRequest("POST", "s", {"content-type": "application/json"}, body=raw)


# -- hostile bodies ------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", [b"[" * 100_000, b'{"a":' * 100_000, b"[" * (sys.getrecursionlimit() + 10)])
def test_a_body_nested_past_the_interpreter_stack_is_a_400_not_a_recursion_error(raw: bytes) -> None:
    with pytest.raises(RequestError) as caught:
        json_body(json_request(raw))
    assert (caught.value.status, caught.value.code) == (400, "InvalidPayload")
    # Unclosed, so not JSON either: which of the two the parser notices first depends on the
    # interpreter (3.11 overflows its stack, 3.13 reaches the end of the body).
    assert caught.value.message in {
        "the body is not valid JSON",
        f"the JSON body nests deeper than {MAX_JSON_DEPTH} levels",
    }


def test_well_formed_json_nested_past_the_limit_is_refused_and_at_the_limit_is_read() -> None:
    at_limit = "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH
    assert json_body(json_request(at_limit.encode())) is not None
    deeper = '{"a": ' + at_limit + "}"
    with pytest.raises(RequestError, match="nests deeper"):
        json_body(json_request(deeper.encode()))


@pytest.mark.parametrize("raw", [b'{"latitude": NaN}', b"[Infinity]", b"[-Infinity]", b"[1e999]"])
def test_numbers_json_does_not_have_are_a_400(raw: bytes) -> None:
    with pytest.raises(RequestError) as caught:
        json_body(json_request(raw))
    assert caught.value.status == 400


@pytest.mark.parametrize(
    "name", ["aws-iot-01-destination-confirmation.json", "azure-01-subscription-validation.json"]
)
def test_handshakes_refuse_a_deeply_nested_body_with_a_400(name: str) -> None:
    req = request(name, raw=b"[" * 100_000)
    source = SOURCES[req.source]
    with pytest.raises(RequestError) as caught:
        platform_for(source.platform).handshake(req, req.source, source)
    assert caught.value.status == 400


@pytest.mark.parametrize(
    "raw",
    [b"%", b"%zz=%%&&&=", b"a=" + b"%ff" * 1000, b"&" * 100_000, b"=" * 100_000, b"a=1;b=2", b"x" * 200_000],
)
def test_odd_form_bodies_parse_without_crashing(raw: bytes) -> None:
    req = WebhookRequest("POST", "s", {"content-type": "application/x-www-form-urlencoded"}, body=raw)
    assert isinstance(form_body(req), dict)


def test_a_form_body_that_is_not_utf8_is_a_400() -> None:
    req = WebhookRequest("POST", "s", {"content-type": "application/x-www-form-urlencoded"}, body=b"a=\xff")
    with pytest.raises(RequestError) as caught:
        form_body(req)
    assert caught.value.status == 400


@pytest.mark.parametrize(
    "name",
    [
        "ttn-06-uplink-new-device.json",
        "chirpstack-01-join.json",
        "particle-02-json-template.json",
        "azure-02-device-created.json",
        "aws-iot-02-thing-created.json",
    ],
)
def test_every_json_adapter_answers_a_deeply_nested_body_with_a_400(name: str) -> None:
    req = request(name, raw=b"[" * 100_000)
    source = SOURCES[req.source]
    with pytest.raises(RequestError) as caught:
        platform_for(source.platform).parse(req, req.source, source)
    assert caught.value.status == 400


# -- event times ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-11-28T00:06:00Z", epoch("2025-11-28T00:06:00")),
        ("2025-11-28T00:06:00.000Z", epoch("2025-11-28T00:06:00")),
        ("2025-11-28T00:06:00.1234567Z", epoch("2025-11-28T00:06:00.123456")),  # Event Grid: 7 digits
        ("2025-11-28T00:06:00.123456789Z", epoch("2025-11-28T00:06:00.123456")),  # protobuf: 9 digits
        ("2025-11-28T00:06:00.5z", epoch("2025-11-28T00:06:00.5")),
        ("2025-11-28T01:06:00+01:00", epoch("2025-11-28T00:06:00")),
        ("2025-11-28T01:06:00.25+0100", epoch("2025-11-28T00:06:00.25")),
        ("2025-11-28 00:06:00Z", epoch("2025-11-28T00:06:00")),
    ],
)
def test_iso_instants_platforms_send_are_read(text: str, expected: float) -> None:
    assert iso_instant(text) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "yesterday",
        "2025-11-28T00:06:00",  # no zone: not an instant
        "2025-13-28T00:06:00Z",
        "2025-11-28T24:06:00Z",
        "2025-11-28T00:06:00.Z",
        "0001-01-01T00:00:00-14:00",
        1764288720,
        ["2025-11-28T00:06:00Z"],
        {"t": 1},
    ],
)
def test_anything_else_is_no_iso_instant(value: Any) -> None:
    assert iso_instant(value) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1764288720, 1764288720.0),
        (1764288720.5, 1764288720.5),
        ("1764288720", 1764288720.0),
        (1764288720000, 1764288720.0),  # too large to be seconds: milliseconds
        ("2025-11-28T00:12:00Z", epoch("2025-11-28T00:12:00")),
        (True, None),
        (-5, None),
        ("nan", None),
        ("1e400", None),
        (10**30, None),
        ("soon", None),
    ],
)
def test_instant_reads_iso_or_epoch_numbers(value: Any, expected: float | None) -> None:
    assert instant(value) == expected


def test_azure_event_grid_event_time_is_when_it_occurred() -> None:
    assert only(parse("azure-02-device-created.json")).occurred_at == epoch("2025-11-28T00:06:00")


def test_azure_event_grid_seven_digit_event_time_is_read() -> None:
    body = event_body("azure-02-device-created.json")
    body[0]["eventTime"] = "2025-11-28T00:06:00.1234567Z"
    assert only(parse("azure-02-device-created.json", body=body)).occurred_at == pytest.approx(
        epoch("2025-11-28T00:06:00.123456")
    )


def test_azure_cloudevents_time_is_when_it_occurred() -> None:
    body = event_body("azure-04-cloudevents-device-created.json")
    items = body if isinstance(body, list) else [body]
    for item in items:
        item["time"] = "2025-11-28T00:07:00.5Z"
    assert only(parse("azure-04-cloudevents-device-created.json", body=body)).occurred_at == epoch(
        "2025-11-28T00:07:00.5"
    )


@pytest.mark.parametrize("bad", ["not a time", 12, None, {"at": "noon"}])
def test_azure_event_time_that_cannot_be_read_is_left_out_not_refused(bad: Any) -> None:
    body = event_body("azure-02-device-created.json")
    body[0]["eventTime"] = bad
    event = only(parse("azure-02-device-created.json", body=body))
    assert event.occurred_at is None
    assert event.lifecycle is Lifecycle.APPEARED


def test_aws_iot_timestamp_in_milliseconds_is_when_it_occurred() -> None:
    event = only(parse("aws-iot-03-thing-deleted.json"))
    assert event.lifecycle is Lifecycle.REMOVED
    assert event.occurred_at == 1764288720.0


@pytest.mark.parametrize("bad", ["later", -1, None, [1]])
def test_aws_iot_timestamp_that_cannot_be_read_is_left_out_not_refused(bad: Any) -> None:
    body = {**event_body("aws-iot-03-thing-deleted.json"), "timestamp": bad}
    assert only(parse("aws-iot-03-thing-deleted.json", body=body)).occurred_at is None


def test_things_stack_received_at_is_when_it_occurred() -> None:
    body = event_body("ttn-06-uplink-new-device.json")
    body["received_at"] = "2025-11-28T00:01:00.123456789Z"
    assert only(parse("ttn-06-uplink-new-device.json", body=body)).occurred_at == pytest.approx(
        epoch("2025-11-28T00:01:00.123456")
    )


def test_things_stack_join_accept_received_at_is_read() -> None:
    body = event_body("ttn-01-join-accept.json")
    body["received_at"] = "2025-11-28T00:00:30Z"
    assert only(parse("ttn-01-join-accept.json", body=body)).occurred_at == epoch("2025-11-28T00:00:30")


def test_chirpstack_time_is_when_it_occurred() -> None:
    body = {**event_body("chirpstack-01-join.json"), "time": "2025-11-28T00:02:00.987654321Z"}
    assert only(parse("chirpstack-01-join.json", body=body)).occurred_at == pytest.approx(
        epoch("2025-11-28T00:02:00.987654")
    )


def test_chirpstack_time_that_cannot_be_read_is_left_out() -> None:
    body = {**event_body("chirpstack-01-join.json"), "time": {"seconds": 1}}
    assert only(parse("chirpstack-01-join.json", body=body)).occurred_at is None


def test_particle_published_at_is_when_it_occurred() -> None:
    body = {**event_body("particle-02-json-template.json"), "published_at": "2025-11-28T00:03:00.250Z"}
    assert only(parse("particle-02-json-template.json", body=body)).occurred_at == epoch(
        "2025-11-28T00:03:00.25"
    )


def test_particle_form_body_published_at_is_read() -> None:
    req = request("particle-01-online-form.json")
    assert b"published_at=" in req.body
    source = SOURCES[req.source]
    event = only(platform_for("particle").parse(req, req.source, source))
    assert event.occurred_at is not None


def test_particle_published_at_that_cannot_be_read_is_left_out() -> None:
    body = {**event_body("particle-02-json-template.json"), "published_at": "around noon"}
    assert only(parse("particle-02-json-template.json", body=body)).occurred_at is None


def test_standard_webhooks_timestamp_header_is_not_the_event_time() -> None:
    # A mapping without occurred_at: webhook-timestamp says when the message was sent.
    req = request("generic-01-device-created.json")
    assert req.header("webhook-timestamp")
    source = SOURCES["generic-demo"]
    assert source.mapping is not None
    unmapped = source.model_copy(update={"mapping": source.mapping.model_copy(update={"occurred_at": None})})
    assert only(parse("generic-01-device-created.json", source=unmapped)).occurred_at is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2025-11-28T00:04:00Z", epoch("2025-11-28T00:04:00")),
        (1764288240, epoch("2025-11-28T00:04:00")),
        (1764288240000, epoch("2025-11-28T00:04:00")),
        ("whenever", None),
    ],
)
def test_standard_webhooks_occurred_at_comes_from_the_mapped_path(value: Any, expected: float | None) -> None:
    demo = SOURCES["generic-demo"]
    assert demo.mapping is not None
    source = demo.model_copy(update={"mapping": demo.mapping.model_copy(update={"occurred_at": "data.at"})})
    body = event_body("generic-01-device-created.json")
    body["data"]["at"] = value
    assert only(parse("generic-01-device-created.json", body=body, source=source)).occurred_at == expected


def test_standard_webhooks_mapped_occurred_at_that_is_absent_is_none() -> None:
    demo = SOURCES["generic-demo"]
    assert demo.mapping is not None
    source = demo.model_copy(update={"mapping": demo.mapping.model_copy(update={"occurred_at": "data.at"})})
    assert only(parse("generic-01-device-created.json", source=source)).occurred_at is None


def test_occurred_at_travels_in_the_event_json() -> None:
    event = DeviceEvent("s", "chirpstack", "d", occurred_at=1764288720.25)
    assert event.to_json()["occurred_at"] == 1764288720.25
    assert DeviceEvent.from_json(event.to_json()) == event


def test_an_event_queued_before_occurred_at_existed_still_loads() -> None:
    old = DeviceEvent("s", "chirpstack", "d", name="n").to_json()
    del old["occurred_at"]
    assert DeviceEvent.from_json(old) == DeviceEvent("s", "chirpstack", "d", name="n")


# -- The Things Stack: which location is the device's --------------------------------------------


def uplink_with_locations(locations: dict[str, Any]) -> dict[str, Any]:
    body = event_body("ttn-06-uplink-new-device.json")
    body["uplink_message"]["locations"] = locations
    return body


def test_things_stack_takes_the_location_set_in_the_registry() -> None:
    body = uplink_with_locations(
        {
            "frm-payload": {"latitude": 51.49, "longitude": -0.11, "source": "SOURCE_GPS"},
            "user": {
                "latitude": 51.5007,
                "longitude": -0.1246,
                "altitude": 12.0,
                "source": "SOURCE_REGISTRY",
            },
        }
    )
    assert only(parse("ttn-06-uplink-new-device.json", body=body)).location == Location(
        51.5007, -0.1246, 12.0
    )


@pytest.mark.parametrize(
    "computed",
    [
        {"frm-payload": {"latitude": 51.49, "longitude": -0.11, "source": "SOURCE_GPS"}},
        {"gps": {"latitude": 51.49, "longitude": -0.11}},
        {"lora-rss": {"latitude": 51.4, "longitude": -0.1, "accuracy": 500}},
    ],
)
def test_things_stack_ignores_computed_locations_that_move_with_every_uplink(
    computed: dict[str, Any],
) -> None:
    body = uplink_with_locations(computed)
    assert only(parse("ttn-06-uplink-new-device.json", body=body)).location is None


def test_things_stack_computed_location_that_is_malformed_does_not_refuse_the_uplink() -> None:
    body = uplink_with_locations(
        {"frm-payload": {"lat": "garbage"}, "user": {"latitude": 10, "longitude": 20}}
    )
    assert only(parse("ttn-06-uplink-new-device.json", body=body)).location == Location(10.0, 20.0)


@pytest.mark.parametrize(
    "user", [{"latitude": 91, "longitude": 0}, {"latitude": "north"}, "somewhere", {"longitude": 1}]
)
def test_things_stack_user_location_that_cannot_be_read_is_left_out(user: Any) -> None:
    body = uplink_with_locations({"user": user})
    assert only(parse("ttn-06-uplink-new-device.json", body=body)).location is None
