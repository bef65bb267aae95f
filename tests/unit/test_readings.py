"""Readings in the profiles: the mapping the configuration accepts and refuses, and what each
platform's reading message becomes (its values by dotted path, its measurement time, its id)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from sensor_bridge.model.config import ConfigError, Source, parse_config
from sensor_bridge.model.readings import Reading, flatten, iso_timestamp, keep_mapped, sensor_values
from tests.unit.test_platform_parsing import SOURCES, only, parse

SOURCE = "sources:\n  a:\n    platform: chirpstack\n    auth: {type: none}\n    allow_unauthenticated: true\n"


def profile(sensor: str) -> str:
    return f"default_profile:\n  name: generic\n  sensors:\n    - {sensor}\n"


def config_error(text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, origin="bridge.yaml")
    return str(caught.value)


def epoch(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def test_a_reading_for_a_metric_the_sensor_does_not_declare_is_refused_at_load() -> None:
    sensor = "{key: t, integration_id: TEMPERATURE_SDE, name: T, metrics: [T], readings: {H: humidity}}"
    message = config_error(SOURCE + profile(sensor))
    assert "default_profile.sensors.0" in message
    assert "reading for metric 'H', which the sensor does not declare" in message
    assert "map one of: T" in message


def test_a_reading_unit_the_sensor_does_not_declare_is_refused() -> None:
    sensor = (
        "{key: t, integration_id: TEMPERATURE_SDE, name: T, metrics: [T], units: [C], "
        "readings: {T: {path: temp, unit: F}}}"
    )
    assert "unit 'F' of metric 'T' is not declared" in config_error(SOURCE + profile(sensor))


def test_per_platform_paths_name_known_platforms_and_a_reading_needs_a_path() -> None:
    bad_platform = "{key: t, integration_id: X, name: T, metrics: [T], readings: {T: {paths: {lora: t}}}}"
    assert "`paths` for unknown platforms ['lora']" in config_error(SOURCE + profile(bad_platform))
    no_path = "{key: t, integration_id: X, name: T, metrics: [T], readings: {T: {scale: 2}}}"
    assert "a reading needs a `path`" in config_error(SOURCE + profile(no_path))


def test_shorthand_and_full_mappings_read_alike_and_serve_every_platform() -> None:
    sensor = (
        "{key: t, integration_id: X, name: T, unknown_metrics: [T, V], "
        "readings: {T: temperature, V: {path: battery.mv, paths: {particle: v}, scale: 0.001}}}"
    )
    config = parse_config(SOURCE + profile(sensor))
    spec = config.default_profile.sensors[0]
    assert spec.readings["T"].path_for("chirpstack") == "temperature"
    assert spec.readings["V"].path_for("the-things-stack") == "battery.mv"
    assert spec.readings["V"].path_for("particle") == "v"


def test_values_are_scaled_and_fields_no_mapping_names_are_counted_not_sent() -> None:
    sensor = (
        "{key: t, integration_id: X, name: T, unknown_metrics: [T, V], "
        "readings: {T: {path: temp, scale: 0.1, offset: -40}, V: battery.mv}}"
    )
    config = parse_config(SOURCE + profile(sensor))
    reading = flatten({"temp": 650, "battery": {"mv": 3600}, "rssi": -80, "label": "x"}, 10.0)
    assert reading is not None
    assert reading.unmapped == 1  # "label" is no number: no mapping can use it
    found, unmapped = sensor_values(config.default_profile, "chirpstack", reading)
    assert [(s.sensor.key, s.values) for s in found] == [("t", {"T": pytest.approx(25.0), "V": 3600.0})]
    assert unmapped == 1  # rssi


def test_strings_booleans_and_non_finite_numbers_are_never_taken_for_numbers() -> None:
    reading = flatten({"a": "21.5", "b": True, "c": None, "d": [1, 2]}, None)
    assert reading == Reading({"d.0": 1.0, "d.1": 2.0}, None, 3)


def test_only_fields_some_profile_maps_are_kept_for_the_queue() -> None:
    reading = Reading({"temperature": 1.0, "rssi": 2.0}, 5.0, 1, "id")
    kept = keep_mapped(reading, frozenset({"temperature"}))
    assert kept == Reading({"temperature": 1.0}, 5.0, 2, "id")
    assert Reading.from_json(json.loads(json.dumps(kept.to_json()))) == kept


def test_the_upload_timestamp_is_utc_with_milliseconds() -> None:
    assert iso_timestamp(epoch("2025-11-28T00:01:00.123456")) == "2025-11-28T00:01:00.123Z"


def test_things_stack_uplink_reading_is_the_decoded_payload_at_received_at() -> None:
    event = only(parse("ttn-08-uplink-known-device.json"))
    assert event.reading is not None
    assert event.reading.fields == {"temperature": 23.4, "humidity": 48.0}
    assert event.reading.measured_at == epoch("2025-11-28T00:02:00")
    assert event.reading.message_id == "tts:bridge-monitoring/env-node-04:as:up:01J0A408"
    assert event.event_id is None  # the registry tells a known device; the reading has its own id


def test_chirpstack_up_reading_is_the_object_at_time() -> None:
    event = only(parse("chirpstack-02-up-abp-device.json"))
    assert event.reading == Reading(
        {"lux": 312.5}, epoch("2025-11-28T00:01:00"), 0, "chirpstack:up:9b1c7e52-0f4e-4c36-9a55-0b6c2a9d4e02"
    )


def test_particle_data_is_read_as_json_and_a_bare_number_is_the_events_value() -> None:
    event = only(parse("particle-02-json-template.json"))
    assert event.reading == Reading({"t": 21.4}, epoch("2025-11-28T00:04:00"), 0, event.event_id)
    body = {"event": "temperature", "data": "19.5", "coreid": "e00fce68aabbccddeeff0002"}
    body["published_at"] = "2025-11-28T00:05:00Z"
    bare = only(parse("particle-02-json-template.json", body=body))
    assert bare.reading is not None
    assert bare.reading.fields == {"temperature": 19.5}
    assert bare.reading.message_id == "particle:e00fce68aabbccddeeff0002:temperature:2025-11-28T00:05:00Z"


def test_particle_cloud_events_and_text_data_carry_no_reading() -> None:
    online = only(parse("particle-01-online-form.json"))
    assert online.reading is None
    body = {"event": "note", "data": "hello", "coreid": "e00fce68aabbccddeeff0002"}
    assert only(parse("particle-02-json-template.json", body=body)).reading is None


def telemetry(body: Any, system: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "id": "tel-1",
            "topic": "/SUBSCRIPTIONS/x/RESOURCEGROUPS/rg/PROVIDERS/MICROSOFT.DEVICES/IOTHUBS/Bridge-Hub",
            "subject": "devices/lux-sensor-07",
            "eventType": "Microsoft.Devices.DeviceTelemetry",
            "eventTime": "2025-11-28T00:10:02Z",
            "data": {"body": body, "properties": {}, "systemProperties": system},
        }
    ]


def test_azure_telemetry_reading_is_the_body_at_the_devices_creation_time() -> None:
    system = {
        "iothub-connection-device-id": "lux-sensor-07",
        "iothub-creation-time-utc": "2025-11-28T00:10:00Z",
        "iothub-enqueuedtime": "2025-11-28T00:10:01Z",
    }
    event = only(parse("azure-02-device-created.json", body=telemetry({"lux": 400}, system)))
    assert event.device_id == "bridge-hub/lux-sensor-07"  # the hub named as DeviceCreated names it
    assert event.reading == Reading({"lux": 400.0}, epoch("2025-11-28T00:10:00"), 0, "eventgrid:tel-1")
    assert event.partial
    assert not event.announced


def test_azure_telemetry_body_in_base64_is_read_and_enqueued_time_stands_in() -> None:
    body = base64.b64encode(b'{"lux": 12}').decode()
    system = {"iothub-connection-device-id": "lux-sensor-07", "iothub-enqueuedtime": "2025-11-28T00:10:01Z"}
    event = only(parse("azure-02-device-created.json", body=telemetry(body, system)))
    assert event.reading == Reading({"lux": 12.0}, epoch("2025-11-28T00:10:01"), 0, "eventgrid:tel-1")


def test_aws_iot_telemetry_rule_fields_are_not_part_of_the_reading() -> None:
    body = {
        "eventType": "TELEMETRY",
        "thingName": "pier-env-11",
        "eventId": "trace-1",
        "timestamp": 1764288900000,
        "temperature": 12.5,
    }
    event = only(parse("aws-iot-02-thing-created.json", body=body))
    assert event.device_id == "pier-env-11"
    assert event.reading == Reading({"temperature": 12.5}, 1764288900.0, 0, "aws-iot:trace-1")


def test_standard_webhooks_reading_event_via_the_mapping() -> None:
    source = SOURCES["generic-demo"]
    assert source.mapping is not None
    mapping = source.mapping.model_copy(
        update={"reading": "data.values", "reading_types": ["device.reading"], "occurred_at": "timestamp"}
    )
    body = {"type": "device.reading", "timestamp": "2025-11-28T00:11:00Z"}
    body["data"] = {"device": {"id": "acme-th-0042"}, "values": {"temperature": 4.5}}
    event = only(
        parse(
            "generic-01-device-created.json", body=body, source=source.model_copy(update={"mapping": mapping})
        )
    )
    assert event.reading is not None
    assert event.reading.fields == {"temperature": 4.5}
    assert event.reading.measured_at == epoch("2025-11-28T00:11:00")
    assert event.partial
    assert not event.announced


@pytest.mark.parametrize(
    "name",
    ["ttn-08-uplink-known-device.json", "chirpstack-02-up-abp-device.json", "particle-02-json-template.json"],
)
def test_readings_false_switches_a_sources_readings_off(name: str) -> None:
    event = only(parse(name))
    source: Source = SOURCES[event.source].model_copy(update={"readings": False})
    assert only(parse(name, source=source)).reading is None
