"""Spreading a backlog over the windows it needs. Of the work a retry batch brings, the retry
function delivers what the rate budget lets through now; the rest goes back on the queue at once,
without a call or any registry work, one call's worth of devices (same source, up to
MAX_DEVICES_PER_CALL) at each turn the limiter gives, so it comes back when that call may go.
No attempt is consumed (the work is Deferred)."""

from __future__ import annotations

from collections.abc import Sequence

from sensor_bridge.model.outcomes import Deferred
from sensor_bridge.model.work import WorkItem
from sensor_bridge.retry.route import Result, act_on
from sensor_bridge.runtime.observability import logger
from sensor_bridge.runtime.settings import settings
from sensor_bridge.sensor_data.limiter import HELD_BACK, limiter

Due = list[tuple[str, WorkItem]]  # (message id, work)


def pace(due: Sequence[tuple[str, WorkItem]]) -> tuple[Due, dict[str, Result | Exception]]:
    """What to deliver now, and the answers for what was put back for later."""
    calls = _calls(due)
    room = limiter().available()
    now: Due = [item for call in calls[:room] for item in call]
    later: dict[str, Result | Exception] = {}
    turns = limiter().reserve_slots(len(calls) - room, after=room) if len(calls) > room else []
    for call, turn in zip(calls[room:], turns, strict=True):
        deferred = Deferred(HELD_BACK, turn)
        for message_id, work in call:
            try:
                later[message_id] = act_on(work, deferred)
            except Exception as exc:  # NotPersisted: SQS keeps this message
                logger.exception("retry message failed", extra={"message_id": message_id})
                later[message_id] = exc
    if later:
        logger.info("backlog paced", extra={"now": len(now), "later": len(later), "calls_now": room})
    return now, later


def _calls(due: Sequence[tuple[str, WorkItem]]) -> list[Due]:
    """The batch as the calls it will need: per source, MAX_DEVICES_PER_CALL devices a call."""
    most = settings().max_devices_per_call
    by_source: dict[str, Due] = {}
    for item in due:
        by_source.setdefault(item[1].event.source, []).append(item)
    return [items[i : i + most] for items in by_source.values() for i in range(0, len(items), most)]
