"""A probe after a lost answer that changed the device's profile: the sensors that call created
are downstream but not in the registry's record, nor in the profile the next event describes.

Found by bench/chaos.py: a The Things Stack uplink (new model: other sensors) was applied but its
answer lost; the rejoin that came next (no model) probed, found sensors it did not expect and left
them; when the uplink was retried, its `update` sent those sensors as `new` a second time."""

from __future__ import annotations

import itertools
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
    _ids: itertools.count[int] = field(default_factory=itertools.count)

    def __call__(
        self, request: IntegrationRequest, source: str, *, budget: Budget | None, itwin_id: str | None
    ) -> Outcome:
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


def test_sensors_a_lost_profile_change_created_are_removed_by_the_probe_not_created_twice() -> None:
    registry = InMemoryRegistry()
    registry.nodes[SOURCE] = {"node_id": "node-1"}
    api = LiveSensorData()

    def run(item: WorkItem) -> Outcome:
        return deliver_many([item], CONFIG, registry=registry, downstream=Downstream(integrate=api))[0]

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
