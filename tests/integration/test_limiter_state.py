"""The limiter's state in the registry table (`DynamoDBLimiterState`): compare-and-set on its
version, and a first write that a concurrent read catches half done."""

from __future__ import annotations

from local.stack import LocalStack
from sensor_bridge.runtime.settings import settings
from sensor_bridge.store.aws_clients import dynamodb
from sensor_bridge.store.limiter_state import BucketState, DynamoDBLimiterState


def test_a_state_item_caught_before_its_first_write_is_done_reads_as_none_yet(stack: LocalStack) -> None:
    """moto applies a first UpdateItem in two steps; a read between them sees the key alone (a
    webhook of the join-storm benchmark once answered 500 on it)."""
    dynamodb().put_item(TableName=settings().registry_table, Item={"pk": {"S": "limiter#half-written"}})
    state = DynamoDBLimiterState()

    assert state.load("half-written") == BucketState()


def test_a_write_at_a_stale_version_is_refused_and_the_stored_state_kept(stack: LocalStack) -> None:
    state = DynamoDBLimiterState()
    first = BucketState(version=1, minute_tat=10.0)
    assert state.save("race", first, 0)

    assert not state.save("race", BucketState(version=1, minute_tat=99.0), 0)  # lost the race
    assert state.load("race") == first
    assert state.save("race", BucketState(version=2, minute_tat=20.0), 1)
    assert state.load("race").minute_tat == 20.0
