"""Per-process state, and forgetting it all at once.

A Lambda execution environment keeps module-level caches (settings, clients, secrets, the token,
the rate limiter) across warm invocations. The local stack and the tests change the environment the
bridge reads, as a new deployment would, and then call `reset_process_state()`. Each module
registers its own reset here when it is imported, so this room needs to know none of them (and a
module never imported has nothing to forget).
"""

from __future__ import annotations

from collections.abc import Callable

_resets: list[Callable[[], None]] = []


def on_reset(reset: Callable[[], None]) -> Callable[[], None]:
    """Register a function that forgets one module's per-process state (usable as a decorator)."""
    _resets.append(reset)
    return reset


def reset_process_state() -> None:
    """What a new execution environment starts without: every registered cache is forgotten."""
    for reset in list(_resets):
        reset()
