"""What every step of one delivery run reads: the configuration, the registry port, the API call,
the time budget, and the nodes found so far (one lookup per source per run)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sensor_bridge.model.config import BridgeConfig, Source
from sensor_bridge.model.contract import DeviceChange, Integration, IntegrationRequest, NodeInfo
from sensor_bridge.model.outcomes import Outcome
from sensor_bridge.model.profiles import DeviceSpec
from sensor_bridge.model.work import WorkItem
from sensor_bridge.runtime.budget import Budget
from sensor_bridge.runtime.settings import settings
from sensor_bridge.store.registry import DeviceRecord, DeviceRegistry

IN_FLIGHT = "another delivery of this device is in progress"


@dataclass(frozen=True)
class Failed:
    """A step of this item's delivery raised (a bug, or the registry or a call failing for this
    item): the item fails alone, its siblings go on, and nothing more is sent for it."""

    error: Exception
    step: str  # prepare | send | settle | readings

    @property
    def reason(self) -> str:
        return f"{self.step} raised {type(self.error).__name__}: {self.error}"[:500]


# What delivery answers per item: an Outcome, or the failure of one of its steps.
Delivered = Outcome | Failed


class UploadCall(Protocol):
    """The upload call as delivery sees it (`sensor_data.upload.upload`; a fake in unit tests)."""

    def __call__(
        self, observations: list[dict[str, Any]], source: str, *, budget: Budget | None
    ) -> Outcome: ...


class QueryCall(Protocol):
    """The raw-data query as delivery sees it (`sensor_data.query.stored_observations`): the
    stored observations, each with `sensorId`, `timestamp` and `values`, or the Outcome that stopped it."""

    def __call__(
        self, sensor_ids: list[str], start: str, end: str, source: str, *, budget: Budget | None
    ) -> Sequence[StoredReading] | Outcome: ...


class StoredReading(Protocol):
    """What delivery reads of a stored observation."""

    @property
    def sensorId(self) -> str: ...  # the API's field name

    @property
    def timestamp(self) -> datetime: ...

    @property
    def values(self) -> Any: ...  # {metric: value} as stored; None when the answer has none


class IntegrateCall(Protocol):
    """The integrate call as delivery sees it (`sensor_data.client.integrate`; a fake in unit tests)."""

    def __call__(
        self, request: IntegrationRequest, source: str, *, budget: Budget | None, itwin_id: str | None
    ) -> Outcome: ...


class NodeListingCall(Protocol):
    """The node listing as delivery sees it (`sensor_data.nodes.list_nodes`)."""

    def __call__(
        self, source: str, *, budget: Budget | None, itwin_id: str | None
    ) -> list[NodeInfo] | Outcome: ...


@dataclass(frozen=True)
class Downstream:
    """The Sensor Data calls one delivery run makes; what is left out is the real call (queued
    work's kind). The webhook function passes its direct calls; unit tests pass fakes."""

    integrate: IntegrateCall | None = None
    upload: UploadCall | None = None
    list_nodes: NodeListingCall | None = None
    query: QueryCall | None = None


@dataclass
class Delivery:
    config: BridgeConfig
    registry: DeviceRegistry
    api: IntegrateCall
    list_nodes: NodeListingCall
    budget: Budget | None = None
    upload: UploadCall | None = None
    query: QueryCall | None = None
    nodes: dict[str, str | Outcome] = field(default_factory=dict)  # per source: its node, or why not
    # Records of devices this run makes no call for, as prepare read them: their readings need no
    # second read. A device any work of the run may change (claimed, waiting on another's lease)
    # is read again.
    unchanged: dict[tuple[str, str], DeviceRecord] = field(default_factory=dict)
    changing: set[tuple[str, str]] = field(default_factory=set)

    def integrate(
        self, node_id: str, changes: list[DeviceChange], source: Source, source_name: str
    ) -> Outcome:
        request = IntegrationRequest(integration=Integration(nodeId=node_id, devices=changes))
        return self.api(request, source_name, budget=self.budget, itwin_id=itwin_for(source))

    def device_for_readings(self, source: str, device_id: str) -> DeviceRecord | None:
        """The device's record after this run's calls: the one prepare read if nothing changed it."""
        key = (source, device_id)
        if key in self.unchanged and key not in self.changing:
            return self.unchanged[key]
        return self.registry.get_device(source, device_id)


def itwin_for(source: Source) -> str | None:
    return source.itwin_id or settings().itwin_id


@dataclass(frozen=True)
class Planned:
    """A device's change as it was computed: from which work, spec and node, with which facts, and
    the sensor ids already downstream (a probe may have found some)."""

    work: WorkItem
    spec: DeviceSpec
    node_id: str
    facts: dict[str, Any]
    previous_sensors: dict[str, str] = field(default_factory=dict)
    # An earlier change's answer was lost (the record's mark): a call that is not applied leaves
    # the mark as it was, so the next delivery still probes before it creates.
    uncertain: bool = False
    creates: bool = True  # the change is a `new` (else an `update` of a device the API has)
