"""Shared fixtures: the local stack (moto server, Sensor Data simulator, real handlers)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from local.stack import LocalStack

if TYPE_CHECKING:
    from tests.scenario import Ledger

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events"
DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="session")
def local_stack() -> Iterator[LocalStack]:
    with LocalStack() as stack:
        yield stack


@pytest.fixture
def stack(local_stack: LocalStack) -> LocalStack:
    """A clean account, API and clock for each test (resources re-created, caches dropped)."""
    local_stack.reset()
    local_stack.simulator.configure(rate_limit_per_minute=None)
    local_stack.simulator.clear_faults()
    local_stack.simulator.set_catalogue(None)
    return local_stack


@pytest.fixture
def frozen() -> Iterator[None]:
    """The bridge's clock on simulated time, moved only by clock.advance (unit tests)."""
    from sensor_bridge.runtime import clock

    clock.freeze()
    yield
    clock.freeze(False)
    clock.reset()


def load_event(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / name).read_text(encoding="utf-8"))
    return event


def event_body(name: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(load_event(name)["body"])
    return body


@pytest.fixture
def ledger(stack: LocalStack) -> Ledger:
    """What the webhooks of one test promised (see tests/scenario.py)."""
    from tests.scenario import Ledger

    return Ledger(stack)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything under tests/e2e drives the whole local stack: `-m e2e` selects just that."""
    for item in items:
        if item.nodeid.startswith("tests/e2e/"):
            item.add_marker(pytest.mark.e2e)
