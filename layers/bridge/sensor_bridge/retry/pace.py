"""Spreading a backlog over the windows it needs. Of the work a retry batch brings, the retry
function delivers what the rate budget lets through now; the rest goes back on the queue at once,
without a call or any registry work, one call's worth of devices (same source, up to
MAX_DEVICES_PER_CALL) at each turn the limiter gives, so it comes back when that call may go.
No attempt is consumed (the work is Deferred).

Full calls go first. A source's partial call (fewer than MAX_DEVICES_PER_CALL devices) that the
budget cannot take now is a storm's remainder when the batch also holds a full call of that
source: it takes no turn but comes back in a second, to fill a call with the devices of the next
batch (a batch is cut from the storm without regard to sources, so each would otherwise leave a
partial call per source, each spending a whole turn). A partial call with no full call of its
source beside it (the storm's last devices, or a trickle) takes its turn.

Readings of devices already delivered (`WorkItem.upload_only`) need no integrate call: they share
upload calls (UPLOAD_MAX_OBSERVATIONS each), so they are budgeted as those, after the onboarding
calls, with one query more per upload call's worth of readings whose upload may be stored
(`upload_uncertain`: the look-up before the upload); when the budget has no room for them (kind
READINGS), they all wait for the same turn and come back together, to share a call again."""

from __future__ import annotations

import math
from collections.abc import Sequence

from sensor_bridge.model.outcomes import Deferred
from sensor_bridge.model.work import WorkItem
from sensor_bridge.retry.route import Result, act_on
from sensor_bridge.runtime.observability import logger
from sensor_bridge.runtime.settings import settings
from sensor_bridge.sensor_data.limiter import BUDGET_SHORT, HELD_BACK, READINGS, limiter

Due = list[tuple[str, WorkItem]]  # (message id, work)
Answers = dict[str, Result | Exception]

REGROUPING = "queued: waiting a second to share a call with the rest of its source's backlog"
REGROUP_SECONDS = 1.0  # SQS's smallest delay: back in the next batch


def pace(due: Sequence[tuple[str, WorkItem]]) -> tuple[Due, Answers]:
    """What to deliver now (in arrival order), and the answers for what was put back for later."""
    uploads = [item for item in due if item[1].upload_only]
    calls = _calls([item for item in due if not item[1].upload_only], settings().max_devices_per_call)
    room = limiter().available()
    later: Answers = {}
    regrouped = _put_back_calls(calls, room, later)
    if uploads:
        # After this batch's onboarding calls; peek (no write) is READINGS' turn, a quarter kept.
        wait = limiter().peek(READINGS)
        if wait > 0 or room - min(room, len(calls)) < _upload_calls(uploads):
            _put_back(uploads, Deferred(BUDGET_SHORT, max(wait, limiter().minute.interval)), later)
    now = [item for item in due if item[0] not in later]
    if later:
        logger.info(
            "backlog paced",
            extra={"now": len(now), "later": len(later), "calls_now": room, "regrouped": regrouped},
        )
    return now, later


def _put_back_calls(calls: list[Due], room: int, answers: Answers) -> int:
    """The calls after the first `room`: full calls (and lone partial ones) at their turns; a
    storm's partial calls regroup. How many calls regrouped."""
    most = settings().max_devices_per_call
    storming = {call[0][1].event.source for call in calls if len(call) == most}
    later = calls[room:]
    regroup = [c for c in later if len(c) < most and c[0][1].event.source in storming]
    turned = [c for c in later if len(c) == most or c[0][1].event.source not in storming]
    turns = limiter().reserve_slots(len(turned), after=room) if turned else []
    for call in regroup:
        _put_back(call, Deferred(REGROUPING, REGROUP_SECONDS), answers)
    for call, turn in zip(turned, turns, strict=True):
        _put_back(call, Deferred(HELD_BACK, turn), answers)
    return len(regroup)


def _put_back(items: Sequence[tuple[str, WorkItem]], deferred: Deferred, answers: Answers) -> None:
    for message_id, work in items:
        try:
            answers[message_id] = act_on(work, deferred)
        except Exception as exc:  # NotPersisted: SQS keeps this message
            logger.exception("retry message failed", extra={"message_id": message_id})
            answers[message_id] = exc


def _calls(due: Sequence[tuple[str, WorkItem]], most: int) -> list[Due]:
    """The batch as the calls it will need: per source, `most` devices a call; full calls first."""
    by_source: dict[str, Due] = {}
    for item in due:
        by_source.setdefault(item[1].event.source, []).append(item)
    calls = [items[i : i + most] for items in by_source.values() for i in range(0, len(items), most)]
    return sorted(calls, key=lambda call: len(call) < most)  # stable: sources keep their order


def _upload_calls(uploads: Sequence[tuple[str, WorkItem]]) -> int:
    """API calls the readings need at most: the upload calls (a reading's fields bound its
    observations), and the raw-data queries before those whose upload may be stored (one per
    upload call's worth). Budgeted together: a query that took the upload's turn would leave
    the upload held back, and its next turn would query again."""
    most = settings().upload_max_observations
    uncertain = [item for item in uploads if item[1].upload_uncertain]
    return math.ceil(_fields(uploads) / most) + math.ceil(_fields(uncertain) / most)


def _fields(items: Sequence[tuple[str, WorkItem]]) -> int:
    return sum(len(work.event.reading.fields) if work.event.reading else 0 for _, work in items)
