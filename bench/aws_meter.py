"""Counts the AWS requests the bridge makes and the DynamoDB capacity units they consume.

Every botocore API call in the process goes through `BaseClient._make_api_call`; the meter wraps
it. DynamoDB on-demand bills a write by the larger of the item's size before and after it (1 WRU
per started KB, conditional failures included) and a read by the item's size (per started 4 KB;
half for an eventually consistent read), so the meter reads the item on either side of a write
with an unmetered client.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

_WRITES = {"PutItem", "UpdateItem", "DeleteItem"}
_local = threading.local()


def item_size(item: dict[str, Any]) -> int:
    """An item's size as DynamoDB counts it: attribute names plus values (typed JSON form)."""
    return sum(len(name.encode()) + _value_size(value) for name, value in item.items())


def _value_size(value: dict[str, Any]) -> int:
    ((kind, v),) = value.items()
    if kind == "S":
        return len(v.encode())
    if kind == "N":
        return math.ceil(len(v.strip("-").replace(".", "")) / 2) + 1
    if kind == "B":
        return len(v)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "M":
        return 3 + sum(len(k.encode()) + _value_size(x) + 1 for k, x in v.items())
    if kind == "L":
        return 3 + sum(_value_size(x) + 1 for x in v)
    return sum(len(str(x).encode()) for x in v)  # SS, NS, BS


def _kind(params: dict[str, Any]) -> str:
    """What an item is, from its key: `device`, `node`, `limiter` (the registry table's prefixes)
    or the idempotency record's prefix."""
    key = params.get("Key") or params.get("Item") or {}
    value = next((v["S"] for k, v in key.items() if k in ("pk", "id") and "S" in v), "")
    return str(value).split("#", 1)[0]


class AwsMeter:
    def __init__(self, ignore: tuple[Any, ...] = ()) -> None:
        self.ignore = ignore  # clients that are not the functions' (the local event source mapping)
        self.requests: Counter[str] = Counter()  # "service.Operation" -> calls
        self.items: Counter[str] = Counter()  # "Operation kind" -> DynamoDB calls, kind = the key's prefix
        self.wru = 0.0
        self.rru = 0.0
        self._keys: dict[str, list[str]] = {}

    def snapshot(self) -> dict[str, Any]:
        return {"requests": dict(self.requests), "items": dict(self.items), "wru": self.wru, "rru": self.rru}

    def _key_names(self, client: Any, table: str) -> list[str]:
        if table not in self._keys:
            schema = client.describe_table(TableName=table)["Table"]["KeySchema"]
            self._keys[table] = [k["AttributeName"] for k in schema]
        return self._keys[table]

    def _stored(self, client: Any, params: dict[str, Any]) -> int:
        table = params["TableName"]
        key = params.get("Key") or {k: params["Item"][k] for k in self._key_names(client, table)}
        item = client.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")
        return item_size(item) if item else 0

    def record(self, client: Any, operation: str, params: dict[str, Any], call: Any) -> Any:
        if client in self.ignore:
            return call()
        self.requests[f"{client.meta.service_model.service_name}.{operation}"] += 1
        if client.meta.service_model.service_name != "dynamodb" or operation not in _WRITES | {"GetItem"}:
            return call()
        self.items[f"{operation} {_kind(params)}"] += 1
        _local.unmetered = True
        try:
            before = self._stored(client, params)
            try:
                return call()
            finally:
                after = self._stored(client, params) if operation in _WRITES else before
                if operation in _WRITES:
                    self.wru += max(1, math.ceil(max(before, after) / 1024))
                else:
                    share = 1.0 if params.get("ConsistentRead") else 0.5
                    self.rru += share * max(1, math.ceil(before / 4096))
        finally:
            _local.unmetered = False


@contextlib.contextmanager
def metered(ignore: tuple[Any, ...] = ()) -> Iterator[AwsMeter]:
    from botocore.client import BaseClient

    meter = AwsMeter(ignore)
    original = BaseClient._make_api_call

    def make_api_call(self: Any, operation: str, params: dict[str, Any]) -> Any:
        if getattr(_local, "unmetered", False):
            return original(self, operation, params)
        return meter.record(self, operation, params, lambda: original(self, operation, params))

    BaseClient._make_api_call = make_api_call
    try:
        yield meter
    finally:
        BaseClient._make_api_call = original
