"""The local event source mapping keeps its settings when the stack runs each function with its own
environment (`LocalStack.run_functions_with` switches the poller's handler and credentials)."""

from __future__ import annotations

from typing import Any

import pytest

from local.poller import RetryPoller


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
