"""Looking before re-sending a reading: what the raw-data query's answer is matched against, and
how one odd work or answer is kept from taking its batch down (tests/unit/test_upload_lookup.py:
the look-up's outcomes; both take the `registry` and `calls` fixtures of conftest.py)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

import pytest

from sensor_bridge.delivery.context import Downstream
from sensor_bridge.delivery.deliver import deliver_many
from sensor_bridge.model.outcomes import Integrated, Retryable
from sensor_bridge.model.readings import iso_timestamp
from sensor_bridge.model.work import WorkItem
from sensor_bridge.platforms.base import iso_instant
from sensor_bridge.retry.route import with_upload_mark
from sensor_bridge.sensor_data.query import StoredObservation
from sensor_bridge.store.memory_registry import InMemoryRegistry
from tests.unit.fake_sensor_data import FakeSensorData
from tests.unit.fake_uploads import FakeUploads
from tests.unit.test_delivery_core import CONFIG
from tests.unit.test_upload_lookup import LOST, reading_work

EDGE_OF_TIME = "9999-12-31T23:59:59Z"  # the latest measurement time platforms.base accepts


def measured(at: str | None, **fields: Any) -> WorkItem:
    """The sample reading's work, measured at `at` instead (as the platform's parser reads it;
    None: the platform gave no measurement time)."""
    work = reading_work(**fields)
    reading = work.event.reading
    assert reading is not None
    moment = iso_instant(at) if at is not None else None
    return replace(work, event=replace(work.event, reading=replace(reading, measured_at=moment)))


def deliver_all(works: list[WorkItem], registry: InMemoryRegistry, calls: FakeUploads) -> list[Any]:
    downstream = Downstream(integrate=FakeSensorData(), upload=calls.upload, query=calls.query)
    return deliver_many(works, CONFIG, registry=registry, downstream=downstream)


def test_a_reading_at_the_edge_of_time_is_looked_up_and_its_sibling_still_uploads(
    registry: InMemoryRegistry, calls: FakeUploads
) -> None:
    sibling = measured("2025-11-28T00:01:00Z")
    poison = measured(EDGE_OF_TIME, upload_uncertain=True)

    outcomes = deliver_all([sibling, poison], registry, calls)

    assert [type(o) for o in outcomes] == [Integrated, Integrated]
    assert [o.forwarded for o in outcomes] == [1, 1]
    ((_, start, end),) = calls.queries
    assert start == "9999-12-31T23:59:58.000Z"
    assert end == "9999-12-31T23:59:59.999Z"  # the range's end, clamped to the latest instant
    assert sorted(o["timestamp"] for o in calls.stored) == [
        "2025-11-28T00:01:00.000Z",
        "9999-12-31T23:59:59.000Z",
    ]


@pytest.mark.parametrize("answered", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_a_stored_timestamp_beyond_the_utc_range_matches_nothing(
    registry: InMemoryRegistry, calls: FakeUploads, answered: str
) -> None:
    work = measured("2025-11-28T00:01:00Z", upload_uncertain=True)
    calls.query_answers.append(
        [StoredObservation(sensorId="any", timestamp=datetime.fromisoformat(answered))]
    )

    (outcome,) = deliver_all([work], registry, calls)

    assert isinstance(outcome, Integrated)
    assert outcome.forwarded == 1
    assert calls.uploads == 1  # not found stored: sent


def test_copies_of_a_reading_without_a_measurement_time_look_for_what_the_uncertain_one_sent(
    registry: InMemoryRegistry, calls: FakeUploads
) -> None:
    first = measured(None, first_seen=1764288060.0)  # its timestamp: when the bridge first had it
    calls.upload_answers.append(LOST)
    (lost,) = deliver_all([first], registry, calls)
    assert isinstance(lost, Retryable)
    marked = with_upload_mark(first.after_attempt(lost.reason), lost)
    # The platform's resend of the same message, received 90 s later: the same work, unmarked.
    resent = replace(first, first_seen=first.first_seen + 90, holder="resent")

    outcomes = deliver_all([resent, marked], registry, calls)

    assert [type(o) for o in outcomes] == [Integrated, Integrated]
    ((_, start, _),) = calls.queries
    assert start == iso_timestamp(first.first_seen - 1)  # a second before it, RANGE_SLACK
    assert (calls.uploads, len(calls.stored)) == (1, 1)  # found stored: not sent again


def stored_as(sensor_id: str, at: str, values: Any) -> StoredObservation:
    return StoredObservation.model_validate({"sensorId": sensor_id, "timestamp": at, "values": values})


def lost_upload(registry: InMemoryRegistry, calls: FakeUploads, work: WorkItem) -> dict[str, Any]:
    """A first upload of `work` whose answer was lost; the observation it sent."""
    calls.upload_answers.append(LOST)
    (lost,) = deliver_all([work], registry, calls)
    assert isinstance(lost, Retryable)
    (sent,) = calls.stored
    return sent


@pytest.mark.parametrize(
    ("stored_values", "uploads"),
    [
        pytest.param({"illuminance": 100.0}, 2, id="other-values-uploaded"),
        pytest.param({"illuminance": 312.5, "T": 1}, 2, id="other-metrics-uploaded"),
        pytest.param({"illuminance": "bright"}, 2, id="not-a-number-uploaded"),
        pytest.param({"illuminance": True}, 2, id="a-bool-uploaded"),
        pytest.param({"illuminance": "nan"}, 2, id="nan-uploaded"),
        pytest.param("312.5", 2, id="values-not-a-map-uploaded"),
        pytest.param({"illuminance": 312.5}, 1, id="same-values-found"),
        # An API may answer a number as a string, or keep a float32.
        pytest.param({"illuminance": "312.5"}, 1, id="same-value-as-a-string-found"),
        pytest.param({"illuminance": 312.50001}, 1, id="same-value-as-float32-found"),
        pytest.param({"illuminance": 312.6}, 2, id="a-tenth-off-uploaded"),
        pytest.param(None, 1, id="no-values-in-the-answer-found-by-instant"),
    ],
)
def test_an_observation_counts_as_stored_only_with_the_same_values(
    registry: InMemoryRegistry, calls: FakeUploads, stored_values: Any, uploads: int
) -> None:
    """Another work for the same sensor at the same instant (two readings of one device a
    platform stamped alike) is not this one: declared stored, this one would never be sent."""
    work = measured("2025-11-28T00:01:00Z")
    sent = lost_upload(registry, calls, work)
    assert sent["values"] == {"illuminance": 312.5}
    calls.query_answers.append([stored_as(sent["sensorId"], sent["timestamp"], stored_values)])

    (outcome,) = deliver_all([replace(work, upload_uncertain=True)], registry, calls)

    assert isinstance(outcome, Integrated)
    assert outcome.forwarded == 1
    assert calls.uploads == uploads


def test_values_compare_as_numbers(registry: InMemoryRegistry, calls: FakeUploads) -> None:
    work = measured("2025-11-28T00:01:00Z")
    reading = work.event.reading
    assert reading is not None
    whole = replace(reading, fields=dict.fromkeys(reading.fields, 312.0))
    work = replace(work, event=replace(work.event, reading=whole))
    sent = lost_upload(registry, calls, work)
    calls.query_answers.append([stored_as(sent["sensorId"], sent["timestamp"], {"illuminance": 312})])

    (outcome,) = deliver_all([replace(work, upload_uncertain=True)], registry, calls)

    assert isinstance(outcome, Integrated)
    assert calls.uploads == 1  # 312 as the API answers it is the 312.0 sent: found stored
