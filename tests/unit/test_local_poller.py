"""The local event source mapping: it keeps its settings when the stack runs each function with its
own environment (`LocalStack.run_functions_with` switches the poller's handler and credentials),
and on simulated time it moves the clock only as far as the next message that waits."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from local.poller import RetryPoller
from sensor_bridge.runtime import clock


def handler(event: dict[str, Any], context: Any) -> None:
    return None


def other_handler(event: dict[str, Any], context: Any) -> None:
    return None


@pytest.mark.parametrize("real_clock", [True, False])
def test_a_poller_for_another_handler_keeps_the_clock_batch_and_window(real_clock: bool) -> None:
    first = RetryPoller(
        "http://sqs/q",
        "arn:aws:sqs:eu-west-1:123456789012:q",
        handler,
        batch_size=100,
        client=object(),
        real_clock=real_clock,
        batching_window_s=5,
    )
    role_client = object()
    switched = first.with_handler(other_handler, role_client)
    assert switched.handler is other_handler
    assert switched._sqs is role_client
    assert (switched.queue_url, switched.queue_arn) == (first.queue_url, first.queue_arn)
    assert (switched.batch_size, switched.batching_window_s) == (100, 5)
    assert switched.real_clock is real_clock


def test_a_switched_poller_on_the_real_clock_refuses_to_move_simulated_time() -> None:
    """Against an API of yours the rate window runs in wall-clock time: fast-forwarding would
    send calls before their Retry-After has really passed."""
    real = RetryPoller("http://sqs/q", "arn:q", handler, client=object(), real_clock=True)
    with pytest.raises(RuntimeError, match="real clock"):
        real.with_handler(other_handler, object()).run_for(5)


class DelayedQueue:
    """An SQS client for one queue holding one message with a DelaySeconds, on the bridge's clock."""

    def __init__(self, delay_s: float) -> None:
        self.visible_at = clock.now() + delay_s
        self.left = 1
        self.in_flight = False
        self.receives = 0

    def receive_message(self, **_: Any) -> dict[str, Any]:
        self.receives += 1
        if self.left and not self.in_flight and clock.now() >= self.visible_at:
            self.in_flight = True
            return {"Messages": [{"MessageId": "m-1", "ReceiptHandle": "r-1", "Body": "{}"}]}
        return {}

    def delete_message_batch(self, **_: Any) -> None:
        self.left = 0

    def get_queue_attributes(self, **_: Any) -> dict[str, Any]:
        return {"Attributes": {"ApproximateNumberOfMessagesDelayed": str(self.left)}}

    def next_due(self) -> float | None:
        return max(0.0, self.visible_at - clock.now()) if self.left else None


@pytest.fixture
def simulated_time() -> Iterator[None]:
    clock.reset()
    yield
    clock.reset()


@pytest.mark.usefixtures("simulated_time")
def test_drain_jumps_to_the_first_waiting_message_in_whole_steps() -> None:
    """A backlog paced at one call a minute waits most of every minute: drain() moves simulated
    time straight to where stepping would first find the next message, not a second at a time."""
    queue = DelayedQueue(delay_s=3600.4)
    handled: list[float] = []
    poller = RetryPoller(
        "http://sqs/q",
        "arn:q",
        lambda event, context: handled.append(clock.offset()),
        client=queue,
        next_due=queue.next_due,
    )

    stats = poller.drain(step_s=1.0)

    assert handled == [3601.0]  # as stepping a second at a time would have found it
    assert stats.fast_forwarded_s == 3601.0
    assert queue.receives < 5


@pytest.mark.usefixtures("simulated_time")
def test_without_the_queues_state_drain_steps() -> None:
    queue = DelayedQueue(delay_s=30)
    poller = RetryPoller("http://sqs/q", "arn:q", handler, client=queue)

    poller.drain(step_s=1.0)

    assert queue.receives > 30
