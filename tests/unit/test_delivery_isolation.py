"""One item's failure stays its own: a step that raises for one device (prepare, the write-ahead
mark, the call, settling) fails that device alone; its siblings are sent and settled, and no
device is left marked "may have been applied" for a call that was never sent.

The in-memory registry, made to fail for one device as DynamoDB does for a bad key or a
throttled write; the retry function's side of it runs on the local stack in
tests/e2e/test_retry_item_isolation.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from sensor_bridge.delivery.context import Downstream, Failed
from sensor_bridge.delivery.deliver import deliver, deliver_many
from sensor_bridge.model.config import load_config_file
from sensor_bridge.model.contract import NAME, IntegrationRequest
from sensor_bridge.model.device_event import DeviceEvent
from sensor_bridge.model.outcomes import Integrated, Outcome, RateLimited, Retryable
from sensor_bridge.model.work import WorkItem
from sensor_bridge.store.aws_clients import is_outage
from sensor_bridge.store.memory_registry import InMemoryRegistry
from sensor_bridge.store.registry import DeviceRecord, IntegratedDevice
from tests.unit.fake_sensor_data import FakeSensorData

CONFIG = load_config_file(Path(__file__).resolve().parents[2] / "config" / "bridge.yaml")
SOURCE = "aws-iot-demo"
OTHER_SOURCE = "generic-demo"


def refused(operation: str, code: str = "ValidationException", status: int = 400) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": "refused"}, "ResponseMetadata": {"HTTPStatusCode": status}},
        operation,
    )


class FailingRegistry(InMemoryRegistry):
    """Raises in one method for one device, as DynamoDB does for a key it cannot store."""

    def __init__(self) -> None:
        super().__init__()
        self.failing: tuple[str, str] | None = None  # (method, device)

    def _fail(self, method: str, device_id: str) -> None:
        if self.failing == (method, device_id):
            raise refused(method)

    def claim_device(self, source: str, device_id: str, claimant: str, ref_id: str) -> DeviceRecord | None:
        self._fail("claim_device", device_id)
        return super().claim_device(source, device_id, claimant, ref_id)

    def claim_new_device(
        self, source: str, device_id: str, claimant: str, ref_id: str, node_id: str, facts: dict[str, Any]
    ) -> bool:
        self._fail("claim_device", device_id)  # a device never seen is claimed by this write
        return super().claim_new_device(source, device_id, claimant, ref_id, node_id, facts)

    def mark_changing(
        self, source: str, device_id: str, claimant: str, node_id: str, facts: dict[str, Any]
    ) -> None:
        self._fail("mark_changing", device_id)
        super().mark_changing(source, device_id, claimant, node_id, facts)

    def record_integrated(self, source: str, device_id: str, claimant: str, result: IntegratedDevice) -> None:
        self._fail("record_integrated", device_id)
        super().record_integrated(source, device_id, claimant, result)


@pytest.fixture
def registry() -> FailingRegistry:
    registry = FailingRegistry()
    registry.nodes[SOURCE] = {"node_id": "node-1"}
    registry.nodes[OTHER_SOURCE] = {"node_id": "node-2"}
    return registry


def work(device: str, source: str = SOURCE, model: str | None = None) -> WorkItem:
    platform = "aws-iot-core" if source == SOURCE else "standard-webhooks"
    return WorkItem(DeviceEvent(source=source, platform=platform, device_id=device, name=device, model=model))


def record(registry: InMemoryRegistry, device: str, source: str = SOURCE) -> DeviceRecord:
    found = registry.get_device(source, device)
    assert found is not None
    return found


def assert_integrated(registry: InMemoryRegistry, *devices: str, source: str = SOURCE) -> None:
    for device in devices:
        r = record(registry, device, source)
        assert (r.integrated, r.maybe_created, r.claimed_by) == (True, False, None), device


def test_an_item_that_raises_in_prepare_fails_alone_and_its_siblings_share_one_call(
    registry: FailingRegistry,
) -> None:
    api = FakeSensorData()
    registry.failing = ("claim_device", "bad")
    outcomes = deliver_many(
        [work("a"), work("b"), work("bad"), work("c")],
        CONFIG,
        registry=registry,
        downstream=Downstream(integrate=api),
    )

    assert [type(o).__name__ for o in outcomes] == ["Integrated", "Integrated", "Failed", "Integrated"]
    failed = outcomes[2]
    assert isinstance(failed, Failed)
    assert failed.step == "prepare"
    assert "ValidationException" in failed.reason
    assert api.changes() == [("new", "a"), ("new", "b"), ("new", "c")]
    assert api.devices_per_call() == [3]
    assert_integrated(registry, "a", "b", "c")


def test_a_write_ahead_mark_that_fails_keeps_that_device_out_of_the_call(registry: FailingRegistry) -> None:
    api = FakeSensorData()
    # Known to the registry, not yet created (a device never seen gets its mark with its record).
    registry.claim_device(SOURCE, "bad", "an-earlier-delivery", "ref")
    registry.release_device(SOURCE, "bad", "an-earlier-delivery")
    registry.failing = ("mark_changing", "bad")
    outcomes = deliver_many(
        [work("a"), work("bad"), work("c")], CONFIG, registry=registry, downstream=Downstream(integrate=api)
    )

    assert isinstance(outcomes[1], Failed)
    assert api.changes() == [("new", "a"), ("new", "c")]
    assert_integrated(registry, "a", "c")
    bad = record(registry, "bad")
    assert (bad.maybe_created, bad.claimed_by) == (False, None)  # not sent: no mark, lease back


def test_a_device_whose_answer_cannot_be_recorded_fails_alone_and_keeps_its_mark(
    registry: FailingRegistry,
) -> None:
    api = FakeSensorData()
    registry.failing = ("record_integrated", "b")
    outcomes = deliver_many(
        [work("a"), work("b"), work("c")], CONFIG, registry=registry, downstream=Downstream(integrate=api)
    )

    assert [type(o).__name__ for o in outcomes] == ["Integrated", "Failed", "Integrated"]
    assert isinstance(outcomes[1], Failed)
    assert outcomes[1].step == "settle"
    assert_integrated(registry, "a", "c")
    # The call was sent: b may exist downstream, so its next delivery probes before creating.
    assert record(registry, "b").maybe_created


def test_a_call_that_raises_marks_no_device_of_another_call(registry: FailingRegistry) -> None:
    def fail_other_source(request: IntegrationRequest) -> Outcome:
        if request.integration.nodeId == "node-2":
            raise RuntimeError("the client broke")
        return api.ok(request)

    api = FakeSensorData(script=[fail_other_source, fail_other_source])
    works = [work("x", OTHER_SOURCE), work("y", OTHER_SOURCE), work("a"), work("b")]
    outcomes = deliver_many(works, CONFIG, registry=registry, downstream=Downstream(integrate=api))

    assert [type(o).__name__ for o in outcomes] == ["Failed", "Failed", "Integrated", "Integrated"]
    assert_integrated(registry, "a", "b")
    # Unknown whether the broken call went out: its devices keep their marks.
    assert record(registry, "x", OTHER_SOURCE).maybe_created


def test_the_webhook_path_raises_what_its_one_item_raised(registry: FailingRegistry) -> None:
    registry.failing = ("claim_device", "bad")
    with pytest.raises(ClientError):
        deliver(work("bad"), CONFIG, registry=registry, downstream=Downstream(integrate=FakeSensorData()))


def test_a_refused_call_after_a_probe_found_the_device_leaves_it_uncertain(registry: FailingRegistry) -> None:
    """A lost answer, a probe that finds the device with part of its sensors, then a 429 on the
    call that completes it: the next delivery probes again; it never sends a second `new`."""
    meter = work("a", model="EnvironmentSensor")  # a profile of several sensors
    api = FakeSensorData(script=[Retryable("timed out: ReadTimeout", ambiguous=True)])
    deliver(meter, CONFIG, registry=registry, downstream=Downstream(integrate=api))
    sensors = [s.props[NAME] for s in api.requests[0].integration.devices[0].sensors]
    assert len(sensors) > 1

    def found_with_one_sensor(request: IntegrationRequest) -> Outcome:
        answer = api.ok(request)
        assert answer.response is not None
        body = answer.response.model_dump(mode="json")
        body["integration"]["devices"][0]["sensors"] = [{"id": "sen-x", "props": {NAME: sensors[0]}}]
        return Integrated(type(answer.response).model_validate(body))

    api.script = [found_with_one_sensor, RateLimited(30.0)]
    assert isinstance(
        deliver(meter, CONFIG, registry=registry, downstream=Downstream(integrate=api)), RateLimited
    )
    assert record(registry, "a").maybe_created

    api.script = [found_with_one_sensor]
    assert isinstance(
        deliver(meter, CONFIG, registry=registry, downstream=Downstream(integrate=api)), Integrated
    )
    # new (answer lost); probe, completion (429); probe, completion: one `new` in all.
    assert [state for state, _ in api.changes()] == ["new", "update", "update", "update", "update"]
    assert_integrated(registry, "a")


@pytest.mark.parametrize(
    ("error", "passing"),
    [
        (refused("UpdateItem", "ProvisionedThroughputExceededException"), True),
        (refused("UpdateItem", "InternalServerError", 500), True),
        (EndpointConnectionError(endpoint_url="https://dynamodb.eu-west-1.amazonaws.com"), True),
        (refused("UpdateItem", "ValidationException"), False),
        (KeyError("props"), False),
    ],
)
def test_only_outages_that_pass_count_as_outages(error: Exception, passing: bool) -> None:
    assert is_outage(error) is passing
