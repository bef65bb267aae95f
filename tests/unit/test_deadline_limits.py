"""The invocation's deadline as the AWS clients read it: botocore's per-attempt timeouts and its
attempts are chosen so that a call's worst case fits in what is left."""

from __future__ import annotations

import time

import pytest
from botocore.exceptions import ClientError
from hypothesis import given
from hypothesis import strategies as st

from sensor_bridge.model.device_event import DeviceEvent, Lifecycle
from sensor_bridge.model.work import WorkItem
from sensor_bridge.retry import queue_batch
from sensor_bridge.retry.queue import NotPersisted
from sensor_bridge.runtime import clock
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


def works(count: int) -> list[WorkItem]:
    return [
        WorkItem(
            DeviceEvent(
                source="s",
                platform="the-things-stack",
                device_id=f"d{i}",
                lifecycle=Lifecycle.CHANGED,
                event_id=f"e{i}",
            )
        )
        for i in range(count)
    ]


def accepted(entries: list[dict[str, object]]) -> dict[str, object]:
    return {"Successful": [{"Id": e["Id"]} for e in entries], "Failed": []}


def test_a_batch_of_queue_sends_side_by_side_reads_the_invocations_deadline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The rest of a large delivery is queued by threads of a pool, which start with no context
    of their own: a client chosen there from the context would not know the invocation's budget
    and would take botocore's full (2 + 3) s x 2 attempts after Lambda had already killed the
    function. Each send's client is chosen for the time left of the budget read on the
    invocation's thread."""
    given: list[float] = []
    sent: list[int] = []

    class Queue:
        def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, object]]) -> dict[str, object]:
            sent.append(len(Entries))
            return accepted(Entries)

    def client_within(seconds: float) -> Queue:
        given.append(seconds)
        return Queue()

    def client_from_context() -> Queue:
        raise AssertionError("a pool thread cannot see the invocation's budget")

    monkeypatch.setattr(queue_batch, "sqs_within", client_within)
    monkeypatch.setattr(queue_batch, "sqs", client_from_context)
    budget = Budget.from_context(Context(4.0), per_call_seconds=2.0)

    with invocation(budget):
        calls = queue_batch.schedule_all(works(35))

    assert calls == 4
    assert len(given) == 4
    assert all(queue_batch.MIN_SEND_SECONDS <= seconds < 4.0 - 0.2 for seconds in given)
    assert sorted(sent) == [5, 10, 10, 10]


@pytest.mark.usefixtures("frozen")
def test_queue_sends_stop_while_the_time_left_still_holds_one_and_nothing_is_promised(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A throttling SQS: each SendMessageBatch takes 0.3 s (simulated). 200 works need 20 calls,
    8 at a time, and the invocation has 1 s left: the sends stop before one could outlast it,
    and the webhook is told nothing is promised (NotPersisted: it answers 503, the platform
    sends the delivery again), where each thread used to go on for its ~3 calls regardless."""
    given: list[float] = []

    class SlowQueue:
        def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, object]]) -> dict[str, object]:
            clock.advance(0.3)
            return accepted(Entries)

    def client_within(seconds: float) -> SlowQueue:
        given.append(seconds)
        return SlowQueue()

    monkeypatch.setattr(queue_batch, "sqs_within", client_within, raising=False)
    monkeypatch.setattr(queue_batch, "sqs", SlowQueue)
    budget = Budget(clock.monotonic(), per_call_seconds=2.0, end=clock.monotonic() + 1.0)

    with invocation(budget), pytest.raises(NotPersisted, match="time ran out"):
        queue_batch.schedule_all(works(200))

    assert 0 < len(given) < 20
    assert min(given) >= queue_batch.MIN_SEND_SECONDS  # each send's timeouts fit in what was left


def test_after_a_refused_send_the_sends_not_started_are_dropped_not_waited_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The second call is refused (throttled) at once while the first is slow: the answer will
    be a 503 whatever the others do, so those not started are not sent. The webhook used to
    read the calls' results in order: it saw the refusal only after the first call, while the
    pool went on sending."""
    sent: list[str] = []

    class ThrottledQueue:
        def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, object]]) -> dict[str, object]:
            first = str(Entries[0]["Id"])
            sent.append(first)
            if first == "10":
                error = {"Error": {"Code": "RequestThrottled", "Message": "slow down"}}
                raise ClientError(error, "SendMessageBatch")
            time.sleep(1.0 if first == "0" else 0.3)
            return accepted(Entries)

    monkeypatch.setattr(queue_batch, "sqs", ThrottledQueue)

    with pytest.raises(NotPersisted, match="ClientError"):
        queue_batch.schedule_all(works(200))  # no invocation: no deadline

    assert len(sent) <= queue_batch.PARALLEL_CALLS + 1  # the ones running when it was refused
