"""What counts as an attempt: a call the API refused or that failed. Waiting its turn (a lease
held by another delivery, a spent rate budget) consumes none, however many wake-ups it takes;
waiting work is bounded by its age (MAX_WORK_AGE_SECONDS) instead."""

from __future__ import annotations

import pytest

from local.lambda_runtime import cold_start
from local.stack import LocalStack
from sensor_bridge.delivery.context import IN_FLIGHT
from sensor_bridge.runtime import clock
from sensor_bridge.store.dynamodb_registry import DynamoDBRegistry
from tests.scenario import APP, SOURCE, Ledger, changes, device_calls, ref, tts_event, with_node

registry = DynamoDBRegistry()
DEVICE = f"{APP}/strain-gauge-01"


def hold_lease_for(stack: LocalStack, simulated_s: float) -> None:
    """Another delivery keeps the device's lease (renewing it) while the retry function runs."""
    for _ in range(int(simulated_s // 60)):
        assert registry.claim_device(SOURCE, DEVICE, "other-delivery", ref("strain-gauge-01")) is not None
        stack.run_for(60)


def queue_behind_a_held_lease(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch, setting: str, value: str
) -> None:
    monkeypatch.setenv(setting, value)
    cold_start()
    with_node(ledger)
    registry.claim_device(SOURCE, DEVICE, "other-delivery", ref("strain-gauge-01"))
    status, body = ledger.post(tts_event())
    assert (status, body["results"][0]["detail"]) == (202, IN_FLIGHT)


def test_waiting_on_a_lease_for_many_wake_ups_consumes_no_attempt(
    stack: LocalStack, ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue_behind_a_held_lease(ledger, monkeypatch, "MAX_ATTEMPTS", "2")

    hold_lease_for(stack, 600)  # about a hundred wake-ups of the retry function

    (waiting,) = stack.queue_messages("retry")
    assert waiting["attempts"] == 0
    assert stack.queue_messages("dead-letter") == []
    assert stack.poller.stats.messages > 10 * 2  # far more wake-ups than MAX_ATTEMPTS
    registry.release_device(SOURCE, DEVICE, "other-delivery")
    stack.drain()
    assert changes(stack, "strain-gauge-01") == ["new:200"]
    ledger.check()


def test_work_that_waits_longer_than_its_maximum_age_is_parked_with_that_reason(
    stack: LocalStack, ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue_behind_a_held_lease(ledger, monkeypatch, "MAX_WORK_AGE_SECONDS", "300")

    hold_lease_for(stack, 420)

    (parked,) = stack.queue_messages("dead-letter")
    assert parked["parked_reason"] == f"waited longer than 300 s (MAX_WORK_AGE_SECONDS): {IN_FLIGHT}"
    assert parked["attempts"] == 0
    assert stack.queue_messages("retry") == []
    assert changes(stack, "strain-gauge-01") == []
    ledger.check()


def limit_to(stack: LocalStack, ledger: Ledger, monkeypatch: pytest.MonkeyPatch, per_minute: int) -> None:
    """The node exists; then the API and the bridge's limiter allow `per_minute` calls a minute."""
    with_node(ledger)
    stack.simulator.configure(rate_limit_per_minute=per_minute)
    monkeypatch.setenv("API_RATE_LIMIT_PER_MINUTE", str(per_minute))
    cold_start()


def test_a_backlog_at_one_call_a_minute_is_delivered_without_a_429_or_a_parked_device(
    stack: LocalStack, ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    limit_to(stack, ledger, monkeypatch, 1)
    monkeypatch.setenv("MAX_ATTEMPTS", "1")  # a single refused call would park
    cold_start()
    clock.freeze()  # the 25 webhooks arrive at one instant, however long this machine takes
    try:
        answers = [ledger.post(tts_event(device=f"joiner-{i:02d}"))[0] for i in range(25)]
        stack.drain()
    finally:
        clock.freeze(False)

    calls = stack.simulator.state()["calls"][2:]  # after the node and with_node's device
    assert answers[0] == 200  # idle: the first device goes directly, with its ids
    assert set(answers[1:]) == {202}
    assert [c["status"] for c in calls if c["status"] != 200] == []  # no call was refused
    assert len(calls) == 1 + 3  # the first device, then the other 24, ten per call
    assert stack.queue_messages("dead-letter") == []
    ledger.check()


def test_the_retry_function_spreads_a_backlog_one_call_of_devices_per_turn(
    stack: LocalStack, ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    limit_to(stack, ledger, monkeypatch, 6)
    clock.freeze()  # the 60 webhooks arrive at one instant, however long this machine takes
    try:
        spread_backlog(stack, ledger)
    finally:
        clock.freeze(False)


def spread_backlog(stack: LocalStack, ledger: Ledger) -> None:
    answers = [ledger.post(tts_event(device=f"joiner-{i:02d}"))[0] for i in range(60)]
    assert answers.count(200) == 3  # while half the budget was left

    stack.advance(1)
    assert stack.poll_once() == 57  # one batch: 6 calls' worth, the budget has 3 calls now

    turns = delays(stack)
    # The 20 devices of the two full calls left go back at their own turns, 10 s apart (6 a
    # minute), after the turns already promised: not all at once. The 7 of the partial call take
    # no turn: they come back in a second, to fill a call with whatever the storm brings next.
    assert sorted(turns.values()) == [7, 10, 10]
    assert turns[1] == 7
    first, second = sorted(d for d in turns if d != 1)
    assert second - first == 10
    stack.advance(1)
    assert stack.poll_once() == 7  # now alone: they take the turn after the two, 10 s later
    (later,) = set(delays(stack)) - {first, second}
    assert later + 1 - second in (9, 10, 11)  # sent a second later; whole seconds
    stack.drain()
    assert [c["status"] for c in stack.simulator.state()["calls"] if c["status"] != 200] == []
    assert stack.queue_messages("dead-letter") == []
    ledger.check()


def delays(stack: LocalStack) -> dict[int, int]:
    """Devices on the retry queue per delay (seconds); none has spent an attempt."""
    turns: dict[int, int] = {}
    for message in stack.queue_messages("retry"):
        assert message["attempts"] == 0
        turns[message["_delay_seconds"]] = turns.get(message["_delay_seconds"], 0) + 1
    return turns


def test_the_partial_calls_of_two_batches_go_back_together_and_fill_one_call(
    stack: LocalStack, ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A backlog larger than a batch is cut without regard to sources: each batch's remainder for
    a source (here 5 devices of 15) would otherwise spend a whole turn on a call of its own."""
    limit_to(stack, ledger, monkeypatch, 1)
    monkeypatch.setattr(stack.poller, "batch_size", 15)  # the event source mapping's BatchSize
    clock.freeze()
    try:
        assert ledger.post(tts_event(device="first"))[0] == 200  # idle: sent directly
        before = len(device_calls(stack))
        for i in range(30):
            assert ledger.post(tts_event(device=f"joiner-{i:02d}"))[0] == 202
        stack.advance(60)  # the next free turn: one call's worth goes now
        assert stack.poll_once() == stack.poll_once() == 15
        assert delays(stack) == {1: 10} | {d: 10 for d in delays(stack) if d != 1}
        stack.drain()
    finally:
        clock.freeze(False)

    sizes = [len(c["body"]["integration"]["devices"]) for c in device_calls(stack)[before:]]
    assert sizes == [10, 10, 10]  # 30 devices, three full calls: no call of five
    assert [c["status"] for c in stack.simulator.state()["calls"] if c["status"] != 200] == []
    ledger.check()
