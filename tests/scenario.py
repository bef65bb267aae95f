"""What the scenario tests share: real The Things Stack events with a detail changed, the refIds
they produce, what the simulator was sent, and the ledger every delivery test ends with."""

from __future__ import annotations

import copy
import json
import uuid
from typing import Any

from local.stack import LocalStack
from sensor_bridge.model.profiles import device_ref_id
from sensor_bridge.store.dynamodb_registry import DynamoDBRegistry
from tests.conftest import load_event

registry = DynamoDBRegistry()  # the registry the functions use, on the stack's moto

SOURCE = "ttn-demo"
APP = "bridge-monitoring"


# -- arranging -------------------------------------------------------------------------------
def tts_event(
    name: str = "ttn-01-join-accept.json",
    *,
    device: str | None = None,
    session_key: str | None = None,
    model: str | None = None,
    location: tuple[float, float, float] | None = None,
) -> dict[str, Any]:
    """An event from events/, with the device, join session, model or location changed."""
    event = copy.deepcopy(load_event(name))
    body = json.loads(event["body"])
    if device is not None:
        body["end_device_ids"]["device_id"] = device
    if session_key is not None:
        body["join_accept"]["session_key_id"] = session_key
    if "uplink_message" in body:
        # Device scenarios: the uplink's reading is left out (test_readings_end_to_end has them),
        # and every uplink has its own id, as in TTS.
        body["uplink_message"].pop("decoded_payload", None)
        body["correlation_ids"] = [f"as:up:{uuid.uuid4().hex}"]
    if model is not None or location is not None:
        uplink = body.setdefault("uplink_message", {})
        body.pop("join_accept", None)
        if model is not None:
            brand, _, model_id = model.partition("/")
            uplink["version_ids"] = {"brand_id": brand, "model_id": model_id}
        if location is not None:
            lat, lon, alt = location
            uplink["locations"] = {"user": {"latitude": lat, "longitude": lon, "altitude": alt}}
    event["body"] = json.dumps(body)
    return event


def ref(device: str) -> str:
    return device_ref_id(SOURCE, f"{APP}/{device}")


def device_calls(stack: LocalStack) -> list[dict[str, Any]]:
    """Integrate calls that carried devices (node creations left out)."""
    return [c for c in stack.simulator.state()["calls"] if c["body"]["integration"].get("devices")]


def changes(stack: LocalStack, device: str) -> list[str]:
    """The changeStates sent for one device, in order, with the call's status."""
    sent = []
    for call in device_calls(stack):
        for d in call["body"]["integration"]["devices"]:
            if d["refId"] == ref(device):
                sent.append(f"{d['changeState']}:{call['status']}")
    return sent


class Ledger:
    """What the webhooks promised: every device answered 2xx, and each answer."""

    def __init__(self, stack: LocalStack) -> None:
        self.stack = stack
        self.answers: list[tuple[int, Any]] = []

    def post(self, event: dict[str, Any]) -> tuple[int, Any]:
        status, body = self.stack.post_event(event)
        self.answers.append((status, body))
        return status, body

    def check(self) -> None:
        """2xx answered = integrated (created once) + parked, and nothing else anywhere."""
        promised = {
            r["device"]
            for status, body in self.answers
            if 200 <= status < 300
            for r in body.get("results", [])
        }
        state = self.stack.simulator.state()
        live = {d["refId"] for d in state["devices"] if not d["removed"]}
        parked = {m["event"]["device_id"] for m in self.stack.queue_messages("dead-letter")}
        assert self.stack.queue_messages("retry") == []
        assert all(state["created"][device_id] == 1 for device_id in live)
        assert not live & {device_ref_id(SOURCE, d) for d in parked}, "integrated and parked"
        assert {device_ref_id(SOURCE, d) for d in promised} == live | {
            device_ref_id(SOURCE, d) for d in parked
        }


def with_node(ledger: Ledger) -> None:
    """Integrate a first device, so the source's node exists and faults hit device calls."""
    status, body = ledger.post(tts_event("ttn-02-join-accept-second-device.json"))
    if status == 202:
        # On a busy machine the webhook's 4 s can run out after the node call: the device was
        # queued (BUDGET_SPENT), and the retry function integrates it.
        assert body["results"][0]["status"] == "queued", body
        ledger.stack.drain()
    else:
        assert status == 200, body
    node = registry.get_node(SOURCE)
    assert node is not None
    assert node.node_id
