"""The device registry: what the bridge created downstream, and who is working on it (a port).

One record per (source, device identity) and one per source's node. A short lease, taken with a
conditional write before any call that changes Sensor Data, makes concurrent deliveries for the
same device take turns, so two first deliveries produce one `new`.

The delivery core talks to `DeviceRegistry` only. `DynamoDBRegistry` (store.dynamodb_registry) is
what the functions use; `InMemoryRegistry` (store.memory_registry) keeps the same rules in a dict,
for unit tests of the delivery core, as Powertools' idempotency keeps a base persistence layer
with DynamoDB and Redis implementations.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Any, Protocol

UPLOADS_KEPT = 64  # work ids remembered per device: far more than can be in flight for one device
LEASE_SECONDS = 120  # longer than any single API call (the retry function's budget is 20 s)


@dataclass(frozen=True)
class DeviceRecord:
    source: str
    device_id: str
    state: str = "pending"  # pending | integrated | parked | removed
    ref_id: str | None = None
    node_id: str | None = None
    api_device_id: str | None = None
    sensor_ids: dict[str, str] = field(default_factory=dict)  # sensor refId -> API sensor id
    spec: dict[str, Any] | None = None  # the props and sensors last integrated
    facts: dict[str, Any] | None = None  # what platforms told about the device (model, location, ...)
    fingerprint: str | None = None
    # A change (`new` or `update`) may have been applied without our seeing the answer.
    maybe_created: bool = False
    removed_at: float | None = None  # when the platform said the device was deleted
    appeared_at: float | None = None  # when the platform last announced it (created or updated)
    reason: str | None = None
    claimed_by: str | None = None
    # The latest work items whose readings the API accepted (work ids): a redelivered one is not
    # uploaded again.
    uploaded: frozenset[str] = frozenset()

    @property
    def integrated(self) -> bool:
        return self.api_device_id is not None


@dataclass(frozen=True)
class NodeRecord:
    source: str
    node_id: str | None = None
    claimed_by: str | None = None


@dataclass(frozen=True)
class IntegratedDevice:
    """What an answered `new` or `update` leaves in the registry."""

    node_id: str
    api_device_id: str
    sensor_ids: dict[str, str]
    spec: dict[str, Any]
    fingerprint: str
    facts: dict[str, Any]
    appeared_at: float | None  # when the platform announced it, if this event was an announcement


class LeaseLost(RuntimeError):
    """Another delivery took the device over: this one must not call the API for it."""


class DeviceRegistry(Protocol):
    """Every write that finishes a delivery (`record_*`, `release_*`) takes effect only while the
    caller still holds the lease: if it ran out and another delivery took over, that one's result
    stands."""

    def get_device(self, source: str, device_id: str) -> DeviceRecord | None: ...

    def claim_device(self, source: str, device_id: str, claimant: str, ref_id: str) -> DeviceRecord | None:
        """Take the device's lease; the record as it now stands, or None if another holds it."""
        ...

    def claim_new_device(
        self, source: str, device_id: str, claimant: str, ref_id: str, node_id: str, facts: dict[str, Any]
    ) -> bool:
        """Create the record of a device the registry has never seen: leased to `claimant` and
        already under the write-ahead mark of its `new` in `node_id`, with the event's `facts`, in
        one write (a claim and a `mark_changing` in two would cost a write more). False, writing
        nothing, if a record exists by now: then the device is claimed the usual way."""
        ...

    def mark_changing(
        self, source: str, device_id: str, claimant: str, node_id: str, facts: dict[str, Any]
    ) -> None:
        """Written before a `new` or `update` is sent: from here until its answer is recorded the
        device downstream may differ from the record (exist, or have other sensors), so a delivery
        that finds this mark after a crash or a lost answer probes first. `facts`: what the event told
        (a model an uplink gave), kept even if the answer is lost, so a later partial event (a rejoin
        without a model) describes the profile that call may have applied. LeaseLost if not ours."""
        ...

    def record_integrated(
        self, source: str, device_id: str, claimant: str, result: IntegratedDevice
    ) -> None: ...

    def record_removed(self, source: str, device_id: str, claimant: str, *, removed_at: float) -> None: ...

    def record_tombstone(self, source: str, device_id: str, *, removed_at: float) -> bool:
        """The platform deleted a device we never created: remember when, so that work for it still
        waiting on the retry queue does not create it afterwards.

        False when the device is integrated, may have been created, or a delivery holds its lease
        (a `new` may be in flight): the removal must then wait its turn and go through the API."""
        ...

    def touch_appeared(self, source: str, device_id: str, at: float) -> None:
        """The platform announced the device again (no change to make): remember the latest time,
        so that a deletion from before it, delivered late, does not remove the device."""
        ...

    def record_parked(
        self, source: str, device_id: str, claimant: str, reason: str, *, maybe_created: bool | None = None
    ) -> None: ...

    def record_uploaded(self, source: str, device_id: str, work_id: str) -> None:
        """This work's reading is done: the API accepted it, or the device's profile maps none of
        it (no lease needed: it changes no device). Only the latest UPLOADS_KEPT are kept."""
        ...

    def release_device(
        self, source: str, device_id: str, claimant: str, *, maybe_created: bool | None = None
    ) -> None:
        """Give the lease back after a call that will be retried. `maybe_created`: whether the change
        just sent may have been applied (None: nothing was sent, leave the mark as it is)."""
        ...

    def get_node(self, source: str) -> NodeRecord | None: ...

    def claim_node(self, source: str, claimant: str) -> bool: ...

    def record_node(self, source: str, claimant: str, node_id: str) -> str:
        """Record the node this delivery created; the source's node as it now stands."""
        ...

    def release_node(self, source: str, claimant: str) -> None: ...


@cache
def default_registry() -> DeviceRegistry:
    """The functions' registry: DynamoDB (the table named by REGISTRY_TABLE)."""
    from sensor_bridge.store.dynamodb_registry import DynamoDBRegistry

    return DynamoDBRegistry()
