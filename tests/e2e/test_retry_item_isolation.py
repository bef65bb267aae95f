"""One bad item in a retry batch fails alone: its siblings are delivered in the same batch, and
no sibling is left marked "may have been created" for a call that was never sent.

The bad item is real: a work item whose device id makes DynamoDB refuse the registry's key
(over 2,048 bytes), as work queued before the edge refused such ids would."""

from __future__ import annotations

from local.stack import LocalStack
from sensor_bridge.model.device_event import DeviceEvent
from sensor_bridge.model.profiles import device_ref_id
from sensor_bridge.model.work import WorkItem
from sensor_bridge.retry.queue import schedule
from sensor_bridge.store.dynamodb_registry import DynamoDBRegistry

registry = DynamoDBRegistry()
SOURCE = "aws-iot-demo"
SIBLINGS = ["quay-meter-21", "quay-meter-22", "quay-meter-23"]
UNKEYABLE = "pier-" + "x" * 2100  # the registry's key would exceed DynamoDB's 2,048 bytes


def queued(device: str) -> None:
    event = DeviceEvent(
        source=SOURCE, platform="aws-iot-core", device_id=device, name=device[:40], announced=True
    )
    schedule(WorkItem(event), 0)


def test_an_item_that_raises_in_prepare_is_parked_with_its_reason_and_its_siblings_are_integrated(
    stack: LocalStack,
) -> None:
    for device in [SIBLINGS[0], UNKEYABLE, *SIBLINGS[1:]]:
        queued(device)

    assert stack.poll_once() == 4

    assert stack.poller.stats.failures == 0  # no message left for SQS to hand out blind again
    state = stack.simulator.state()
    for device in SIBLINGS:
        assert state["created"][device_ref_id(SOURCE, device)] == 1
        record = registry.get_device(SOURCE, device)
        assert record is not None
        assert (record.state, record.maybe_created, record.claimed_by) == ("integrated", False, None)
    (parked,) = stack.queue_messages("dead-letter")
    assert parked["event"]["device_id"] == UNKEYABLE
    assert "ValidationException" in parked["parked_reason"]
    assert stack.queue_messages("retry") == []
    # One call for the three siblings (and the source's node): the bad one cost no probe or call.
    device_calls = [c for c in state["calls"] if c["body"]["integration"].get("devices")]
    assert len(device_calls) == 1
