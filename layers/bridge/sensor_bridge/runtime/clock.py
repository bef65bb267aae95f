"""The bridge's one clock, in epoch seconds.

Production reads the system clock. The local stack runs on simulated time (it fast-forwards
while every message waits on a delay), so it shifts this clock and SQS's together.
"""

from __future__ import annotations

import time

_offset_seconds = 0.0


def now() -> float:
    return time.time() + _offset_seconds


def advance(seconds: float) -> None:
    """Move simulated time forward (local stack and tests only)."""
    global _offset_seconds
    _offset_seconds += seconds


def offset() -> float:
    return _offset_seconds


def reset() -> None:
    global _offset_seconds
    _offset_seconds = 0.0
