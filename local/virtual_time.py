"""Simulated time for the local stack: the bridge's clock and moto's SQS delays move together.

When every message on the retry queue waits on a delay, the poller fast-forwards instead of
sleeping, so a `Retry-After: 1200` is honoured in full without a twenty-minute wait.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sensor_bridge.runtime import clock

_installed = False


def install() -> None:
    """Make moto's SQS (running in this process) read the bridge's clock."""
    global _installed
    if _installed:
        return
    import moto.sqs.models

    sqs_models: Any = moto.sqs.models

    real_unix_time: Callable[..., float] = sqs_models.unix_time

    def unix_time(dt: object = None) -> float:
        return real_unix_time(dt) if dt is not None else clock.now()

    def unix_time_millis(dt: object = None) -> float:
        return unix_time(dt) * 1000.0

    sqs_models.unix_time = unix_time
    sqs_models.unix_time_millis = unix_time_millis
    _installed = True


def advance(seconds: float) -> None:
    clock.advance(seconds)


def elapsed() -> float:
    """Simulated seconds added so far."""
    return clock.offset()
