"""When to try again: Retry-After parsing, backoff with jitter, SQS's 900 s delay ceiling."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from sensor_bridge.model.outcomes import RateLimited, Retryable

SQS_MAX_DELAY_SECONDS = 900
BACKOFF_BASE_SECONDS = 5.0
BACKOFF_CAP_SECONDS = 3600.0
# A Retry-After is honoured in full and then spread by at most this much, so that the devices
# queued by one burst of 429s do not all come back in the same second.
RETRY_AFTER_JITTER_SECONDS = 5.0
# The API's limits are per minute and per hour; a Retry-After beyond half a day is not a rate
# limit but a fault (or a date in the far future), and honouring it would stall delivery for good.
MAX_RETRY_AFTER_SECONDS = 12 * 3600


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a Retry-After value (delta-seconds or HTTP-date); None if unusable:
    missing, garbage, negative, or longer than MAX_RETRY_AFTER_SECONDS."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = max((when - now).total_seconds(), 0.0)
    if math.isnan(seconds) or math.isinf(seconds) or seconds < 0 or seconds > MAX_RETRY_AFTER_SECONDS:
        return None  # unusable: the backoff schedule decides
    return seconds


def backoff_seconds(attempt: int, rng: random.Random | None = None) -> float:
    """Exponential backoff with full jitter for attempt 1, 2, ... (the attempt that just failed)."""
    rng = rng or random.Random()
    ceiling = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** max(attempt - 1, 0))
    # Never zero: an immediate retry would hit the same failure.
    return max(1.0, rng.uniform(ceiling / 2, ceiling))


def wait_seconds(outcome: RateLimited | Retryable, attempt: int, rng: random.Random | None = None) -> int:
    """Whole seconds to wait before the next attempt; never less than the API's Retry-After."""
    rng = rng or random.Random()
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
