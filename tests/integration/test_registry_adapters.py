"""One contract, two adapters: the in-memory registry the unit tests use keeps the same rules as
the DynamoDB one the functions use (here on moto), so a unit test through the fake says something
about production."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from sensor_bridge.runtime import clock
from sensor_bridge.runtime.process import reset_process_state
from sensor_bridge.store.dynamodb_registry import DynamoDBRegistry
from sensor_bridge.store.memory_registry import InMemoryRegistry
from sensor_bridge.store.registry import LEASE_SECONDS, DeviceRegistry, IntegratedDevice, LeaseLost

TABLE = "contract-registry"
RESULT = IntegratedDevice(
    node_id="node-1",
    api_device_id="dev-1",
    sensor_ids={"s1": "sen-1"},
    spec={"props": {"NAME": "a"}, "sensors": {}},
    fingerprint="fp",
    facts={"model": "m"},
    appeared_at=5.0,
)


@pytest.fixture(params=["memory", "dynamodb"])
def registry(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[DeviceRegistry]:
    if request.param == "memory":
        yield InMemoryRegistry()
        return
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("REGISTRY_TABLE", TABLE)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        reset_process_state()
        boto3.client("dynamodb").create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield DynamoDBRegistry()
    reset_process_state()


@pytest.fixture(autouse=True)
def _clock() -> Iterator[None]:
    yield
    clock.reset()


def test_one_lease_at_a_time_until_it_runs_out(registry: DeviceRegistry) -> None:
    first = registry.claim_device("s", "a", "one", "ref-a")
    assert first is not None
    assert first.state == "pending"
    assert registry.claim_device("s", "a", "two", "ref-a") is None
    assert registry.claim_device("s", "a", "one", "ref-a") is not None  # the holder may renew
    clock.advance(LEASE_SECONDS + 2)
    taken = registry.claim_device("s", "a", "two", "ref-a")
    assert taken is not None
    assert taken.claimed_by == "two"


def test_only_the_holder_finishes_and_finishing_frees_the_lease(registry: DeviceRegistry) -> None:
    registry.claim_device("s", "a", "one", "ref-a")
    with pytest.raises(LeaseLost):
        registry.mark_changing("s", "a", "two", "node-1", {})
    registry.record_integrated("s", "a", "two", RESULT)  # not the holder: no effect
    record = registry.get_device("s", "a")
    assert record is not None
    assert not record.integrated

    registry.mark_changing("s", "a", "one", "node-1", {})
    assert registry.get_device("s", "a").maybe_created  # type: ignore[union-attr]
    registry.record_integrated("s", "a", "one", RESULT)
    record = registry.get_device("s", "a")
    assert record is not None
    assert (record.state, record.api_device_id, record.sensor_ids) == ("integrated", "dev-1", {"s1": "sen-1"})
    assert (record.maybe_created, record.claimed_by, record.appeared_at) == (False, None, 5.0)
    assert record.spec == RESULT.spec
    assert record.facts == RESULT.facts
    assert registry.claim_device("s", "a", "two", "ref-a") is not None


def test_a_device_never_seen_is_created_leased_and_marked_in_one_write(registry: DeviceRegistry) -> None:
    assert registry.claim_new_device("s", "a", "one", "ref-a", "node-1", {"model": "elsys/ers"})
    record = registry.get_device("s", "a")
    assert record is not None
    assert (record.state, record.claimed_by, record.ref_id) == ("pending", "one", "ref-a")
    assert (record.maybe_created, record.node_id, record.integrated) == (True, "node-1", False)
    assert record.facts == {"model": "elsys/ers"}  # kept with the mark: the answer may be lost
    assert registry.claim_device("s", "a", "two", "ref-a") is None  # the lease holds
    assert not registry.claim_new_device("s", "a", "two", "ref-a", "node-2", {})  # it exists now
    assert registry.get_device("s", "a") == record  # and the refused claim wrote nothing

    registry.record_integrated("s", "a", "one", RESULT)
    assert registry.get_device("s", "a").integrated  # type: ignore[union-attr]
    registry.record_tombstone("s", "gone", removed_at=10.0)
    assert not registry.claim_new_device("s", "gone", "one", "ref", "node-1", {})  # a tombstone is a record


def test_release_keeps_or_sets_the_created_mark(registry: DeviceRegistry) -> None:
    registry.claim_device("s", "a", "one", "ref-a")
    registry.mark_changing("s", "a", "one", "node-1", {})
    registry.release_device("s", "a", "one")  # None: leave the mark as it is
    assert registry.get_device("s", "a").maybe_created  # type: ignore[union-attr]
    registry.claim_device("s", "a", "one", "ref-a")
    registry.release_device("s", "a", "one", maybe_created=False)
    record = registry.get_device("s", "a")
    assert record is not None
    assert (record.maybe_created, record.claimed_by) == (False, None)


def test_parking_records_the_reason(registry: DeviceRegistry) -> None:
    registry.claim_device("s", "a", "one", "ref-a")
    registry.record_parked("s", "a", "one", "x" * 2000, maybe_created=True)
    record = registry.get_device("s", "a")
    assert record is not None
    assert (record.state, record.reason, record.maybe_created) == ("parked", "x" * 1000, True)


def test_a_tombstone_only_where_nothing_may_exist_downstream(registry: DeviceRegistry) -> None:
    assert registry.record_tombstone("s", "never", removed_at=10.0)
    assert registry.get_device("s", "never").removed_at == 10.0  # type: ignore[union-attr]

    registry.claim_device("s", "leased", "one", "ref")
    assert not registry.record_tombstone("s", "leased", removed_at=10.0)  # a `new` may be in flight

    registry.claim_device("s", "made", "one", "ref")
    registry.record_integrated("s", "made", "one", RESULT)
    assert not registry.record_tombstone("s", "made", removed_at=10.0)

    registry.claim_device("s", "made", "one", "ref")
    registry.record_removed("s", "made", "one", removed_at=11.0)
    record = registry.get_device("s", "made")
    assert record is not None
    assert (record.state, record.integrated, record.removed_at, record.spec) == ("removed", False, 11.0, None)


def test_announcements_only_move_forward(registry: DeviceRegistry) -> None:
    registry.touch_appeared("s", "absent", 3.0)
    assert registry.get_device("s", "absent") is None  # no record is made by a touch
    registry.claim_device("s", "a", "one", "ref")
    registry.touch_appeared("s", "a", 7.0)
    registry.touch_appeared("s", "a", 6.0)
    assert registry.get_device("s", "a").appeared_at == 7.0  # type: ignore[union-attr]


def test_one_node_per_source(registry: DeviceRegistry) -> None:
    assert registry.get_node("s") is None
    assert registry.claim_node("s", "one")
    assert not registry.claim_node("s", "two")
    registry.release_node("s", "one")
    assert registry.claim_node("s", "two")
    assert registry.record_node("s", "two", "node-2") == "node-2"
    assert not registry.claim_node("s", "three")  # it has a node now
    assert registry.record_node("s", "late", "node-3") == "node-2"  # the recorded node stands
    node = registry.get_node("s")
    assert node is not None
    assert (node.node_id, node.claimed_by) == ("node-2", None)
    assert registry.get_node("s") == node  # read again (the DynamoDB adapter: from its process cache)
