"""The bridge's one clock, in epoch seconds.

Production reads the system clock. The local stack runs on simulated time (it fast-forwards
while every message waits on a delay), so it shifts this clock and SQS's together.
"""

from __future__ import annotations

import time

_offset_seconds = 0.0
# When frozen: the system time simulated time started from; it then moves only by advance().
_frozen_at: float | None = None


def now() -> float:
    base = _frozen_at if _frozen_at is not None else time.time()
    return base + _offset_seconds


def monotonic() -> float:
    """Seconds for deadlines: the system's monotonic clock; frozen, simulated time, so that a
    function's time budget is spent only as fast as the simulated API's rate windows run (a
    benchmark on simulated time then measures the API's limits, not this machine's load)."""
    return now() if _frozen_at is not None else time.monotonic()


def freeze(frozen: bool = True) -> None:
    """Stop (or resume) following the system clock. Frozen, time moves only by advance(): the
    time the functions take to run on this machine is not counted (the local stack's
    benchmarks measure what the API's limits allow, not this machine's speed)."""
    global _frozen_at
    _frozen_at = time.time() if frozen else None


def advance(seconds: float) -> None:
    """Move simulated time forward (local stack and tests only)."""
    global _offset_seconds
    _offset_seconds += seconds


def offset() -> float:
    return _offset_seconds


def reset() -> None:
    global _offset_seconds, _frozen_at
    _offset_seconds = 0.0
    if _frozen_at is not None:
        _frozen_at = time.time()
