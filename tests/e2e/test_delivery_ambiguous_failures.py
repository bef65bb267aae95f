"""Failures that leave it unknown whether the API applied a call, scenario by scenario.

The real API can apply an integrate call and then fail to answer it: its gateway answers 502/504
after the backend committed, or the connection drops after the commit; the Lambda itself can die
between the API's 200 and the registry write. The simulator's ``after_apply`` faults play the first
two; a registry write that raises plays the third. Each test goes through the real handlers on the
local stack and counts what crossed a boundary: the simulator's calls and creations, the queues.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from local.lambda_runtime import cold_start
from local.stack import LocalStack
from sensor_bridge.model.config import DEFAULT_CONFIG_FILE
from sensor_bridge.model.profiles import device_ref_id
from sensor_bridge.store.dynamodb_registry import DynamoDBRegistry
from tests.conftest import load_event
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

AWS_SOURCE = "aws-iot-demo"
AZURE_SOURCE = "azure-demo"
AZURE_SECOND = "azure-second-hub"
AZURE_SECOND_CODE = "local-azure-second-code"


def live_devices(stack: LocalStack, ref_id: str) -> list[dict[str, Any]]:
    return [d for d in stack.simulator.state()["devices"] if d["refId"] == ref_id and not d["removed"]]


def assert_integrated_with_the_apis_ids(stack: LocalStack, source: str, device_id: str) -> None:
    """The registry holds the ids of the one live device the API has for this device."""
    (live,) = live_devices(stack, device_ref_id(source, device_id))
    record = registry.get_device(source, device_id)
    assert record is not None
    assert record.integrated
    assert record.state == "integrated"
    assert not record.maybe_created
    assert record.api_device_id == live["id"]
    assert record.node_id == live["nodeId"]
    assert set(record.sensor_ids.values()) == {s["id"] for s in live["sensors"] if not s["removed"]}


# -- the API applied the `new`, then failed to answer ------------------------------------------
@pytest.mark.parametrize(
    ("fault", "first_status"),
    [
        pytest.param({"status": 502, "after_apply": True}, 502, id="502-after-apply"),
        pytest.param({"drop": True, "after_apply": True}, 0, id="dropped-after-apply"),
    ],
)
def test_new_applied_then_unanswered_is_probed_by_update_and_created_exactly_once(
    stack: LocalStack, ledger: Ledger, fault: dict[str, Any], first_status: int
) -> None:
    with_node(ledger)
    stack.simulator.inject(fault)

    status, body = ledger.post(tts_event())

    assert status == 202
    assert body["results"][0]["status"] == "queued"
    assert stack.simulator.state()["created"][ref("strain-gauge-01")] == 1  # it did land
    record = registry.get_device(SOURCE, f"{APP}/strain-gauge-01")
    assert record is not None
    assert record.maybe_created
    assert not record.integrated

    stack.drain()

    # The retry addresses the device by refId first; the API knows it, so no second `new`.
    assert changes(stack, "strain-gauge-01") == [f"new:{first_status}", "update:200"]
    state = stack.simulator.state()
    assert state["created"][ref("strain-gauge-01")] == 1
    assert state["calls"][-2]["applied"] is True
    assert len(live_devices(stack, ref("strain-gauge-01"))) == 1
    assert_integrated_with_the_apis_ids(stack, SOURCE, f"{APP}/strain-gauge-01")
    assert stack.queue_messages("retry") == []
    assert stack.queue_messages("dead-letter") == []
    ledger.check()


# -- the Lambda died between the API's 200 and the registry write ------------------------------
def test_crash_after_the_apis_200_then_a_resent_join_creates_no_second_device(
    stack: LocalStack, ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    with_node(ledger)
    real_record = DynamoDBRegistry.record_integrated
    crashes: list[str] = []

    def dies_once(*args: Any, **kwargs: Any) -> None:
        if not crashes:
            crashes.append("died")
            raise RuntimeError("the Lambda was killed before the registry write")
        real_record(*args, **kwargs)

    monkeypatch.setattr(DynamoDBRegistry, "record_integrated", dies_once)

    try:
        status, _ = stack.post_event(tts_event(session_key="first-join"))
    except RuntimeError:
        status = None  # the invocation failed: API Gateway answers the platform 5xx
    assert status is None or status >= 500
    assert crashes == ["died"]
    assert changes(stack, "strain-gauge-01") == ["new:200"]
    assert stack.simulator.state()["created"][ref("strain-gauge-01")] == 1

    stack.advance(200)  # the dead delivery's 120 s lease runs out
    status, body = ledger.post(tts_event(session_key="rejoin-after-the-crash"))
    stack.drain()

    assert status == 200
    assert body["results"][0]["status"] == "integrated"
    assert stack.simulator.state()["created"][ref("strain-gauge-01")] == 1
    assert [c.split(":")[0] for c in changes(stack, "strain-gauge-01")].count("new") == 1
    assert len(live_devices(stack, ref("strain-gauge-01"))) == 1
    assert_integrated_with_the_apis_ids(stack, SOURCE, f"{APP}/strain-gauge-01")
    (live,) = live_devices(stack, ref("strain-gauge-01"))
    assert body["results"][0]["ids"]["devices"][0]["id"] == live["id"]
    assert stack.queue_messages("retry") == []
    assert stack.queue_messages("dead-letter") == []
    ledger.check()


# -- a less-informed event after a well-informed one -------------------------------------------
def rejoin_of(uplink_event: str) -> dict[str, Any]:
    """The join-accept the same device sends after a reset: the same ids, no model, no location."""
    event = copy.deepcopy(load_event(uplink_event))
    body = json.loads(event["body"])
    uplink = body.pop("uplink_message")
    body["join_accept"] = {"session_key_id": "AYzRejoinAfterReset==", "received_at": uplink["received_at"]}
    event["body"] = json.dumps(body)
    return event


def test_join_after_an_uplink_with_a_model_changes_nothing_and_keeps_sensors_and_location(
    stack: LocalStack, ledger: Ledger
) -> None:
    status, first = ledger.post(tts_event("ttn-06-uplink-new-device.json"))
    assert status == 200
    assert first["results"][0]["status"] == "integrated"
    (before,) = live_devices(stack, ref("env-node-04"))
    assert {s["props"]["NAME"] for s in before["sensors"]} == {
        "Temperature",
        "Battery Charge Level",
        "Sensor Signal Strength",
    }
    location = {"type": "Point", "coordinates": [-0.1246, 51.5007, 12.0]}
    assert before["props"]["LOCATION"] == location
    calls_before = len(stack.simulator.state()["calls"])

    status, body = ledger.post(rejoin_of("ttn-06-uplink-new-device.json"))

    assert status == 200
    assert body["results"][0]["status"] == "unchanged"
    assert len(stack.simulator.state()["calls"]) == calls_before  # no call at all
    assert changes(stack, "env-node-04") == ["new:200"]  # no update, no remove
    (after,) = live_devices(stack, ref("env-node-04"))
    assert after["props"]["LOCATION"] == location
    assert [(s["id"], s["removed"]) for s in after["sensors"]] == [
        (s["id"], False) for s in before["sensors"]
    ]
    assert stack.simulator.state()["created"][ref("env-node-04")] == 1
    assert stack.queue_messages("retry") == []
    ledger.check()


# -- a deletion after an ambiguous creation -----------------------------------------------------
def test_deletion_after_a_new_applied_then_answered_502_removes_the_device_downstream(
    stack: LocalStack,
) -> None:
    stack.post_event(load_event("aws-iot-04-second-thing-created.json"))  # the node exists
    thing_ref = device_ref_id(
        AWS_SOURCE, json.loads(load_event("aws-iot-02-thing-created.json")["body"])["thingName"]
    )
    stack.simulator.inject({"status": 502, "after_apply": True})

    created_status, created = stack.post_event(load_event("aws-iot-02-thing-created.json"))
    assert created_status == 202
    assert created["results"][0]["status"] == "queued"
    assert len(live_devices(stack, thing_ref)) == 1  # the API has it, the bridge does not know

    deleted_status, deleted = stack.post_event(load_event("aws-iot-03-thing-deleted.json"))
    stack.drain()

    assert deleted_status in (200, 202)
    assert deleted["results"][0]["status"] in ("removed", "queued")
    state = stack.simulator.state()
    mine = [d for d in state["devices"] if d["refId"] == thing_ref]
    assert len(mine) == 1
    assert mine[0]["removed"] is True
    assert all(s["removed"] for s in mine[0]["sensors"])
    assert live_devices(stack, thing_ref) == []
    assert state["created"][thing_ref] == 1
    removes = [
        c
        for c in device_calls(stack)
        for d in c["body"]["integration"]["devices"]
        if d["refId"] == thing_ref and d["changeState"] == "remove"
    ]
    assert [c["status"] for c in removes][-1:] == [200]
    assert stack.queue_messages("retry") == []
    assert stack.queue_messages("dead-letter") == []


# -- one Event Grid event id, two sources -------------------------------------------------------
@pytest.fixture
def two_azure_sources(stack: LocalStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The shipped configuration plus a second azure-iot-hub source with its own secret."""
    config = yaml.safe_load(Path(DEFAULT_CONFIG_FILE).read_text(encoding="utf-8"))
    config["sources"][AZURE_SECOND] = {
        "platform": "azure-iot-hub",
        "auth": {"type": "query", "parameter": "code", "secret": AZURE_SECOND},
    }
    path = tmp_path / "bridge.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    monkeypatch.setenv("BRIDGE_CONFIG_FILE", str(path))
    secrets: Any = boto3.client("secretsmanager")
    secret_id = os.environ["WEBHOOK_SECRETS_ID"]
    values = json.loads(secrets.get_secret_value(SecretId=secret_id)["SecretString"])
    values[AZURE_SECOND] = AZURE_SECOND_CODE
    secrets.put_secret_value(SecretId=secret_id, SecretString=json.dumps(values))
    cold_start()
    return AZURE_SECOND


def post_azure(stack: LocalStack, source: str, code: str, event_name: str) -> tuple[int, Any]:
    event = load_event(event_name)
    status, _, body = stack.invoke(
        event["requestContext"]["http"]["method"],
        f"/webhooks/{source}?code={code}",
        headers=event["headers"],
        body=event["body"].encode("utf-8"),
    )
    return status, body


def test_same_event_grid_event_id_on_two_sources_is_processed_for_each_source(
    stack: LocalStack, two_azure_sources: str
) -> None:
    body = json.loads(load_event("azure-02-device-created.json")["body"])[0]
    device_id = f"{body['data']['hubName']}/{body['data']['deviceId']}"

    first_status, first = post_azure(stack, AZURE_SOURCE, "local-azure-code", "azure-02-device-created.json")
    second_status, second = post_azure(
        stack, two_azure_sources, AZURE_SECOND_CODE, "azure-02-device-created.json"
    )
    stack.drain()

    assert (first_status, second_status) == (200, 200)
    assert first["results"][0]["status"] == "integrated"
    assert second["results"][0]["status"] == "integrated"
    assert first["results"][0]["ids"] != second["results"][0]["ids"]
    state = stack.simulator.state()
    refs = {device_ref_id(AZURE_SOURCE, device_id), device_ref_id(two_azure_sources, device_id)}
    assert len(refs) == 2
    assert {r: state["created"].get(r, 0) for r in refs} == dict.fromkeys(refs, 1)
    for source in (AZURE_SOURCE, two_azure_sources):
        assert len(live_devices(stack, device_ref_id(source, device_id))) == 1
        assert_integrated_with_the_apis_ids(stack, source, device_id)
    # Each source has its own node; the second source's device went to its own.
    assert len(state["nodes"]) == 2

    # The same event again on either source is still a duplicate for that source.
    again_status, again = post_azure(
        stack, two_azure_sources, AZURE_SECOND_CODE, "azure-02-device-created.json"
    )
    assert again_status == 200
    (repeated,) = again["results"]
    assert (repeated["status"], repeated["firstStatus"]) == ("duplicate", "integrated")
    assert repeated["ids"] == second["results"][0]["ids"]
    assert {r: stack.simulator.state()["created"].get(r, 0) for r in refs} == dict.fromkeys(refs, 1)
    assert stack.queue_messages("retry") == []
    assert stack.queue_messages("dead-letter") == []
