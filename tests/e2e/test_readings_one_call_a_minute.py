"""Readings that wait with their device's onboarding, at one call a minute (issue 10's
`make run RATE_LIMIT=1`): each comes back at the turn the retry function reserved for it. When its
device is in by then (another message onboarded it), that turn is its upload's call. Admitted as
READINGS, the upload waited behind its own turn and every sibling's, came back at a new reserved
turn, and was parked after MAX_WORK_AGE_SECONDS with its reading never sent."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from local.lambda_runtime import cold_start
from local.stack import LocalStack
from sensor_bridge.runtime import clock
from tests.conftest import EVENTS, load_event

# Every sample, as `make run` replays them: 13 devices, 8 readings, several for devices that
# another message onboards.
SAMPLES = sorted(path.name for path in EVENTS.glob("*.json"))


@pytest.fixture
def one_a_minute(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalStack]:
    """The API and the bridge allow one call a minute, on simulated time."""
    stack.simulator.configure(rate_limit_per_minute=1)
    monkeypatch.setenv("API_RATE_LIMIT_PER_MINUTE", "1")
    cold_start()
    clock.freeze()
    try:
        yield stack
    finally:
        clock.freeze(False)


def test_readings_queued_with_their_devices_are_uploaded_and_none_is_parked(one_a_minute: LocalStack) -> None:
    answers = [one_a_minute.post_event(load_event(name))[0] for name in SAMPLES]
    assert 202 in answers  # queued: the budget is one call

    one_a_minute.drain()

    state = one_a_minute.simulator.state()
    assert one_a_minute.queue_messages("dead-letter") == []
    assert one_a_minute.queue_messages("retry") == []
    assert [c["status"] for c in state["upload_calls"]] == [202] * len(state["upload_calls"])
    uploaded = sum(len(c["body"]["observations"]) for c in state["upload_calls"])
    assert uploaded == len(state["observations"]) > 0
