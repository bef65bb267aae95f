"""A delivery of many events at once, handled as a batch within the webhook's time budget.

Azure Event Grid delivers up to 5,000 events (1 MB) in one POST and resends the whole delivery
if it is not answered 2xx in time, so a delivery handled event by event (each with its own
idempotency record, registry round trips and call) would never complete. Here:

1. every event was parsed and checked before anything is done (`receive`); repeated event ids
   within the delivery count once;
2. one idempotency record for the delivery (its source and event ids): a resend of it gets the
   first answer back and does nothing again;
3. what fits in the budget is delivered directly, one call's worth of events at a time, in
   coalesced calls per node (`deliver_many`), keeping back the time queueing the rest takes;
4. the rest is queued in SendMessageBatch calls (`retry.queue_batch`) and answered 202: the
   retry function delivers it in shared calls. Each work item's id is derived from its event id,
   so work queued twice (a resend after a failure to queue) uploads its reading once, and the
   registry turns a device delivered twice into nothing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from functools import cache
from typing import Any

from sensor_bridge.delivery.context import Delivered, Downstream, Failed
from sensor_bridge.delivery.deliver import deliver_many
from sensor_bridge.inbound.idempotency import Once, once_per_event
from sensor_bridge.model.device_event import DeviceEvent
from sensor_bridge.model.outcomes import Deferred, Integrated
from sensor_bridge.model.replies import HttpReply
from sensor_bridge.model.work import WorkItem, work_id_for
from sensor_bridge.retry.queue_batch import schedule_all, seconds_to_queue
from sensor_bridge.retry.route import Result, act_on, duplicate_of
from sensor_bridge.runtime import clock
from sensor_bridge.runtime.budget import Budget
from sensor_bridge.runtime.observability import Metric, count, logger
from sensor_bridge.runtime.process import on_reset
from sensor_bridge.runtime.settings import settings
from sensor_bridge.sensor_data.client import integrate_direct
from sensor_bridge.sensor_data.nodes import list_nodes_direct
from sensor_bridge.store.config_source import current_config

QUEUED_REST = "a large delivery: the rest is queued for the retry function, which sends it in shared calls"
RETRIED_ALONE = "delivering it failed: queued for the retry function, which tries it again alone"
WAITING = ("queued", "parked")


def receive_batch(source: str, events: Sequence[DeviceEvent], budget: Budget) -> HttpReply:
    """Deliver the events of one delivery as a batch; the reply for the platform."""
    unique = _unique(events)
    key = {"source": source, "event_id": _batch_id(unique)}
    body, replayed = _deliver_batch_once()(event=key, events=unique, budget=budget)
    if replayed:  # the platform sent this delivery before: each event is a duplicate
        body = {**body, "status": "duplicate", "results": [duplicate_of(r, source) for r in body["results"]]}
    if len(unique) < len(events):
        body = {**body, "repeatedEvents": len(events) - len(unique)}
    # A duplicate stands for its first answer: the work may still be queued or parked.
    waiting = body.get("queued") or any(r.get("firstStatus", r["status"]) in WAITING for r in body["results"])
    return HttpReply(202 if waiting else 200, body)


def _unique(events: Sequence[DeviceEvent]) -> list[DeviceEvent]:
    """The events, each event id once (the first); events without an id are all kept."""
    seen: set[str] = set()
    unique = []
    for event in events:
        if event.event_id is not None:
            if event.event_id in seen:
                continue
            seen.add(event.event_id)
        unique.append(event)
    return unique


def _batch_id(events: Sequence[DeviceEvent]) -> str:
    """The delivery's identity: its events' ids (their content where a platform gives none)."""
    ids = sorted(e.event_id or json.dumps(e.to_json(), sort_keys=True) for e in events)
    return "batch:" + hashlib.sha256("\n".join(ids).encode()).hexdigest()


def _deliver_batch(*, event: dict[str, Any], events: list[DeviceEvent], budget: Budget) -> dict[str, Any]:
    works = [WorkItem(e, work_id=work_id_for(e)) for e in events]
    direct, rest = _deliver_what_fits(works, budget)
    later = list(rest)
    results = []
    for work, delivered in direct:
        if isinstance(delivered, Failed):
            later.append(work)  # the retry function isolates it (and parks it if it cannot succeed)
            results.append(
                Result(device=work.event.device_id, status="queued", detail=RETRIED_ALONE).to_json()
            )
            continue
        if isinstance(delivered, Integrated) and work.event.reading is not None:
            later.append(work.its_reading())  # uploaded with others by the retry function
        results.append(act_on(work, delivered).to_json())
    calls = schedule_all(later)
    _count_queued(event["source"], rest, later)
    logger.info(
        "large delivery",
        extra={"events": len(works), "direct": len(direct), "queued": len(later), "queue_calls": calls},
    )
    body: dict[str, Any] = {"status": _overall(results, rest), "results": results}
    if rest:
        body["queued"] = {"devices": len(rest), "detail": QUEUED_REST}
    return body


def _deliver_what_fits(
    works: list[WorkItem], budget: Budget
) -> tuple[list[tuple[WorkItem, Delivered]], list[WorkItem]]:
    """Deliver one call's worth of works at a time while the budget holds another such step and
    the queueing of what is left; stop when the limiter holds the calls back. The delivered works
    with their outcomes, and the works left for the queue."""
    most = settings().max_devices_per_call
    config = current_config()
    done: list[tuple[WorkItem, Delivered]] = []
    slowest = 0.0
    readings = 0  # the delivered works' readings: queued too, for the retry function to upload
    for start in range(0, len(works), most):
        deadline = budget.deadline - seconds_to_queue(len(works) - start + readings)
        if clock.monotonic() + slowest > deadline:
            return done, works[start:]
        began = clock.monotonic()
        chunk = works[start : start + most]
        step = Budget(deadline, budget.per_call_seconds)
        outcomes = deliver_many([w.device_only() for w in chunk], config, budget=step, downstream=direct())
        done += zip(chunk, outcomes, strict=True)
        readings += sum(1 for w in chunk if w.event.reading is not None)
        slowest = max(slowest, clock.monotonic() - began)
        if all(isinstance(o, Deferred) for o in outcomes):  # the limiter or the budget says wait
            return done, works[start + most :]
    return done, []


def direct() -> Downstream:
    """The webhook's calls: sent only while the rate budget is not short (else queued)."""
    return Downstream(integrate=integrate_direct, list_nodes=list_nodes_direct)


def _count_queued(source: str, rest: Sequence[WorkItem], later: Sequence[WorkItem]) -> None:
    if rest:
        count(Metric.HELD_BACK, source, len(rest))
    readings = sum(1 for w in later if w.event.reading is not None)
    if readings:
        count(Metric.READINGS_QUEUED, source, readings)


def _overall(results: list[dict[str, Any]], rest: Sequence[WorkItem]) -> str:
    statuses = {r["status"] for r in results} | ({"queued"} if rest else set())
    return "accepted" if len(statuses) > 1 else next(iter(statuses), "accepted")


@on_reset
def _forget_handler() -> None:
    _deliver_batch_once.cache_clear()


@cache
def _deliver_batch_once() -> Once:
    return once_per_event(_deliver_batch)
