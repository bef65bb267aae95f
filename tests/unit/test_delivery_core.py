"""The delivery core through its ports: the in-memory registry and a scripted integrate call.

Rounds, coalescing into calls, the 422 split, update diffs, answer matching, what a failed call
may have applied, and what a probe finds: without moto or the simulator (those run the same code
in tests/e2e)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sensor_bridge.delivery import changes as delivery_changes
from sensor_bridge.delivery.context import IN_FLIGHT, Downstream
from sensor_bridge.delivery.deliver import deliver, deliver_many, rounds
from sensor_bridge.delivery.settle import may_have_applied
from sensor_bridge.model.config import load_config_file
from sensor_bridge.model.contract import NAME
from sensor_bridge.model.device_event import DeviceEvent, Lifecycle, Location
from sensor_bridge.model.outcomes import (
    Deferred,
    Integrated,
    Outcome,
    Parked,
    RateLimited,
    Removed,
    Retryable,
)
from sensor_bridge.model.profiles import describe_device
from sensor_bridge.model.work import WorkItem
from sensor_bridge.runtime.settings import settings
from sensor_bridge.store.memory_registry import InMemoryRegistry
from tests.unit.fake_sensor_data import FakeSensorData

CONFIG = load_config_file(Path(__file__).resolve().parents[2] / "config" / "bridge.yaml")
SOURCE = "aws-iot-demo"  # a full description per event: no facts carried between events


def work(device: str, lifecycle: Lifecycle = Lifecycle.APPEARED, **fields: object) -> WorkItem:
    event = DeviceEvent(
        source=SOURCE, platform="aws-iot-core", device_id=device, lifecycle=lifecycle, name=device, **fields
    )  # type: ignore[arg-type]
    return WorkItem(event)


@pytest.fixture
def registry() -> InMemoryRegistry:
    registry = InMemoryRegistry()
    registry.nodes[SOURCE] = {"node_id": "node-1"}  # the source's node exists: no node creation
    return registry


@pytest.fixture
def api() -> FakeSensorData:
    return FakeSensorData()


def run(works: list[WorkItem], registry: InMemoryRegistry, api: FakeSensorData) -> list[Outcome]:
    return deliver_many(works, CONFIG, registry=registry, downstream=Downstream(integrate=api))


# -- rounds and coalescing ------------------------------------------------------------------------
def test_rounds_put_one_device_once_per_round_first_come_first() -> None:
    works = [work("a"), work("b"), work("a"), work("a"), work("c")]
    assert rounds(works) == [[0, 1, 4], [2], [3]]


def test_new_devices_for_one_node_share_calls_of_at_most_the_maximum(
    registry: InMemoryRegistry, api: FakeSensorData
) -> None:
    most = settings().max_devices_per_call
    works = [work(f"gauge-{i:02}") for i in range(most + 3)]
    outcomes = run(works, registry, api)
    assert api.devices_per_call() == [most, 3]
    assert all(isinstance(o, Integrated) and not o.unchanged for o in outcomes)
    # Each device reads its own part of a reversed answer: ids matched by NAME, not by position.
    for w, outcome in zip(works, outcomes, strict=True):
        assert isinstance(outcome, Integrated)
        assert outcome.response is not None
        (answered,) = outcome.response.integration.devices
        assert answered.device.props[NAME] == w.event.device_id
        record = registry.get_device(SOURCE, w.event.device_id)
        assert record is not None
        assert record.api_device_id == answered.device.id


def test_a_resent_join_in_the_same_batch_makes_no_second_call(
    registry: InMemoryRegistry, api: FakeSensorData
) -> None:
    outcomes = run([work("a"), work("a")], registry, api)
    assert api.changes() == [("new", "a")]
    assert isinstance(outcomes[1], Integrated)
    assert outcomes[1].unchanged


def test_a_422_on_a_shared_call_is_split_and_only_the_bad_device_is_parked(
    registry: InMemoryRegistry, api: FakeSensorData
) -> None:
    bad = Parked("422 InvalidProps", 422, "integration.devices[1].props")

    def refuse_b(request):  # type: ignore[no-untyped-def]
        return bad if request.integration.devices[0].props[NAME] == "b" else api.ok(request)

    api.script = [bad, refuse_b, refuse_b, refuse_b]
    outcomes = run([work("a"), work("b"), work("c")], registry, api)
    assert api.devices_per_call() == [3, 1, 1, 1]
    assert [type(o).__name__ for o in outcomes] == ["Integrated", "Parked", "Integrated"]
    parked = registry.get_device(SOURCE, "b")
    assert parked is not None
    assert parked.state == "parked"
    assert parked.reason == bad.reason


# -- updates, removals ---------------------------------------------------------------------------
def test_an_unchanged_device_makes_no_call_and_a_changed_one_sends_only_the_difference(
    registry: InMemoryRegistry, api: FakeSensorData
) -> None:
    run([work("meter", model="EnvironmentSensor")], registry, api)
    again = run([work("meter", model="EnvironmentSensor")], registry, api)[0]
    assert again == Integrated(unchanged=True, profile="environment-sensor")
    assert len(api.requests) == 1

    run([work("meter", model="EnvironmentSensor", location=Location(51.5, -0.1))], registry, api)
    update = api.requests[-1].integration.devices[0]
    assert update.changeState == "update"
    assert update.props["LOCATION"] == {"type": "Point", "coordinates": [-0.1, 51.5]}
    assert update.sensors == []  # the profile is the same: no sensor is touched


def test_a_profile_change_adds_and_removes_sensors_in_one_update(registry: InMemoryRegistry) -> None:
    before = describe_device(CONFIG, work("m", model="EnvironmentSensor").event)
    after = describe_device(CONFIG, work("m", attributes={"kind": "electricity-meter"}).event)
    change = delivery_changes.update_change(after, {"sensors": before.sensors})
    states = sorted({s.changeState for s in change.sensors})
    assert states == ["new", "remove"]
    assert {s.refId for s in change.sensors if s.changeState == "remove"} == set(before.sensors)
    assert {s.refId for s in change.sensors if s.changeState == "new"} == set(after.sensors)


def test_removing_a_device_never_created_leaves_a_tombstone_and_no_call(
    registry: InMemoryRegistry, api: FakeSensorData
) -> None:
    assert deliver(
        work("ghost", Lifecycle.REMOVED, occurred_at=100.0),
        CONFIG,
        registry=registry,
        downstream=Downstream(integrate=api),
    ) == Removed(existed=False)
    assert api.requests == []
    # Its creation, delivered late (it happened before the deletion), is superseded.
    assert run([work("ghost", occurred_at=50.0)], registry, api) == [Removed(superseded=True)]
    assert api.requests == []


def test_a_full_description_older_than_the_last_applied_is_superseded_and_a_partial_one_is_not(
    registry: InMemoryRegistry, api: FakeSensorData
) -> None:
    newer = work("m", model="EnvironmentSensor", occurred_at=200.0, announced=True)
    assert isinstance(run([newer], registry, api)[0], Integrated)
    older = work("m", attributes={"kind": "electricity-meter"}, occurred_at=100.0, announced=True)

    (late,) = run([older], registry, api)

    assert late == Integrated(unchanged=True, superseded=True, profile="electricity-meter")
    assert len(api.requests) == 1  # the newer description stands
    # An older partial event (telemetry naming the device) fills in what is known: no call either,
    # and it is not taken for a stale description.
    partial = work("m", occurred_at=50.0, partial=True)
    assert run([partial], registry, api) == [Integrated(unchanged=True, profile="environment-sensor")]
    # A newer description is applied as ever.
    latest = work("m", attributes={"kind": "electricity-meter"}, occurred_at=300.0, announced=True)
    (applied,) = run([latest], registry, api)
    assert isinstance(applied, Integrated)
    assert (applied.unchanged, applied.superseded, applied.created) == (False, False, False)
    assert api.changes()[-1] == ("update", "m")


def test_removing_an_integrated_device_sends_a_remove_alone(
    registry: InMemoryRegistry, api: FakeSensorData
) -> None:
    run([work("a", occurred_at=1.0), work("b", occurred_at=1.0)], registry, api)
    outcomes = run([work("a", Lifecycle.REMOVED, occurred_at=2.0), work("c")], registry, api)
    assert outcomes[0] == Removed()
    assert api.devices_per_call()[-2:] == [1, 1]  # the remove is never coalesced
    record = registry.get_device(SOURCE, "a")
    assert record is not None
    assert record.state == "removed"
    assert not record.integrated


# -- leases -------------------------------------------------------------------------------------
def test_a_device_leased_by_another_delivery_waits_without_a_call(
    registry: InMemoryRegistry, api: FakeSensorData
) -> None:
    assert registry.claim_device(SOURCE, "a", "someone-else", "ref") is not None
    assert run([work("a")], registry, api) == [Deferred(IN_FLIGHT)]  # a wait, not a failed attempt
    assert api.requests == []


# -- what a failed call may have applied ---------------------------------------------------------
@pytest.mark.parametrize(
    ("outcome", "applied"),
    [
        (Retryable("502 BadGateway", ambiguous=True), True),
        (Retryable("connection failed: ConnectError"), False),
        (Parked("202: an answer other than the documented 200", 202), True),
        (Parked("422 InvalidProps", 422), False),
        (RateLimited(30.0), False),
    ],
)
def test_may_have_applied(outcome: object, applied: bool) -> None:
    assert may_have_applied(outcome) is applied  # type: ignore[arg-type]


def test_a_lost_answer_leaves_the_mark_and_the_next_delivery_probes_before_creating(
    registry: InMemoryRegistry, api: FakeSensorData
) -> None:
    api.script = [Retryable("502 BadGateway", ambiguous=True)]
    assert isinstance(run([work("a")], registry, api)[0], Retryable)
    record = registry.get_device(SOURCE, "a")
    assert record is not None
    assert record.maybe_created
    assert not record.integrated

    # The probe finds nothing (422 naming the refId): only then is the device created.
    api.script = [Parked("422 NotFound: refId not found", 422, "integration.devices[0].refId")]
    assert isinstance(run([work("a")], registry, api)[0], Integrated)
    assert api.changes() == [("new", "a"), ("update", "a"), ("new", "a")]


def test_a_probe_that_finds_the_device_completes_it_without_creating_it_twice(
    registry: InMemoryRegistry, api: FakeSensorData
) -> None:
    api.script = [Retryable("timed out: ReadTimeout", ambiguous=True)]
    run([work("a", model="EnvironmentSensor")], registry, api)
    first_sensors = [s.props[NAME] for s in api.requests[0].integration.devices[0].sensors]

    def found_with_one_sensor(request):  # type: ignore[no-untyped-def]
        answer = api.ok(request)
        body = answer.response.model_dump(mode="json")  # type: ignore[union-attr]
        body["integration"]["devices"][0]["sensors"] = [{"id": "sen-x", "props": {NAME: first_sensors[0]}}]
        return Integrated(type(answer.response).model_validate(body))  # type: ignore[union-attr]

    api.script = [found_with_one_sensor]
    outcome = run([work("a", model="EnvironmentSensor")], registry, api)[0]
    assert isinstance(outcome, Integrated)
    completing = api.requests[-1].integration.devices[0]
    assert completing.changeState == "update"
    assert sorted(s.props[NAME] for s in completing.sensors) == sorted(first_sensors[1:])
    assert all(s.changeState == "new" for s in completing.sensors)
    record = registry.get_device(SOURCE, "a")
    assert record is not None
    assert not record.maybe_created
    assert record.sensor_ids
    assert len(record.sensor_ids) == len(first_sensors)


def test_a_probe_refused_for_another_reason_is_parked_not_created(
    registry: InMemoryRegistry, api: FakeSensorData
) -> None:
    api.script = [
        Retryable("502", ambiguous=True),
        Parked("422 InvalidProps", 422, "integration.devices[0].props"),
    ]
    run([work("a")], registry, api)
    assert isinstance(run([work("a")], registry, api)[0], Parked)
    assert api.changes() == [("new", "a"), ("update", "a")]


# -- answer matching -----------------------------------------------------------------------------
def test_answer_matching_is_by_name_and_a_nameless_lone_device_is_ours() -> None:
    spec = describe_device(CONFIG, work("a", model="EnvironmentSensor").event)
    sensor_names = [p[NAME] for p in spec.sensors.values()]
    answer = {
        "devices": [
            {"device": {"id": "other", "props": {NAME: "b"}}, "sensors": []},
            {
                "device": {"id": "mine", "props": {NAME: "a"}},
                "sensors": [{"id": f"s{i}", "props": {NAME: n}} for i, n in enumerate(sensor_names)],
            },
        ]
    }
    device_id, sensor_ids = delivery_changes.match_ids(spec, answer)  # type: ignore[misc]
    assert device_id == "mine"
    assert sorted(sensor_ids.values()) == [f"s{i}" for i in range(len(sensor_names))]
    assert delivery_changes.match_ids(spec, {"devices": answer["devices"][:1]}) is None
    lone = {"devices": [{"device": {"id": "only", "props": {}}, "sensors": []}]}
    assert delivery_changes.match_ids(spec, lone) == ("only", {})
