"""Looking before re-sending a reading. An earlier upload of a work's observations may have been
stored without the bridge seeing the answer (the work's `upload_uncertain` mark: a dropped
connection, a timeout or a 5xx after sending, a receive that never finished). The upload has no
idempotency key, so the raw-data query (`sensor_data.query`) asks which of them the API holds,
and only the rest is sent, as the integrate path probes before it creates again.

One query asks for a group's sensors from a second before its earliest observation to a second
after its latest (RANGE_SLACK).

- The query answered: an observation found stored (the same sensor at the same instant, with
  the same values, compared as numbers: 1 is 1.0) is left out; a work whose observations are all
  stored is done without an upload. Another value at that instant is another reading (two of one
  device a platform stamped alike): it is sent, at worst a duplicate, never a loss. An answer
  that leaves the values out is matched by sensor and instant alone. A stored timestamp
  that is no UTC instant (`0001-01-01T00:00:00+01:00`) matches nothing, and the range is clamped
  to what a datetime holds (a reading at `9999-12-31T23:59:59Z`, which platforms accept): one
  odd timestamp never fails the batch, at worst its reading is uploaded again.
- The query failed in a way that passes (429, 5xx, a timeout, the rate or time budget): the works
  wait with their mark. Nothing is sent blind.
- The query was refused (a 4xx) or answered in a shape the bridge cannot read: it cannot tell,
  and the works are uploaded as they are, with a warning: at least once (a possible duplicate)
  rather than readings that no retry could ever deliver.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sensor_bridge.delivery.context import Delivered, Delivery, Failed
from sensor_bridge.model.outcomes import Deferred, RateLimited, Retryable
from sensor_bridge.runtime.observability import logger

Observation = dict[str, Any]
# Taken off the range's start and added to its end: the API's `from` or `to` may be exclusive
# (the simulator's are inclusive), and what the range brings in beyond the observations asked for
# is matched away.
RANGE_SLACK = timedelta(seconds=1)
_EARLIEST, _LATEST = datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC)
CANNOT_TELL = "the observations query failed: uploading without knowing what is stored"


def left_to_send(
    works: Sequence[list[Observation]], source: str, delivery: Delivery
) -> list[list[Observation]] | Delivered:
    """Per work (its observations, one query for them all), what the API does not hold yet; or
    the outcome all of them wait with, when the query cannot be answered now."""
    try:
        return _left_to_send(works, source, delivery)
    except Exception as exc:  # a bug or an outage: these readings fail (not the batch), none sent
        logger.exception("looking up what is stored raised", extra={"readings": len(works)})
        return Failed(exc, "readings")


def _left_to_send(
    works: Sequence[list[Observation]], source: str, delivery: Delivery
) -> list[list[Observation]] | Delivered:
    assert delivery.query is not None  # deliver_many always sets it
    sensor_ids = sorted({o["sensorId"] for observations in works for o in observations})
    start, end = _query_range(works)
    logger.info("looking up an upload that may be stored", extra={"sensors": len(sensor_ids)})
    found = delivery.query(sensor_ids, start, end, source, budget=delivery.budget)
    if isinstance(found, RateLimited | Deferred | Retryable):
        return found
    if not isinstance(found, Sequence):  # refused (4xx) or an unreadable answer
        logger.warning(CANNOT_TELL, extra={"why": getattr(found, "reason", type(found).__name__)})
        return list(works)
    stored: dict[tuple[str, datetime], list[Any]] = {}
    for s in found:
        at = _stored_instant(s.timestamp)
        if at is not None:
            stored.setdefault((s.sensorId, at), []).append(s.values)
    return [[o for o in observations if not _is_stored(o, stored)] for observations in works]


def _is_stored(observation: Observation, stored: dict[tuple[str, datetime], list[Any]]) -> bool:
    found = stored.get((observation["sensorId"], _instant(observation["timestamp"])), [])
    return any(values is None or _same_values(values, observation["values"]) for values in found)


# How near a stored value must be to the one sent to be taken for it: an API may keep a float32
# (about 7 significant digits) or answer `0.3` for the `0.30000000000000004` a scale made.
SAME_VALUE_RELATIVE, SAME_VALUE_ABSOLUTE = 1e-6, 1e-9


def _same_values(stored: Any, sent: dict[str, float]) -> bool:
    return (
        isinstance(stored, dict)
        and stored.keys() == sent.keys()
        and all(_near(_number(stored[metric]), float(value)) for metric, value in sent.items())
    )


def _near(stored: float | None, sent: float) -> bool:
    return stored is not None and math.isclose(
        stored, sent, rel_tol=SAME_VALUE_RELATIVE, abs_tol=SAME_VALUE_ABSOLUTE
    )


def _number(value: Any) -> float | None:
    """A stored value as a number: a JSON number, or a string that reads as one ("21.5")."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _query_range(works: Sequence[list[Observation]]) -> tuple[str, str]:
    instants = [_instant(o["timestamp"]) for observations in works for o in observations]
    return _iso(_shifted(min(instants), -RANGE_SLACK)), _iso(_shifted(max(instants), RANGE_SLACK))


def _shifted(moment: datetime, by: timedelta) -> datetime:
    try:
        return moment + by
    except OverflowError:  # past the end (or start) of time: the range stops there
        return _LATEST if by > timedelta(0) else _EARLIEST


def _stored_instant(moment: datetime) -> datetime | None:
    try:
        return _utc(moment)
    except OverflowError:  # no UTC instant (`0001-01-01T00:00:00+01:00`): it matches nothing
        return None


def _instant(timestamp: str) -> datetime:
    return _utc(datetime.fromisoformat(timestamp))


def _utc(moment: datetime) -> datetime:
    # Compared as instants: the API may answer `+00:00` for the `Z` sent, or no zone at all (UTC).
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _iso(moment: datetime) -> str:
    # As model.readings.iso_timestamp writes it, but from the datetime: datetime.max as a float
    # of epoch seconds rounds up into the year 10000.
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
