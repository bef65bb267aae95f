"""``POST {base}/data/upload`` for the Sensor Data simulator: which observations it accepts.

The API (``sensor-data-api.md``): body ``{"observations": [{"sensorId", "timestamp", "values":
{metric: number}}]}``, answer 202; sensor ids are the ones the integrate answer assigned; the
metrics are the sensor's declared ones (``KNOWN_METRICS``/``UNKNOWN_METRICS`` given at creation,
objects keyed "0", "1", ...). What a refusal looks like is not documented; the simulator assumes:

* the whole upload is refused if any observation is bad (nothing is stored), with 422
  ``InvalidUploadDataRequest`` and a ``target`` naming the first bad field
  (``observations[2].values.T``);
* a sensor declares exactly the metrics in its props' ``KNOWN_METRICS`` and ``UNKNOWN_METRICS``
  (no catalogue defaults: a sensor created without metrics accepts no values);
* a timestamp is ISO 8601 with a date, a time and a UTC offset (``Z`` or ``+01:00``); a value is
  a finite JSON number (not a boolean, string or null);
* an empty ``observations`` array is refused; a maximum per call is off unless configured.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

__all__ = ["UPLOAD_CODE", "UploadRefused", "check_upload", "declared_metrics"]

UPLOAD_CODE = "InvalidUploadDataRequest"
JSON = Any


class UploadRefused(Exception):
    def __init__(self, message: str, target: str) -> None:
        super().__init__(message)
        self.message = message
        self.target = target


def declared_metrics(props: Mapping[str, JSON]) -> frozenset[str]:
    """The metrics a sensor's props declare (``KNOWN_METRICS`` and ``UNKNOWN_METRICS``)."""
    found: set[str] = set()
    for key in ("KNOWN_METRICS", "UNKNOWN_METRICS"):
        declared = props.get(key)
        if isinstance(declared, dict):
            declared = list(declared.values())
        if isinstance(declared, list):
            found.update(v for v in declared if isinstance(v, str))
    return frozenset(found)


def _is_timestamp(value: JSON) -> bool:
    if not isinstance(value, str) or "T" not in value:
        return False
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return False
    return parsed.tzinfo is not None


def _is_number(value: JSON) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _observations(body: JSON, max_per_call: int | None) -> list[JSON]:
    if not isinstance(body, dict) or not isinstance(body.get("observations"), list):
        raise UploadRefused(
            "The request body must be a JSON object with an `observations` array.", "observations"
        )
    observations: list[JSON] = body["observations"]
    if not observations:
        raise UploadRefused("`observations` must not be empty.", "observations")
    if max_per_call is not None and len(observations) > max_per_call:
        raise UploadRefused(
            f"At most {max_per_call} observations are accepted per call; {len(observations)} were sent.",
            "observations",
        )
    return observations


def _check_values(where: str, sensor_id: str, values: JSON, declared: frozenset[str]) -> None:
    if not isinstance(values, dict) or not values:
        raise UploadRefused("`values` must be a non-empty object of metric: number.", f"{where}.values")
    for metric, value in values.items():
        if metric not in declared:
            known = ", ".join(sorted(declared)) or "none"
            raise UploadRefused(
                f"Sensor {sensor_id} does not declare metric '{metric}' (declared: {known}).",
                f"{where}.values.{metric}",
            )
        if not _is_number(value):
            raise UploadRefused(
                f"The value of metric '{metric}' must be a number, not {json_type(value)}.",
                f"{where}.values.{metric}",
            )


def json_type(value: JSON) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, float):
        return "a non-finite number"
    if isinstance(value, str):
        return "a string"
    return "an array" if isinstance(value, list) else "an object"


def check_upload(
    body: JSON, sensors: Mapping[str, frozenset[str]], max_per_call: int | None = None
) -> list[dict[str, JSON]]:
    """The observations of a valid upload; raises ``UploadRefused`` for the first bad field.
    ``sensors`` maps each live sensor id to the metrics it declares."""
    accepted: list[dict[str, JSON]] = []
    for i, item in enumerate(_observations(body, max_per_call)):
        where = f"observations[{i}]"
        if not isinstance(item, dict):
            raise UploadRefused(f"`{where}` must be an object.", where)
        sensor_id = item.get("sensorId")
        if not isinstance(sensor_id, str) or sensor_id not in sensors:
            raise UploadRefused(f"Sensor {sensor_id!r} was not found.", f"{where}.sensorId")
        timestamp = item.get("timestamp")
        if not _is_timestamp(timestamp):
            raise UploadRefused(
                f"Invalid timestamp {timestamp!r}: expected ISO 8601 with a time zone, "
                "e.g. 2024-02-06T05:27:40Z.",
                f"{where}.timestamp",
            )
        _check_values(where, sensor_id, item.get("values"), sensors[sensor_id])
        accepted.append({"sensorId": sensor_id, "timestamp": timestamp, "values": dict(item["values"])})
    return accepted
