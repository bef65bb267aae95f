"""The closed set of delivery outcomes. Both functions act on them the same way."""

from __future__ import annotations

from dataclasses import dataclass

from sensor_bridge.model.contract import IntegrationResponse


@dataclass(frozen=True)
class Integrated:
    """The API has the device (this call created or updated it, or an earlier one did)."""

    response: IntegrationResponse | None = None
    unchanged: bool = False  # True: the registry says it is already there as described: no call made
    forwarded: int = 0  # observations of the work's reading the API accepted (after the device)


@dataclass(frozen=True)
class RateLimited:
    retry_after_s: float | None  # None when the API sent no usable Retry-After
    reason: str = "429 TooManyRequests"


@dataclass(frozen=True)
class Deferred:
    """Not sent, and nothing failed: the work waits its turn (the rate budget, the invocation's
    time, a lease another delivery holds). It consumes no attempt; it waits at most
    MAX_WORK_AGE_SECONDS."""

    reason: str
    wait_s: float | None = None  # when its turn comes, if known


@dataclass(frozen=True)
class Retryable:
    reason: str
    # The request may have reached the API (timeout after sending, dropped connection): a `new`
    # may have been applied, so the next attempt probes before creating.
    ambiguous: bool = False


@dataclass(frozen=True)
class Parked:
    """Not retried automatically: an operator fixes the cause, then redrives."""

    reason: str
    status: int | None = None
    target: str | None = None  # the field the API named in its error, when it named one


@dataclass(frozen=True)
class Removed:
    """The device was removed downstream (or was never there)."""


Outcome = Integrated | RateLimited | Deferred | Retryable | Parked | Removed
