"""The WorkItem on the queues: what travels with it survives the trip, attempts count up."""

from __future__ import annotations

import json

import pytest

from sensor_bridge.model.device_event import DeviceEvent, Lifecycle, Location
from sensor_bridge.model.work import WorkItem

EVENT = DeviceEvent(
    source="ttn-demo",
    platform="the-things-stack",
    device_id="bridge-monitoring/env-node-04",
    lifecycle=Lifecycle.CHANGED,
    event_id="join:bridge-monitoring:env-node-04:AYz==",
    name="env-node-04",
    model="elsys/ers",
    tags={"site": "north"},
    attributes={"floor": "2"},
    location=Location(51.5, -0.12, 12.0),
)


def test_a_work_item_survives_the_queue_with_everything_it_carries() -> None:
    work = WorkItem(
        EVENT,
        attempts=3,
        first_seen=1764288000.5,
        last_error="503 ServiceUnavailable",
        not_before=1764289200.0,
        parked_reason=None,
    )
    assert WorkItem.from_message(work.to_message()) == work


def test_a_parked_item_keeps_its_reason_on_the_dead_letter_queue() -> None:
    work = WorkItem(EVENT, attempts=1, parked_reason="403 InsufficientPermissions")
    assert WorkItem.from_message(work.to_message()).parked_reason == "403 InsufficientPermissions"


def test_after_attempt_counts_up_keeps_first_seen_and_records_the_error() -> None:
    work = WorkItem(EVENT, first_seen=100.0)
    once = work.after_attempt("429 TooManyRequests")
    twice = once.after_attempt("503 ServiceUnavailable")
    assert (once.attempts, twice.attempts) == (1, 2)
    assert twice.first_seen == 100.0
    assert twice.work_id == work.work_id  # the lease claimant stays the same across attempts
    assert twice.last_error == "503 ServiceUnavailable"


def test_each_new_work_item_has_its_own_id() -> None:
    assert WorkItem(EVENT).work_id != WorkItem(EVENT).work_id


def test_a_message_of_another_version_is_refused_not_guessed() -> None:
    body = json.loads(WorkItem(EVENT).to_message())
    body["version"] = 2
    with pytest.raises(ValueError, match="unsupported work item version 2"):
        WorkItem.from_message(json.dumps(body))


def test_a_queued_reading_of_a_delivered_device_stays_upload_only_on_the_queue() -> None:
    work = WorkItem(EVENT, upload_only=True)
    assert WorkItem.from_message(work.to_message()).upload_only is True
    assert "upload_only" not in json.loads(WorkItem(EVENT).to_message())  # older messages read alike
    assert WorkItem.from_message(WorkItem(EVENT).to_message()).upload_only is False


@pytest.mark.parametrize("body", ["[]", '"a string"', "42", "null"])
def test_a_message_that_is_json_but_not_an_object_is_unreadable_not_a_crash(body: str) -> None:
    with pytest.raises(ValueError, match="a work item is a JSON object"):
        WorkItem.from_message(body)
