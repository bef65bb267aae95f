"""A probe after a lost answer that changed the device's profile: the sensors that call created
are downstream but not in the registry's record, nor in the profile the next event describes.

Found by bench/chaos.py: a The Things Stack uplink (new model: other sensors) was applied but its
answer lost; the rejoin that came next (no model) probed, found sensors it did not expect and left
them; when the uplink was retried, its `update` sent those sensors as `new` a second time. Now the
probe removes sensors no one names (any profile's refIds, matched by NAME), and the write-ahead mark
keeps the facts the event told, so the rejoin still describes the lost uplink's model."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sensor_bridge.delivery.context import Downstream
from sensor_bridge.delivery.deliver import deliver_many
from sensor_bridge.model.config import load_config_file
from sensor_bridge.model.contract import NAME, IntegrationRequest, IntegrationResponse
from sensor_bridge.model.device_event import DeviceEvent, Lifecycle
from sensor_bridge.model.outcomes import Integrated, Outcome, Retryable
from sensor_bridge.model.work import WorkItem
from sensor_bridge.runtime.budget import Budget
from sensor_bridge.store.memory_registry import InMemoryRegistry

CONFIG = load_config_file(Path(__file__).resolve().parents[2] / "config" / "bridge.yaml")
SOURCE = "aws-iot-demo"  # a full description per event: a model-less event means the generic profile


@dataclass
class LiveSensorData:
    """Integrate that keeps what it applied (also when the answer is then lost) and answers each
    device with all its live sensors, as the API does; counts `new` for a sensor already live."""

    sensors: dict[str, dict[str, Any]] = field(default_factory=dict)  # live refId -> props
    created_twice: list[str] = field(default_factory=list)
    lose_next: bool = False
    requests: list[IntegrationRequest] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=itertools.count)

    def __call__(
        self, request: IntegrationRequest, source: str, *, budget: Budget | None, itwin_id: str | None
    ) -> Outcome:
        self.requests.append(request)
        (device,) = request.integration.devices
        for sensor in device.sensors:
            if sensor.changeState == "remove":
                self.sensors.pop(sensor.refId)
                continue
            if sensor.changeState == "new" and sensor.refId in self.sensors:
                self.created_twice.append(sensor.refId)
            self.sensors[sensor.refId] = {**self.sensors.get(sensor.refId, {}), **sensor.props}
        if self.lose_next:
            self.lose_next = False
            return Retryable("timed out: ReadTimeout", ambiguous=True)
        listed = [{"id": f"sen-{next(self._ids)}", "props": p} for p in self.sensors.values()]
        body = {
            "integration": {
                "node": {"id": "node-1"},
                "devices": [{"device": {"id": "dev-1", "props": {NAME: "a"}}, "sensors": listed}],
            }
        }
        return Integrated(IntegrationResponse.model_validate(body))


def work(**fields: object) -> WorkItem:
    event = DeviceEvent(
        source=SOURCE,
        platform="aws-iot-core",
        device_id="a",
        lifecycle=Lifecycle.APPEARED,
        name="a",
        **fields,
    )  # type: ignore[arg-type]
    return WorkItem(event)


def tts_work(**fields: object) -> WorkItem:
    """A The Things Stack event: partial, a join says no model, an uplink does."""
    event = DeviceEvent(
        source="ttn-demo",
        platform="the-things-stack",
        device_id="a",
        lifecycle=Lifecycle.APPEARED,
        name="a",
        partial=True,
        **fields,  # type: ignore[arg-type]
    )
    return WorkItem(event)


def runner(registry: InMemoryRegistry, api: LiveSensorData) -> Callable[[WorkItem], Outcome]:
    for source in (SOURCE, "ttn-demo"):
        registry.nodes[source] = {"node_id": "node-1"}

    def run(item: WorkItem) -> Outcome:
        return deliver_many([item], CONFIG, registry=registry, downstream=Downstream(integrate=api))[0]

    return run


def test_sensors_a_lost_profile_change_created_are_removed_by_the_probe_not_created_twice() -> None:
    registry = InMemoryRegistry()
    api = LiveSensorData()
    run = runner(registry, api)

    assert isinstance(run(work()), Integrated)  # the generic profile: one sensor
    generic = set(api.sensors)
    api.lose_next = True  # the environment sensor's sensors are created; the answer is lost
    assert isinstance(run(work(model="EnvironmentSensor")), Retryable)
    environment = set(api.sensors)
    assert environment.isdisjoint(generic)

    # The next event describes the generic profile again: the probe finds the environment
    # sensors, which neither the record nor this profile names, and removes them.
    assert isinstance(run(work()), Integrated)
    assert set(api.sensors) == generic
    record = registry.get_device(SOURCE, "a")
    assert record is not None
    assert not record.maybe_created
    assert set(record.sensor_ids) == generic

    assert isinstance(run(work(model="EnvironmentSensor")), Integrated)  # the retried change
    assert set(api.sensors) == environment
    assert api.created_twice == []


def test_a_rejoin_after_a_lost_uplink_keeps_the_model_that_uplink_told() -> None:
    registry = InMemoryRegistry()
    api = LiveSensorData()
    run = runner(registry, api)
    assert isinstance(run(tts_work()), Integrated)  # the join: no model, the generic profile
    api.lose_next = True  # the uplink's model changes the profile; its answer is lost
    assert isinstance(run(tts_work(model="the-things-products/the-things-node")), Retryable)
    environment = set(api.sensors)
    calls = len(api.requests)

    # The rejoin says no model: the one the lost uplink told is kept, and the probe finds its
    # sensors there. Nothing is created or removed again.
    assert isinstance(run(tts_work()), Integrated)
    assert isinstance(run(tts_work(model="the-things-products/the-things-node")), Integrated)
    assert set(api.sensors) == environment
    assert api.created_twice == []
    assert len(api.requests) == calls + 1  # the probe; then the retried uplink is unchanged
    record = registry.get_device("ttn-demo", "a")
    assert record is not None
    assert set(record.sensor_ids) == environment
