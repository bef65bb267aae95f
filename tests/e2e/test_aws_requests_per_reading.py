"""What a reading of a known device costs in AWS requests, counted on the stack's moto through the
real handlers (bench.readings sends 60,000 of them an hour; bench.cost prices such counts).

The webhook: the event's idempotency record (put, then completed), one read of the device, the
work queued. The retry function, per reading: one read of the device (its sensor ids and upload
marks, read once for both the delivery and the observations) and its upload mark; per batch, the
shared limiter's admission.
"""

from __future__ import annotations

from bench.aws_meter import metered
from bench.readings import HEADERS, reading
from local.stack import LocalStack
from sensor_bridge.runtime import clock

IDEMPOTENCY = "sensor-bridge.webhook-event"
DEVICES = 3


def _post(stack: LocalStack, device: int, minute: int) -> int:
    status, _, _ = stack.invoke(
        "POST",
        "/webhooks/chirpstack-demo?event=up",
        headers=HEADERS,
        body=reading(device, minute, clock.now()),
    )
    return status


def test_a_known_device_s_reading_costs_one_device_read_in_each_function(stack: LocalStack) -> None:
    for device in range(DEVICES):
        assert _post(stack, device, 0) in (200, 202)  # onboarding, with the first readings
    stack.drain()
    stored = len(stack.simulator.state()["observations"])

    with metered(ignore=(stack.poller._sqs,)) as webhook:
        answers = [_post(stack, device, 1) for device in range(DEVICES)]
    with metered(ignore=(stack.poller._sqs,)) as retry:
        stack.drain()

    assert answers == [200] * DEVICES  # queued for the retry function's shared upload
    assert dict(webhook.items) == {
        f"PutItem {IDEMPOTENCY}": DEVICES,
        f"UpdateItem {IDEMPOTENCY}": DEVICES,
        "GetItem device": DEVICES,
    }
    assert webhook.requests["sqs.SendMessage"] == DEVICES
    assert dict(retry.items) == {
        "GetItem device": DEVICES,  # not twice: the observations reuse the delivery's read
        "UpdateItem device": DEVICES,  # the upload marks
        "GetItem limiter": 1,
        "UpdateItem limiter": 1,
    }
    assert len(stack.simulator.state()["observations"]) == stored + DEVICES
