"""The retry function coalesces: queued devices for the same node that are due together go in
one integrate call; the answer is matched back by NAME; a 422 is split so only the bad device
is parked. Counts come from the simulator's calls and the queues."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from local.lambda_runtime import cold_start
from local.stack import LocalStack
from sensor_bridge.model.config import DEFAULT_CONFIG_FILE
from sensor_bridge.sensor_data.limiter import BUDGET_SHORT
from tests.scenario import (
    APP,
    SOURCE,
    Ledger,
    changes,
    device_calls,
    ref,
    registry,
    tts_event,
    with_node,
)

DEVICES = ["strain-gauge-01", "strain-gauge-02", "tilt-meter-03"]
# The integration ids the shipped configuration uses: the simulator's catalogue in the 422 test.
KNOWN_INTEGRATION_IDS = [
    "IMPORT_DEVICE_SDE",
    "GENERIC_SENSOR_SDE",
    "TEMPERATURE_SDE",
    "BATTERY_CHARGE_SDE",
    "SENSOR_SIGNAL_STRENGTH_SDE",
    "MOISTURE_SDE",
    "LIGHT_SDE",
    "ELECTRICITY_USAGE_SDE",
]


def queue_together(stack: LocalStack, ledger: Ledger, events: list[dict[str, Any]]) -> None:
    """The first event meets a 429; the rest are held back while its Retry-After runs (no call);
    then time passes until all are due."""
    stack.simulator.inject({"status": 429, "retry_after": "60", "count": 1})
    calls_before = len(stack.simulator.state()["calls"])
    details = []
    for event in events:
        status, body = ledger.post(event)
        assert status == 202
        assert body["results"][0]["status"] == "queued"
        details.append(body["results"][0]["detail"])
    assert details[0].startswith("429 TooManyRequests")
    assert details[1:] == [BUDGET_SHORT] * (len(events) - 1)
    assert len(stack.simulator.state()["calls"]) == calls_before + 1
    stack.advance(70)  # past the Retry-After and its at most 5 s of jitter


def test_devices_queued_for_one_node_are_integrated_in_one_call_each_with_its_own_ids(
    stack: LocalStack, ledger: Ledger
) -> None:
    ledger.post(tts_event("ttn-06-uplink-new-device.json"))  # creates the node
    queue_together(stack, ledger, [tts_event(device=d, session_key=f"k-{d}") for d in DEVICES])
    calls_before = len(device_calls(stack))

    assert stack.poll_once() == 3

    (call,) = device_calls(stack)[calls_before:]
    assert call["status"] == 200
    assert sorted(d["refId"] for d in call["body"]["integration"]["devices"]) == sorted(
        ref(d) for d in DEVICES
    )
    state = stack.simulator.state()
    by_ref = {d["refId"]: d for d in state["devices"]}
    for name in DEVICES:
        assert state["created"][ref(name)] == 1
        record = registry.get_device(SOURCE, f"{APP}/{name}")
        assert record is not None
        assert record.state == "integrated"
        # Matched by NAME, not by position: each device got the ids the API gave it.
        assert record.api_device_id == by_ref[ref(name)]["id"]
        assert set(record.sensor_ids.values()) == {s["id"] for s in by_ref[ref(name)]["sensors"]}
    assert stack.poller.stats.batch_log[-1][1] == 3
    ledger.check()


def test_same_device_twice_in_one_batch_is_created_once(stack: LocalStack, ledger: Ledger) -> None:
    with_node(ledger)
    events = [
        tts_event(session_key="first-join"),
        tts_event(device="tilt-meter-03", session_key="k3"),
        tts_event(session_key="rejoin-after-reset"),
    ]
    queue_together(stack, ledger, events)

    assert stack.poll_once() == 3
    stack.drain()

    # The first join met the 429; the rejoin was held back without a call; then one `new`.
    assert changes(stack, "strain-gauge-01") == ["new:429", "new:200"]
    assert stack.simulator.state()["created"][ref("strain-gauge-01")] == 1
    ledger.check()


def broken_profile_config(tmp_path: Path) -> Path:
    """The shipped config plus a profile whose sensor's integration id is well formed (the check
    at start passes it) but not one the API knows: a mapping error only the API can find."""
    config = yaml.safe_load(Path(DEFAULT_CONFIG_FILE).read_text(encoding="utf-8"))
    config["profiles"].insert(
        0,
        {
            "name": "broken-vibration",
            "match": {"models": ["acme/vibration"]},
            "sensors": [{"key": "vibration", "integration_id": "VIBRATION_SDE", "name": "Vibration"}],
        },
    )
    path = tmp_path / "bridge.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def test_422_inside_a_coalesced_call_parks_only_the_bad_device(
    stack: LocalStack, ledger: Ledger, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BRIDGE_CONFIG_FILE", str(broken_profile_config(tmp_path)))
    cold_start()
    stack.simulator.set_catalogue(KNOWN_INTEGRATION_IDS)
    with_node(ledger)
    events = [
        tts_event("ttn-06-uplink-new-device.json", device="strain-gauge-01"),
        tts_event("ttn-06-uplink-new-device.json", device="vibro-07", model="acme/vibration"),
        tts_event("ttn-06-uplink-new-device.json", device="tilt-meter-03"),
    ]
    queue_together(stack, ledger, events)

    assert stack.poll_once() == 3
    stack.drain()

    good, bad = ["strain-gauge-01", "tilt-meter-03"], "vibro-07"
    coalesced = [c for c in device_calls(stack) if len(c["body"]["integration"]["devices"]) == 3]
    assert [c["status"] for c in coalesced] == [422]
    # Only the first webhook reached the API (429); the others were held back without a call.
    assert changes(stack, "strain-gauge-01") == ["new:429", "new:422", "new:200"]
    assert changes(stack, "tilt-meter-03") == ["new:422", "new:200"]
    assert changes(stack, bad) == ["new:422", "new:422"]
    state = stack.simulator.state()
    assert {name: state["created"].get(ref(name), 0) for name in [*good, bad]} == {
        "strain-gauge-01": 1,
        "tilt-meter-03": 1,
        "vibro-07": 0,
    }
    (parked,) = stack.queue_messages("dead-letter")
    assert parked["event"]["device_id"] == f"{APP}/{bad}"
    # Queued by the webhook without a call (no attempt), then refused once (the split's two 422s
    # are one delivery attempt).
    assert parked["attempts"] == 1
    # The reason names the field the API refused.
    assert "sensors[0].props.INTEGRATION_ID" in parked["parked_reason"]
    record = registry.get_device(SOURCE, f"{APP}/{bad}")
    assert record is not None
    assert record.state == "parked"
    ledger.check()


def test_a_bad_message_fails_alone_and_the_rest_of_the_batch_is_delivered(
    stack: LocalStack, ledger: Ledger
) -> None:
    from sensor_bridge.store.aws_clients import sqs

    with_node(ledger)
    devices = ["gauge-a", "gauge-b"]
    queue_together(stack, ledger, [tts_event(device=d, session_key=f"k-{d}") for d in devices])
    assert stack.resources is not None
    sqs().send_message(QueueUrl=stack.resources.retry_queue_url, MessageBody='{"version": 99}')

    assert stack.poll_once() == 3

    assert stack.poller.stats.failures == 1
    created = stack.simulator.state()["created"]
    assert [created.get(ref(d)) for d in devices] == [1, 1]
    remaining = stack.queue_messages("retry")
    assert [m.get("version") for m in remaining] == [99]  # only the bad one is left for SQS
