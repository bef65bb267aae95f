"""The invocation's deadline: one absolute time that every outbound call reads.

The webhook function must answer before the platform gives up (5 s for The Things Stack and
ChirpStack) and before Lambda kills it (4 s), the retry function before its own timeout. From the
Lambda context's remaining time, three instants follow:

    end        Lambda's kill, less a little to hand the answer back (ANSWER_SECONDS)
    deadline   end less RESERVE_SECONDS: the API calls (the IMS token fetch included) end by then,
               so that the result can still be recorded, or the work queued
    AWS calls  DynamoDB and Secrets Manager end by end - QUEUE_SECONDS (room for one SQS send
               after them); the SQS sends, which are the queueing itself, by `end`

`invocation(budget)` makes a budget the current one for the code that is not handed it (the IMS
fetch, the AWS clients): a context variable, so that concurrent invocations in one process (the
local stack's threads) each read their own. The instants are on the bridge's clock
(`clock.monotonic`): the system's, or simulated time in the benchmarks' frozen local stack.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Protocol

from sensor_bridge.runtime import clock

# Kept back from Lambda's kill to hand the answer back (Powertools' metrics flush, the reply).
ANSWER_SECONDS = 0.2
# Kept back after the API calls: recording the result in the registry, or queueing the work.
RESERVE_SECONDS = 0.8
# Kept back after a DynamoDB or Secrets Manager call: one SQS send to queue the work.
QUEUE_SECONDS = 0.4
# A call given less than this would only time out.
MIN_CALL_SECONDS = 0.5
BUDGET_SPENT = "the invocation's time budget was spent before the call: queued"


class HasRemainingTime(Protocol):
    def get_remaining_time_in_millis(self) -> int: ...


@dataclass(frozen=True)
class Budget:
    deadline: float  # clock.monotonic() by which every API call must have ended
    per_call_seconds: float
    end: float = float("inf")  # clock.monotonic() by which the invocation must have answered

    @classmethod
    def from_context(cls, context: HasRemainingTime | None, per_call_seconds: float) -> Budget:
        if context is None:
            return cls(float("inf"), per_call_seconds)
        end = clock.monotonic() + context.get_remaining_time_in_millis() / 1000 - ANSWER_SECONDS
        return cls(end - RESERVE_SECONDS, per_call_seconds, end)

    def call_timeout(self) -> float | None:
        """Seconds the next API call may take, or None if it no longer fits."""
        left = self.api_seconds_left()
        if left < MIN_CALL_SECONDS:
            return None
        return min(self.per_call_seconds, left)

    def api_seconds_left(self) -> float:
        return self.deadline - clock.monotonic()

    def aws_seconds_left(self, *, queueing: bool) -> float:
        """Seconds an AWS call may take: up to the end for the SQS send that queues the work, else
        leaving room for that send after it."""
        return self.end - clock.monotonic() - (0.0 if queueing else QUEUE_SECONDS)


_current: ContextVar[Budget | None] = ContextVar("sensor_bridge_budget", default=None)


def current_budget() -> Budget | None:
    """The running invocation's budget, if one was started (None: no deadline, e.g. a command)."""
    return _current.get()


def call_seconds(default: float) -> float:
    """The next call's share of the running invocation's deadline (`default` outside one); 1 ms
    when nothing is left, so that the call fails as a timeout, as one that ran out would."""
    budget = current_budget()
    if budget is None:
        return default
    seconds = budget.call_timeout()
    return seconds if seconds is not None else 0.001


@contextmanager
def invocation(budget: Budget) -> Iterator[Budget]:
    """Make `budget` the current one while the block runs."""
    token = _current.set(budget)
    try:
        yield budget
    finally:
        _current.reset(token)
