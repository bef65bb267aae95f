"""The bridge's one client-side rate limiter, shared by both functions and by every concurrent
instance of them.

Calls are admitted against a model of the API's limits (per OAuth client: a bucket that holds a
minute's calls and refills continuously, and one for the hour; `API_RATE_LIMIT_PER_MINUTE`,
`API_RATE_LIMIT_PER_HOUR`), kept as GCRA arrival times. The API's answers correct the model: a
429's `Retry-After` blocks every call until it ends, and `iTwinPlatform-RateLimit-RemainingCalls`
(on a 429 or a 200) lowers what the model thinks is left. The state lives in
`store.limiter_state` (an item of the registry table), written by compare-and-set, so concurrent
instances spend one budget and none sends a call the model expects to be refused.

    limiter().admit(kind, n)  -> Admission   take n calls now, or how long until they would fit
    limiter().peek(kind)      -> float       seconds until one call would fit (no write)
    limiter().available()     -> int         calls queued work could make now (one read)
    limiter().reserve_slot()  -> float       seconds until a queued call's turn (spreads a backlog)
    limiter().reserve_slots(count, after=n)  the same for several calls, after n made now
    limiter().learn(...)                      what an answer said about the budget

Kinds: ONBOARDING (queued devices: may spend the whole budget); DIRECT (the webhook's own call:
only while half the budget is left and no queued call waits); READINGS (when queued readings'
upload may go, `retry.pace` asks: keep a quarter of the budget for onboarding and wait behind
queued onboarding calls; the upload it lets through is then sent as that work's ONBOARDING call).

Fast path: each instance (here: each thread, as a Lambda instance runs one request at a time)
remembers the state it last read or wrote. The stored state only ever moves forward, so a refusal
computed from the remembered one needs no read: under pressure the webhook answers 202 without
touching DynamoDB. An admission is one conditional write, re-read after a lost race.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cache

from sensor_bridge.runtime import clock
from sensor_bridge.runtime.process import on_reset
from sensor_bridge.runtime.settings import settings
from sensor_bridge.store.limiter_state import BucketState, DynamoDBLimiterState, LimiterState

HELD_BACK = "held back: the rate budget is spent, the API would refuse the call"
BUDGET_SHORT = "queued: the rate budget is short, sent with other devices"
# One bad answer holds calls back for at most this long (the API's longest window is an hour).
MAX_HOLD_SECONDS = 3600.0
MAX_RACES = 25  # compare-and-set attempts before a call is treated as not admitted
_EPSILON = 1e-6


@dataclass(frozen=True)
class Kind:
    name: str
    keep: float  # share of each bucket that must be left after the call
    behind_queue: bool  # waits until every call reserved for queued work has gone


ONBOARDING = Kind("onboarding", 0.0, behind_queue=False)
DIRECT = Kind("direct", 0.5, behind_queue=True)
READINGS = Kind("readings", 0.25, behind_queue=True)


@dataclass(frozen=True)
class Admission:
    admitted: bool
    wait_s: float = 0.0  # refused: seconds until the same request would fit


@dataclass(frozen=True)
class Bucket:
    """GCRA for `capacity` calls per `window` seconds: a call at `now` moves the arrival time
    `tat` to max(tat, now) + interval, and fits while that is at most a window ahead."""

    capacity: int
    window: float

    @property
    def interval(self) -> float:
        return self.window / self.capacity

    def after(self, tat: float, now: float, n: int = 1) -> float:
        return max(tat, now) + n * self.interval

    def room(self, tat: float, now: float) -> int:
        """Calls that fit now."""
        return max(0, math.floor((self.window - (max(tat, now) - now)) / self.interval + _EPSILON))

    def wait(self, tat: float, now: float, n: int, keep: float) -> float:
        allowance = self.window - math.floor(keep * self.capacity) * self.interval
        wait = self.after(tat, now, n) - now - allowance
        return wait if wait > _EPSILON else 0.0


class Limiter:
    def __init__(
        self,
        state: LimiterState,
        per_minute: int,
        per_hour: int | None = None,
        *,
        key: str = "default",
        now: Callable[[], float] = clock.now,
    ) -> None:
        self.minute = Bucket(per_minute, 60.0)
        self.hour = Bucket(per_hour, 3600.0) if per_hour else None
        self._state = state
        self._key = key
        self._now = now
        self._local = threading.local()

    # -- the interface ---------------------------------------------------------------------
    def admit(self, kind: Kind = ONBOARDING, n: int = 1) -> Admission:
        waited: list[float] = []

        def take(s: BucketState, now: float) -> BucketState | None:
            wait = self._wait(s, now, kind, n)
            if wait > 0:
                waited.append(wait)
                return None
            taken = replace(s, minute_tat=self.minute.after(s.minute_tat, now, n))
            if self.hour:
                taken = replace(taken, hour_tat=self.hour.after(s.hour_tat, now, n))
            if not kind.behind_queue:
                return taken  # queued work: its turn, if it had one, is already counted
            # A call that is no queued work's turn pushes every promised turn back.
            queue_hour = self.hour.after(max(s.queue_hour_tat, s.hour_tat), now, n) if self.hour else 0.0
            queue_minute = self.minute.after(max(s.queue_minute_tat, s.minute_tat), now, n)
            return replace(taken, queue_minute_tat=queue_minute, queue_hour_tat=queue_hour)

        if self._update(take) is not None:
            return Admission(True)
        return Admission(False, waited[-1] if waited else self.minute.interval)

    def peek(self, kind: Kind = ONBOARDING) -> float:
        return self._wait(self._known(), self._now(), kind, 1)

    def available(self) -> int:
        """Calls queued work could make now, read afresh (the retry function, once a batch)."""
        s, now = self._load(), self._now()
        if s.blocked_until > now:
            return 0
        calls = [self.minute.room(s.minute_tat, now)]
        if self.hour:
            calls.append(self.hour.room(s.hour_tat, now))
        return min(calls)

    def reserve_slot(self) -> float:
        """Seconds from now until a queued call's turn, after every call already reserved."""
        return self.reserve_slots(1)[0]

    def reserve_slots(self, count: int, *, after: int = 0) -> list[float]:
        """Turns for `count` queued calls (seconds from now, one write), after every call already
        reserved and the `after` calls the caller makes now."""
        slots: list[float] = []

        def reserve(s: BucketState, now: float) -> BucketState:
            slots.clear()
            minute = self.minute.after(max(s.queue_minute_tat, s.minute_tat), now, after)
            hour = s.queue_hour_tat
            if self.hour:
                hour = self.hour.after(max(s.queue_hour_tat, s.hour_tat), now, after)
            for _ in range(count):
                minute += self.minute.interval
                at = max(now, minute - self.minute.window, s.blocked_until)
                if self.hour:
                    hour += self.hour.interval
                    at = max(at, hour - self.hour.window)
                slots.append(at - now)
            return replace(s, queue_minute_tat=minute, queue_hour_tat=hour)

        if self._update(reserve) is None:
            return [self.peek()] * count
        return slots

    def learn(self, *, refused: bool, retry_after_s: float | None, remaining: int | None) -> None:
        """What an answer said: a 429 (`refused`) blocks every call for its Retry-After (an hour at
        most); RemainingCalls, on any answer, lowers the calls the model thinks are left."""

        def correct(s: BucketState, now: float) -> BucketState | None:
            new = s
            if refused:
                told = retry_after_s if retry_after_s is not None else self.minute.interval
                hold = min(told, MAX_HOLD_SECONDS)
                new = replace(new, blocked_until=max(s.blocked_until, now + hold))
                if self.hour and hold > self.minute.window:  # only the hourly cap waits that long
                    new = replace(new, hour_tat=max(s.hour_tat, now + self.hour.window))
            if remaining is not None:
                floor = now + self.minute.window - remaining * self.minute.interval
                if floor > s.minute_tat + self.minute.interval / 2:  # else the model counts as many
                    new = replace(new, minute_tat=floor)
            return new if new != s else None

        self._update(correct)

    # -- state -----------------------------------------------------------------------------
    def _wait(self, s: BucketState, now: float, kind: Kind, n: int) -> float:
        minute_tat = max(s.minute_tat, s.queue_minute_tat) if kind.behind_queue else s.minute_tat
        wait = self.minute.wait(minute_tat, now, n, kind.keep)
        if self.hour:
            hour_tat = max(s.hour_tat, s.queue_hour_tat) if kind.behind_queue else s.hour_tat
            wait = max(wait, self.hour.wait(hour_tat, now, n, kind.keep))
        return max(wait, s.blocked_until - now, 0.0)

    def _known(self) -> BucketState:
        known: BucketState | None = getattr(self._local, "state", None)
        return known if known is not None else self._load()

    def _load(self) -> BucketState:
        loaded = self._state.load(self._key)
        self._local.state = loaded
        return loaded

    def _update(self, change: Callable[[BucketState, float], BucketState | None]) -> BucketState | None:
        """Apply `change` by compare-and-set; None if it had nothing to write or lost every race."""
        s = self._known()
        for _ in range(MAX_RACES):
            new = change(s, self._now())
            if new is None:
                return None
            new = replace(new, version=s.version + 1)
            if self._state.save(self._key, new, s.version):
                self._local.state = new
                return new
            s = self._load()
        return None


@cache
def limiter() -> Limiter:
    """The functions' limiter: the settings' limits, its state in the registry table."""
    s = settings()
    return Limiter(DynamoDBLimiterState(), s.api_rate_limit_per_minute, s.api_rate_limit_per_hour)


on_reset(limiter.cache_clear)
