"""The device registry in a dict: the same rules as the DynamoDB adapter (leases on the bridge's
clock, writes that finish a delivery only while its lease holds), for unit tests of the delivery
core without moto. One process only: it is no lock across processes.
"""

from __future__ import annotations

import threading
from dataclasses import fields, replace
from typing import Any

from sensor_bridge.runtime import clock
from sensor_bridge.store.registry import (
    LEASE_SECONDS,
    UPLOADS_KEPT,
    DeviceRecord,
    IntegratedDevice,
    LeaseLost,
    NodeRecord,
)

_DEVICE_FIELDS = {f.name for f in fields(DeviceRecord)}


class InMemoryRegistry:
    """`DeviceRegistry` in memory. `devices` and `nodes` hold attribute dicts, as DynamoDB items do."""

    def __init__(self) -> None:
        self.devices: dict[tuple[str, str], dict[str, Any]] = {}
        self.nodes: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    # -- devices ---------------------------------------------------------------------------------
    def get_device(self, source: str, device_id: str) -> DeviceRecord | None:
        item = self.devices.get((source, device_id))
        return self._record(source, device_id, item) if item is not None else None

    def claim_device(self, source: str, device_id: str, claimant: str, ref_id: str) -> DeviceRecord | None:
        with self._lock:
            item = self.devices.setdefault((source, device_id), {})
            if not _lease_free(item, claimant):
                return None
            now = int(clock.now())
            item.update(claimed_by=claimant, lease_until=now + LEASE_SECONDS, ref_id=ref_id, updated_at=now)
            item.setdefault("state", "pending")
            return self._record(source, device_id, item)

    def claim_new_device(
        self, source: str, device_id: str, claimant: str, ref_id: str, node_id: str, facts: dict[str, Any]
    ) -> bool:
        with self._lock:
            if (source, device_id) in self.devices:
                return False
            now = int(clock.now())
            self.devices[(source, device_id)] = {
                "claimed_by": claimant,
                "lease_until": now + LEASE_SECONDS,
                "ref_id": ref_id,
                "state": "pending",
                "updated_at": now,
                "maybe_created": True,
                "node_id": node_id,
                "facts": dict(facts),
            }
            return True

    def mark_changing(
        self, source: str, device_id: str, claimant: str, node_id: str, facts: dict[str, Any]
    ) -> None:
        with self._lock:
            item = self.devices.get((source, device_id))
            if item is None or item.get("claimed_by") != claimant:
                raise LeaseLost(f"the lease on {source}/{device_id} ran out before the call")
            item.update(maybe_created=True, node_id=node_id, facts=dict(facts))

    def record_integrated(self, source: str, device_id: str, claimant: str, result: IntegratedDevice) -> None:
        sets: dict[str, Any] = {
            "state": "integrated",
            "node_id": result.node_id,
            "api_device_id": result.api_device_id,
            "sensor_ids": dict(result.sensor_ids),
            "spec": result.spec,
            "fingerprint": result.fingerprint,
            "facts": result.facts,
            "maybe_created": False,
            "integrated_at": int(clock.now()),
        }
        if result.appeared_at is not None:
            sets["appeared_at"] = result.appeared_at
        self._finish(source, device_id, claimant, sets, ("reason",))

    def record_removed(self, source: str, device_id: str, claimant: str, *, removed_at: float) -> None:
        sets = {"state": "removed", "maybe_created": False, "removed_at": removed_at}
        gone = ("api_device_id", "sensor_ids", "spec", "fingerprint", "facts", "reason")
        self._finish(source, device_id, claimant, sets, gone)

    def record_tombstone(self, source: str, device_id: str, *, removed_at: float) -> bool:
        with self._lock:
            item = self.devices.get((source, device_id), {})
            leased = "lease_until" in item and item["lease_until"] >= clock.now()
            if "api_device_id" in item or item.get("maybe_created") or leased:
                return False
            item.update(state="removed", removed_at=removed_at)
            self.devices[(source, device_id)] = item
            return True

    def touch_appeared(self, source: str, device_id: str, at: float) -> None:
        with self._lock:
            item = self.devices.get((source, device_id))
            if item is not None and ("appeared_at" not in item or item["appeared_at"] < at):
                item["appeared_at"] = at

    def record_parked(
        self, source: str, device_id: str, claimant: str, reason: str, *, maybe_created: bool | None = None
    ) -> None:
        self._finish(
            source, device_id, claimant, {"state": "parked", "reason": reason[:1000], **_mark(maybe_created)}
        )

    def record_uploaded(self, source: str, device_id: str, work_id: str) -> None:
        with self._lock:
            item = self.devices.get((source, device_id))
            if item is None:
                return
            kept = [w for w in item.get("_uploads", []) if w != work_id][-(UPLOADS_KEPT - 1) :]
            item["_uploads"] = [*kept, work_id]
            item["uploaded"] = frozenset(item["_uploads"])

    def release_device(
        self, source: str, device_id: str, claimant: str, *, maybe_created: bool | None = None
    ) -> None:
        self._finish(source, device_id, claimant, {"updated_at": int(clock.now()), **_mark(maybe_created)})

    def _finish(
        self, source: str, device_id: str, claimant: str, sets: dict[str, Any], removes: tuple[str, ...] = ()
    ) -> None:
        with self._lock:
            item = self.devices.get((source, device_id))
            if item is None or item.get("claimed_by") != claimant:
                return  # our lease ran out and another delivery took over: its result stands
            item.update(sets)
            for name in ("claimed_by", "lease_until", *removes):
                item.pop(name, None)

    @staticmethod
    def _record(source: str, device_id: str, item: dict[str, Any]) -> DeviceRecord:
        known = {k: v for k, v in item.items() if k in _DEVICE_FIELDS}
        record = DeviceRecord(source=source, device_id=device_id, **known)
        return replace(record, sensor_ids=dict(record.sensor_ids))

    # -- nodes -----------------------------------------------------------------------------------
    def get_node(self, source: str) -> NodeRecord | None:
        item = self.nodes.get(source)
        if item is None:
            return None
        return NodeRecord(source=source, node_id=item.get("node_id"), claimed_by=item.get("claimed_by"))

    def claim_node(self, source: str, claimant: str) -> bool:
        with self._lock:
            item = self.nodes.setdefault(source, {})
            if "node_id" in item or not _lease_free(item, claimant):
                return False
            item.update(claimed_by=claimant, lease_until=int(clock.now()) + LEASE_SECONDS)
            return True

    def record_node(self, source: str, claimant: str, node_id: str) -> str:
        with self._lock:
            item = self.nodes.setdefault(source, {})
            if item.get("claimed_by") == claimant or "node_id" not in item:
                item["node_id"] = node_id
                if item.get("claimed_by") == claimant:
                    item.pop("claimed_by", None)
                    item.pop("lease_until", None)
            return str(item["node_id"])

    def release_node(self, source: str, claimant: str) -> None:
        with self._lock:
            item = self.nodes.get(source)
            if item is not None and item.get("claimed_by") == claimant:
                item.pop("claimed_by", None)
                item.pop("lease_until", None)


def _lease_free(item: dict[str, Any], claimant: str) -> bool:
    return (
        "lease_until" not in item
        or item["lease_until"] < int(clock.now())
        or item.get("claimed_by") == claimant
    )


def _mark(maybe_created: bool | None) -> dict[str, Any]:
    return {} if maybe_created is None else {"maybe_created": maybe_created}
