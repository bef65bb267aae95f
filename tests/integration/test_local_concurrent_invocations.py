"""The local stack runs concurrent webhooks as threads of one process, standing for concurrent
Lambda instances: each must be served with its own event, though Powertools' event handler keeps
the current event on a class attribute (one invocation per process in Lambda)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from aws_lambda_powertools.event_handler.api_gateway import ApiGatewayResolver

from local.stack import LocalStack
from sensor_bridge.model.profiles import device_ref_id
from tests.conftest import load_event

# Each webhook: its source and the device it names (as the answer names it).
WEBHOOKS = {
    "ttn-01-join-accept.json": ("ttn-demo", "bridge-monitoring/strain-gauge-01"),
    "chirpstack-01-join.json": ("chirpstack-demo", "0101010101010101"),
}


def _send(stack: LocalStack, name: str) -> tuple[int, Any]:
    event = load_event(name)
    query = f"?{event['rawQueryString']}" if event["rawQueryString"] else ""
    status, _, body = stack.invoke(
        "POST", event["rawPath"] + query, headers=event["headers"], body=event["body"].encode()
    )
    return status, body


def test_two_concurrent_webhooks_are_each_served_with_their_own_event(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Both invocations have set their event before either is routed: the interleaving that, with
    # the event shared by the process, answered one storm webhook 401 (the other source's token)
    # and processed another's event twice (503 EventInProgress) while its own was never processed.
    both_began = threading.Barrier(len(WEBHOOKS), timeout=30)
    route = ApiGatewayResolver._resolve

    def route_once_both_began(self: ApiGatewayResolver) -> Any:
        both_began.wait()
        return route(self)

    monkeypatch.setattr(ApiGatewayResolver, "_resolve", route_once_both_began)
    with ThreadPoolExecutor(max_workers=len(WEBHOOKS)) as pool:
        answers = list(pool.map(lambda name: _send(stack, name), WEBHOOKS))

    # 200, or 202 when this loaded machine spent the invocation's time before the call.
    assert [status in (200, 202) for status, _ in answers] == [True, True], answers
    assert [[r["device"] for r in body["results"]] for _, body in answers] == [
        [d] for _, d in WEBHOOKS.values()
    ]
    stack.drain()
    live = {d["refId"] for d in stack.simulator.state()["devices"] if not d["removed"]}
    assert live == {device_ref_id(source, device) for source, device in WEBHOOKS.values()}
