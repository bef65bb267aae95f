"""``POST {base}/data/observations`` (query raw data) for the Sensor Data simulator.

The reference (``sensor-data-api.md``) lists the operation but not its body or answer, so this is
the simulator's model of it, kept plain:

* request ``{"sensorIds": ["<sensor id>", ...], "from": "<ISO 8601>", "to": "<ISO 8601>"}``;
  both ends of the range are inclusive (a query for one instant is ``from == to``) and compared
  as instants, not as strings (``...Z`` and ``...+00:00`` are the same time);
* answer 200 ``{"observations": [{"sensorId", "timestamp", "values"}]}``: the stored observations
  of those sensors in that range, as they were uploaded, in the order they were stored; no paging;
* refusals are 422 ``InvalidQueryDataRequest`` with a ``target`` naming the first bad field: a body
  without a non-empty ``sensorIds`` array of strings, a sensor id that does not exist (or was
  removed), a bound that is not ISO 8601 with a time zone, ``from`` after ``to``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from local.sim_upload import UploadRefused

__all__ = ["QUERY_CODE", "Query", "check_query", "matching"]

QUERY_CODE = "InvalidQueryDataRequest"
JSON = Any


@dataclass(frozen=True)
class Query:
    sensor_ids: frozenset[str]
    start: datetime
    end: datetime


def _instant(value: JSON) -> datetime | None:
    if not isinstance(value, str) or "T" not in value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _sensor_ids(body: dict[str, JSON], known: Collection[str]) -> frozenset[str]:
    ids = body.get("sensorIds")
    if not isinstance(ids, list) or not ids:
        raise UploadRefused("`sensorIds` must be a non-empty array of sensor ids.", "sensorIds")
    for i, sensor_id in enumerate(ids):
        if not isinstance(sensor_id, str) or sensor_id not in known:
            raise UploadRefused(f"Sensor {sensor_id!r} was not found.", f"sensorIds[{i}]")
    return frozenset(ids)


def _bound(body: dict[str, JSON], key: str) -> datetime:
    parsed = _instant(body.get(key))
    if parsed is None:
        raise UploadRefused(
            f"Invalid `{key}` {body.get(key)!r}: expected ISO 8601 with a time zone, "
            "e.g. 2024-02-06T05:27:40Z.",
            key,
        )
    return parsed


def check_query(body: JSON, known: Collection[str]) -> Query:
    """The query a valid body asks; raises ``UploadRefused`` (the same shape of refusal as an
    upload's) for the first bad field. ``known``: the live sensor ids."""
    if not isinstance(body, dict):
        raise UploadRefused(
            "The request body must be a JSON object with `sensorIds`, `from` and `to`.", "sensorIds"
        )
    sensor_ids = _sensor_ids(body, known)
    start, end = _bound(body, "from"), _bound(body, "to")
    if start > end:
        raise UploadRefused("`from` must not be after `to`.", "from")
    return Query(sensor_ids, start, end)


def matching(stored: Iterable[dict[str, JSON]], query: Query) -> list[dict[str, JSON]]:
    """The stored observations the query asks for, as uploaded (without the simulator's own keys)."""
    found: list[dict[str, JSON]] = []
    for observation in stored:
        at = _instant(observation["timestamp"])
        if observation["sensorId"] in query.sensor_ids and at is not None and query.start <= at <= query.end:
            found.append({k: observation[k] for k in ("sensorId", "timestamp", "values")})
    return found
