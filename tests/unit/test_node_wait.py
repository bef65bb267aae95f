"""A device whose source's node another delivery is creating waits for it briefly (the first
devices of a source join together), and stops waiting as soon as that delivery gives up; a node
creation held back after its listing is not listed again."""

from __future__ import annotations

from pathlib import Path

import pytest

from local.lambda_runtime import cold_start
from sensor_bridge.delivery import nodes
from sensor_bridge.delivery.context import Downstream
from sensor_bridge.delivery.deliver import deliver
from sensor_bridge.model.config import load_config_file
from sensor_bridge.model.contract import NodeInfo
from sensor_bridge.model.device_event import DeviceEvent, Lifecycle
from sensor_bridge.model.outcomes import Deferred, Integrated, Outcome
from sensor_bridge.model.work import WorkItem
from sensor_bridge.runtime.budget import Budget
from sensor_bridge.store.memory_registry import InMemoryRegistry
from tests.unit.fake_sensor_data import FakeSensorData

CONFIG = load_config_file(Path(__file__).resolve().parents[2] / "config" / "bridge.yaml")
SOURCE = "aws-iot-demo"


def joining(device: str) -> WorkItem:
    return WorkItem(
        DeviceEvent(
            source=SOURCE,
            platform="aws-iot-core",
            device_id=device,
            lifecycle=Lifecycle.APPEARED,
            name=device,
        )
    )


class OtherDelivery:
    """Holds the node's claim; at its `at`-th poll of ours it has created the node, or given up."""

    def __init__(self, registry: InMemoryRegistry, at: int, *, gives_up: bool) -> None:
        assert registry.claim_node(SOURCE, "other-delivery")
        self.registry, self.at, self.gives_up, self.polls = registry, at, gives_up, 0

    def sleep(self, _: float) -> None:
        self.polls += 1
        if self.polls == self.at:
            if self.gives_up:
                self.registry.release_node(SOURCE, "other-delivery")
            else:
                self.registry.record_node(SOURCE, "other-delivery", "node-of-the-other")


@pytest.fixture
def registry() -> InMemoryRegistry:
    return InMemoryRegistry()


def test_a_device_waits_for_the_node_another_delivery_creates_and_joins_it(
    registry: InMemoryRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = OtherDelivery(registry, at=30, gives_up=False)  # three seconds: longer than it used to wait
    monkeypatch.setattr(nodes.time, "sleep", other.sleep)
    api = FakeSensorData()

    outcome = deliver(joining("pier-01"), CONFIG, registry=registry, downstream=Downstream(integrate=api))

    assert isinstance(outcome, Integrated)
    (request,) = api.requests  # no second node: the device call only
    assert request.integration.nodeId == "node-of-the-other"


def test_a_device_stops_waiting_when_the_other_delivery_gives_the_node_up(
    registry: InMemoryRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = OtherDelivery(registry, at=2, gives_up=True)
    monkeypatch.setattr(nodes.time, "sleep", other.sleep)
    api = FakeSensorData()

    outcome = deliver(joining("pier-01"), CONFIG, registry=registry, downstream=Downstream(integrate=api))

    assert outcome == Deferred("the source's node is being created by another delivery")
    assert other.polls == 2  # not the whole wait
    assert api.requests == []


class Listing:
    """The node listing: the API has no node for the source yet."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(
        self, source: str, *, budget: Budget | None, itwin_id: str | None
    ) -> list[NodeInfo] | Outcome:
        self.calls += 1
        return []


def test_a_node_creation_held_back_after_its_listing_is_not_listed_again(registry: InMemoryRegistry) -> None:
    """At one call a minute the listing takes the minute's call and the creation waits: the next
    try must create, not list again (else every turn goes to the listing and nothing is created)."""
    cold_start()
    listing = Listing()
    api = FakeSensorData(script=[Deferred("held back: the rate budget is spent")])
    downstream = Downstream(integrate=api, list_nodes=listing)

    first = deliver(joining("pier-01"), CONFIG, registry=registry, downstream=downstream)
    second = deliver(joining("pier-01"), CONFIG, registry=registry, downstream=downstream)

    assert isinstance(first, Deferred)
    assert isinstance(second, Integrated)
    assert listing.calls == 1
    creation, device = api.requests[1:]
    assert creation.integration.devices == []
    assert device.integration.nodeId == "node-1"
