"""Time budgets: an API call never outlives the function that makes it.

The webhook function must answer before the platform gives up (5 s for The Things Stack and
ChirpStack), and the retry function before its own timeout; work that no longer fits is queued,
not cut off mid-call.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

# Kept back for what follows the call: recording the result, or queueing the work.
RESERVE_SECONDS = 1.0
# A call given less than this would only time out.
MIN_CALL_SECONDS = 0.5
BUDGET_SPENT = "the invocation's time budget was spent before the call: queued"


class HasRemainingTime(Protocol):
    def get_remaining_time_in_millis(self) -> int: ...


@dataclass(frozen=True)
class Budget:
    deadline: float  # time.monotonic() by which every call must have ended
    per_call_seconds: float

    @classmethod
    def from_context(cls, context: HasRemainingTime | None, per_call_seconds: float) -> Budget:
        if context is None:
            return cls(float("inf"), per_call_seconds)
        remaining = context.get_remaining_time_in_millis() / 1000
        return cls(time.monotonic() + remaining - RESERVE_SECONDS, per_call_seconds)

    def call_timeout(self) -> float | None:
        """Seconds the next call may take, or None if it no longer fits."""
        left = self.deadline - time.monotonic()
        if left < MIN_CALL_SECONDS:
            return None
        return min(self.per_call_seconds, left)
