"""Concurrent invocations in one process, as concurrent Lambda instances: per-thread state where
a library keeps an invocation's state for the whole process.

A Lambda process serves one invocation at a time, so Powertools' event handler keeps the current
event and Lambda context as class attributes of `BaseRouter` (set by `resolve`, read by routing and
by the route function), and the matched route's arguments (`{source}`) in the resolver's `context`
dict, cleared after each request. The local stack runs concurrent webhooks as threads of one process: without
this, a webhook could be routed, authenticated and processed with another thread's event (a join
storm saw one answered 401, with another source's token, and two answered 503 `EventInProgress`:
the same event processed by two threads at once, and their own events never processed).
"""

from __future__ import annotations

import threading
from typing import Any

from aws_lambda_powertools.event_handler import api_gateway

_ROUTER_STATE = ("current_event", "lambda_context", "context")
_FRESH = {"context": dict}  # what a thread that has not set it yet reads (the resolver's __init__)


class _PerThread(threading.local):
    values: dict[str, Any]

    def __init__(self) -> None:
        self.values = {}


_state = _PerThread()


class _ThreadAttribute:
    """A data descriptor that keeps its value per thread (on the class, where it wins over the
    instance's own `context`, and on the metaclass so that `BaseRouter.current_event = ...` goes
    through it too)."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __get__(self, instance: object, owner: type | None = None) -> Any:
        values = _state.values
        if self._name not in values:
            if self._name not in _FRESH:
                raise AttributeError(self._name)
            values[self._name] = _FRESH[self._name]()
        return values[self._name]

    def __set__(self, instance: object, value: Any) -> None:
        _state.values[self._name] = value


class _PerThreadRouterMeta(type(api_gateway.BaseRouter)):  # type: ignore[misc]
    """BaseRouter's metaclass, with the router state per thread for class-level reads and writes."""


for _name in _ROUTER_STATE:
    setattr(_PerThreadRouterMeta, _name, _ThreadAttribute(_name))


def router_state_per_thread() -> None:
    """Make Powertools' router state per thread (idempotent: done once per process)."""
    router = api_gateway.BaseRouter
    if type(router) is _PerThreadRouterMeta:
        return
    for name in _ROUTER_STATE:
        # On the class itself: instance reads (app.current_event) find it there.
        type.__setattr__(router, name, _ThreadAttribute(name))
    setattr(router, "__class__", _PerThreadRouterMeta)  # noqa: B010 (mypy reads __class__ as a method)
