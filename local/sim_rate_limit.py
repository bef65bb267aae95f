"""The Sensor Data simulator's rate limiter: the iTwin Platform's documented limits, per OAuth client.

Bentley's "rate limits" page: the limit follows the OAuth client's subscription. Trial: 500
requests a minute, plus a cap of 5,000 calls an hour; Basic, Premium and Custom: 5,000 a minute.
A refused call is answered 429 with ``Retry-After`` (seconds) and the headers
``iTwinPlatform-RateLimit-RemainingCalls``, ``iTwinPlatform-RateLimit-Retry-After-Seconds`` (the
same value as ``Retry-After``) and ``iTwinPlatform-Tier`` (the subscription's name).

How the minute and the hour are counted is not documented. The simulator assumes:

* the per-minute limit is a token bucket that holds a minute's worth of calls and refills
  continuously (``per_minute / 60`` calls a second), so a full bucket admits a burst of
  ``per_minute`` calls and then paces them, instead of a window that refills all at once;
* the hourly cap is a sliding window: at most ``per_hour`` admitted calls in any 3,600 s;
* only admitted calls count; a refused call takes nothing from either;
* ``Retry-After`` is the time until the next call *would* be admitted (rounded up to whole
  seconds): a call sent that many seconds later is admitted, one sent a second earlier is not;
* ``RemainingCalls`` is also sent on admitted calls (how many more could be admitted now), and
  ``iTwinPlatform-Tier`` on every answer the limiter saw. An unlimited simulator sends neither.
"""

from __future__ import annotations

import argparse
import math
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = [
    "TIERS",
    "Admission",
    "RateLimit",
    "RateLimiter",
    "add_rate_limit_arguments",
    "positive_or_none",
    "rate_limit_from_args",
]

# (per minute, per hour) of each preset tier; "custom" takes its numbers from the caller.
PRESETS: dict[str, tuple[int | None, int | None]] = {
    "unlimited": (None, None),
    "trial": (500, 5000),
    "paid": (5000, None),
}
TIERS = (*PRESETS, "custom")
HOUR_SECONDS = 3600.0
# Slack for float time: an epoch timestamp resolves only to ~0.2 us, so a call sent at the exact
# Retry-After may find the bucket a hair short of a call. A millisecond early is on time.
SLACK_S = 1e-3


def positive_or_none(name: str, value: object) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer or null")
    return value


@dataclass(frozen=True)
class RateLimit:
    """A tier and its numbers; ``None`` means no limit of that kind."""

    tier: str = "unlimited"
    per_minute: int | None = None
    per_hour: int | None = None

    @classmethod
    def of(cls, tier: str | None = None, per_minute: object = None, per_hour: object = None) -> RateLimit:
        """A preset tier, or custom numbers. Numbers given with a preset override its own and
        make the tier ``custom`` (unless they are the preset's); numbers alone are ``custom``."""
        minute = positive_or_none("rate_limit_per_minute", per_minute)
        hour = positive_or_none("rate_limit_per_hour", per_hour)
        if tier is not None and tier not in TIERS:
            raise ValueError(f"tier must be one of {', '.join(TIERS)}")
        if tier == "unlimited" and (minute, hour) != (None, None):
            raise ValueError("the unlimited tier takes no numbers")
        if tier in (None, "custom"):
            if tier == "custom" and (minute, hour) == (None, None):
                raise ValueError("the custom tier needs rate_limit_per_minute and/or rate_limit_per_hour")
            return cls("custom", minute, hour) if (minute, hour) != (None, None) else cls()
        preset_minute, preset_hour = PRESETS[tier]
        numbers = (minute or preset_minute, hour or preset_hour)
        return cls(tier if numbers == PRESETS[tier] else "custom", *numbers)

    @property
    def limited(self) -> bool:
        return self.per_minute is not None or self.per_hour is not None

    @property
    def header_tier(self) -> str:
        """The ``iTwinPlatform-Tier`` value (the real API sends the subscription's name)."""
        return self.tier.capitalize()

    def describe(self) -> str:
        parts = [f"{self.per_minute} requests/minute"] if self.per_minute else []
        parts += [f"{self.per_hour} requests/hour"] if self.per_hour else []
        return f"{self.tier}: {', '.join(parts)}" if parts else "unlimited"

    def as_config(self) -> dict[str, str | int | None]:
        return {
            "tier": self.tier,
            "rate_limit_per_minute": self.per_minute,
            "rate_limit_per_hour": self.per_hour,
        }


@dataclass(frozen=True)
class Admission:
    """The limiter's verdict on one call, with the headers its answer carries."""

    admitted: bool
    headers: dict[str, str]
    retry_after_s: int = 0


@dataclass
class _ClientBudget:
    tokens: float
    updated: float
    admitted: deque[float] = field(default_factory=deque)


class RateLimiter:
    """Token bucket per minute plus a sliding-window hourly cap, one budget per OAuth client."""

    def __init__(self, limit: RateLimit, clock: Callable[[], float]) -> None:
        self.limit = limit
        self._clock = clock
        self._lock = threading.Lock()
        self._budgets: dict[str, _ClientBudget] = {}

    def reset(self, limit: RateLimit | None = None) -> None:
        """Full buckets and empty hours for every client (optionally under a new limit)."""
        with self._lock:
            if limit is not None:
                self.limit = limit
            self._budgets.clear()

    def admit(self, client_id: str) -> Admission:
        """Take one call from the client's budget, or say how long until one would be admitted."""
        if not self.limit.limited:
            return Admission(True, {})
        with self._lock:
            now = self._clock()
            budget = self._refilled(client_id, now)
            wait = self._wait(budget, now)
            if wait > SLACK_S:
                seconds = max(1, math.ceil(wait - SLACK_S))
                return Admission(False, self._headers(0, seconds), seconds)
            if self.limit.per_minute is not None:
                budget.tokens -= 1.0
            if self.limit.per_hour is not None:
                budget.admitted.append(now)
            return Admission(True, self._headers(self._remaining(budget), None))

    def next_admission_in(self, client_id: str) -> float:
        """Seconds until the client's next call would be admitted (0 if it would be now)."""
        if not self.limit.limited:
            return 0.0
        with self._lock:
            now = self._clock()
            return max(0.0, self._wait(self._refilled(client_id, now), now))

    def _refilled(self, client_id: str, now: float) -> _ClientBudget:
        per_minute = self.limit.per_minute or 0
        budget = self._budgets.get(client_id)
        if budget is None:
            budget = self._budgets[client_id] = _ClientBudget(float(per_minute), now)
        # Multiply before dividing, so whole seconds at whole rates refill exactly.
        elapsed = max(0.0, now - budget.updated)
        budget.tokens = min(float(per_minute), budget.tokens + elapsed * per_minute / 60.0)
        budget.updated = now
        while budget.admitted and budget.admitted[0] + HOUR_SECONDS <= now + SLACK_S:
            budget.admitted.popleft()
        return budget

    def _wait(self, budget: _ClientBudget, now: float) -> float:
        wait = 0.0
        if self.limit.per_minute is not None and budget.tokens < 1.0:
            wait = (1.0 - budget.tokens) * 60.0 / self.limit.per_minute
        per_hour = self.limit.per_hour
        if per_hour is not None and len(budget.admitted) >= per_hour:
            leaving = budget.admitted[len(budget.admitted) - per_hour]
            wait = max(wait, leaving + HOUR_SECONDS - now)
        return wait

    def _remaining(self, budget: _ClientBudget) -> int:
        left: list[int] = []
        if self.limit.per_minute is not None:
            left.append(math.floor(budget.tokens + SLACK_S * self.limit.per_minute / 60.0))
        if self.limit.per_hour is not None:
            left.append(self.limit.per_hour - len(budget.admitted))
        return max(0, min(left))

    def _headers(self, remaining: int, retry_after_s: int | None) -> dict[str, str]:
        headers = {"iTwinPlatform-RateLimit-RemainingCalls": str(remaining)}
        if retry_after_s is not None:
            headers["Retry-After"] = str(retry_after_s)
            headers["iTwinPlatform-RateLimit-Retry-After-Seconds"] = str(retry_after_s)
        headers["iTwinPlatform-Tier"] = self.limit.header_tier
        return headers


def add_rate_limit_arguments(parser: argparse.ArgumentParser, default_per_minute: int | None = None) -> None:
    """``--tier``, ``--rate-limit`` (per minute) and ``--rate-limit-hour`` on a command line."""
    default = f"default {default_per_minute}/minute" if default_per_minute else "default unlimited"
    parser.add_argument("--tier", choices=TIERS, default=None, help=f"the API's rate-limit tier ({default})")
    parser.add_argument(
        "--rate-limit",
        type=int,
        default=None,
        help="requests per minute (a custom tier, or overriding the tier's)",
    )
    parser.add_argument(
        "--rate-limit-hour", type=int, default=None, help="requests per hour (a custom hourly cap)"
    )
    parser.set_defaults(default_per_minute=default_per_minute)


def rate_limit_from_args(args: argparse.Namespace) -> RateLimit:
    """The limit the arguments of ``add_rate_limit_arguments`` ask for; a usage error exits."""
    per_minute = args.rate_limit
    if (args.tier, per_minute, args.rate_limit_hour) == (None, None, None):
        per_minute = args.default_per_minute
    try:
        return RateLimit.of(args.tier, per_minute, args.rate_limit_hour)
    except ValueError as err:
        raise SystemExit(f"error: {err}") from err
