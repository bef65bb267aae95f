"""Acting on an Outcome: the one place that decides retry or park, and what the caller reports."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from sensor_bridge.model.outcomes import (
    Deferred,
    Integrated,
    Outcome,
    Parked,
    RateLimited,
    Removed,
    Retryable,
)
from sensor_bridge.model.work import WorkItem
from sensor_bridge.retry.plan import wait_seconds
from sensor_bridge.retry.queue import dead_letter, schedule
from sensor_bridge.runtime.observability import Metric, count, logger
from sensor_bridge.runtime.settings import settings

Status = Literal["integrated", "unchanged", "removed", "queued", "parked"]


@dataclass(frozen=True)
class Result:
    device: str
    status: Status
    detail: str | None = None
    retry_in_seconds: int | None = None
    ids: dict[str, Any] | None = None
    forwarded: int | None = None  # observations of the event's reading the API accepted

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"device": self.device, "status": self.status}
        for key, value in (
            ("detail", self.detail),
            ("retryInSeconds", self.retry_in_seconds),
            ("ids", self.ids),
            ("readingsForwarded", self.forwarded),
        ):
            if value is not None:
                data[key] = value
        return data


def act_on(work: WorkItem, outcome: Outcome) -> Result:
    """Record and route an outcome. Raises NotPersisted if the queues refuse the work."""
    source = work.event.source
    device = work.event.device_id
    if isinstance(outcome, Integrated):
        forwarded = _forwarded(work, outcome)
        if outcome.unchanged:
            count(Metric.DUPLICATES_SUPPRESSED, source)
            return Result(device, "unchanged", "already integrated as described", forwarded=forwarded)
        count(Metric.DEVICES_INTEGRATED, source)
        logger.info("device integrated", extra={"device": device})
        return Result(device, "integrated", ids=_ids(outcome), forwarded=forwarded)
    if isinstance(outcome, Removed):
        count(Metric.DEVICES_REMOVED, source)
        return Result(device, "removed")
    # An attempt is a call the API refused or that failed; waiting (Deferred) is not one.
    done = work if isinstance(outcome, Deferred) else work.after_attempt(outcome.reason)
    if isinstance(outcome, Parked):
        return _park(done, outcome.reason)
    if done.attempts >= settings().max_attempts:
        return _park(done, f"gave up after {done.attempts} attempts: {outcome.reason}")
    wait = wait_seconds(outcome, max(done.attempts, 1))
    max_age = settings().max_work_age_seconds
    if done.age() + wait > max_age:
        return _park(done, f"waited longer than {max_age} s (MAX_WORK_AGE_SECONDS): {outcome.reason}")
    schedule(done, wait)
    count(_wait_metric(outcome), source)
    if work.event.reading is not None:
        count(Metric.READINGS_QUEUED, source)
    logger.warning("delivery queued", extra={"device": device, "why": outcome.reason, "wait_s": wait})
    return Result(device, "queued", outcome.reason, retry_in_seconds=wait, forwarded=_held(work))


def _wait_metric(outcome: RateLimited | Deferred | Retryable) -> Metric:
    if isinstance(outcome, Deferred):
        return Metric.HELD_BACK
    return Metric.RATE_LIMITED if isinstance(outcome, RateLimited) else Metric.RETRIED


def _park(work: WorkItem, reason: str) -> Result:
    dead_letter(work, reason)
    count(Metric.DEAD_LETTERED, work.event.source)
    if work.event.reading is not None:
        count(Metric.READINGS_PARKED, work.event.source)
    logger.error("delivery parked", extra={"device": work.event.device_id, "why": reason})
    return Result(work.event.device_id, "parked", reason, forwarded=_held(work))


def _forwarded(work: WorkItem, outcome: Integrated) -> int | None:
    if work.event.reading is None:
        return None
    if outcome.forwarded:
        count(Metric.READINGS_FORWARDED, work.event.source, outcome.forwarded)
        logger.info("reading forwarded", extra={"observations": outcome.forwarded})
    return outcome.forwarded


def _held(work: WorkItem) -> int | None:
    """0 for a work whose reading waits (queued or parked): the answer says it carried one."""
    return 0 if work.event.reading is not None else None


def _ids(outcome: Integrated) -> dict[str, Any] | None:
    if outcome.response is None:
        return None
    integration = outcome.response.integration
    return {
        "node": integration.node.id if integration.node else None,
        "devices": [{"id": d.device.id, "sensors": [s.id for s in d.sensors]} for d in integration.devices],
    }
