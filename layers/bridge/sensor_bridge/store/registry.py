"""The device registry (DynamoDB): what the bridge created downstream, and who is working on it.

One item per (source, device identity) and one per source's node. A short lease, taken with a
conditional write before any call that changes Sensor Data, makes concurrent deliveries for the
same device take turns, so two first deliveries produce one `new`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sensor_bridge.runtime import clock
from sensor_bridge.runtime.settings import settings
from sensor_bridge.store.aws_clients import dynamodb

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

    @property
    def integrated(self) -> bool:
        return self.api_device_id is not None


@dataclass(frozen=True)
class NodeRecord:
    source: str
    node_id: str | None = None
    claimed_by: str | None = None


def _device_key(source: str, device_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"device#{source}#{device_id}"}}


def _node_key(source: str) -> dict[str, Any]:
    return {"pk": {"S": f"node#{source}"}}


def _s(item: dict[str, Any], name: str) -> str | None:
    value = item.get(name)
    return value["S"] if value and "S" in value else None


def _to_device(source: str, device_id: str, item: dict[str, Any]) -> DeviceRecord:
    spec = _s(item, "spec")
    facts = _s(item, "facts")
    sensors = _s(item, "sensor_ids")
    return DeviceRecord(
        source=source,
        device_id=device_id,
        state=_s(item, "state") or "pending",
        ref_id=_s(item, "ref_id"),
        node_id=_s(item, "node_id"),
        api_device_id=_s(item, "api_device_id"),
        sensor_ids=json.loads(sensors) if sensors else {},
        spec=json.loads(spec) if spec else None,
        facts=json.loads(facts) if facts else None,
        fingerprint=_s(item, "fingerprint"),
        maybe_created=bool(item.get("maybe_created", {}).get("BOOL", False)),
        removed_at=float(item["removed_at"]["N"]) if "removed_at" in item else None,
        appeared_at=float(item["appeared_at"]["N"]) if "appeared_at" in item else None,
        reason=_s(item, "reason"),
        claimed_by=_s(item, "claimed_by"),
    )


_LEASE_FREE = "attribute_not_exists(lease_until) OR lease_until < :now OR claimed_by = :me"


def _update(**request: Any) -> dict[str, Any] | None:
    """A conditional UpdateItem on the registry: its answer, or None when the condition failed."""
    from botocore.exceptions import ClientError

    try:
        answer: dict[str, Any] = dynamodb().update_item(TableName=settings().registry_table, **request)
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
            return None
        raise
    return answer


def get_device(source: str, device_id: str) -> DeviceRecord | None:
    answer = dynamodb().get_item(
        TableName=settings().registry_table, Key=_device_key(source, device_id), ConsistentRead=True
    )
    item = answer.get("Item")
    return _to_device(source, device_id, item) if item else None


def claim_device(source: str, device_id: str, claimant: str, ref_id: str) -> DeviceRecord | None:
    """Take the device's lease; the record as it now stands, or None if another delivery holds it."""
    now = int(clock.now())
    answer = _update(
        Key=_device_key(source, device_id),
        UpdateExpression="SET claimed_by = :me, lease_until = :until, ref_id = :ref, "
        "#state = if_not_exists(#state, :pending), updated_at = :now",
        ConditionExpression=_LEASE_FREE,
        ExpressionAttributeNames={"#state": "state"},
        ExpressionAttributeValues={
            ":me": {"S": claimant},
            ":until": {"N": str(now + LEASE_SECONDS)},
            ":now": {"N": str(now)},
            ":ref": {"S": ref_id},
            ":pending": {"S": "pending"},
        },
        ReturnValues="ALL_NEW",
    )
    return _to_device(source, device_id, answer["Attributes"]) if answer is not None else None


def _finish_device(
    source: str, device_id: str, claimant: str, sets: dict[str, dict[str, Any]], removes: tuple[str, ...] = ()
) -> None:
    """Write the result of a call and give the lease back (only if we still hold it: if our lease
    ran out and another delivery took over, its result stands)."""
    values = {f":{k}": v for k, v in sets.items()}
    values[":me"] = {"S": claimant}
    expression = "SET " + ", ".join(f"#{k} = :{k}" for k in sets)
    expression += " REMOVE " + ", ".join(("claimed_by", "lease_until", *removes))
    _update(
        Key=_device_key(source, device_id),
        UpdateExpression=expression,
        ConditionExpression="claimed_by = :me",
        ExpressionAttributeNames={f"#{k}": k for k in sets},
        ExpressionAttributeValues=values,
    )


def record_integrated(
    source: str,
    device_id: str,
    claimant: str,
    *,
    node_id: str,
    api_device_id: str,
    sensor_ids: dict[str, str],
    spec: dict[str, Any],
    fingerprint: str,
    facts: dict[str, Any],
    appeared_at: float | None,
) -> None:
    announced = {"appeared_at": {"N": str(appeared_at)}} if appeared_at is not None else {}
    _finish_device(
        source,
        device_id,
        claimant,
        {
            **announced,
            "state": {"S": "integrated"},
            "node_id": {"S": node_id},
            "api_device_id": {"S": api_device_id},
            "sensor_ids": {"S": json.dumps(sensor_ids, sort_keys=True)},
            "spec": {"S": json.dumps(spec, sort_keys=True)},
            "fingerprint": {"S": fingerprint},
            "facts": {"S": json.dumps(facts, sort_keys=True)},
            "maybe_created": {"BOOL": False},
            "integrated_at": {"N": str(int(clock.now()))},
        },
        removes=("reason",),
    )


def record_removed(source: str, device_id: str, claimant: str, *, removed_at: float) -> None:
    _finish_device(
        source,
        device_id,
        claimant,
        {
            "state": {"S": "removed"},
            "maybe_created": {"BOOL": False},
            "removed_at": {"N": str(removed_at)},
        },
        removes=("api_device_id", "sensor_ids", "spec", "fingerprint", "facts", "reason"),
    )


def record_tombstone(source: str, device_id: str, *, removed_at: float) -> bool:
    """The platform deleted a device we never created: remember when, so that work for it still
    waiting on the retry queue does not create it afterwards.

    False when the device is integrated, may have been created, or a delivery holds its lease (a
    `new` may be in flight): the removal must then wait its turn and go through the API.
    """
    answer = _update(
        Key=_device_key(source, device_id),
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


def touch_appeared(source: str, device_id: str, at: float) -> None:
    """The platform announced the device again (no change to make): remember the latest time, so
    that a deletion from before it, delivered late, does not remove the device."""
    _update(
        Key=_device_key(source, device_id),
        UpdateExpression="SET appeared_at = :at",
        ConditionExpression="attribute_exists(pk) AND "
        "(attribute_not_exists(appeared_at) OR appeared_at < :at)",
        ExpressionAttributeValues={":at": {"N": str(at)}},
    )


def mark_changing(source: str, device_id: str, claimant: str, node_id: str) -> None:
    """Written before a `new` or `update` is sent: from here until its answer is recorded the
    device downstream may differ from the record (exist, or have other sensors), so a delivery
    that finds this mark after a crash or a lost answer probes first."""
    answer = _update(
        Key=_device_key(source, device_id),
        UpdateExpression="SET maybe_created = :yes, node_id = :node",
        ConditionExpression="claimed_by = :me",
        ExpressionAttributeValues={":yes": {"BOOL": True}, ":node": {"S": node_id}, ":me": {"S": claimant}},
    )
    if answer is None:
        raise LeaseLost(f"the lease on {source}/{device_id} ran out before the call")


class LeaseLost(RuntimeError):
    """Another delivery took the device over: this one must not call the API for it."""


def _created_mark(maybe_created: bool | None) -> dict[str, dict[str, Any]]:
    return {} if maybe_created is None else {"maybe_created": {"BOOL": maybe_created}}


def record_parked(
    source: str, device_id: str, claimant: str, reason: str, *, maybe_created: bool | None = None
) -> None:
    _finish_device(
        source,
        device_id,
        claimant,
        {"state": {"S": "parked"}, "reason": {"S": reason[:1000]}, **_created_mark(maybe_created)},
    )


def release_device(source: str, device_id: str, claimant: str, *, maybe_created: bool | None = None) -> None:
    """Give the lease back after a call that will be retried. `maybe_created`: whether the `new`
    just sent may have been applied (None: no `new` was sent, leave the mark as it is)."""
    sets: dict[str, dict[str, Any]] = {
        "updated_at": {"N": str(int(clock.now()))},
        **_created_mark(maybe_created),
    }
    _finish_device(source, device_id, claimant, sets)


def get_node(source: str) -> NodeRecord | None:
    answer = dynamodb().get_item(
        TableName=settings().registry_table, Key=_node_key(source), ConsistentRead=True
    )
    item = answer.get("Item")
    if not item:
        return None
    return NodeRecord(source=source, node_id=_s(item, "node_id"), claimed_by=_s(item, "claimed_by"))


def claim_node(source: str, claimant: str) -> bool:
    now = int(clock.now())
    answer = _update(
        Key=_node_key(source),
        UpdateExpression="SET claimed_by = :me, lease_until = :until",
        ConditionExpression=f"attribute_not_exists(node_id) AND ({_LEASE_FREE})",
        ExpressionAttributeValues={
            ":me": {"S": claimant},
            ":until": {"N": str(now + LEASE_SECONDS)},
            ":now": {"N": str(now)},
        },
    )
    return answer is not None


def record_node(source: str, claimant: str, node_id: str) -> str:
    """Record the node this delivery created; the source's node as it now stands."""
    recorded = _update(
        Key=_node_key(source),
        UpdateExpression="SET node_id = :node REMOVE claimed_by, lease_until",
        ConditionExpression="claimed_by = :me",
        ExpressionAttributeValues={":node": {"S": node_id}, ":me": {"S": claimant}},
    )
    if recorded is None:
        # Our lease on the node ran out while the call ran: keep the node we created, unless
        # another delivery recorded one meanwhile (then that one stands, and ours stays empty).
        recorded = _update(
            Key=_node_key(source),
            UpdateExpression="SET node_id = :node",
            ConditionExpression="attribute_not_exists(node_id)",
            ExpressionAttributeValues={":node": {"S": node_id}},
        )
    if recorded is not None:
        return node_id
    standing = get_node(source)
    if standing is None or standing.node_id is None:
        raise RuntimeError(f"the node record of source {source!r} vanished while it was written")
    return standing.node_id


def release_node(source: str, claimant: str) -> None:
    _update(
        Key=_node_key(source),
        UpdateExpression="REMOVE claimed_by, lease_until",
        ConditionExpression="claimed_by = :me",
        ExpressionAttributeValues={":me": {"S": claimant}},
    )
