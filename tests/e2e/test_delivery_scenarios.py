"""Delivery that never loses or duplicates (issue #4), scenario by scenario on the local stack.

Each test posts real The Things Stack webhooks through the real handler, lets the retry function
run on simulated time, and counts what crossed a boundary: the simulator's calls and creations,
the retry and dead-letter queues. Every test ends with the same ledger: the devices answered 2xx
are exactly the devices integrated (each created once) plus the work parked, and nothing is left.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from local.lambda_runtime import cold_start
from local.stack import LocalStack
from sensor_bridge.delivery.context import IN_FLIGHT
from sensor_bridge.runtime import clock
from tests.scenario import APP, SOURCE, Ledger, changes, device_calls, ref, registry, tts_event, with_node


# -- duplicates ------------------------------------------------------------------------------
def test_same_event_delivered_twice_creates_one_device_and_answers_duplicate_with_the_first_status(
    stack: LocalStack, ledger: Ledger
) -> None:
    first = ledger.post(tts_event())
    second = ledger.post(tts_event())

    assert first[0] == second[0] == 200
    (delivered,), (repeated,) = first[1]["results"], second[1]["results"]
    assert delivered["status"] == "integrated"
    assert (repeated["status"], repeated["firstStatus"]) == ("duplicate", "integrated")
    assert (repeated["ids"], repeated["profile"]) == (delivered["ids"], delivered["profile"])
    assert stack.simulator.state()["created"][ref("strain-gauge-01")] == 1
    assert changes(stack, "strain-gauge-01") == ["new:200"]
    ledger.check()


def test_device_joining_five_times_creates_one_device_and_calls_once(
    stack: LocalStack, ledger: Ledger
) -> None:
    answers = [ledger.post(tts_event(session_key=f"key-{n}")) for n in range(5)]

    assert [status for status, _ in answers] == [200] * 5
    assert [body["results"][0]["status"] for _, body in answers] == ["integrated"] + ["unchanged"] * 4
    assert stack.simulator.state()["created"][ref("strain-gauge-01")] == 1
    assert changes(stack, "strain-gauge-01") == ["new:200"]
    ledger.check()


def test_two_concurrent_first_deliveries_create_one_device(stack: LocalStack, ledger: Ledger) -> None:
    with_node(ledger)
    # The first call takes a while, so the second delivery arrives while the first holds the lease.
    stack.simulator.inject({"latency_ms": 400})
    answers: list[tuple[int, Any]] = []
    start = threading.Barrier(2)

    def deliver(key: str) -> None:
        start.wait()
        answers.append(ledger.post(tts_event(session_key=key)))

    threads = [threading.Thread(target=deliver, args=(k,)) for k in ("key-a", "key-b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stack.drain()

    statuses = sorted(body["results"][0]["status"] for _, body in answers)
    assert all(status in (200, 202) for status, _ in answers)
    assert statuses in (["integrated", "queued"], ["integrated", "unchanged"])
    assert stack.simulator.state()["created"][ref("strain-gauge-01")] == 1
    assert changes(stack, "strain-gauge-01") == ["new:200"]
    ledger.check()


def test_delivery_meeting_a_held_lease_waits_its_turn_and_creates_one_device(
    stack: LocalStack, ledger: Ledger
) -> None:
    """Two claims interleaved deterministically: the lease is held while the webhook arrives."""
    with_node(ledger)
    held = registry.claim_device(SOURCE, f"{APP}/strain-gauge-01", "other-delivery", ref("strain-gauge-01"))
    assert held is not None

    status, body = ledger.post(tts_event())
    assert status == 202
    assert body["results"][0] == {
        "device": f"{APP}/strain-gauge-01",
        "status": "queued",
        "reason": "held-back",
        "detail": IN_FLIGHT,
        "retryInSeconds": body["results"][0]["retryInSeconds"],
    }
    assert changes(stack, "strain-gauge-01") == []

    registry.release_device(SOURCE, f"{APP}/strain-gauge-01", "other-delivery")
    stack.drain()

    assert stack.simulator.state()["created"][ref("strain-gauge-01")] == 1
    assert changes(stack, "strain-gauge-01") == ["new:200"]
    ledger.check()


# -- changes ---------------------------------------------------------------------------------
def test_moved_device_becomes_one_update_with_the_new_location(stack: LocalStack, ledger: Ledger) -> None:
    ledger.post(tts_event("ttn-06-uplink-new-device.json"))
    status, body = ledger.post(tts_event("ttn-06-uplink-new-device.json", location=(52.0, 4.3, 1.0)))
    ledger.post(tts_event("ttn-06-uplink-new-device.json", location=(52.0, 4.3, 1.0)))

    assert status == 200
    assert body["results"][0]["status"] == "updated"
    assert changes(stack, "env-node-04") == ["new:200", "update:200"]
    update = device_calls(stack)[-1]["body"]["integration"]["devices"][0]
    assert update["props"]["LOCATION"] == {"type": "Point", "coordinates": [4.3, 52.0, 1.0]}
    assert update["sensors"] == []  # the sensors did not change
    assert stack.simulator.state()["created"][ref("env-node-04")] == 1
    ledger.check()


def test_renamed_device_becomes_one_update_and_keeps_its_ids(stack: LocalStack, ledger: Ledger) -> None:
    """TTS names a device by its id; a platform that renames one reaches the bridge as a changed
    DeviceEvent, which is what goes on the queue: deliver the renamed event through the retry
    function."""
    from sensor_bridge.model.device_event import DeviceEvent
    from sensor_bridge.model.work import WorkItem
    from sensor_bridge.retry.queue import schedule

    status, first = ledger.post(tts_event())
    assert status == 200
    event = DeviceEvent(
        source=SOURCE, platform="the-things-stack", device_id=f"{APP}/strain-gauge-01", name="Gauge 1 (north)"
    )
    schedule(WorkItem(event), 0)
    stack.drain()

    assert changes(stack, "strain-gauge-01") == ["new:200", "update:200"]
    update = device_calls(stack)[-1]["body"]["integration"]["devices"][0]
    assert update["props"]["NAME"] == "Gauge 1 (north)"
    state = stack.simulator.state()
    assert state["created"][ref("strain-gauge-01")] == 1
    (device,) = [d for d in state["devices"] if d["refId"] == ref("strain-gauge-01")]
    assert device["props"]["NAME"] == "Gauge 1 (north)"
    record = registry.get_device(SOURCE, f"{APP}/strain-gauge-01")
    assert record is not None
    assert record.api_device_id == first["results"][0]["ids"]["devices"][0]["id"]
    ledger.check()


# -- retries ---------------------------------------------------------------------------------
@pytest.fixture
def frozen_clock(stack: LocalStack) -> Iterator[None]:
    """Simulated time that moves only when the test moves it: on a loaded machine the seconds
    this test itself takes would otherwise count towards the Retry-After it checks."""
    clock.freeze(True)
    try:
        yield
    finally:
        clock.freeze(False)


@pytest.mark.usefixtures("frozen_clock")
def test_retry_after_1200_is_delivered_after_1200_simulated_seconds_not_before(
    stack: LocalStack, ledger: Ledger
) -> None:
    with_node(ledger)
    stack.simulator.inject({"status": 429, "retry_after": "1200"})

    status, body = ledger.post(tts_event())

    assert status == 202
    result = body["results"][0]
    assert result["status"] == "queued"
    assert 1200 <= result["retryInSeconds"] <= 1205
    (queued,) = stack.queue_messages("retry")
    assert queued["_delay_seconds"] == 900  # SQS's ceiling: the rest is a second hop
    assert queued["not_before"] is not None

    # The simulated clock runs on real time too: on a loaded machine the poller's 1,199 s can be
    # a few more, so this looks well before the turn; the simulator's times below are exact.
    stack.run_for(1150)
    assert changes(stack, "strain-gauge-01") == ["new:429"]  # nothing before its time
    (hopped,) = stack.queue_messages("retry")
    assert hopped["attempts"] == 1
    assert hopped["not_before"] is None
    assert 295 <= hopped["_delay_seconds"] <= 305

    stack.drain()

    assert changes(stack, "strain-gauge-01") == ["new:429", "new:200"]
    # On the simulator's clock (the bridge's, simulated, frozen: only the test moves it).
    refused, delivered = (
        c["at"]
        for c in device_calls(stack)
        if c["body"]["integration"]["devices"][0]["refId"] == ref("strain-gauge-01")
    )
    assert delivered - refused >= 1200
    assert stack.simulator.state()["created"][ref("strain-gauge-01")] == 1
    ledger.check()


@pytest.mark.parametrize("retry_after", ["-5", "soon", ""])
def test_unusable_retry_after_falls_back_to_backoff_and_delivers(
    stack: LocalStack, ledger: Ledger, retry_after: str
) -> None:
    with_node(ledger)
    stack.simulator.inject({"status": 429, "retry_after": retry_after})

    status, body = ledger.post(tts_event())
    stack.drain()

    assert status == 202
    assert 1 <= body["results"][0]["retryInSeconds"] <= 5  # attempt 1's backoff: 2.5 to 5 s
    assert changes(stack, "strain-gauge-01") == ["new:429", "new:200"]
    ledger.check()


def test_server_error_then_success_is_delivered_by_the_retry_function(
    stack: LocalStack, ledger: Ledger
) -> None:
    with_node(ledger)
    stack.simulator.inject({"status": 503, "count": 2})

    status, body = ledger.post(tts_event())
    assert status == 202
    assert body["results"][0]["status"] == "queued"
    stack.drain()

    # A 5xx may come from a gateway after the API applied the `new`: the next attempt probes by
    # `update` first (503 again, then 422: not there) and only then creates.
    assert changes(stack, "strain-gauge-01") == ["new:503", "update:503", "update:422", "new:200"]
    assert stack.simulator.state()["created"][ref("strain-gauge-01")] == 1
    assert stack.queue_messages("dead-letter") == []
    ledger.check()


def test_persistent_server_errors_dead_letter_after_the_maximum_attempts_with_the_error(
    stack: LocalStack, ledger: Ledger
) -> None:
    from sensor_bridge.runtime.settings import settings

    with_node(ledger)
    stack.simulator.inject({"status": 502, "count": 1000})

    status, _ = ledger.post(tts_event())
    stack.drain()

    maximum = settings().max_attempts
    assert status == 202
    # After the first 502 every attempt probes by `update` before it would create again.
    assert changes(stack, "strain-gauge-01") == ["new:502"] + ["update:502"] * (maximum - 1)
    (parked,) = stack.queue_messages("dead-letter")
    assert parked["event"]["device_id"] == f"{APP}/strain-gauge-01"
    assert parked["attempts"] == maximum
    assert parked["parked_reason"].startswith(f"gave up after {maximum} attempts: 502 BadGateway")
    assert parked["last_error"].startswith("502 BadGateway")
    assert ref("strain-gauge-01") not in stack.simulator.state()["created"]
    ledger.check()


def test_forbidden_parks_at_once_without_retrying(stack: LocalStack, ledger: Ledger) -> None:
    with_node(ledger)
    stack.simulator.inject({"status": 403})

    status, body = ledger.post(tts_event())
    stack.drain()

    assert status == 202
    assert body["results"][0]["status"] == "parked"
    assert changes(stack, "strain-gauge-01") == ["new:403"]
    (parked,) = stack.queue_messages("dead-letter")
    assert parked["attempts"] == 1
    assert parked["parked_reason"].startswith("403 InsufficientPermissions")
    ledger.check()


def test_expired_token_is_refreshed_once_and_the_device_integrated(stack: LocalStack, ledger: Ledger) -> None:
    with_node(ledger)
    tokens_before = stack.simulator.state()["token_requests"]
    stack.simulator.expire_tokens()

    status, body = ledger.post(tts_event())

    assert status == 200
    assert body["results"][0]["status"] == "integrated"
    assert changes(stack, "strain-gauge-01") == ["new:401", "new:200"]
    assert stack.simulator.state()["token_requests"] == tokens_before + 1
    ledger.check()


def test_dropped_connection_on_new_probes_by_update_before_creating(
    stack: LocalStack, ledger: Ledger
) -> None:
    """The connection drops after the request was sent: the `new` may have landed. The next
    attempt addresses the device by refId first; the API does not know it (422), so it creates it.
    (The simulator's drop applies nothing; an "applied, then dropped" fault would make the probe's
    update succeed and the device be recorded without a second `new`.)"""
    with_node(ledger)
    stack.simulator.inject({"drop": True})

    status, body = ledger.post(tts_event())
    assert status == 202
    assert body["results"][0]["status"] == "queued"
    record = registry.get_device(SOURCE, f"{APP}/strain-gauge-01")
    assert record is not None
    assert record.maybe_created
    stack.drain()

    assert changes(stack, "strain-gauge-01") == ["new:0", "update:422", "new:200"]
    assert stack.simulator.state()["created"][ref("strain-gauge-01")] == 1
    assert stack.queue_messages("dead-letter") == []
    ledger.check()


# -- the queue itself fails ------------------------------------------------------------------
def test_queue_outage_during_a_webhook_answers_503_and_the_resend_succeeds(
    stack: LocalStack, ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    with_node(ledger)
    assert stack.resources is not None
    stack.simulator.inject({"status": 503})  # the work must be queued ...
    missing = stack.resources.retry_queue_url.rsplit("/", 1)[0] + "/no-such-queue"
    monkeypatch.setenv("RETRY_QUEUE_URL", missing)  # ... and the queue refuses it
    cold_start()

    status, body = ledger.post(tts_event())

    assert status == 503
    assert body["error"]["code"] == "ServiceUnavailable"
    assert stack.queue_messages("retry") == []
    assert stack.queue_messages("dead-letter") == []

    monkeypatch.setenv("RETRY_QUEUE_URL", stack.resources.retry_queue_url)
    cold_start()
    status, body = ledger.post(tts_event())  # the platform sends the same event again

    assert status == 200
    assert body["results"][0]["status"] == "integrated"
    # The 503 may have come after the `new` was applied: the resend probes before creating.
    assert changes(stack, "strain-gauge-01") == ["new:503", "update:422", "new:200"]
    assert stack.simulator.state()["created"][ref("strain-gauge-01")] == 1
    ledger.check()
