"""Queueing many work items at once (the rest of a large webhook delivery): SendMessageBatch, ten
messages a call (SQS's maximum; their sizes together within the queue's MaximumMessageSize, as
SQS requires of a batch), the calls side by side, so that 1,400 items cost 140 calls in a
fraction of the webhook's time budget rather than 1,400 calls one after the other. Each send reads
the invocation's deadline first: on a slow or throttling SQS the rest is not sent, and the webhook
answers 503 before Lambda would have killed it."""

from __future__ import annotations

import math
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from functools import partial
from typing import Any

from sensor_bridge.model.work import WorkItem
from sensor_bridge.retry.queue import NotPersisted, message, message_bytes
from sensor_bridge.runtime.budget import Budget, current_budget
from sensor_bridge.runtime.settings import settings
from sensor_bridge.store.aws_clients import ATTEMPT_LADDER, sqs, sqs_within

ENTRIES_PER_CALL = 10  # SendMessageBatch's limit
PARALLEL_CALLS = 8  # within botocore's pool of 10 connections per client
# What one call costs the webhook, in-region and CPU included (conservative), for deciding how
# much of the time budget to keep for queueing.
SECONDS_PER_CALL = 0.05
SECONDS_TO_START = 0.2
# The shortest client's worst case: with less time left, a send could outlast the invocation.
MIN_SEND_SECONDS = ATTEMPT_LADDER[0]
TIME_SPENT = "the invocation's time ran out before the queue took every work: nothing is promised"


def seconds_to_queue(items: int) -> float:
    """About how long queueing `items` work items takes (an upper estimate)."""
    calls = math.ceil(items / ENTRIES_PER_CALL)
    return SECONDS_TO_START + math.ceil(calls / PARALLEL_CALLS) * SECONDS_PER_CALL


def schedule_all(works: Sequence[WorkItem]) -> int:
    """Put every work on the retry queue, due now; the number of calls it took. NotPersisted if
    any message is refused, or the invocation's time runs out first: the caller must not promise
    the work (the platform sends again, and what was queued already is delivered once, as the
    registry decides)."""
    calls = _calls([({"Id": str(i), **message(w, 0)}, message_bytes(w)) for i, w in enumerate(works)])
    if not calls:
        return 0
    # Read here, on the invocation's thread: the pool's threads start with empty context
    # variables, so they would not see the deadline (runtime/budget.py).
    send = partial(_send, current_budget())
    pool = ThreadPoolExecutor(max_workers=min(PARALLEL_CALLS, len(calls)))
    try:
        for sent in as_completed([pool.submit(send, call) for call in calls]):
            sent.result()  # re-raises the first failed call's error here
    finally:
        # After a failure the sends not started are dropped (the answer is a 503 all the same),
        # not waited for; the running ones end within the time left (their clients' timeouts).
        pool.shutdown(wait=True, cancel_futures=True)
    return len(calls)


def _calls(entries: list[tuple[dict[str, Any], int]]) -> list[list[dict[str, Any]]]:
    """(Entry, its size) packed in order into calls of at most ten, their sizes together within
    the queue's MaximumMessageSize (each one alone fits: checked before the webhook accepted it)."""
    limit = settings().queue_max_message_bytes
    calls: list[list[dict[str, Any]]] = []
    size = 0
    for entry, length in entries:
        if not calls or len(calls[-1]) == ENTRIES_PER_CALL or size + length > limit:
            calls.append([])
            size = 0
        calls[-1].append(entry)
        size += length
    return calls


def _send(budget: Budget | None, entries: list[dict[str, Any]]) -> None:
    from botocore.exceptions import BotoCoreError, ClientError

    queue_url = settings().retry_queue_url
    try:
        answer = _client_in_time(budget).send_message_batch(QueueUrl=queue_url, Entries=entries)
        failed = {f["Id"] for f in answer.get("Failed", [])}
        if failed:  # SQS refused some of the call's messages: once more, those alone
            again = _client_in_time(budget).send_message_batch(
                QueueUrl=queue_url, Entries=[e for e in entries if e["Id"] in failed]
            )
            if again.get("Failed"):
                codes = sorted({f.get("Code", "?") for f in again["Failed"]})
                raise NotPersisted(f"queue refused {len(again['Failed'])} messages: {', '.join(codes)}")
    except (BotoCoreError, ClientError) as exc:
        raise NotPersisted(f"queue refused the work: {type(exc).__name__}") from exc


def _client_in_time(budget: Budget | None) -> Any:
    """The client for the next send, its timeouts within the time left (read before each send:
    on a slow SQS the time goes while the sends run); NotPersisted if too little is left."""
    if budget is None:
        return sqs()  # no deadline (a command, a test): the default client
    left = budget.aws_seconds_left(queueing=True)
    if left < MIN_SEND_SECONDS:
        raise NotPersisted(TIME_SPENT)
    return sqs_within(left)
