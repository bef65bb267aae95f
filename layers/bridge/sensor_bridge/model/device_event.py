"""DeviceEvent: what every platform adapter turns its payload into."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from sensor_bridge.model.readings import Reading


class Lifecycle(StrEnum):
    APPEARED = "appeared"  # created, joined, or first heard of: an upsert
    CHANGED = "changed"  # the platform says the device's description changed: an upsert
    REMOVED = "removed"  # the platform deleted the device


@dataclass(frozen=True)
class Location:
    latitude: float
    longitude: float
    altitude: float | None = None

    def geojson(self) -> dict[str, Any]:
        # GeoJSON orders coordinates lon, lat, elevation.
        coordinates = [self.longitude, self.latitude]
        if self.altitude is not None:
            coordinates.append(self.altitude)
        return {"type": "Point", "coordinates": coordinates}


@dataclass(frozen=True)
class DeviceEvent:
    source: str
    platform: str
    device_id: str
    lifecycle: Lifecycle = Lifecycle.APPEARED
    event_id: str | None = None  # the platform's own delivery id, for idempotency
    name: str | None = None
    model: str | None = None
    profile_name: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    attributes: dict[str, str] = field(default_factory=dict)
    location: Location | None = None
    # When the platform says the event happened (epoch seconds), not when the bridge heard of it:
    # deliveries can overtake each other, the platform's clock orders a deletion and a creation.
    occurred_at: float | None = None
    # True when the platform's message describes the device only in part by nature (a The Things
    # Stack join has no model or location; a Particle event no name): a field it leaves empty is
    # unknown, not removed, and is completed from what earlier events said.
    partial: bool = False
    # True when the platform announces the device's lifecycle itself (created, updated, deleted:
    # Azure IoT Hub, AWS IoT Core, Standard Webhooks senders), rather than the bridge inferring it
    # from traffic. Its time then orders the device's creations against its deletions.
    announced: bool = False
    # The values the message carries (an uplink's decoded payload, a telemetry body), if any:
    # forwarded once the device is in Sensor Data, with the device's onboarding when it is new.
    reading: Reading | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "source": self.source,
            "platform": self.platform,
            "device_id": self.device_id,
            "lifecycle": self.lifecycle.value,
            "event_id": self.event_id,
            "name": self.name,
            "model": self.model,
            "profile_name": self.profile_name,
            "tags": dict(self.tags),
            "attributes": dict(self.attributes),
            "location": None,
            "occurred_at": self.occurred_at,
            "partial": self.partial,
            "announced": self.announced,
        }
        if self.reading is not None:
            data["reading"] = self.reading.to_json()
        if self.location is not None:
            data["location"] = {
                "latitude": self.location.latitude,
                "longitude": self.location.longitude,
                "altitude": self.location.altitude,
            }
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DeviceEvent:
        location = data.get("location")
        occurred_at = data.get("occurred_at")  # absent from messages queued before it existed
        reading = data.get("reading")
        return cls(
            source=data["source"],
            platform=data["platform"],
            device_id=data["device_id"],
            lifecycle=Lifecycle(data.get("lifecycle", Lifecycle.APPEARED)),
            event_id=data.get("event_id"),
            name=data.get("name"),
            model=data.get("model"),
            profile_name=data.get("profile_name"),
            tags=dict(data.get("tags") or {}),
            attributes=dict(data.get("attributes") or {}),
            location=Location(**location) if location else None,
            occurred_at=float(occurred_at) if occurred_at is not None else None,
            partial=bool(data.get("partial", False)),
            announced=bool(data.get("announced", False)),
            reading=Reading.from_json(reading) if reading else None,
        )
