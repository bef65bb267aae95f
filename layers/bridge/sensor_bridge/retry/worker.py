"""The retry function's work: a batch of queued WorkItems through the same delivery code as the
webhook. Of the items due now, what the rate budget lets through (`retry.pace`) is delivered;
items for the same node are coalesced into shared integrate calls (`delivery.deliver_many`). Each
message still gets its own answer, so a partial batch failure leaves only the failed messages on
the queue: an item whose delivery raised fails alone (`retry.failures`).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from sensor_bridge.delivery.context import Failed
from sensor_bridge.delivery.deliver import deliver_many
from sensor_bridge.model.work import WorkItem, agreeing_copies
from sensor_bridge.retry.failures import act_on_failure
from sensor_bridge.retry.pace import pace
from sensor_bridge.retry.queue import schedule
from sensor_bridge.retry.route import LONG_WAIT, WAITING, Result, act_on
from sensor_bridge.runtime import clock
from sensor_bridge.runtime.budget import Budget, HasRemainingTime, invocation
from sensor_bridge.runtime.observability import logger
from sensor_bridge.runtime.settings import settings
from sensor_bridge.store.config_source import current_config

# Per message id: its Result, or the exception that leaves it on the queue for SQS to retry.
Answers = dict[str, Result | Exception]


def received_again(records: Iterable[Mapping[str, Any]]) -> list[str]:
    """The ids of the SQS records handed out before (ApproximateReceiveCount over 1): an
    invocation that had them did not finish them, and may have sent their upload."""
    again = []
    for record in records:
        count = str(record.get("attributes", {}).get("ApproximateReceiveCount", "1"))
        if count.isdigit() and int(count) > 1:
            again.append(str(record["messageId"]))
    return again


def process_batch(
    messages: Sequence[tuple[str, str]],
    context: HasRemainingTime | None = None,
    *,
    received_before: Collection[str] = (),
) -> Answers:
    """Deliver a batch of (message id, body). Never raises for one message's failure.

    `context` (the Lambda context) sets the invocation's deadline, which every call reads: work
    that no longer fits goes back on the queue with its attempt counted, rather than the function
    timing out and every message of the batch coming back. `received_before`: the ids of messages
    SQS handed out before (ApproximateReceiveCount > 1)."""
    with invocation(Budget.from_context(context, settings().api_timeout_seconds)) as budget:
        return _process(messages, budget, received_before)


def _process(
    messages: Sequence[tuple[str, str]], budget: Budget, received_before: Collection[str]
) -> Answers:
    answers: Answers = {}
    due: list[tuple[str, WorkItem]] = []
    for message_id, body in messages:
        try:
            work = _as_received(WorkItem.from_message(body), message_id in received_before)
            waiting = _wait_longer(work)
        except Exception as exc:  # a bad body or a queue outage: this message only
            logger.exception("retry message failed", extra={"message_id": message_id})
            answers[message_id] = exc
            continue
        if isinstance(waiting, Result):
            answers[message_id] = waiting
        else:
            due.append((message_id, waiting))
    if not due:
        return answers
    # Copies of one work agree on its upload mark before any is delivered or put back (pace).
    message_ids = [message_id for message_id, _ in due]
    due = list(zip(message_ids, agreeing_copies([work for _, work in due]), strict=True))
    try:
        # What the rate budget cannot take now goes back at once, each call's share at its turn.
        due, later = pace(due)
        answers.update(later)
        outcomes = deliver_many([work for _, work in due], current_config(), budget=budget)
    except Exception as exc:  # the registry or the config is out: leave them all for SQS to retry
        logger.exception("retry batch failed", extra={"messages": len(due)})
        answers.update({message_id: exc for message_id, _ in due})
        return answers
    for (message_id, work), outcome in zip(due, outcomes, strict=True):
        try:
            if isinstance(outcome, Failed):
                answers[message_id] = act_on_failure(work, outcome)
            else:
                answers[message_id] = act_on(work, outcome)
        except Exception as exc:  # NotPersisted: the queue refused it; SQS keeps this message
            logger.exception("retry message failed", extra={"message_id": message_id})
            answers[message_id] = exc
    return answers


def _as_received(work: WorkItem, again: bool) -> WorkItem:
    """A message SQS hands out again was not finished by the invocation that had it (killed at its
    deadline, a batch left to SQS): that one may have uploaded the reading before it stopped."""
    if again and work.event.reading is not None and not work.upload_uncertain:
        logger.info("received again: its reading may be stored", extra={"device": work.event.device_id})
        return replace(work, upload_uncertain=True)
    return work


def _wait_longer(work: WorkItem) -> WorkItem | Result:
    """The work if it is due now; else it goes back on the queue for another hop (no call, no attempt)."""
    if work.parked_reason is not None:
        # Redriven from the dead-letter queue after an operator fixed the cause: a fresh start.
        logger.info(
            "redriven work", extra={"device": work.event.device_id, "was_parked_for": work.parked_reason}
        )
        work = replace(work, attempts=0, parked_reason=None, waiting_since=clock.now())
    if work.not_before is not None:
        # Rounded up: a hop that ends a fraction early would call before the API's Retry-After.
        remaining = math.ceil(work.not_before - clock.now())
        if remaining > 0:
            delay = schedule(replace(work, not_before=None), remaining)
            return Result(work.event.device_id, "queued", WAITING, LONG_WAIT, retry_in_seconds=delay)
        work = replace(work, not_before=None)
    return work
