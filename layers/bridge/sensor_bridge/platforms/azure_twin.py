"""What an Azure IoT Hub device twin says about where the device is."""

from __future__ import annotations

from typing import Any

from sensor_bridge.model.device_event import Location
from sensor_bridge.platforms.base import location


def twin_location(tags: dict[str, Any], reported: dict[str, Any], desired: dict[str, Any]) -> Location | None:
    """A `location` object in the twin's tags, reported or desired properties (in that order),
    with `latitude`/`longitude` (or `lat`/`lon`) and optional `altitude`."""
    for holder in (tags, reported, desired):
        found = holder.get("location")
        if not isinstance(found, dict):
            continue
        try:
            return location(
                found.get("latitude", found.get("lat")),
                found.get("longitude", found.get("lon")),
                found.get("altitude", found.get("alt")),
            )
        except (TypeError, ValueError):
            continue  # a twin is free-form: a location we cannot read is left out, not refused
    return None
