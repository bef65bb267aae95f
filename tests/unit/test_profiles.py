"""Profile matching against the shipped configuration: by model, profile name, tags, attributes."""

from __future__ import annotations

from pathlib import Path

import pytest

from sensor_bridge.model.config import load_config_file
from sensor_bridge.model.device_event import DeviceEvent, Location
from sensor_bridge.model.profiles import describe_device, device_ref_id, select_profile

CONFIG = load_config_file(Path(__file__).resolve().parents[2] / "config" / "bridge.yaml")


def event(platform: str = "aws-iot-core", **fields: object) -> DeviceEvent:
    return DeviceEvent(source="s", platform=platform, device_id="d-1", **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("device", "profile"),
    [
        (event(model="EnvironmentSensor"), "environment-sensor"),
        (event("the-things-stack", model="elsys/ers"), "environment-sensor"),
        (event("chirpstack", profile_name="Soil moisture v2"), "soil-moisture"),
        (event("particle", profile_name="Soil moisture v2"), "generic"),  # that profile is ChirpStack's only
        (event("azure-iot-hub", tags={"sensor": "light", "floor": "2"}), "light-sensor"),
        (event(attributes={"kind": "electricity-meter"}), "electricity-meter"),
        (event(attributes={"kind": "gas-meter"}), "generic"),
        (event(model="unknown/model"), "generic"),
        (event(), "generic"),
    ],
)
def test_device_gets_the_first_profile_whose_every_condition_holds(device: DeviceEvent, profile: str) -> None:
    assert select_profile(CONFIG, device).name == profile


def test_ref_ids_are_deterministic_from_source_and_identity_only() -> None:
    assert device_ref_id("s", "d-1") == device_ref_id("s", "d-1")
    assert device_ref_id("s", "d-1") != device_ref_id("t", "d-1")
    assert describe_device(CONFIG, event(name="x")).ref_id == describe_device(CONFIG, event(name="y")).ref_id


def test_device_props_take_name_location_and_profile_notes() -> None:
    spec = describe_device(
        CONFIG,
        event("chirpstack", name="probe", profile_name="Soil moisture v2", location=Location(1.0, 2.0)),
    )
    assert spec.props == {
        "INTEGRATION_ID": "IMPORT_DEVICE_SDE",
        "NAME": "probe",
        "LOCATION": {"type": "Point", "coordinates": [2.0, 1.0]},
        "NOTES": 'Soil moisture probe (ChirpStack device profile "Soil moisture v2")',
    }


def test_device_without_a_name_is_named_by_its_identity() -> None:
    assert describe_device(CONFIG, event()).props["NAME"] == "d-1"
