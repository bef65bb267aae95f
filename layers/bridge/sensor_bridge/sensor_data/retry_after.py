"""Reading the API's `Retry-After` header: delta-seconds or an HTTP-date, and when it is unusable;
and, where it is missing or unusable, the platform's own `iTwinPlatform-RateLimit-Retry-After-Seconds`
(sensor-data-api.md: either may be present on a 429)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

# The API's limits are per minute and per hour; a Retry-After beyond half a day is not a rate
# limit but a fault (or a date in the far future), and honouring it would stall delivery for good.
MAX_RETRY_AFTER_SECONDS = 12 * 3600


def parse_retry_after(value: str | None, now: datetime, *, dates: bool = True) -> float | None:
    """Seconds to wait from a Retry-After value (delta-seconds, or an HTTP-date where `dates`);
    None if unusable: missing, garbage, negative, or longer than MAX_RETRY_AFTER_SECONDS."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        if not dates:
            return None
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


PLATFORM_RETRY_AFTER = "iTwinPlatform-RateLimit-Retry-After-Seconds"


def retry_after_of(headers: Mapping[str, str], now: datetime) -> float | None:
    """Seconds a 429 asks to wait: `Retry-After`, else the platform's header (seconds only)."""
    seconds = parse_retry_after(headers.get("retry-after"), now)
    if seconds is None:
        # Seconds only: an HTTP-date there is not what the platform documents.
        seconds = parse_retry_after(headers.get(PLATFORM_RETRY_AFTER), now, dates=False)
    return seconds
