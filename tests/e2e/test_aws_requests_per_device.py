"""What a device costs in AWS requests, counted on the stack's moto through the real handler
(bench.cost prices these counts): exactly-once is built on these writes, and on no more.

A new device: the event's idempotency record (put, then completed), the device's record created
under its lease and write-ahead mark in one write, the shared limiter's admission, the answer
recorded; one read, of the device. The source's node, once recorded, is read once per process.
"""

from __future__ import annotations

from bench.aws_meter import AwsMeter, metered
from local.stack import LocalStack
from tests.scenario import Ledger, tts_event, with_node

IDEMPOTENCY = "sensor-bridge.webhook-event"


def _post_metered(stack: LocalStack, ledger: Ledger, event: dict[str, object]) -> tuple[int, AwsMeter]:
    with metered(ignore=(stack.poller._sqs,)) as meter:
        status, _ = ledger.post(event)
    return status, meter


def test_a_new_device_costs_five_writes_and_one_read(stack: LocalStack, ledger: Ledger) -> None:
    with_node(ledger)  # every device after its source's first finds the node recorded

    status, meter = _post_metered(stack, ledger, tts_event())

    assert status == 200
    assert dict(meter.items) == {
        f"PutItem {IDEMPOTENCY}": 1,
        f"UpdateItem {IDEMPOTENCY}": 1,
        "GetItem device": 1,
        "UpdateItem device": 2,  # created leased and marked; the answer recorded
        "UpdateItem limiter": 1,
    }
    assert (meter.wru, meter.rru) == (5, 1)
    ledger.check()


def test_a_known_device_joining_again_costs_its_idempotency_record_and_one_read(
    stack: LocalStack, ledger: Ledger
) -> None:
    ledger.post(tts_event())

    status, meter = _post_metered(stack, ledger, tts_event(session_key="a-new-session"))

    assert status == 200
    assert dict(meter.items) == {
        f"PutItem {IDEMPOTENCY}": 1,
        f"UpdateItem {IDEMPOTENCY}": 1,
        "GetItem device": 1,
    }
    ledger.check()
