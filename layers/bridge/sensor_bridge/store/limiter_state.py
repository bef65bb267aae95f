"""Where the shared rate limiter keeps its state, so that every concurrent instance of both
functions sees the same budget (a port, like the device registry).

The state is one small record per OAuth client: a version and a few numbers. Writes are
compare-and-set on the version: a writer that lost the race reads again and recomputes, so no
two instances spend the same call. `DynamoDBLimiterState` keeps it as the item `limiter#<key>` in
the registry table (GetItem and UpdateItem, which both functions already have);
`InMemoryLimiterState` keeps it in a dict, for unit tests.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Protocol

from sensor_bridge.runtime.settings import settings
from sensor_bridge.store.aws_clients import dynamodb


@dataclass(frozen=True)
class BucketState:
    """The limiter's numbers, all epoch seconds (GCRA's "theoretical arrival times").

    `minute_tat`/`hour_tat`: when each bucket would be full again; `blocked_until`: when the
    API's last Retry-After ends; `queue_minute_tat`/`queue_hour_tat`: the same as the buckets'
    but with the calls reserved for queued work counted too; `version` counts writes."""

    version: int = 0
    minute_tat: float = 0.0
    hour_tat: float = 0.0
    blocked_until: float = 0.0
    queue_minute_tat: float = 0.0
    queue_hour_tat: float = 0.0


class LimiterState(Protocol):
    def load(self, key: str) -> BucketState:
        """The state as it stands (a fresh one, version 0, if none was written yet)."""
        ...

    def save(self, key: str, state: BucketState, expected_version: int) -> bool:
        """Write `state` if the stored version is still `expected_version`; False if not."""
        ...


_NUMBERS = ("minute_tat", "hour_tat", "blocked_until", "queue_minute_tat", "queue_hour_tat")


class DynamoDBLimiterState:
    """`LimiterState` as the item `limiter#<key>` in the registry table."""

    def load(self, key: str) -> BucketState:
        answer = dynamodb().get_item(TableName=settings().registry_table, Key=_key(key), ConsistentRead=True)
        item: dict[str, Any] = answer.get("Item") or {}
        if "version" not in item:
            # None yet. (moto applies a first UpdateItem in two steps: a read between them sees
            # the key alone; the reader's own first write then loses the race and reads again.)
            return BucketState()
        numbers = {name: float(item[name]["N"]) for name in _NUMBERS if name in item}
        return BucketState(version=int(item["version"]["N"]), **numbers)

    def save(self, key: str, state: BucketState, expected_version: int) -> bool:
        from botocore.exceptions import ClientError

        values = {f":{name}": {"N": repr(getattr(state, name))} for name in _NUMBERS}
        values[":v"] = {"N": str(state.version)}
        condition = "attribute_not_exists(#v)"
        if expected_version:
            condition = "#v = :expected"
            values[":expected"] = {"N": str(expected_version)}
        try:
            dynamodb().update_item(
                TableName=settings().registry_table,
                Key=_key(key),
                UpdateExpression="SET #v = :v, " + ", ".join(f"{n} = :{n}" for n in _NUMBERS),
                ConditionExpression=condition,
                ExpressionAttributeNames={"#v": "version"},
                ExpressionAttributeValues=values,
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True


def _key(key: str) -> dict[str, Any]:
    return {"pk": {"S": f"limiter#{key}"}}


class InMemoryLimiterState:
    """`LimiterState` in a dict (one process; the same compare-and-set rule)."""

    def __init__(self) -> None:
        self.states: dict[str, BucketState] = {}
        self.writes = 0
        self._lock = threading.Lock()

    def load(self, key: str) -> BucketState:
        return self.states.get(key, BucketState())

    def save(self, key: str, state: BucketState, expected_version: int) -> bool:
        with self._lock:
            if self.states.get(key, BucketState()).version != expected_version:
                return False
            self.states[key] = state
            self.writes += 1
            return True
