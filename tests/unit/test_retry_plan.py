"""Retry planning: Retry-After as seconds or HTTP-date, backoff with jitter, SQS's 900 s ceiling."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from sensor_bridge.model.outcomes import RateLimited, Retryable
from sensor_bridge.retry.plan import (
    BACKOFF_CAP_SECONDS,
    RETRY_AFTER_JITTER_SECONDS,
    SQS_MAX_DELAY_SECONDS,
    backoff_seconds,
    next_hop,
    wait_seconds,
)
from sensor_bridge.sensor_data.client import read_answer
from sensor_bridge.sensor_data.retry_after import parse_retry_after

NOW = datetime(2025, 11, 28, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(("value", "seconds"), [("1200", 1200.0), (" 40 ", 40.0), ("0", 0.0), ("2.5", 2.5)])
def test_retry_after_in_seconds_is_read_as_given(value: str, seconds: float) -> None:
    assert parse_retry_after(value, NOW) == seconds


def test_retry_after_as_http_date_is_the_time_until_it() -> None:
    assert parse_retry_after(format_datetime(NOW + timedelta(seconds=90), usegmt=True), NOW) == 90.0


def test_retry_after_http_date_in_the_past_means_now() -> None:
    assert parse_retry_after(format_datetime(NOW - timedelta(hours=1), usegmt=True), NOW) == 0.0


@pytest.mark.parametrize("value", [None, "", "   ", "-5", "soon", "nan", "inf", "12 seconds"])
def test_missing_negative_or_garbage_retry_after_is_unusable(value: str | None) -> None:
    assert parse_retry_after(value, NOW) is None


def test_backoff_grows_exponentially_within_full_jitter_and_is_capped() -> None:
    rng = random.Random(4)
    for attempt, ceiling in [(1, 5.0), (2, 10.0), (3, 20.0), (6, 160.0)]:
        samples = [backoff_seconds(attempt, rng) for _ in range(200)]
        assert all(ceiling / 2 <= s <= ceiling for s in samples)
        assert max(samples) - min(samples) > ceiling / 4  # jittered, not a fixed step
    assert all(backoff_seconds(40, rng) <= BACKOFF_CAP_SECONDS for _ in range(50))


def test_wait_honours_retry_after_in_full_plus_bounded_jitter() -> None:
    rng = random.Random(7)
    waits = {wait_seconds(RateLimited(1200.0), 1, rng) for _ in range(200)}
    assert min(waits) >= 1200
    assert max(waits) <= 1200 + RETRY_AFTER_JITTER_SECONDS
    assert len(waits) > 1


def test_wait_without_retry_after_is_the_backoff_and_never_zero() -> None:
    rng = random.Random(1)
    assert all(1 <= wait_seconds(RateLimited(None), 1, rng) <= 5 for _ in range(100))
    assert all(1 <= wait_seconds(Retryable("503"), 1, rng) <= 5 for _ in range(100))
    assert all(40 <= wait_seconds(Retryable("503"), 5, rng) <= 80 for _ in range(100))


@pytest.mark.parametrize(
    ("wait", "delay", "remaining"),
    [(0, 0, 0), (60, 60, 0), (900, 900, 0), (901, 900, 1), (1200, 900, 300), (7200, 900, 6300), (-3, 0, 0)],
)
def test_waits_over_900_seconds_go_in_hops_never_shortened(wait: int, delay: int, remaining: int) -> None:
    hop = next_hop(wait)
    assert (hop.delay_seconds, hop.remaining_seconds) == (delay, remaining)
    assert hop.delay_seconds <= SQS_MAX_DELAY_SECONDS
    assert hop.delay_seconds + hop.remaining_seconds == max(wait, 0)


def test_retry_after_beyond_half_a_day_is_unusable_and_falls_to_the_backoff() -> None:
    from sensor_bridge.sensor_data.retry_after import MAX_RETRY_AFTER_SECONDS

    now = datetime(2026, 11, 28, tzinfo=UTC)
    assert parse_retry_after(str(MAX_RETRY_AFTER_SECONDS), now) == MAX_RETRY_AFTER_SECONDS
    assert parse_retry_after(str(MAX_RETRY_AFTER_SECONDS + 1), now) is None
    assert parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", now) is None


def test_a_429_without_a_usable_retry_after_waits_the_platforms_own_header() -> None:
    platform = {"iTwinPlatform-RateLimit-Retry-After-Seconds": "17"}
    assert read_answer(httpx.Response(429, headers=platform)) == RateLimited(17.0, "429 Too Many Requests")
    garbage = {"Retry-After": "soon", **platform}
    assert read_answer(httpx.Response(429, headers=garbage)) == RateLimited(17.0, "429 Too Many Requests")
    # Retry-After, when usable, is what the API said first.
    both = {"Retry-After": "5", **platform}
    assert read_answer(httpx.Response(429, headers=both)) == RateLimited(5.0, "429 Too Many Requests")
    # The platform header counts seconds only; neither usable: the backoff schedule decides.
    for unusable in ("Wed, 21 Oct 2026 07:28:00 GMT", "", "nan", "inf", "-5", "1e9", "17s"):
        headers = {"iTwinPlatform-RateLimit-Retry-After-Seconds": unusable}
        assert read_answer(httpx.Response(429, headers=headers)) == RateLimited(None, "429 Too Many Requests")
