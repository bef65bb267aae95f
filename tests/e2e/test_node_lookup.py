"""The source's node is found by its name before one is created (issue #9), on the local stack:
a lost registry item, a lost creation answer or a second deployment reuses the node the API
already has instead of creating another, which would stay empty."""

from __future__ import annotations

import json
from typing import Any

import pytest

from local.stack import LocalStack
from sensor_bridge.delivery.nodes import node_name
from sensor_bridge.runtime import http
from sensor_bridge.runtime.process import reset_process_state
from sensor_bridge.store.aws_clients import dynamodb
from tests.scenario import SOURCE, Ledger, device_calls, registry, tts_event, with_node


def _nodes(stack: LocalStack) -> list[dict[str, Any]]:
    nodes: list[dict[str, Any]] = stack.simulator.state()["nodes"]
    return nodes


def _forget_node_in_registry(stack: LocalStack) -> None:
    """The registry's node item is gone (restored from an older backup, a second deployment), as a
    fresh function instance sees it: the process that recorded the node also keeps its id in memory."""
    assert stack.resources is not None
    dynamodb().delete_item(TableName=stack.resources.registry_table, Key={"pk": {"S": f"node#{SOURCE}"}})
    reset_process_state()
    assert registry.get_node(SOURCE) is None


def test_a_created_node_carries_the_source_name(stack: LocalStack, ledger: Ledger) -> None:
    with_node(ledger)

    (node,) = _nodes(stack)
    assert node["props"]["NAME"] == node_name(SOURCE) == "sensor-bridge: ttn-demo"
    assert [c["status"] for c in stack.simulator.state()["node_list_calls"]] == [200]
    ledger.check()


def test_a_node_missing_from_the_registry_is_found_by_name_and_reused(
    stack: LocalStack, ledger: Ledger
) -> None:
    with_node(ledger)
    (node,) = _nodes(stack)
    _forget_node_in_registry(stack)

    status, body = ledger.post(tts_event())

    assert status == 200
    assert body["results"][0]["status"] == "integrated"
    assert [n["id"] for n in _nodes(stack)] == [node["id"]]  # no second node
    assert device_calls(stack)[-1]["body"]["integration"]["nodeId"] == node["id"]
    recorded = registry.get_node(SOURCE)
    assert recorded is not None
    assert recorded.node_id == node["id"]
    ledger.check()


def test_a_lost_answer_to_the_node_creation_creates_no_second_node(stack: LocalStack, ledger: Ledger) -> None:
    # The node is created, then the connection drops before the answer arrives.
    stack.simulator.inject({"drop": True, "after_apply": True})

    status, body = ledger.post(tts_event())
    stack.drain()

    assert status == 202
    assert body["results"][0]["status"] == "queued"
    (node,) = _nodes(stack)
    calls = device_calls(stack)
    assert [c["body"]["integration"]["nodeId"] for c in calls] == [node["id"]]
    assert [c["status"] for c in calls] == [200]
    ledger.check()


def test_a_failed_listing_creates_nothing_and_is_retried(stack: LocalStack, ledger: Ledger) -> None:
    stack.simulator.inject({"status": 503, "operation": "nodes"})

    status, body = ledger.post(tts_event())
    assert _nodes(stack) == []  # not knowing whether the node exists, the bridge does not create it
    stack.drain()

    assert status == 202
    assert body["results"][0]["status"] == "queued"
    assert [c["status"] for c in stack.simulator.state()["node_list_calls"]] == [503, 200]
    assert len(_nodes(stack)) == 1
    assert [c["status"] for c in device_calls(stack)] == [200]
    ledger.check()


def test_a_listing_that_cannot_be_read_parks_the_work_instead_of_creating_a_node(
    stack: LocalStack, ledger: Ledger
) -> None:
    stack.simulator.inject({"status": 200, "body": '{"value": []}', "operation": "nodes"})

    status, body = ledger.post(tts_event())

    assert status == 202
    assert body["results"][0]["status"] == "parked"
    assert _nodes(stack) == []
    (parked,) = stack.queue_messages("dead-letter")
    assert parked["parked_reason"].startswith("the node listing answered 200 with a body that is not")
    ledger.check()


def test_a_listing_too_large_to_read_parks_the_work_instead_of_creating_a_node(
    stack: LocalStack, ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A listing past the bridge's cap on an answer (a small cap here: the real one is 16 MiB).
    monkeypatch.setattr(http, "ANSWER_MAX_BYTES", 4096)
    nodes = [{"id": f"node-{i}", "props": {"NAME": f"other {i}"}} for i in range(200)]
    stack.simulator.inject({"status": 200, "body": json.dumps({"nodes": nodes}), "operation": "nodes"})

    status, body = ledger.post(tts_event())

    assert status == 202
    assert body["results"][0]["status"] == "parked"
    assert _nodes(stack) == []
    (parked,) = stack.queue_messages("dead-letter")
    assert parked["parked_reason"] == "the node listing answered 200 with a body of more than 4096 bytes"
    ledger.check()


@pytest.mark.parametrize("status", [404, 405])
def test_an_api_without_the_node_listing_gets_its_node_created_without_looking(
    stack: LocalStack, ledger: Ledger, status: int
) -> None:
    # An implementation of the API that has only the contract's integrate call.
    stack.simulator.inject({"status": status, "operation": "nodes", "count": 5})

    answered, body = ledger.post(tts_event())

    assert answered == 200
    assert body["results"][0]["status"] == "integrated"
    (node,) = _nodes(stack)
    assert node["props"]["NAME"] == node_name(SOURCE)
    assert [c["status"] for c in stack.simulator.state()["node_list_calls"]] == [status]
    assert stack.queue_messages("dead-letter") == []
    ledger.check()


def test_a_listing_refused_for_another_reason_still_parks_the_work(stack: LocalStack, ledger: Ledger) -> None:
    stack.simulator.inject({"status": 403, "operation": "nodes"})

    status, body = ledger.post(tts_event())

    assert status == 202
    assert body["results"][0]["status"] == "parked"
    assert _nodes(stack) == []
    ledger.check()
