"""Forwarding readings: after a round's devices are delivered, the readings they carry become
observations against the sensor ids the registry keeps, uploaded in shared calls.

A reading is only ever sent for a device the API has (its delivery ended `Integrated`): one for a
device still waiting keeps waiting with it, on the same work item. Each work item's observations
go in one call (never split), up to `UPLOAD_MAX_OBSERVATIONS` per call; a 422 on a shared call is
split, each item sent alone, so only the bad one is parked. An accepted upload is marked in the
registry by work id, so that the same work delivered again (an SQS redelivery, a batch retried
after a later failure) does not upload twice. An upload whose answer was lost marks its works
(`upload_uncertain`); before they are sent again, the raw-data query says which of their
observations are stored already (`stored.py`), and only the rest is uploaded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from sensor_bridge.delivery.context import Delivered, Delivery, Failed
from sensor_bridge.delivery.stored import left_to_send
from sensor_bridge.model.outcomes import Deferred, Integrated, Outcome, Parked, Removed, Retryable
from sensor_bridge.model.profiles import select_profile, sensor_ref_id, with_known_facts
from sensor_bridge.model.readings import iso_timestamp, sensor_values
from sensor_bridge.model.work import WorkItem, agreeing_copies
from sensor_bridge.runtime.observability import Metric, count, logger
from sensor_bridge.runtime.settings import settings

Observation = dict[str, Any]


@dataclass(frozen=True)
class Pending:
    index: int
    work: WorkItem
    observations: list[Observation]
    stored: int = 0  # observations of the reading an earlier upload stored (found by the query)
    checked: bool = False  # looked up before this upload (the work was `upload_uncertain`)


def forward_readings(works: Sequence[WorkItem], outcomes: dict[int, Delivered], delivery: Delivery) -> None:
    """Upload the readings of the delivered works; a failed upload becomes the work's outcome."""
    pending: list[Pending] = []
    firsts: dict[str, int] = {}  # work id -> the index of its first copy with a reading to send
    twins: dict[int, int] = {}  # a later copy of the same work -> its first copy
    # A copy's upload may be stored (it is `upload_uncertain`): the copy kept looks before it sends.
    for index, work in enumerate(agreeing_copies(works)):
        outcome = outcomes[index]
        if work.event.reading is not None and isinstance(outcome, Removed):
            # Superseded: the platform deleted the device after this was measured.
            logger.warning(
                "reading dropped with its device's deleted work", extra={"device": work.event.device_id}
            )
        if work.event.reading is None or not isinstance(outcome, Integrated):
            continue
        if work.work_id in firsts:
            # One work queued twice (a webhook resent after it queued the reading) in one batch:
            # the registry's mark is not written yet, so only the first copy is uploaded (looked
            # up first if any copy is `upload_uncertain`).
            twins[index] = firsts[work.work_id]
            continue
        firsts[work.work_id] = index
        _prepare(index, work, outcomes, pending, delivery)
    pending = _looked_up(pending, outcomes, delivery)
    for call in upload_calls(pending, settings().upload_max_observations):
        for item, result in _send(call, delivery):
            outcomes[item.index] = _settle(item, _delivered(outcomes, item), result, delivery)
    for twin, first in twins.items():
        done = outcomes[first]
        outcomes[twin] = replace(done, forwarded=0) if isinstance(done, Integrated) else done


def _prepare(
    index: int, work: WorkItem, outcomes: dict[int, Delivered], pending: list[Pending], delivery: Delivery
) -> None:
    """The work's observations into `pending`, or its outcome when it needs no upload."""
    try:
        found = observations_of(work, delivery)
    except Exception as exc:  # this reading alone: the others are uploaded all the same
        logger.exception("reading not prepared", extra={"device": work.event.device_id})
        outcomes[index] = Failed(exc, "readings")
        return
    if isinstance(found, Parked):
        outcomes[index] = found
    elif found:
        pending.append(Pending(index, work, found))
    elif found is not None:  # nothing this device's profile maps: done without a call
        _mark_done(work, delivery)  # unmarked, a copy again maps nothing: nothing to fail for


def observations_of(work: WorkItem, delivery: Delivery) -> list[Observation] | Parked | None:
    """The reading as observations of the device's sensors: [] when the device's profile maps
    none of its fields, None when this work's reading was uploaded before."""
    event, reading = work.event, work.event.reading
    assert reading is not None
    record = delivery.device_for_readings(event.source, event.device_id)
    if record is None or not record.integrated or record.ref_id is None:
        return Parked("the device is not in the registry after its delivery")
    if work.work_id in record.uploaded:
        return None  # this work's reading was accepted before: a redelivery
    profile = select_profile(delivery.config, with_known_facts(event, record.facts))
    values, unmapped = sensor_values(profile, event.platform, reading)
    if unmapped:
        count(Metric.READING_FIELDS_UNMAPPED, event.source, unmapped)
    timestamp = iso_timestamp(reading.measured_at if reading.measured_at is not None else work.first_seen)
    found: list[Observation] = []
    for sensor in values:
        sensor_id = record.sensor_ids.get(sensor_ref_id(record.ref_id, sensor.sensor))
        if sensor_id is None:
            return Parked(f"no sensor id for sensor {sensor.sensor.key!r} in the registry")
        found.append({"sensorId": sensor_id, "timestamp": timestamp, "values": sensor.values})
    return found


def _looked_up(pending: list[Pending], outcomes: dict[int, Delivered], delivery: Delivery) -> list[Pending]:
    """The pending readings less what an earlier upload of theirs stored; a work found stored in
    full is done, one whose query must wait takes the query's outcome."""
    uncertain = [item for item in pending if item.work.upload_uncertain]
    left = [item for item in pending if not item.work.upload_uncertain]
    for group in upload_calls(uncertain, settings().upload_max_observations):
        found = left_to_send([item.observations for item in group], _source_of(group), delivery)
        for position, item in enumerate(group):
            if not isinstance(found, list):
                outcomes[item.index] = found
                continue
            rest = found[position]
            checked = replace(
                item, observations=rest, stored=len(item.observations) - len(rest), checked=True
            )
            if rest:
                left.append(checked)
            else:  # all stored by the upload whose answer was lost: done, without a call
                outcomes[item.index] = _settle(checked, _delivered(outcomes, item), Integrated(), delivery)
    return sorted(left, key=lambda item: item.index)


def _delivered(outcomes: dict[int, Delivered], item: Pending) -> Integrated:
    delivered = outcomes[item.index]
    assert isinstance(delivered, Integrated)  # only delivered devices' readings are pending
    return delivered


def _source_of(call: list[Pending]) -> str:
    # Latency per source only when the call is one source's ("" counts it service-wide only).
    sources = {item.work.event.source for item in call}
    return next(iter(sources)) if len(sources) == 1 else ""


def _mark_done(work: WorkItem, delivery: Delivery) -> Failed | None:
    """Mark the work's reading done in the registry; the failure if the mark was not written."""
    event = work.event
    try:
        delivery.registry.record_uploaded(event.source, event.device_id, work.work_id)
    except Exception as exc:
        logger.exception("reading done but not marked in the registry")
        return Failed(exc, "readings")
    return None


def upload_calls(pending: list[Pending], max_per_call: int) -> list[list[Pending]]:
    """Works packed in order into calls of at most `max_per_call` observations (sources share a
    call: an upload names sensors, not nodes)."""
    grouped: list[list[Pending]] = []
    size = 0
    for item in pending:
        if not grouped or size + len(item.observations) > max_per_call:
            grouped.append([])
            size = 0
        grouped[-1].append(item)
        size += len(item.observations)
    return grouped


def _send(call: list[Pending], delivery: Delivery) -> list[tuple[Pending, Outcome | Failed]]:
    result = _upload_or_failed(call, delivery)
    if len(call) > 1 and isinstance(result, Parked) and result.status == 422:
        logger.warning(
            "shared upload refused: sending each reading alone",
            extra={"readings": len(call), "why": result.reason},
        )
        return [(item, _upload_or_failed([item], delivery)) for item in call]
    return [(item, result) for item in call]


def _upload_or_failed(call: list[Pending], delivery: Delivery) -> Outcome | Failed:
    try:
        return _upload(call, delivery)
    except Exception as exc:  # a bug or an outage: these readings fail, their devices stay delivered
        logger.exception("upload raised", extra={"readings": len(call)})
        return Failed(exc, "readings")


def _upload(call: list[Pending], delivery: Delivery) -> Outcome:
    observations = [o for item in call for o in item.observations]
    logger.info("upload", extra={"observations": len(observations), "readings": len(call)})
    assert delivery.upload is not None  # deliver_many always sets it
    return delivery.upload(observations, _source_of(call), budget=delivery.budget)


def _settle(item: Pending, delivered: Integrated, result: Outcome | Failed, delivery: Delivery) -> Delivered:
    if isinstance(result, Retryable) and result.ambiguous:
        return replace(result, reading_maybe_stored=True)  # looked up before it is sent again
    if isinstance(result, Deferred) and item.checked and item.stored == 0:
        # None of it stored, nothing sent: its next turn needs no query. A part found stored keeps
        # the mark: the queued message still carries the whole reading, to be looked up again.
        return replace(result, reading_unstored=True)
    if not isinstance(result, Integrated):
        return result  # the device is in; its reading waits (retry) or is parked with the reason
    unmarked = _mark_done(item.work, delivery)
    if unmarked is not None:
        # Stored but unmarked: another queued copy of this work (a platform resend) would find no
        # mark and upload again. Failing it, SQS hands this message out again (an outage; else it
        # is parked marked): received again, it is looked up, found stored and marked then.
        return unmarked
    return replace(delivered, forwarded=len(item.observations) + item.stored)
