"""Looking before re-sending a reading whose upload may be stored: the pure parts, through the
delivery core's ports (the in-memory registry, scripted integrate, upload and query calls). The
same code against the simulator over HTTP: tests/e2e/test_readings_stored_once.py."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.exceptions import EndpointConnectionError

from sensor_bridge.delivery.context import Downstream, Failed
from sensor_bridge.delivery.deliver import deliver_many
from sensor_bridge.model.config import BridgeConfig, load_config_file
from sensor_bridge.model.outcomes import Deferred, Integrated, Outcome, Parked, RateLimited, Retryable
from sensor_bridge.model.work import WorkItem, work_id_for
from sensor_bridge.retry.failures import act_on_failure
from sensor_bridge.retry.route import act_on, with_upload_mark
from sensor_bridge.retry.worker import _as_received
from sensor_bridge.runtime.http import AnswerTooLarge
from sensor_bridge.sensor_data.client import TokenRejected
from sensor_bridge.sensor_data.lookups import look, read_look
from sensor_bridge.sensor_data.query import QUERY, QueryAnswer, StoredObservation
from sensor_bridge.store.memory_registry import InMemoryRegistry
from tests.unit.fake_sensor_data import FakeSensorData
from tests.unit.fake_uploads import SOURCE, FakeUploads
from tests.unit.test_delivery_core import CONFIG
from tests.unit.test_platform_parsing import only, parse

EVENTS = Path(__file__).resolve().parents[2] / "events"


def reading_work(**fields: Any) -> WorkItem:
    return WorkItem(only(parse("chirpstack-02-up-abp-device.json")), **fields)


def deliver(work: WorkItem, registry: InMemoryRegistry, calls: FakeUploads) -> Any:
    downstream = Downstream(integrate=FakeSensorData(), upload=calls.upload, query=calls.query)
    (outcome,) = deliver_many([work], CONFIG, registry=registry, downstream=downstream)
    return outcome


LOST = Retryable("connection dropped: RemoteProtocolError", ambiguous=True)


def stored_unanswered(registry: InMemoryRegistry, calls: FakeUploads) -> tuple[WorkItem, Retryable]:
    """A first delivery of a reading whose upload is stored but not answered: the work, and the
    outcome that marks it `upload_uncertain` on its way back to the queue."""
    calls.upload_answers.append(LOST)
    work = reading_work()
    outcome = deliver(work, registry, calls)
    assert isinstance(outcome, Retryable)
    assert outcome.reading_maybe_stored
    return work, outcome


def lost_then_again(registry: InMemoryRegistry, calls: FakeUploads) -> tuple[WorkItem, Any]:
    """A first delivery whose upload is stored but not answered, then the work as it comes back."""
    work, outcome = stored_unanswered(registry, calls)
    again = with_upload_mark(work.after_attempt(outcome.reason), outcome)
    assert again.upload_uncertain
    return again, deliver(again, registry, calls)


def test_a_reading_whose_upload_was_stored_is_done_without_a_second_upload(
    registry: InMemoryRegistry, calls: FakeUploads
) -> None:
    again, outcome = lost_then_again(registry, calls)

    assert isinstance(outcome, Integrated)
    assert outcome.forwarded == 1
    assert calls.uploads == 1
    assert len(calls.stored) == 1
    ((sensor_ids, start, end),) = calls.queries
    assert sensor_ids == [calls.stored[0]["sensorId"]]
    # A second either side of the measurement time, in case the API's `from` or `to` is exclusive.
    assert (start, end) == ("2025-11-28T00:00:59.000Z", "2025-11-28T00:01:01.000Z")
    record = registry.get_device(SOURCE, again.event.device_id)
    assert record is not None
    assert again.work_id in record.uploaded


def test_a_reading_the_query_does_not_find_is_uploaded_once_more(
    registry: InMemoryRegistry, calls: FakeUploads
) -> None:
    calls.upload_answers.append(Retryable("503 ServiceUnavailable", ambiguous=True))
    work = reading_work()
    outcome = deliver(work, registry, calls)
    calls.stored.clear()  # this 503 came before the API stored anything

    outcome = deliver(with_upload_mark(work, outcome), registry, calls)

    assert isinstance(outcome, Integrated)
    assert outcome.forwarded == 1
    assert (calls.uploads, len(calls.queries), len(calls.stored)) == (2, 1, 1)


@pytest.mark.parametrize(
    "failure", [RateLimited(30.0), Retryable("503", ambiguous=False), Deferred("held back", 5.0)]
)
def test_a_query_that_cannot_be_answered_now_sends_nothing_and_keeps_the_mark(
    registry: InMemoryRegistry, calls: FakeUploads, failure: Outcome
) -> None:
    calls.query_answers.append(failure)

    again, outcome = lost_then_again(registry, calls)

    assert outcome == failure
    assert calls.uploads == 1
    assert with_upload_mark(again, outcome).upload_uncertain


def test_a_failed_query_counts_an_attempt_and_a_held_back_one_does_not(
    registry: InMemoryRegistry, calls: FakeUploads, monkeypatch: pytest.MonkeyPatch
) -> None:
    scheduled: list[WorkItem] = []
    monkeypatch.setattr("sensor_bridge.retry.route.schedule", lambda work, wait: scheduled.append(work))
    calls.query_answers += [Retryable("503 ServiceUnavailable"), Deferred("held back", 5.0)]

    again, failed = lost_then_again(registry, calls)
    act_on(again, failed)
    act_on(again, deliver(again, registry, calls))

    # As README "What counts as an attempt" says: the look-up is an API call like the upload.
    assert [(work.attempts, work.upload_uncertain) for work in scheduled] == [
        (again.attempts + 1, True),
        (again.attempts, True),
    ]
    assert calls.uploads == 1


def test_a_query_that_raises_fails_that_reading_alone_without_an_upload(
    registry: InMemoryRegistry, calls: FakeUploads
) -> None:
    calls.query_answers.append(RuntimeError("bug"))

    _, outcome = lost_then_again(registry, calls)

    assert isinstance(outcome, Failed)
    assert outcome.step == "readings"
    assert calls.uploads == 1


def test_a_refused_query_uploads_anyway_rather_than_never(
    registry: InMemoryRegistry, calls: FakeUploads
) -> None:
    calls.query_answers.append(Parked("404 NotFound", 404))

    _, outcome = lost_then_again(registry, calls)

    assert isinstance(outcome, Integrated)
    assert outcome.forwarded == 1
    assert calls.uploads == 2  # at least once: the one case that may store it twice


def test_an_upload_held_back_after_the_query_found_nothing_drops_the_mark(
    registry: InMemoryRegistry, calls: FakeUploads
) -> None:
    work, lost = stored_unanswered(registry, calls)
    calls.stored.clear()
    calls.upload_answers.append(Deferred("held back", 60.0))

    outcome = deliver(with_upload_mark(work, lost), registry, calls)

    # Not stored, not sent: its next turn is one upload call, not another query that takes it.
    assert isinstance(outcome, Deferred)
    assert outcome.reading_unstored
    assert not with_upload_mark(with_upload_mark(work, lost), outcome).upload_uncertain


def two_sensor_config(tmp_path: Path) -> BridgeConfig:
    """The shipped configuration with the soil-moisture profile's two sensors mapped to readings."""
    text = (Path(__file__).resolve().parents[2] / "config" / "bridge.yaml").read_text()
    for name, metric, field_name in (
        ("Soil Moisture", "moisture", "moisture"),
        ("Battery Charge Level", "charge", "battery"),
    ):
        text = text.replace(
            f"        name: {name}\n",
            f"        name: {name}\n        unknown_metrics: [{metric}]\n        unknown_units: [percent]\n"
            f"        readings: {{{metric}: {field_name}}}\n",
        )
    (tmp_path / "bridge.yaml").write_text(text)
    return load_config_file(tmp_path / "bridge.yaml")


def two_sensor_work() -> WorkItem:
    body = json.loads(json.loads((EVENTS / "chirpstack-02-up-abp-device.json").read_text())["body"])
    body["deviceInfo"] = {**body["deviceInfo"], "deviceProfileName": "Soil moisture v2", "tags": {}}
    body["object"] = {"moisture": 31.5, "battery": 90}
    return WorkItem(only(parse("chirpstack-02-up-abp-device.json", body=body)))


def test_an_upload_held_back_after_the_query_found_part_stored_keeps_the_mark(
    registry: InMemoryRegistry, calls: FakeUploads, tmp_path: Path
) -> None:
    config = two_sensor_config(tmp_path)
    downstream = Downstream(integrate=FakeSensorData(), upload=calls.upload, query=calls.query)
    calls.upload_answers.append(LOST)
    work = two_sensor_work()
    (lost,) = deliver_many([work], config, registry=registry, downstream=downstream)
    assert len(calls.stored) == 2
    calls.stored.pop()  # the API stored one of the two observations
    calls.upload_answers.append(Deferred("held back", 60.0))
    marked = with_upload_mark(work, lost)

    (held,) = deliver_many([marked], config, registry=registry, downstream=downstream)

    # The queued message still carries both: unmarked, its next turn would send the stored one again.
    assert isinstance(held, Deferred)
    assert not held.reading_unstored
    again = with_upload_mark(marked, held)
    assert again.upload_uncertain
    (done,) = deliver_many([again], config, registry=registry, downstream=downstream)
    assert isinstance(done, Integrated)
    assert done.forwarded == 2
    assert len(calls.stored) == 2
    assert len({o["sensorId"] for o in calls.stored}) == 2  # each observation stored once


def test_a_definite_refusal_of_the_upload_marks_nothing(
    registry: InMemoryRegistry, calls: FakeUploads
) -> None:
    calls.upload_answers.append(RateLimited(20.0))
    work = reading_work()

    outcome = deliver(work, registry, calls)

    assert outcome == RateLimited(20.0)
    assert not with_upload_mark(work, outcome).upload_uncertain
    assert calls.queries == []


def test_stored_observations_match_by_instant_whatever_the_zone_is_written_as(
    registry: InMemoryRegistry, calls: FakeUploads
) -> None:
    work, lost = stored_unanswered(registry, calls)
    sensor_id = calls.stored[0]["sensorId"]
    calls.query_answers.append(
        [StoredObservation(sensorId=sensor_id, timestamp=datetime.fromisoformat("2025-11-28T01:01:00+01:00"))]
    )

    outcome = deliver(with_upload_mark(work, lost), registry, calls)

    assert isinstance(outcome, Integrated)
    assert outcome.forwarded == 1
    assert calls.uploads == 1


def test_one_work_queued_twice_in_one_batch_uploads_once(
    registry: InMemoryRegistry, calls: FakeUploads
) -> None:
    work = reading_work()
    twin = replace(work, holder="another-copy")  # the same message body, received twice

    downstream = Downstream(integrate=FakeSensorData(), upload=calls.upload, query=calls.query)
    first, second = deliver_many([work, twin], CONFIG, registry=registry, downstream=downstream)

    assert (calls.uploads, len(calls.stored)) == (1, 1)
    assert isinstance(first, Integrated)
    assert first.forwarded == 1
    assert isinstance(second, Integrated)
    assert second.forwarded == 0  # counted once, as it was uploaded once


def test_one_work_queued_twice_in_one_batch_is_looked_up_if_either_copy_is_uncertain(
    registry: InMemoryRegistry, calls: FakeUploads
) -> None:
    work, lost = stored_unanswered(registry, calls)
    marked = with_upload_mark(work, lost)  # this copy's upload was stored, its answer lost
    assert marked.upload_uncertain

    downstream = Downstream(integrate=FakeSensorData(), upload=calls.upload, query=calls.query)
    first, second = deliver_many([work, marked], CONFIG, registry=registry, downstream=downstream)

    # The copy kept is the unmarked one: it looks (as the marked one would) and sends nothing.
    assert (calls.uploads, len(calls.queries), len(calls.stored)) == (1, 1, 1)
    assert isinstance(first, Integrated)
    assert first.forwarded == 1
    assert isinstance(second, Integrated)


class UnmarkingRegistry(InMemoryRegistry):
    """The registry whose upload marks fail (a DynamoDB outage) the first `outages` times."""

    def __init__(self, outages: int) -> None:
        super().__init__()
        self.outages = outages

    def record_uploaded(self, source: str, device_id: str, work_id: str) -> None:
        if self.outages:
            self.outages -= 1
            raise EndpointConnectionError(endpoint_url="https://dynamodb.eu-west-1.amazonaws.com")
        super().record_uploaded(source, device_id, work_id)


def test_an_upload_left_unmarked_fails_and_its_message_received_again_is_looked_up(
    calls: FakeUploads,
) -> None:
    registry = UnmarkingRegistry(outages=1)
    registry.nodes[SOURCE] = {"node_id": "node-1"}
    work = reading_work()

    outcome = deliver(work, registry, calls)

    # Not answered done: a second queued copy of this work would find no mark and upload again.
    assert isinstance(outcome, Failed)
    assert outcome.step == "readings"
    assert isinstance(act_on_failure(work, outcome), EndpointConnectionError)  # SQS hands it out again
    again = deliver(_as_received(work, True), registry, calls)
    assert isinstance(again, Integrated)
    assert again.forwarded == 1
    assert (calls.uploads, len(calls.queries), len(calls.stored)) == (1, 1, 1)
    record = registry.get_device(SOURCE, work.event.device_id)
    assert record is not None
    assert work.work_id in record.uploaded  # the copy still queued is done without an upload


# -- the mark on the work item -------------------------------------------------------------------
def test_the_mark_travels_with_the_work_and_is_absent_when_not_set() -> None:
    work = reading_work()
    assert "upload_uncertain" not in work.to_message()
    marked = replace(work, upload_uncertain=True)
    assert WorkItem.from_message(marked.to_message()).upload_uncertain


def test_an_event_received_twice_is_one_work_and_one_without_an_id_is_not() -> None:
    event = replace(reading_work().event, event_id="chirpstack:up:9b1c7e52")  # as receive sets it
    assert work_id_for(event) == work_id_for(replace(event, name="resent"))
    anonymous = replace(event, event_id=None)
    assert work_id_for(anonymous) != work_id_for(anonymous)


def test_a_message_received_again_marks_its_reading_and_only_a_reading() -> None:
    work = reading_work()
    assert _as_received(work, True).upload_uncertain
    assert not _as_received(work, False).upload_uncertain
    device_only = work.device_only()
    assert not _as_received(device_only, True).upload_uncertain  # nothing to upload


def test_a_reading_whose_step_raised_is_parked_marked(monkeypatch: pytest.MonkeyPatch) -> None:
    parked: list[WorkItem] = []
    monkeypatch.setattr("sensor_bridge.retry.route.dead_letter", lambda work, reason: parked.append(work))
    act_on_failure(reading_work(), Failed(ValueError("after the call"), "readings"))
    assert parked[0].upload_uncertain  # a redrive looks before it sends


# -- reading the query's answer ------------------------------------------------------------------
def test_the_query_answer_is_read_and_its_failures_are_never_ambiguous() -> None:
    found: list[QueryAnswer] = []

    def read(response: httpx.Response) -> object:
        return read_look(response, QueryAnswer, found, QUERY)

    body = b'{"observations": [{"sensorId": "s1", "timestamp": "2025-11-28T00:01:00Z", "values": {"T": 1}}]}'
    assert read(httpx.Response(200, content=body)) == Integrated()
    assert found[0].observations[0].sensorId == "s1"
    other = read(httpx.Response(200, content=b'{"items": []}'))
    assert isinstance(other, Parked)
    assert other.reason.endswith('answered 200 with a body that is not {"observations": [...]}')
    failed = read(httpx.Response(502))
    assert isinstance(failed, Retryable)
    assert not failed.ambiguous
    assert isinstance(read(httpx.Response(429)), RateLimited)
    assert len(found) == 1


def test_a_query_answer_too_large_to_read_is_parked_and_never_retried_as_it_was() -> None:
    request = httpx.Request("POST", "http://api.test/sensor-data/data/observations")

    def too_large() -> httpx.Response:
        raise AnswerTooLarge(200, 4096, request)

    found: list[QueryAnswer] = []
    call = look(too_large, QueryAnswer, found, QUERY)

    reason = "the observations query answered 200 with a body of more than 4096 bytes"
    assert call.outcome == Parked(reason, 200)
    assert call.status == 200
    assert found == []


def test_a_refusal_too_large_to_read_means_what_its_status_says() -> None:
    request = httpx.Request("POST", "http://api.test/sensor-data/data/observations")

    def answered(status: int) -> object:
        def too_large() -> httpx.Response:
            raise AnswerTooLarge(status, 4096, request)

        return look(too_large, QueryAnswer, [], QUERY).outcome

    assert isinstance(answered(429), RateLimited)
    failed = answered(503)
    assert isinstance(failed, Retryable)
    assert not failed.ambiguous
    assert isinstance(answered(401), TokenRejected)
    assert answered(403) == Parked("403 Forbidden", 403)
