"""The local stack runs concurrent webhooks as threads of one process, standing for concurrent
Lambda instances: each must be served with its own event and route arguments, though Powertools'
event handler keeps the current event on a class attribute and the route's arguments in the
resolver's context (one invocation per process in Lambda)."""

from __future__ import annotations

import threading
from collections.abc import Callable
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
    """One webhook; answered 5xx (a loaded machine can spend its time waiting for the other
    thread), sent again, as the platforms do."""
    event = load_event(name)
    query = f"?{event['rawQueryString']}" if event["rawQueryString"] else ""
    for _ in range(3):
        status, _, body = stack.invoke(
            "POST", event["rawPath"] + query, headers=event["headers"], body=event["body"].encode()
        )
        if status < 500:
            break
    return status, body


def _once_both_got_here() -> Callable[[], None]:
    """Waits until both webhooks' first deliveries got here (resends pass at once)."""
    both = threading.Barrier(len(WEBHOOKS), timeout=30)
    passed = threading.Event()

    def wait() -> None:
        if not passed.is_set():
            both.wait()
            passed.set()

    return wait


def _send_both_and_check(stack: LocalStack) -> None:
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


def test_two_concurrent_webhooks_are_each_served_with_their_own_event(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Both invocations have set their event before either is routed: the interleaving that, with
    # the event shared by the process, processed one storm webhook's event twice (503
    # EventInProgress to the second) while the other's own was never processed.
    both_began = _once_both_got_here()
    route = ApiGatewayResolver._resolve

    def route_once_both_began(self: ApiGatewayResolver) -> Any:
        both_began()
        return route(self)

    monkeypatch.setattr(ApiGatewayResolver, "_resolve", route_once_both_began)
    _send_both_and_check(stack)


def test_two_concurrent_webhooks_are_each_called_with_their_own_source(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Both have been routed (their `{source}` put in the resolver's context) before either route
    # function reads it: with the context shared by the process, a storm webhook was authenticated
    # as the other's source and answered 401.
    both_routed = _once_both_got_here()
    append: Any = ApiGatewayResolver.append_context

    def append_then_wait(self: ApiGatewayResolver, **context: Any) -> None:
        append(self, **context)
        if "_route_args" in context:
            both_routed()

    monkeypatch.setattr(ApiGatewayResolver, "append_context", append_then_wait)
    _send_both_and_check(stack)
