"""The invocation's deadline as the AWS clients read it: botocore's per-attempt timeouts and its
attempts are chosen so that a call's worst case fits in what is left."""

from __future__ import annotations

import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sensor_bridge.model.device_event import DeviceEvent, Lifecycle
from sensor_bridge.model.work import WorkItem
from sensor_bridge.retry import queue_batch
from sensor_bridge.runtime.budget import QUEUE_SECONDS, Budget, current_budget, invocation
from sensor_bridge.store.aws_clients import (
    ATTEMPT_LADDER,
    DEFAULT_LIMITS,
    CallLimits,
    client_config,
    limits_for,
)


@given(st.floats(min_value=ATTEMPT_LADDER[0], max_value=DEFAULT_LIMITS.worst_case_seconds))
def test_a_calls_worst_case_fits_in_the_time_left(seconds: float) -> None:
    limits = limits_for(seconds)

    assert limits.worst_case_seconds <= seconds
    assert limits.connect_seconds > 0
    assert limits.read_seconds > 0


def test_with_more_than_the_default_worst_case_the_default_client_serves() -> None:
    assert limits_for(60.0) == DEFAULT_LIMITS
    assert DEFAULT_LIMITS.worst_case_seconds == 2 * (2 + 3) + 1


def test_less_time_means_one_attempt_and_shorter_timeouts() -> None:
    assert limits_for(3.4).attempts == 1
    assert limits_for(3.4).worst_case_seconds == 3.0
    assert limits_for(0.4) == CallLimits(0.25 / 3, 0.25 - 0.25 / 3, 1)
    # Nothing left at all: one short try, after which the caller queues or answers 5xx.
    assert limits_for(0.0).worst_case_seconds == ATTEMPT_LADDER[0]


def test_the_botocore_config_says_total_attempts() -> None:
    config = client_config(CallLimits(0.5, 1.0, 1))

    assert (config.connect_timeout, config.read_timeout) == (0.5, 1.0)
    assert config.retries == {"total_max_attempts": 1, "mode": "standard"}


class Context:
    def __init__(self, seconds: float) -> None:
        self.until = time.monotonic() + seconds

    def get_remaining_time_in_millis(self) -> int:
        return int((self.until - time.monotonic()) * 1000)


def test_the_deadlines_of_one_invocation_follow_from_its_remaining_time() -> None:
    budget = Budget.from_context(Context(4.0), per_call_seconds=2.0)

    assert 2.9 < budget.api_seconds_left() <= 3.0  # 4 s less the answer's and the settling's share
    assert budget.aws_seconds_left(queueing=True) - budget.api_seconds_left() > 0.7
    queueing, other = budget.aws_seconds_left(queueing=True), budget.aws_seconds_left(queueing=False)
    assert abs(queueing - other - QUEUE_SECONDS) < 0.01


def test_the_current_budget_is_the_invocations_and_only_while_it_runs() -> None:
    budget = Budget.from_context(Context(4.0), per_call_seconds=2.0)

    assert current_budget() is None
    with invocation(budget):
        assert current_budget() is budget
    assert current_budget() is None


def test_a_batch_of_queue_sends_side_by_side_reads_the_invocations_deadline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The rest of a large delivery is queued by threads of a pool, which start with no context
    of their own: a client chosen there would not know the invocation's budget and would take
    botocore's full (2 + 3) s x 2 attempts after Lambda had already killed the function. The
    client is chosen once, on the invocation's thread, and serves every thread."""
    budgets: list[Budget | None] = []
    sent: list[int] = []

    class Queue:
        def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, object]]) -> dict[str, object]:
            sent.append(len(Entries))
            return {"Successful": [{"Id": e["Id"]} for e in Entries], "Failed": []}

    def client_for_now() -> Queue:
        budgets.append(current_budget())
        return Queue()

    monkeypatch.setattr(queue_batch, "sqs", client_for_now)
    works = [
        WorkItem(
            DeviceEvent(
                source="s",
                platform="the-things-stack",
                device_id=f"d{i}",
                lifecycle=Lifecycle.CHANGED,
                event_id=f"e{i}",
            )
        )
        for i in range(35)
    ]
    budget = Budget.from_context(Context(4.0), per_call_seconds=2.0)

    with invocation(budget):
        calls = queue_batch.schedule_all(works)

    assert calls == 4
    assert budgets == [budget]  # one client, chosen where the invocation's deadline is known
    assert sorted(sent) == [5, 10, 10, 10]
