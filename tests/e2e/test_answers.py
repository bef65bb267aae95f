"""Answers that say what happened: each status in the webhook's body, on its log line and as its
metric, in the same words (retry.route's table)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from local.stack import LocalStack
from sensor_bridge.retry.route import DESCRIBED_SINCE, NOTHING_TO_REMOVE, SUPERSEDED, UNCHANGED
from tests.conftest import load_event
from tests.e2e.test_delivery_scenarios import Ledger, tts_event, with_node
from tests.integration.test_observability import cloudwatch_output, lines

# Emitted for every webhook or call, whatever happened: not what the answer is about.
ALWAYS = {"WebhooksReceived", "ApiLatency"}


def answered(
    stack: LocalStack, event: dict[str, Any]
) -> tuple[int, dict[str, Any], set[str], dict[str, Any]]:
    """HTTP status, the one result, the per-source metrics it counted, and its log line."""
    with cloudwatch_output() as out:
        status, body = stack.post_event(event)
    records = lines(out)
    (result,) = body["results"]
    names = {
        m["Name"]
        for r in records
        if "_aws" in r and "source" in r
        for d in r["_aws"]["CloudWatchMetrics"]
        for m in d["Metrics"]
    }
    (log,) = [r for r in records if r.get("message") == f"delivery {result['status']}"]
    return status, result, names - ALWAYS, log


@pytest.fixture
def ready(stack: LocalStack) -> LocalStack:
    with_node(Ledger(stack))
    return stack


def test_creation_update_repeat_and_replay_each_answer_in_their_own_words(ready: LocalStack) -> None:
    uplink = tts_event("ttn-06-uplink-new-device.json")
    status, created, metrics, log = answered(ready, uplink)
    assert (status, created["status"], created["profile"], metrics) == (
        200,
        "integrated",
        "environment-sensor",
        {"DevicesIntegrated"},
    )
    assert (log["status"], log["profile"], log["device"]) == (
        "integrated",
        "environment-sensor",
        created["device"],
    )

    # Uplinks carry no event id: the same one again is a repeat the registry answers.
    status, unchanged, metrics, _ = answered(ready, uplink)
    assert (status, unchanged["status"], unchanged["detail"], metrics) == (
        200,
        "unchanged",
        UNCHANGED,
        {"DevicesUnchanged"},
    )

    moved = tts_event("ttn-06-uplink-new-device.json", location=(52.0, 4.3, 1.0))
    status, updated, metrics, _ = answered(ready, moved)
    assert (status, updated["status"], updated["profile"], metrics) == (
        200,
        "updated",
        "environment-sensor",
        {"DevicesUpdated"},
    )
    assert updated["ids"]["devices"][0]["id"] == created["ids"]["devices"][0]["id"]

    # A join has an event id: the same one again is the platform resending it.
    answered(ready, tts_event())
    status, replayed, metrics, log = answered(ready, tts_event())
    assert (status, replayed["status"], replayed["firstStatus"], metrics) == (
        200,
        "duplicate",
        "integrated",
        {"Duplicates"},
    )
    assert log["firstStatus"] == "integrated"


def test_queued_answers_say_why_rate_limited_held_back_or_retryable(ready: LocalStack) -> None:
    assert ready.simulator is not None
    ready.simulator.inject({"status": 429, "retry_after": "30"})
    status, limited, metrics, log = answered(ready, tts_event(device="gauge-a", session_key="a"))
    assert (status, limited["status"], limited["reason"], metrics) == (
        202,
        "queued",
        "rate-limited",
        {"RateLimited"},
    )
    assert log["reason"] == "rate-limited"
    assert 30 <= limited["retryInSeconds"] <= 35
    assert limited["profile"] == "generic"

    status, held, metrics, _ = answered(ready, tts_event(device="gauge-b", session_key="b"))
    assert (status, held["status"], held["reason"], metrics) == (202, "queued", "held-back", {"HeldBack"})
    ready.drain()  # the Retry-After passes (simulated time); both are delivered

    ready.simulator.inject({"status": 503})
    status, failed, metrics, _ = answered(ready, tts_event(device="gauge-c", session_key="c"))
    assert (status, failed["status"], failed["reason"], metrics) == (
        202,
        "queued",
        "retryable: 503",
        {"Retried"},
    )
    assert failed["detail"].startswith("503 ")


def test_parked_answer_gives_the_reason_and_the_profile(ready: LocalStack) -> None:
    assert ready.simulator is not None
    ready.simulator.inject({"status": 403})
    status, parked, metrics, log = answered(ready, tts_event(device="gauge-d", session_key="d"))
    assert (status, parked["status"], parked["profile"], metrics) == (
        202,
        "parked",
        "generic",
        {"DeadLettered"},
    )
    assert parked["reason"].startswith("403 InsufficientPermissions")
    assert log["level"] == "ERROR"


def test_delete_of_a_device_never_created_is_unknown_device_not_removed(ready: LocalStack) -> None:
    answered(ready, load_event("aws-iot-02-thing-created.json"))
    status, removed, metrics, _ = answered(ready, load_event("aws-iot-03-thing-deleted.json"))
    assert (status, removed["status"], metrics) == (200, "removed", {"DevicesRemoved"})

    never_created = load_event("aws-iot-03-thing-deleted.json")
    body = json.loads(never_created["body"])
    body.update(thingName="never-created-07", eventId="another-deletion")
    never_created["body"] = json.dumps(body)
    status, unknown, metrics, _ = answered(ready, never_created)
    assert (status, unknown["status"], unknown["detail"], metrics) == (
        200,
        "unknown-device",
        NOTHING_TO_REMOVE,
        {"UnknownDeviceRemovals"},
    )


def test_creation_older_than_a_processed_deletion_is_superseded_not_removed(ready: LocalStack) -> None:
    deleted = load_event("aws-iot-03-thing-deleted.json")
    status, unknown, _, _ = answered(ready, deleted)
    assert (status, unknown["status"]) == (200, "unknown-device")

    # The thing's creation, delivered late: it happened an hour before the deletion.
    late = load_event("aws-iot-02-thing-created.json")
    body = json.loads(late["body"])
    body["timestamp"] = json.loads(deleted["body"])["timestamp"] - 3_600_000
    late["body"] = json.dumps(body)
    created_before = sum(ready.simulator.state()["created"].values())
    status, superseded, metrics, log = answered(ready, late)
    assert (status, superseded["status"], superseded["detail"], metrics) == (
        200,
        "superseded",
        SUPERSEDED,
        {"Superseded"},
    )
    assert log["level"] == "INFO"
    assert sum(ready.simulator.state()["created"].values()) == created_before  # no creation sent


def _thing_at(minutes_after: int, latitude: str) -> dict[str, Any]:
    """pier-env-11's thing event, `minutes_after` its creation, placing it at `latitude`."""
    event = load_event("aws-iot-02-thing-created.json")
    body = json.loads(event["body"])
    body["attributes"]["latitude"] = latitude
    if minutes_after:
        body |= {"operation": "UPDATED", "eventId": f"update-{minutes_after}"}
        body["timestamp"] += minutes_after * 60_000
        body["versionNumber"] += minutes_after
    event["body"] = json.dumps(body)
    return event


def _latitude(stack: LocalStack) -> float:
    (device,) = [d for d in stack.simulator.state()["devices"] if d["props"].get("NAME") == "pier-env-11"]
    latitude: float = device["props"]["LOCATION"]["coordinates"][1]
    return latitude


def test_a_description_older_than_one_applied_is_superseded_and_the_newer_stands(
    ready: LocalStack,
) -> None:
    assert answered(ready, _thing_at(0, "51.5"))[1]["status"] == "integrated"
    assert answered(ready, _thing_at(20, "52.0"))[1]["status"] == "updated"
    calls = len(ready.simulator.state()["calls"])

    # The update made ten minutes before the last one, delivered after it (a platform's retry).
    status, late, metrics, _ = answered(ready, _thing_at(10, "51.8"))

    assert (status, late["status"], late["detail"], metrics) == (
        200,
        "superseded",
        DESCRIBED_SINCE,
        {"Superseded"},
    )
    assert len(ready.simulator.state()["calls"]) == calls  # nothing sent
    assert _latitude(ready) == 52.0
    # A description newer than the last is applied as ever.
    assert answered(ready, _thing_at(30, "52.5"))[1]["status"] == "updated"
    assert _latitude(ready) == 52.5
