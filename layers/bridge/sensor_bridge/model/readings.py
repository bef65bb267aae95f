"""Readings: the values a platform's message carries, and where a profile's sensors find theirs.

A platform adapter hands over its reading payload (The Things Stack's `decoded_payload`,
ChirpStack's `object`, ...) flattened to dotted paths (`flatten`), with the platform's own
measurement time. A sensor's `readings` say, per metric, which path holds the value (the same
path serves every platform unless `paths` names another for one), and how to scale it. Nothing
is guessed: a field no mapping names is counted and left out.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from sensor_bridge.model.config_problems import Invalid

if TYPE_CHECKING:
    from sensor_bridge.model.config import BridgeConfig, Profile, SensorSpec

# How deep a payload is flattened, and how many of its fields are kept: a reading is small, and
# its work item must stay far below SQS's 256 KiB message limit.
MAX_FIELDS = 256


class MetricSource(BaseModel):
    """Where one metric's value is in a reading payload: `value = raw * scale + offset`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str | None = None  # dotted path into every platform's reading payload
    paths: dict[str, str] = Field(default_factory=dict)  # per platform, instead of `path`
    scale: float = 1.0
    offset: float = 0.0
    unit: str | None = None  # the unit of the scaled value: one the sensor declares

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return {"path": data} if isinstance(data, str) else data

    @model_validator(mode="after")
    def _somewhere(self) -> MetricSource:
        if self.path is None and not self.paths:
            raise Invalid("a reading needs a `path`", "add `path` (or `paths` per platform)")
        if not (math.isfinite(self.scale) and math.isfinite(self.offset)):
            raise Invalid("`scale` and `offset` must be finite", "write plain numbers")
        return self

    def path_for(self, platform: str) -> str | None:
        return self.paths.get(platform, self.path)


@dataclass(frozen=True)
class Reading:
    """One message's values: dotted path -> number, measured at (epoch seconds) per the platform."""

    fields: dict[str, float]
    measured_at: float | None = None
    # Fields of the message no profile of the bridge maps (counted once, where they were dropped).
    unmapped: int = 0
    # The platform's id of the message, the same on a resend: the event's idempotency key when the
    # event has none of its own (an uplink), so that its values are uploaded once.
    message_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "fields": dict(self.fields),
            "measured_at": self.measured_at,
            "unmapped": self.unmapped,
            "message_id": self.message_id,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Reading:
        at = data.get("measured_at")
        return cls(
            fields={str(k): float(v) for k, v in (data.get("fields") or {}).items()},
            measured_at=float(at) if at is not None else None,
            unmapped=int(data.get("unmapped", 0)),
            message_id=data.get("message_id"),
        )


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None  # a string, even "21.5", is not guessed into a number
    number = float(value)
    return number if math.isfinite(number) else None


def _leaves(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _leaves(child, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _leaves(child, f"{prefix}.{index}" if prefix else str(index))
    else:
        yield prefix, value


def flatten(payload: Any, measured_at: float | None, message_id: str | None = None) -> Reading | None:
    """A reading payload as dotted-path numbers; non-numbers are counted as unmapped. None when
    the payload is no object (nothing to read)."""
    if not isinstance(payload, dict) or not payload:
        return None
    fields: dict[str, float] = {}
    skipped = 0
    for path, value in _leaves(payload):
        number = _number(value)
        if number is None:
            skipped += 1
        else:
            fields[path] = number
    return Reading(fields, measured_at, skipped, message_id)


def mapped_paths(config: BridgeConfig, platform: str) -> frozenset[str]:
    """Every path some profile maps for this platform: the only fields worth keeping."""
    profiles = [*config.profiles, config.default_profile]
    return frozenset(
        path
        for profile in profiles
        for sensor in profile.sensors
        for source in sensor.readings.values()
        if (path := source.path_for(platform)) is not None
    )


def keep_mapped(reading: Reading, wanted: frozenset[str]) -> Reading:
    """The reading with only the fields some profile maps; the others are counted as unmapped."""
    kept = {path: value for path, value in reading.fields.items() if path in wanted}
    if len(kept) > MAX_FIELDS:
        kept = dict(sorted(kept.items())[:MAX_FIELDS])
    dropped = len(reading.fields) - len(kept)
    return replace(reading, fields=kept, unmapped=reading.unmapped + dropped)


@dataclass(frozen=True)
class SensorValues:
    """What one sensor of a device reports in one reading."""

    sensor: SensorSpec
    values: dict[str, float] = field(default_factory=dict)


def sensor_values(profile: Profile, platform: str, reading: Reading) -> tuple[list[SensorValues], int]:
    """Per sensor of the profile, its metrics' values in the reading; and how many of the
    reading's fields this profile does not map (they are counted, never sent)."""
    found: list[SensorValues] = []
    used: set[str] = set()
    for sensor in profile.sensors:
        values = dict(_values(sensor, platform, reading, used))
        if values:
            found.append(SensorValues(sensor, values))
    return found, len(set(reading.fields) - used)


def _values(
    sensor: SensorSpec, platform: str, reading: Reading, used: set[str]
) -> Iterable[tuple[str, float]]:
    for metric, source in sensor.readings.items():
        path = source.path_for(platform)
        if path is None or path not in reading.fields:
            continue
        used.add(path)
        value = reading.fields[path] * source.scale + source.offset
        if math.isfinite(value):
            yield metric, value


def iso_timestamp(epoch_seconds: float) -> str:
    """The API's timestamp: ISO 8601 in UTC with milliseconds (`2024-05-01T10:00:00.123Z`)."""
    moment = datetime.fromtimestamp(epoch_seconds, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
