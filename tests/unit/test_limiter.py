"""The shared rate limiter, on its in-memory state and a fake clock: the budget it admits, what
the API's answers teach it, the turns it gives queued work, and several instances spending one
budget."""

from __future__ import annotations

import threading

from sensor_bridge.sensor_data.limiter import DIRECT, MAX_HOLD_SECONDS, ONBOARDING, READINGS, Kind, Limiter
from sensor_bridge.store.limiter_state import InMemoryLimiterState


class FakeClock:
    def __init__(self, at: float = 1_000_000.0) -> None:
        self.at = at

    def __call__(self) -> float:
        return self.at


Made = tuple[Limiter, FakeClock, InMemoryLimiterState]


def make(per_minute: int = 60, per_hour: int | None = None) -> Made:
    clock, state = FakeClock(), InMemoryLimiterState()
    return Limiter(state, per_minute, per_hour, now=clock), clock, state


def admitted(limiter: Limiter, kind: Kind = ONBOARDING, tries: int = 10_000) -> int:
    count = 0
    while count < tries and limiter.admit(kind).admitted:
        count += 1
    return count


def test_a_full_bucket_admits_a_minute_of_calls_then_one_per_interval() -> None:
    limiter, clock, _ = make(per_minute=60)
    assert admitted(limiter) == 60
    refused = limiter.admit()
    assert not refused.admitted
    assert refused.wait_s == 1.0  # 60 a minute: the next one a second later
    clock.at += 0.5
    assert not limiter.admit().admitted
    clock.at += 0.5
    assert limiter.admit().admitted
    assert not limiter.admit().admitted


def test_the_hourly_cap_binds_once_the_minute_bucket_has_refilled_enough() -> None:
    limiter, clock, _ = make(per_minute=500, per_hour=600)
    assert admitted(limiter) == 500
    clock.at += 60
    # The hour is a bucket too: 600 an hour refill 10 a minute (the API's sliding window would
    # admit none; its 429 then teaches the wait).
    assert admitted(limiter) == 110
    assert limiter.admit().wait_s > 5  # an hourly call returns every 6 s


def test_the_webhook_calls_directly_only_while_half_the_budget_is_left() -> None:
    limiter, _, _ = make(per_minute=60)
    assert admitted(limiter, DIRECT) == 30
    assert limiter.peek(DIRECT) > 0
    assert limiter.peek(ONBOARDING) == 0  # queued work may still spend the rest
    assert admitted(limiter, ONBOARDING) == 30


def test_one_call_a_minute_still_goes_directly_when_idle() -> None:
    limiter, _, _ = make(per_minute=1)
    assert limiter.admit(DIRECT).admitted
    assert limiter.peek(DIRECT) == 60.0


def test_readings_leave_a_quarter_for_onboarding() -> None:
    limiter, _, _ = make(per_minute=100)
    assert admitted(limiter, READINGS) == 75
    assert admitted(limiter, ONBOARDING) == 25


def test_a_429_blocks_every_call_until_its_retry_after_and_its_remaining_calls_count() -> None:
    limiter, clock, _ = make(per_minute=60)
    limiter.learn(refused=True, retry_after_s=30.0, remaining=0)
    assert limiter.peek(ONBOARDING) == 30.0
    clock.at += 30
    assert admitted(limiter) == 30  # refilled for 30 s only
    clock.at += 60
    limiter.learn(refused=True, retry_after_s=5.0, remaining=None)  # a 429 that says no more
    assert limiter.peek(ONBOARDING) == 5.0
    clock.at += 5
    assert admitted(limiter) == 60  # nothing said the bucket was empty
    limiter.learn(refused=True, retry_after_s=11 * 3600.0, remaining=None)
    assert limiter.peek(ONBOARDING) == MAX_HOLD_SECONDS  # one bad answer holds for an hour at most


def test_remaining_calls_lower_the_model_never_raise_it() -> None:
    limiter, _, state = make(per_minute=60)
    limiter.learn(refused=False, retry_after_s=None, remaining=10)  # someone else spent 50
    assert admitted(limiter) == 10
    writes = state.writes
    limiter.learn(refused=False, retry_after_s=None, remaining=40)  # says more than we think: ignored
    assert state.writes == writes
    assert not limiter.admit().admitted


def test_queued_calls_get_consecutive_turns_and_direct_calls_wait_behind_them() -> None:
    limiter, clock, _ = make(per_minute=60)
    assert admitted(limiter) == 60
    turns = [limiter.reserve_slot() for _ in range(5)]
    assert turns == [1.0, 2.0, 3.0, 4.0, 5.0]
    clock.at += 60  # the bucket is full again, but five turns are promised
    assert admitted(limiter, DIRECT) == 25  # behind the five, and leaving half
    assert limiter.reserve_slot() == 0.0  # queued work may go now


def test_refusals_from_the_remembered_state_need_no_read_or_write() -> None:
    limiter, _, state = make(per_minute=2)
    loads: list[str] = []
    original = state.load
    state.load = lambda key: loads.append(key) or original(key)  # type: ignore[method-assign]
    assert admitted(limiter) == 2
    writes, reads = state.writes, len(loads)
    for _ in range(100):
        assert not limiter.admit().admitted
    assert (state.writes, len(loads)) == (writes, reads)


def test_instances_with_their_own_memory_spend_one_budget() -> None:
    clock, state = FakeClock(), InMemoryLimiterState()
    limiters = [Limiter(state, 500, now=clock) for _ in range(4)]  # four Lambda instances
    counts = [0] * 8

    def webhook(i: int) -> None:
        for _ in range(200):
            counts[i] += limiters[i % 4].admit().admitted

    threads = [threading.Thread(target=webhook, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(counts) == 500


def test_available_counts_the_calls_that_fit_now_and_turns_start_after_them() -> None:
    limiter, clock, _ = make(per_minute=60, per_hour=1000)
    assert admitted(limiter, tries=57) == 57
    assert limiter.available() == 3
    # Three calls go now; the next four take turns one second apart after them.
    assert limiter.reserve_slots(4, after=3) == [1.0, 2.0, 3.0, 4.0]
    limiter.learn(refused=True, retry_after_s=10.0, remaining=None)
    assert limiter.available() == 0
    clock.at += 10
    assert limiter.available() == 13  # turns promise calls for later: they take nothing now
