"""Device profiles: which sensors a device carries, and the props it is integrated with."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sensor_bridge.model.config import BridgeConfig, Profile, SensorSpec
from sensor_bridge.model.contract import INTEGRATION_ID, LOCATION, NAME, NOTES
from sensor_bridge.model.device_event import DeviceEvent


def select_profile(config: BridgeConfig, event: DeviceEvent) -> Profile:
    """The first profile whose every stated condition holds; the default profile otherwise."""
    for profile in config.profiles:
        if _matches(profile, event):
            return profile
    return config.default_profile


def _matches(profile: Profile, event: DeviceEvent) -> bool:
    m = profile.match
    checks = [
        not m.platforms or event.platform in m.platforms,
        not m.models or (event.model is not None and event.model in m.models),
        not m.profile_names or (event.profile_name is not None and event.profile_name in m.profile_names),
        all(event.tags.get(k) == v for k, v in m.tags.items()),
        all(event.attributes.get(k) == v for k, v in m.attributes.items()),
    ]
    stated = any([m.platforms, m.models, m.profile_names, m.tags, m.attributes])
    return stated and all(checks)


def device_ref_id(source: str, device_id: str) -> str:
    """Deterministic from source and device identity, so later updates and removes address it."""
    digest = hashlib.sha256(f"{source}\x00{device_id}".encode()).hexdigest()[:20]
    return f"sb-{digest}"


def sensor_ref_id(device_ref: str, sensor: SensorSpec) -> str:
    return f"{device_ref}-{sensor.key}"


@dataclass(frozen=True)
class DeviceSpec:
    """What the device should look like in Sensor Data: the input to new/update decisions."""

    ref_id: str
    props: dict[str, Any]
    sensors: dict[str, dict[str, Any]]  # sensor refId -> props
    profile: str

    @property
    def fingerprint(self) -> str:
        canonical = json.dumps({"props": self.props, "sensors": self.sensors}, sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def _indexed(values: list[str]) -> dict[str, str]:
    # The API wants lists as objects keyed "0", "1", ...
    return {str(i): v for i, v in enumerate(values)}


def sensor_props(spec: SensorSpec) -> dict[str, Any]:
    props: dict[str, Any] = {INTEGRATION_ID: spec.integration_id, NAME: spec.name}
    for key, values in (
        ("KNOWN_METRICS", spec.metrics),
        ("KNOWN_UNITS", spec.units),
        ("UNKNOWN_METRICS", spec.unknown_metrics),
        ("UNKNOWN_UNITS", spec.unknown_units),
    ):
        if values:
            props[key] = _indexed(values)
    props.update(spec.props)
    return props


def possible_sensors(config: BridgeConfig, device_ref: str) -> dict[str, dict[str, Any]]:
    """Every sensor any profile could give this device, by refId (the first profile's props where
    two share a key): what a call whose answer was lost may have created under another profile."""
    possible: dict[str, dict[str, Any]] = {}
    for profile in [*config.profiles, config.default_profile]:
        for sensor in profile.sensors:
            possible.setdefault(sensor_ref_id(device_ref, sensor), sensor_props(sensor))
    return possible


def describe_device(config: BridgeConfig, event: DeviceEvent) -> DeviceSpec:
    profile = select_profile(config, event)
    ref = device_ref_id(event.source, event.device_id)
    props: dict[str, Any] = {INTEGRATION_ID: profile.integration_id, NAME: event.name or event.device_id}
    if event.location is not None:
        props[LOCATION] = event.location.geojson()
    notes = profile.notes or _default_notes(event)
    if notes:
        props[NOTES] = notes
    sensors = {sensor_ref_id(ref, s): sensor_props(s) for s in profile.sensors}
    return DeviceSpec(ref_id=ref, props=props, sensors=sensors, profile=profile.name)


def _default_notes(event: DeviceEvent) -> str:
    parts = [f"{event.platform} device {event.device_id} via source {event.source}"]
    if event.model:
        parts.append(f"model {event.model}")
    return "; ".join(parts)


def known_facts(event: DeviceEvent) -> dict[str, Any]:
    """What this event says about the device, to be remembered in the registry."""
    data = event.to_json()
    return {k: data[k] for k in ("name", "model", "profile_name", "tags", "attributes", "location")}


def with_known_facts(event: DeviceEvent, facts: dict[str, Any] | None) -> DeviceEvent:
    """The event completed with what earlier events said and this one does not.

    Some platforms tell different things at different times: a The Things Stack join carries no
    model and no location, its uplinks do. Such a partial event must not change a device's profile
    (an `update` that removes its sensors, and their observations) or drop its location. A full
    description (an AWS IoT or Azure update) is taken as it is: what it leaves out was removed.
    """
    if not facts or not event.partial:
        return event
    data = event.to_json()
    for key in ("name", "model", "profile_name", "location"):
        if data.get(key) is None and facts.get(key) is not None:
            data[key] = facts[key]
    for key in ("tags", "attributes"):
        data[key] = {**(facts.get(key) or {}), **(data.get(key) or {})}
    return DeviceEvent.from_json(data)
