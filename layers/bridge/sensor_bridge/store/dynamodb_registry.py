"""The device registry in DynamoDB: every write is a conditional UpdateItem on one table.

Items: `device#<source>#<device id>` and `node#<source>`. Structured values (sensor ids, the spec
last integrated, the device's facts) are JSON strings: the registry never queries inside them.
"""

from __future__ import annotations

from typing import Any

from sensor_bridge.model.work import compact_json
from sensor_bridge.runtime import clock
from sensor_bridge.runtime.process import on_reset
from sensor_bridge.runtime.settings import settings
from sensor_bridge.store.registry import (
    LEASE_SECONDS,
    UPLOADS_KEPT,
    DeviceRecord,
    IntegratedDevice,
    LeaseLost,
    NodeRecord,
)
from sensor_bridge.store.registry_items import (
    Item,
    conditional_update,
    device_key,
    get_item,
    node_key,
    string_value,
    to_device,
)

# A source's node id, once recorded, never changes: each process reads it once, (table, source) -> id.
_known_nodes: dict[tuple[str, str], str] = {}
on_reset(_known_nodes.clear)
_LEASE_FREE = "attribute_not_exists(lease_until) OR lease_until < :now OR claimed_by = :me"


def _created_mark(maybe_created: bool | None) -> dict[str, Item]:
    return {} if maybe_created is None else {"maybe_created": {"BOOL": maybe_created}}


class DynamoDBRegistry:
    """`DeviceRegistry` on the table named by REGISTRY_TABLE (GetItem and UpdateItem only)."""

    def get_device(self, source: str, device_id: str) -> DeviceRecord | None:
        item = get_item(device_key(source, device_id))
        return to_device(source, device_id, item) if item else None

    def claim_device(self, source: str, device_id: str, claimant: str, ref_id: str) -> DeviceRecord | None:
        answer = conditional_update(
            Key=device_key(source, device_id),
            UpdateExpression="SET claimed_by = :me, lease_until = :until, ref_id = :ref, "
            "#state = if_not_exists(#state, :pending), updated_at = :now",
            ConditionExpression=_LEASE_FREE,
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues=_lease_values(claimant, ref_id),
            ReturnValues="ALL_NEW",
        )
        return to_device(source, device_id, answer["Attributes"]) if answer is not None else None

    def claim_new_device(
        self, source: str, device_id: str, claimant: str, ref_id: str, node_id: str, facts: dict[str, Any]
    ) -> bool:
        # The facts, as mark_changing writes them: if this `new`'s answer is lost, a later partial
        # event (a join without the uplink's model) still describes the profile it may have applied.
        answer = conditional_update(
            Key=device_key(source, device_id),
            UpdateExpression="SET claimed_by = :me, lease_until = :until, ref_id = :ref, "
            "#state = :pending, updated_at = :now, maybe_created = :yes, node_id = :node, facts = :facts",
            ConditionExpression="attribute_not_exists(pk)",
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues={
                **_lease_values(claimant, ref_id),
                ":yes": {"BOOL": True},
                ":node": {"S": node_id},
                ":facts": {"S": compact_json(facts, sort_keys=True)},
            },
        )
        return answer is not None

    def _finish(
        self, source: str, device_id: str, claimant: str, sets: dict[str, Item], removes: tuple[str, ...] = ()
    ) -> None:
        """Write the result of a call and give the lease back, only if we still hold it."""
        values = {f":{k}": v for k, v in sets.items()}
        values[":me"] = {"S": claimant}
        expression = "SET " + ", ".join(f"#{k} = :{k}" for k in sets)
        expression += " REMOVE " + ", ".join(("claimed_by", "lease_until", *removes))
        conditional_update(
            Key=device_key(source, device_id),
            UpdateExpression=expression,
            ConditionExpression="claimed_by = :me",
            ExpressionAttributeNames={f"#{k}": k for k in sets},
            ExpressionAttributeValues=values,
        )

    def record_integrated(self, source: str, device_id: str, claimant: str, result: IntegratedDevice) -> None:
        announced = {"appeared_at": {"N": str(result.appeared_at)}} if result.appeared_at is not None else {}
        sets: dict[str, Item] = {
            **announced,
            "state": {"S": "integrated"},
            "node_id": {"S": result.node_id},
            "api_device_id": {"S": result.api_device_id},
            "sensor_ids": {"S": compact_json(result.sensor_ids, sort_keys=True)},
            "spec": {"S": compact_json(result.spec, sort_keys=True)},
            "fingerprint": {"S": result.fingerprint},
            "facts": {"S": compact_json(result.facts, sort_keys=True)},
            "maybe_created": {"BOOL": False},
            "integrated_at": {"N": str(int(clock.now()))},
        }
        self._finish(source, device_id, claimant, sets, removes=("reason",))

    def record_removed(self, source: str, device_id: str, claimant: str, *, removed_at: float) -> None:
        sets: dict[str, Item] = {
            "state": {"S": "removed"},
            "maybe_created": {"BOOL": False},
            "removed_at": {"N": str(removed_at)},
        }
        gone = ("api_device_id", "sensor_ids", "spec", "fingerprint", "facts", "reason")
        self._finish(source, device_id, claimant, sets, removes=gone)

    def record_tombstone(self, source: str, device_id: str, *, removed_at: float) -> bool:
        answer = conditional_update(
            Key=device_key(source, device_id),
            UpdateExpression="SET #state = :removed, removed_at = :at",
            ConditionExpression="attribute_not_exists(api_device_id) AND "
            "(attribute_not_exists(maybe_created) OR maybe_created = :no) AND "
            "(attribute_not_exists(lease_until) OR lease_until < :now)",
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues={
                ":removed": {"S": "removed"},
                ":no": {"BOOL": False},
                ":now": {"N": str(clock.now())},
                ":at": {"N": str(removed_at)},
            },
        )
        return answer is not None

    def touch_appeared(self, source: str, device_id: str, at: float) -> None:
        conditional_update(
            Key=device_key(source, device_id),
            UpdateExpression="SET appeared_at = :at",
            ConditionExpression="attribute_exists(pk) AND "
            "(attribute_not_exists(appeared_at) OR appeared_at < :at)",
            ExpressionAttributeValues={":at": {"N": str(at)}},
        )

    def mark_changing(
        self, source: str, device_id: str, claimant: str, node_id: str, facts: dict[str, Any]
    ) -> None:
        answer = conditional_update(
            Key=device_key(source, device_id),
            UpdateExpression="SET maybe_created = :yes, node_id = :node, facts = :facts",
            ConditionExpression="claimed_by = :me",
            ExpressionAttributeValues={
                ":yes": {"BOOL": True},
                ":node": {"S": node_id},
                ":facts": {"S": compact_json(facts, sort_keys=True)},
                ":me": {"S": claimant},
            },
        )
        if answer is None:
            raise LeaseLost(f"the lease on {source}/{device_id} ran out before the call")

    def record_parked(
        self, source: str, device_id: str, claimant: str, reason: str, *, maybe_created: bool | None = None
    ) -> None:
        sets = {"state": {"S": "parked"}, "reason": {"S": reason[:1000]}, **_created_mark(maybe_created)}
        self._finish(source, device_id, claimant, sets)

    def record_uploaded(self, source: str, device_id: str, work_id: str) -> None:
        # A string set of "<epoch seconds>:<work id>": the time orders them for trimming.
        entry = f"{int(clock.now()):012d}:{work_id}"
        answer = conditional_update(
            Key=device_key(source, device_id),
            UpdateExpression="ADD uploaded :entry",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeValues={":entry": {"SS": [entry]}},
            ReturnValues="UPDATED_NEW",
        )
        entries = sorted((answer or {}).get("Attributes", {}).get("uploaded", {}).get("SS", []))
        if len(entries) > UPLOADS_KEPT:
            conditional_update(
                Key=device_key(source, device_id),
                UpdateExpression="DELETE uploaded :old",
                ExpressionAttributeValues={":old": {"SS": entries[: len(entries) - UPLOADS_KEPT]}},
            )

    def release_device(
        self, source: str, device_id: str, claimant: str, *, maybe_created: bool | None = None
    ) -> None:
        sets = {"updated_at": {"N": str(int(clock.now()))}, **_created_mark(maybe_created)}
        self._finish(source, device_id, claimant, sets)

    def get_node(self, source: str) -> NodeRecord | None:
        known = _known_nodes.get((settings().registry_table, source))
        if known is not None:
            return NodeRecord(source=source, node_id=known)
        item = get_item(node_key(source))
        if not item:
            return None
        node = NodeRecord(
            source=source, node_id=string_value(item, "node_id"), claimed_by=string_value(item, "claimed_by")
        )
        if node.node_id is not None:
            _known_nodes[(settings().registry_table, source)] = node.node_id
        return node

    def claim_node(self, source: str, claimant: str) -> bool:
        now = int(clock.now())
        answer = conditional_update(
            Key=node_key(source),
            UpdateExpression="SET claimed_by = :me, lease_until = :until",
            ConditionExpression=f"attribute_not_exists(node_id) AND ({_LEASE_FREE})",
            ExpressionAttributeValues={
                ":me": {"S": claimant},
                ":until": {"N": str(now + LEASE_SECONDS)},
                ":now": {"N": str(now)},
            },
        )
        return answer is not None

    def record_node(self, source: str, claimant: str, node_id: str) -> str:
        recorded = conditional_update(
            Key=node_key(source),
            UpdateExpression="SET node_id = :node REMOVE claimed_by, lease_until",
            ConditionExpression="claimed_by = :me",
            ExpressionAttributeValues={":node": {"S": node_id}, ":me": {"S": claimant}},
        )
        if recorded is None:
            # Our lease on the node ran out while the call ran: keep the node we created, unless
            # another delivery recorded one meanwhile (then that one stands, and ours stays empty).
            recorded = conditional_update(
                Key=node_key(source),
                UpdateExpression="SET node_id = :node",
                ConditionExpression="attribute_not_exists(node_id)",
                ExpressionAttributeValues={":node": {"S": node_id}},
            )
        if recorded is not None:
            _known_nodes[(settings().registry_table, source)] = node_id
            return node_id
        standing = self.get_node(source)
        if standing is None or standing.node_id is None:
            raise RuntimeError(f"the node record of source {source!r} vanished while it was written")
        return standing.node_id

    def release_node(self, source: str, claimant: str) -> None:
        conditional_update(
            Key=node_key(source),
            UpdateExpression="REMOVE claimed_by, lease_until",
            ConditionExpression="claimed_by = :me",
            ExpressionAttributeValues={":me": {"S": claimant}},
        )


def _lease_values(claimant: str, ref_id: str) -> dict[str, Item]:
    """The values a claim writes, whether the device is known or new: who holds the lease, until
    when, and its refId (state `pending` until an answer is recorded)."""
    now = int(clock.now())
    return {
        ":me": {"S": claimant},
        ":until": {"N": str(now + LEASE_SECONDS)},
        ":now": {"N": str(now)},
        ":ref": {"S": ref_id},
        ":pending": {"S": "pending"},
    }
