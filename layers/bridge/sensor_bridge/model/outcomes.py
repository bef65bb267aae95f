"""The closed set of delivery outcomes. Both functions act on them the same way.

`profile` names the device profile the delivery described the device with, where it got that
far: the answer reports it (a removal has none).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from sensor_bridge.model.contract import IntegrationResponse


@dataclass(frozen=True)
class Integrated:
    """The API has the device (this call created or updated it, or an earlier one did)."""

    response: IntegrationResponse | None = None
    unchanged: bool = False  # True: the registry says it is already there as described: no call made
    forwarded: int = 0  # observations of the work's reading the API accepted (after the device)
    created: bool = True  # False: this call changed a device the API already had (an `update`)
    profile: str | None = None
    # True: this full description happened before one already applied (delivered late): no call
    # made, the newer description stands.
    superseded: bool = False


@dataclass(frozen=True)
class RateLimited:
    retry_after_s: float | None  # None when the API sent no usable Retry-After
    reason: str = "429 TooManyRequests"
    profile: str | None = None


@dataclass(frozen=True)
class Deferred:
    """Not sent, and nothing failed: the work waits its turn (the rate budget, the invocation's
    time, a lease another delivery holds). It consumes no attempt; it waits at most
    MAX_WORK_AGE_SECONDS."""

    reason: str
    wait_s: float | None = None  # when its turn comes, if known
    profile: str | None = None
    # The raw-data query found none of the work's reading stored, and its upload was not sent:
    # the work's `upload_uncertain` mark goes, so its next turn needs one call, not a query again.
    # (A part found stored keeps the mark: the queued work still carries the whole reading.)
    reading_unstored: bool = False


@dataclass(frozen=True)
class Retryable:
    reason: str
    # The request may have reached the API (timeout after sending, dropped connection): a `new`
    # may have been applied, so the next attempt probes before creating.
    ambiguous: bool = False
    profile: str | None = None
    # It was the work's upload that may have been applied: the work is marked `upload_uncertain`.
    reading_maybe_stored: bool = False


@dataclass(frozen=True)
class Parked:
    """Not retried automatically: an operator fixes the cause, then redrives."""

    reason: str
    status: int | None = None
    target: str | None = None  # the field the API named in its error, when it named one
    profile: str | None = None


@dataclass(frozen=True)
class Removed:
    """The device is not in Sensor Data (any more)."""

    existed: bool = True  # False: the bridge never created it, so there was nothing to remove
    # True: this event (a creation or change) happened before a deletion already processed, so
    # nothing was done: the device stays deleted.
    superseded: bool = False


Outcome = Integrated | RateLimited | Deferred | Retryable | Parked | Removed


def with_profile(outcome: Outcome, profile: str) -> Outcome:
    """The outcome, saying which profile described the device (a removal has none)."""
    return outcome if isinstance(outcome, Removed) else replace(outcome, profile=profile)
