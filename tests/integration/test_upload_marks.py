"""The registry's marks of uploaded readings: both adapters keep the latest UPLOADS_KEPT work ids
per device, and a mark is never made for a device the registry does not have."""

from __future__ import annotations

import pytest

from local.stack import LocalStack
from sensor_bridge.runtime import clock
from sensor_bridge.store.dynamodb_registry import DynamoDBRegistry
from sensor_bridge.store.memory_registry import InMemoryRegistry
from sensor_bridge.store.registry import UPLOADS_KEPT, DeviceRegistry


@pytest.fixture(params=["dynamodb", "memory"])
def registry(request: pytest.FixtureRequest, stack: LocalStack) -> DeviceRegistry:
    return DynamoDBRegistry() if request.param == "dynamodb" else InMemoryRegistry()


def test_the_latest_marks_are_kept_and_the_oldest_dropped(registry: DeviceRegistry) -> None:
    registry.claim_device("s", "d", "me", "sb-1")
    for n in range(UPLOADS_KEPT + 6):
        registry.record_uploaded("s", "d", f"work-{n:03d}")
        clock.advance(1)  # the marks are ordered by when they were made

    record = registry.get_device("s", "d")

    assert record is not None
    assert record.uploaded == {f"work-{n:03d}" for n in range(6, UPLOADS_KEPT + 6)}


def test_a_mark_for_a_device_the_registry_does_not_have_is_not_made(registry: DeviceRegistry) -> None:
    registry.record_uploaded("s", "nobody", "work-1")

    assert registry.get_device("s", "nobody") is None
