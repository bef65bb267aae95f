"""A device's first `new` whose answer is lost, then a less informative announcement of the same
device: what the first event said (its model, so its profile and sensors) must not be forgotten.

The sequence bench/chaos.py (seed 0) gave one The Things Stack device: its uplink (a model, three
sensors) arrives first and is applied, but the answer is lost; the join (older, no model) comes
next; the uplink is retried after it. Each of its sensors must be created once and never removed.
"""

from __future__ import annotations

from local.stack import LocalStack
from tests.scenario import SOURCE, Ledger, changes, device_calls, ref, registry, tts_event, with_node

DEVICE = "env-node-04"  # events/ttn-08-uplink-known-device.json: model elsys/ers
SENSORS = [f"{ref(DEVICE)}-{key}" for key in ("temperature", "battery", "signal")]


def sensor_changes(stack: LocalStack) -> list[str]:
    """Every sensor change sent for the device, as `<changeState> <refId>`."""
    return [
        f"{s['changeState']} {s['refId']}"
        for call in device_calls(stack)
        for d in call["body"]["integration"]["devices"]
        if d["refId"] == ref(DEVICE)
        for s in d.get("sensors") or []
    ]


def test_join_after_an_uplink_whose_new_was_lost_keeps_the_models_sensors(ledger: Ledger) -> None:
    stack = ledger.stack
    with_node(ledger)
    # The uplink's `new` is applied, and the connection drops before the answer: queued.
    stack.simulator.inject({"drop": True, "after_apply": True})
    status, answer = ledger.post(tts_event("ttn-08-uplink-known-device.json"))
    assert status == 202, answer
    # The join arrives before the retry: no model, an earlier event time.
    status, answer = ledger.post(tts_event(device=DEVICE, session_key="rejoin-after-lost-uplink"))
    assert 200 <= status < 300, answer

    stack.drain()

    assert changes(stack, DEVICE)[0] == "new:0"  # applied, its answer dropped
    assert [c for c in sensor_changes(stack) if not c.startswith("new ")] == []  # none removed
    created = stack.simulator.state()["created"]
    assert {r: created.get(r) for r in [ref(DEVICE), *SENSORS]} == dict.fromkeys([ref(DEVICE), *SENSORS], 1)
    assert f"{ref(DEVICE)}-generic" not in created
    record = registry.get_device(SOURCE, f"bridge-monitoring/{DEVICE}")
    assert record is not None
    assert record.state == "integrated"
    assert sorted(record.sensor_ids) == sorted(SENSORS)
    ledger.check()
