"""What to send for a device, and finding it again in the API's answer.

`full_change` describes everything (a `new`); `update_change` only what differs from what was
integrated last. The API answers without refIds and in its own order, so devices and sensors are
matched back by NAME, which is unique within a call.
"""

from __future__ import annotations

from typing import Any

from sensor_bridge.model.contract import NAME, DeviceChange, SensorChange
from sensor_bridge.model.profiles import DeviceSpec


def full_change(spec: DeviceSpec, state: str) -> DeviceChange:
    return DeviceChange.model_validate(
        {
            "changeState": state,
            "refId": spec.ref_id,
            "props": spec.props,
            "sensors": [{"changeState": state, "refId": ref, "props": p} for ref, p in spec.sensors.items()],
        }
    )


def update_change(spec: DeviceSpec, previous: dict[str, Any]) -> DeviceChange:
    """Only what changed: the device's props, sensors added, changed or no longer in the profile."""
    before: dict[str, dict[str, Any]] = previous.get("sensors", {})
    sensors = [
        SensorChange(changeState="new" if ref not in before else "update", refId=ref, props=props)
        for ref, props in spec.sensors.items()
        if before.get(ref) != props
    ]
    sensors += [SensorChange(changeState="remove", refId=ref) for ref in before if ref not in spec.sensors]
    return DeviceChange(changeState="update", refId=spec.ref_id, props=spec.props, sensors=sensors)


def answered_device(spec: DeviceSpec, integration: dict[str, Any], sent: int = 1) -> dict[str, Any] | None:
    """Our device in the API's answer. The answer has no refIds and its own order: match by NAME.
    `sent`: how many devices the call carried; a nameless answer is ours only if we were alone."""
    devices = integration.get("devices") or []
    name = spec.props.get(NAME)
    found = [d for d in devices if (d.get("device") or {}).get("props", {}).get(NAME) == name]
    if (
        not found
        and sent == 1
        and len(devices) == 1
        and NAME not in (devices[0].get("device") or {}).get("props", {})
    ):
        found = devices  # a lone device answered without a NAME at all: it can only be ours
    return found[0] if found else None


def sensors_by_name(answer: dict[str, Any]) -> dict[Any, Any]:
    """An answered device's sensor ids by their NAME."""
    return {s.get("props", {}).get(NAME): s.get("id") for s in answer.get("sensors") or []}


def match_ids(
    spec: DeviceSpec, integration: dict[str, Any], sent: int = 1
) -> tuple[str, dict[str, str]] | None:
    """The API's ids for the device and sensors we sent (in a call of `sent` devices), by NAME."""
    answer = answered_device(spec, integration, sent)
    if answer is None:
        return None
    by_name = sensors_by_name(answer)
    sensor_ids = {ref: by_name[p.get(NAME)] for ref, p in spec.sensors.items() if by_name.get(p.get(NAME))}
    return str(answer["device"]["id"]), sensor_ids
