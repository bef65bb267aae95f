"""Fixtures of the unit tests that deliver readings through the delivery core's ports."""

from __future__ import annotations

import pytest

from sensor_bridge.store.memory_registry import InMemoryRegistry
from tests.unit.fake_uploads import SOURCE, FakeUploads


@pytest.fixture
def registry() -> InMemoryRegistry:
    """An in-memory registry that knows SOURCE's node."""
    registry = InMemoryRegistry()
    registry.nodes[SOURCE] = {"node_id": "node-1"}
    return registry


@pytest.fixture
def calls() -> FakeUploads:
    return FakeUploads()
