"""An invocation's time budget runs on the bridge's clock: in production the system's, in the
local stack's benchmarks (frozen simulated time) simulated time, so that a loaded machine does not
turn a benchmark of the API's limits into one of its own speed."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from local.apigw import LambdaContext
from sensor_bridge.runtime import clock
from sensor_bridge.runtime.budget import Budget


def webhook_budget() -> Budget:
    """1.6 s of invocation: 0.6 s for calls once the reserve is kept back."""
    return Budget.from_context(LambdaContext("WebhookFunction", timeout_seconds=1.6), 2.0)


@pytest.mark.usefixtures("frozen")
def test_on_frozen_simulated_time_only_simulated_time_spends_the_budget() -> None:
    budget = webhook_budget()
    time.sleep(0.3)  # the machine is slow: no matter
    assert budget.call_timeout() == pytest.approx(0.6, abs=0.01)
    clock.advance(0.2)
    assert budget.call_timeout() is None  # 0.4 s left: a call would only time out


@pytest.fixture
def offset() -> Iterator[None]:
    yield
    clock.reset()


@pytest.mark.usefixtures("offset")
def test_on_the_real_clock_real_time_spends_the_budget() -> None:
    budget = webhook_budget()
    clock.advance(100)  # simulated time moving does not
    left = budget.call_timeout()
    assert left is not None
    assert left > 0.5
    time.sleep(0.3)
    assert budget.call_timeout() is None
