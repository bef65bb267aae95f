"""Acting on an Outcome: the one place that decides retry or park, and what the caller reports.

The answer says what happened, in the webhook's body, the log line and the metric alike:

    integrated      the API created the device            DevicesIntegrated
    updated         the API changed a device it had       DevicesUpdated
    unchanged       already there as described: no call  DevicesUnchanged
    removed         the API removed the device            DevicesRemoved
    unknown-device  a delete of a device the bridge never created: nothing to remove
                                                          UnknownDeviceRemovals
    superseded      a creation or change that happened before a deletion already processed
                    (nothing done, the device stays deleted), or a full description older than
                    one already applied (nothing done, the newer stands)  Superseded
    queued          on the retry queue, with the reason: rate-limited (the API answered 429),
                    held-back (the bridge did not send: rate budget, time budget, a lease),
                    retryable: <what> (5xx, timeout, ...)  RateLimited | HeldBack | Retried
                    (the retry function's own hops of a long wait: waiting)
    parked          in the dead-letter queue, with the reason                DeadLettered
    duplicate       (inbound.receive) the platform sent this event before    Duplicates
"""

from __future__ import annotations

from dataclasses import dataclass, replace
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

Status = Literal[
    "integrated",
    "updated",
    "unchanged",
    "removed",
    "unknown-device",
    "superseded",
    "duplicate",
    "queued",
    "parked",
]
RATE_LIMITED = "rate-limited"
HELD_BACK_REASON = "held-back"
WAITING = "waiting"  # the retry function's hop: the rest of a wait longer than SQS's delay limit
LONG_WAIT = "the rest of a wait longer than SQS's 900 s delay"
UNCHANGED = "already integrated as described: no call made"
SEEN_BEFORE = "the platform sent this event before: nothing done again (firstStatus: what happened then)"
NOTHING_TO_REMOVE = "the bridge never created this device: nothing to remove"
SUPERSEDED = "the platform deleted this device after this event: nothing done, it stays deleted"
DESCRIBED_SINCE = "the platform described this device again after this event: nothing done, the newer stands"


@dataclass(frozen=True)
class Result:
    device: str
    status: Status
    reason: str | None = None  # queued: rate-limited | held-back | retryable: ...; parked: why
    detail: str | None = None
    retry_in_seconds: int | None = None
    profile: str | None = None  # the device profile that matched
    ids: dict[str, Any] | None = None
    forwarded: int | None = None  # observations of the event's reading the API accepted
    first_status: str | None = None  # duplicate: what the first delivery answered

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"device": self.device, "status": self.status}
        for key, value in (
            ("reason", self.reason),
            ("detail", self.detail),
            ("retryInSeconds", self.retry_in_seconds),
            ("profile", self.profile),
            ("ids", self.ids),
            ("readingsForwarded", self.forwarded),
            ("firstStatus", self.first_status),
        ):
            if value is not None:
                data[key] = value
        return data


_METRICS: dict[Status, Metric] = {
    "integrated": Metric.DEVICES_INTEGRATED,
    "updated": Metric.DEVICES_UPDATED,
    "unchanged": Metric.DEVICES_UNCHANGED,
    "removed": Metric.DEVICES_REMOVED,
    "unknown-device": Metric.UNKNOWN_DEVICE_REMOVALS,
    "superseded": Metric.SUPERSEDED,
    "duplicate": Metric.DUPLICATES,
    "parked": Metric.DEAD_LETTERED,
}


def report(result: Result, source: str, metric: Metric | None = None) -> Result:
    """Count and log a result: one metric and one log line, in the answer's own words."""
    count(metric or _METRICS[result.status], source)
    fields = {k: v for k, v in result.to_json().items() if k != "ids"}
    log = {"queued": logger.warning, "parked": logger.error}.get(result.status, logger.info)
    log(f"delivery {result.status}", extra=fields)
    return result


def duplicate_of(first: dict[str, Any], source: str) -> dict[str, Any]:
    """The answer to an event the platform sent before (`first`: the answer given then): nothing
    is done again; it says so, and what happened then."""
    duplicate = Result(
        first["device"],
        "duplicate",
        detail=SEEN_BEFORE,
        profile=first.get("profile"),
        ids=first.get("ids"),
        first_status=first.get("status"),
    )
    return report(duplicate, source).to_json()


def act_on(work: WorkItem, outcome: Outcome) -> Result:
    """Record and route an outcome. Raises NotPersisted if the queues refuse the work."""
    source = work.event.source
    device = work.event.device_id
    if isinstance(outcome, Integrated):
        return report(_integrated(device, outcome, _forwarded(work, outcome)), source)
    if isinstance(outcome, Removed):
        return report(_removed(device, outcome), source)
    # An attempt is a call the API refused or that failed; waiting (Deferred) is not one.
    done = with_upload_mark(
        work if isinstance(outcome, Deferred) else work.after_attempt(outcome.reason), outcome
    )
    if isinstance(outcome, Parked):
        return _park(done, outcome.reason, outcome.profile)
    if done.attempts >= settings().max_attempts:
        return _park(done, f"gave up after {done.attempts} attempts: {outcome.reason}", outcome.profile)
    wait = wait_seconds(outcome, max(done.attempts, 1))
    max_age = settings().max_work_age_seconds
    if done.age() + wait > max_age:
        reason = f"waited longer than {max_age} s (MAX_WORK_AGE_SECONDS): {outcome.reason}"
        return _park(done, reason, outcome.profile)
    schedule(done, wait)
    if work.event.reading is not None:
        count(Metric.READINGS_QUEUED, source)
    queued = Result(
        device,
        "queued",
        queued_reason(outcome),
        outcome.reason,
        retry_in_seconds=wait,
        profile=outcome.profile,
        forwarded=_held(work),
    )
    return report(queued, source, _wait_metric(outcome))


def with_upload_mark(work: WorkItem, outcome: Outcome) -> WorkItem:
    """The work as it goes back on a queue: marked `upload_uncertain` after an upload that may
    have been stored, unmarked once the query found none of its reading stored and nothing was sent."""
    if isinstance(outcome, Retryable) and outcome.reading_maybe_stored:
        return replace(work, upload_uncertain=True)
    if isinstance(outcome, Deferred) and outcome.reading_unstored:
        return replace(work, upload_uncertain=False)
    return work


def _integrated(device: str, outcome: Integrated, forwarded: int | None) -> Result:
    if outcome.superseded:
        detail = DESCRIBED_SINCE
        return Result(device, "superseded", detail=detail, profile=outcome.profile, forwarded=forwarded)
    if outcome.unchanged:
        return Result(device, "unchanged", detail=UNCHANGED, profile=outcome.profile, forwarded=forwarded)
    status: Status = "integrated" if outcome.created else "updated"
    return Result(device, status, profile=outcome.profile, ids=_ids(outcome), forwarded=forwarded)


def _removed(device: str, outcome: Removed) -> Result:
    if outcome.superseded:
        return Result(device, "superseded", detail=SUPERSEDED)
    if not outcome.existed:
        return Result(device, "unknown-device", detail=NOTHING_TO_REMOVE)
    return Result(device, "removed")


def queued_reason(outcome: RateLimited | Deferred | Retryable) -> str:
    """rate-limited (the API's 429), held-back (the bridge did not send: rate budget, time
    budget, a lease held elsewhere; `detail` says which), or `retryable: <what>` (503, ...)."""
    if isinstance(outcome, RateLimited):
        return RATE_LIMITED
    if isinstance(outcome, Deferred):
        return HELD_BACK_REASON
    what = outcome.reason.split(":", 1)[0].strip()
    first = what.split(" ", 1)[0]
    return f"retryable: {first if first.isdigit() else what}"


def _wait_metric(outcome: RateLimited | Deferred | Retryable) -> Metric:
    if isinstance(outcome, Deferred):
        return Metric.HELD_BACK
    return Metric.RATE_LIMITED if isinstance(outcome, RateLimited) else Metric.RETRIED


def _park(work: WorkItem, reason: str, profile: str | None) -> Result:
    dead_letter(work, reason)
    if work.event.reading is not None:
        count(Metric.READINGS_PARKED, work.event.source)
    parked = Result(work.event.device_id, "parked", reason, profile=profile, forwarded=_held(work))
    return report(parked, work.event.source)


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
