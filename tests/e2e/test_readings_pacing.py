"""Pacing readings: the readings of devices already in Sensor Data need upload calls, not
integrate calls. A retry batch of them is budgeted as the upload calls it needs (one for up to
UPLOAD_MAX_OBSERVATIONS observations), and when the budget has none, they all wait for the same
turn and come back to share one call, instead of being split ten to a reserved integrate turn."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from local.lambda_runtime import cold_start
from local.stack import LocalStack
from sensor_bridge.model.work import WorkItem
from sensor_bridge.runtime import clock
from sensor_bridge.sensor_data.limiter import ONBOARDING, limiter
from sensor_bridge.store.aws_clients import sqs
from tests.conftest import load_event

DEVICES = 30
PER_MINUTE = 6  # the bridge's limiter and the simulator: a call every 10 s, one kept for onboarding


def uplink(device: int, minute: int) -> bytes:
    """A ChirpStack `up` of a light sensor (the chirpstack-02 sample, one device of a fleet)."""
    body = json.loads(load_event("chirpstack-02-up-abp-device.json")["body"])
    body["deduplicationId"] = f"pacing-{device:02d}-{minute}"
    body["time"] = f"2025-11-28T00:{minute:02d}:{device:02d}.000Z"
    body["deviceInfo"]["devEui"] = f"{0xAB00000000000000 + device:016x}"
    body["deviceInfo"]["deviceName"] = f"pacing-{device:02d}"
    body["object"] = {"lux": 100.0 + device}
    return json.dumps(body).encode()


def post_minute(stack: LocalStack, minute: int) -> list[int]:
    headers = {"content-type": "application/json", "x-bridge-token": "local-chirpstack-token"}
    path = "/webhooks/chirpstack-demo?event=up"
    return [stack.invoke("POST", path, headers=headers, body=uplink(d, minute))[0] for d in range(DEVICES)]


def uploads(stack: LocalStack) -> list[tuple[int, int]]:
    """(status, observations) per upload call."""
    return [(c["status"], len(c["body"]["observations"])) for c in stack.simulator.state()["upload_calls"]]


@pytest.fixture
def fleet(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalStack]:
    """DEVICES devices onboarded with their first reading; then the API and the bridge allow
    PER_MINUTE calls a minute, on a clock that stands still while the functions run, with the
    minute's budget full."""
    assert set(post_minute(stack, 0)) == {200}
    stack.drain()
    assert uploads(stack) == [(202, DEVICES)]
    stack.simulator.configure(rate_limit_per_minute=PER_MINUTE)
    monkeypatch.setenv("API_RATE_LIMIT_PER_MINUTE", str(PER_MINUTE))
    cold_start()
    clock.freeze()
    try:
        stack.advance(60)
        yield stack
    finally:
        clock.freeze(False)


def spend_down_to(room: int) -> None:
    limiter().admit(ONBOARDING, PER_MINUTE - room)
    assert limiter().available() == room


def test_a_batch_of_readings_takes_one_upload_call_when_the_budget_has_too_few_integrate_turns(
    fleet: LocalStack,
) -> None:
    assert set(post_minute(fleet, 1)) == {200}  # known devices: no call, each reading queued
    spend_down_to(2)  # too few turns for 30 devices at ten a call, enough for one upload

    assert fleet.poll_once() == DEVICES

    assert uploads(fleet)[1:] == [(202, DEVICES)]
    assert fleet.queue_messages("retry") == []


def test_readings_the_budget_cannot_take_wait_for_one_turn_and_share_one_call(fleet: LocalStack) -> None:
    assert set(post_minute(fleet, 1)) == {200}
    spend_down_to(1)  # the last call is kept for onboarding: no upload now

    assert fleet.poll_once() == DEVICES

    waiting: list[dict[str, Any]] = fleet.queue_messages("retry")
    assert len(waiting) == DEVICES
    assert {m["_delay_seconds"] for m in waiting} == {60 // PER_MINUTE}  # one turn, all together
    assert {m["attempts"] for m in waiting} == {0}
    assert uploads(fleet)[1:] == []
    fleet.drain()
    assert uploads(fleet)[1:] == [(202, DEVICES)]
    assert len(fleet.simulator.state()["observations"]) == 2 * DEVICES
    assert fleet.queue_messages("dead-letter") == []


def test_readings_whose_upload_may_be_stored_wait_until_their_query_and_upload_both_fit(
    fleet: LocalStack,
) -> None:
    """A look-up is one more call: budgeted with the upload, so that the query never takes the
    upload's turn and leaves the upload held back, to query again at its next turn."""
    assert set(post_minute(fleet, 1)) == {200}
    assert fleet.resources is not None
    for item in fleet.take_messages("retry"):  # the minute's readings, their upload uncertain
        item.pop("_delay_seconds")
        marked = replace(WorkItem.from_message(json.dumps(item)), upload_uncertain=True)
        sqs().send_message(QueueUrl=fleet.resources.retry_queue_url, MessageBody=marked.to_message())
    spend_down_to(2)
    # A new device joins: too little budget for the webhook's own call, so it is queued too, and
    # the batch needs its integrate call, then the query and the upload: one call too many.
    headers = {"content-type": "application/json", "x-bridge-token": "local-chirpstack-token"}
    assert (
        fleet.invoke("POST", "/webhooks/chirpstack-demo?event=up", headers=headers, body=uplink(DEVICES, 1))[
            0
        ]
        == 202
    )

    fleet.advance(1)  # the queued device's delay (a second, to share a call)
    assert limiter().available() == 2
    fleet.poll_once()

    # The new device's call went (and its own reading's upload); the marked readings wait for a
    # turn with room for both their calls.
    assert fleet.simulator.state()["query_calls"] == []  # before: queried, then its upload held back
    assert uploads(fleet)[1:] == [(202, 1)]
    assert {m["upload_uncertain"] for m in fleet.queue_messages("retry")} == {True}
    fleet.drain()
    assert [c["status"] for c in fleet.simulator.state()["query_calls"]] == [200]  # looked up once
    assert uploads(fleet)[1:] == [(202, 1), (202, DEVICES)]
    assert len(fleet.simulator.state()["observations"]) == 2 * DEVICES + 1
    assert fleet.queue_messages("dead-letter") == []
