"""Client-side rate limiting learned from the API's 429s.

While an API `Retry-After` runs, this process sends no integrate call: each would only be refused
and count against the subscription's limit again. The work is queued for when the wait is over,
exactly as if the API had answered 429 itself.
"""

from __future__ import annotations

import threading

from sensor_bridge.model.outcomes import Outcome, RateLimited
from sensor_bridge.runtime import clock
from sensor_bridge.runtime.process import on_reset

HELD_BACK = "held back: the API asked to wait (Retry-After)"
# The gate holds this process's calls for at most this long after one 429: the API's longest
# window is an hour, and one bad answer must not stop a warm function for longer.
MAX_HOLD_SECONDS = 3600.0

_lock = threading.Lock()
_blocked_until = 0.0


def held_back() -> RateLimited | None:
    """A RateLimited outcome for a call that must not be sent now, or None if it may go."""
    remaining = _blocked_until - clock.now()
    if remaining <= 0:
        return None
    return RateLimited(retry_after_s=remaining, reason=HELD_BACK)


def learn(outcome: Outcome) -> None:
    """Remember an API Retry-After (a 429 without a usable one teaches nothing)."""
    global _blocked_until
    if isinstance(outcome, RateLimited) and outcome.retry_after_s is not None and outcome.reason != HELD_BACK:
        with _lock:
            hold = min(outcome.retry_after_s, MAX_HOLD_SECONDS)
            _blocked_until = max(_blocked_until, clock.now() + hold)


@on_reset
def reset() -> None:
    global _blocked_until
    with _lock:
        _blocked_until = 0.0
