"""When to try again: the API's Retry-After honoured with jitter, backoff, SQS's 900 s delay ceiling."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from sensor_bridge.model.outcomes import Deferred, RateLimited, Retryable

SQS_MAX_DELAY_SECONDS = 900
BACKOFF_BASE_SECONDS = 5.0
BACKOFF_CAP_SECONDS = 3600.0
# A Retry-After is honoured in full and then spread by at most this much, so that the devices
# queued by one burst of 429s do not all come back in the same second.
RETRY_AFTER_JITTER_SECONDS = 5.0


def backoff_seconds(attempt: int, rng: random.Random | None = None) -> float:
    """Exponential backoff with full jitter for attempt 1, 2, ... (the attempt that just failed)."""
    rng = rng or random.Random()
    ceiling = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** max(attempt - 1, 0))
    # Never zero: an immediate retry would hit the same failure.
    return max(1.0, rng.uniform(ceiling / 2, ceiling))


def wait_seconds(
    outcome: RateLimited | Deferred | Retryable, attempt: int, rng: random.Random | None = None
) -> int:
    """Whole seconds to wait before the next attempt; never less than the API's Retry-After.

    Deferred work waits exactly for the turn the limiter gave it (at least a second), or briefly
    when it waits on something else (a lease, the invocation's time)."""
    rng = rng or random.Random()
    if isinstance(outcome, Deferred):
        if outcome.wait_s is not None:
            return max(1, math.ceil(outcome.wait_s))
        return math.ceil(backoff_seconds(1, rng))
    if isinstance(outcome, RateLimited) and outcome.retry_after_s is not None:
        wait = outcome.retry_after_s + rng.uniform(0, RETRY_AFTER_JITTER_SECONDS)
    else:
        wait = backoff_seconds(attempt, rng)
    return math.ceil(wait)


@dataclass(frozen=True)
class Hop:
    """One SQS send: the delay for this message, and what is left after it."""

    delay_seconds: int
    remaining_seconds: int


def next_hop(wait: int) -> Hop:
    delay = min(max(wait, 0), SQS_MAX_DELAY_SECONDS)
    return Hop(delay_seconds=delay, remaining_seconds=max(wait, 0) - delay)
