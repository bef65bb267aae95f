"""Registry items in DynamoDB: their keys, their typed attribute values read back into records,
and the two calls the registry makes (a strongly consistent GetItem, a conditional UpdateItem)."""

from __future__ import annotations

import json
from typing import Any

from sensor_bridge.runtime.settings import settings
from sensor_bridge.store.aws_clients import dynamodb
from sensor_bridge.store.registry import DeviceRecord

Item = dict[str, Any]


def device_key(source: str, device_id: str) -> Item:
    return {"pk": {"S": f"device#{source}#{device_id}"}}


def node_key(source: str) -> Item:
    return {"pk": {"S": f"node#{source}"}}


def string_value(item: Item, name: str) -> str | None:
    value = item.get(name)
    return value["S"] if value and "S" in value else None


def number_value(item: Item, name: str) -> float | None:
    return float(item[name]["N"]) if name in item else None


def json_value(item: Item, name: str) -> Any:
    text = string_value(item, name)
    return json.loads(text) if text else None


def to_device(source: str, device_id: str, item: Item) -> DeviceRecord:
    return DeviceRecord(
        source=source,
        device_id=device_id,
        state=string_value(item, "state") or "pending",
        ref_id=string_value(item, "ref_id"),
        node_id=string_value(item, "node_id"),
        api_device_id=string_value(item, "api_device_id"),
        sensor_ids=json_value(item, "sensor_ids") or {},
        spec=json_value(item, "spec"),
        facts=json_value(item, "facts"),
        fingerprint=string_value(item, "fingerprint"),
        maybe_created=bool(item.get("maybe_created", {}).get("BOOL", False)),
        removed_at=number_value(item, "removed_at"),
        appeared_at=number_value(item, "appeared_at"),
        reason=string_value(item, "reason"),
        claimed_by=string_value(item, "claimed_by"),
        uploaded=frozenset(entry.split(":", 1)[-1] for entry in item.get("uploaded", {}).get("SS", [])),
    )


def conditional_update(**request: Any) -> Item | None:
    """A conditional UpdateItem on the registry: its answer, or None when the condition failed."""
    from botocore.exceptions import ClientError

    try:
        answer: Item = dynamodb().update_item(TableName=settings().registry_table, **request)
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
            return None
        raise
    return answer


def get_item(key: Item) -> Item | None:
    answer = dynamodb().get_item(TableName=settings().registry_table, Key=key, ConsistentRead=True)
    item: Item | None = answer.get("Item")
    return item
