"""Sizes are checked before a 2xx is promised: the work of an accepted webhook fits on the retry
queue and on the dead-letter queue, whatever happens to it; work that never could is refused 413.

SQS counts a message's UTF-8 bytes plus its attributes against the queue's MaximumMessageSize
(256 KiB in template.yaml and local/provision.py). Non-ASCII text escaped as \\uXXXX takes 6 bytes
a character (12 for one outside the BMP) where UTF-8 takes 2-4: a body under the inbound limit
must not become a message over the queue's. (moto counts characters, not bytes: the bridge's own
check counts as SQS does, and is stricter.)
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from local.lambda_runtime import cold_start
from local.provision import MAX_MESSAGE_SIZE
from local.stack import LocalStack
from sensor_bridge.model.device_event import DeviceEvent
from sensor_bridge.model.work import WorkItem
from sensor_bridge.retry.queue import message_bytes
from tests.scenario import Ledger, changes, tts_event, with_node

INBOUND_LIMIT = 256 * 1024  # a source's default max_body_bytes
CLEF = "\U0001d11e"  # 4 bytes in UTF-8, 12 as json.dumps' default \ud834\udd1e


def attribute_heavy_join(device: str = "strain-gauge-01") -> dict[str, Any]:
    """A join whose device carries the most attributes the edge keeps (64, keys and values of 256
    characters, outside the BMP), padded with an unmapped field to just under the inbound limit."""
    event = tts_event(device=device)
    body = json.loads(event["body"])
    body["attributes"] = {f"{i:02d}{CLEF * 254}": CLEF * 256 for i in range(64)}
    body["padding"] = ""
    unpadded = len(json.dumps(body, ensure_ascii=False).encode())
    body["padding"] = "é" * ((INBOUND_LIMIT - 64 - unpadded) // 2)
    event["body"] = json.dumps(body, ensure_ascii=False)
    assert INBOUND_LIMIT - 100 < len(event["body"].encode()) <= INBOUND_LIMIT
    return event


def test_non_ascii_body_just_under_the_inbound_limit_is_queued_on_429_and_delivered(
    stack: LocalStack, ledger: Ledger
) -> None:
    with_node(ledger)
    stack.simulator.inject({"status": 429, "retry_after": "5"})

    status, body = ledger.post(attribute_heavy_join())

    assert status == 202, body  # before: 503, the message was over the queue's limit
    assert body["results"][0]["status"] == "queued"
    (queued,) = stack.queue_messages("retry")
    assert len(queued["event"]["attributes"]) == 64
    stack.drain()
    assert changes(stack, "strain-gauge-01") == ["new:429", "new:200"]
    ledger.check()


def test_parked_work_with_the_longest_reason_still_fits_the_dead_letter_queue(
    stack: LocalStack, ledger: Ledger
) -> None:
    with_node(ledger)
    # A refusal whose message is longer than the queue itself: the parked reason carries it.
    long_error = json.dumps({"error": {"code": "Forbidden", "message": "x" * MAX_MESSAGE_SIZE}})
    stack.simulator.inject({"status": 403, "body": long_error})

    status, body = ledger.post(attribute_heavy_join())

    assert status == 202, body
    assert body["results"][0]["status"] == "parked"
    (parked,) = stack.queue_messages("dead-letter")
    assert parked["parked_reason"].startswith("403")
    assert len(parked["parked_reason"]) <= 500  # cut, so the message keeps within what was checked
    ledger.check()


def test_work_that_could_outgrow_the_queue_is_refused_413_naming_the_limit(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A queue sized smaller than this work's largest message (both queues and the setting alike,
    as template.yaml keeps them): refused before anything is sent or stored."""
    assert stack.resources is not None
    limit = 128 * 1024
    sqs = boto3.client("sqs")
    for url in (stack.resources.retry_queue_url, stack.resources.dead_letter_queue_url):
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"MaximumMessageSize": str(limit)})
    monkeypatch.setenv("QUEUE_MAX_MESSAGE_BYTES", str(limit))
    cold_start()

    status, body = stack.post_event(attribute_heavy_join())

    assert status == 413
    assert body["error"]["code"] == "PayloadTooLarge"
    assert f"limit of {limit} bytes" in body["error"]["message"]
    assert stack.simulator.state()["calls"] == []
    assert stack.queue_messages("retry") == stack.queue_messages("dead-letter") == []


def test_a_work_items_message_is_counted_as_sqs_counts_it() -> None:
    """UTF-8 bytes of the body plus every attribute's name, type and value; SQS refuses lone
    surrogates and U+FFFE/U+FFFF in a body, so those stay escaped."""
    work = WorkItem(DeviceEvent("ttn-demo", "the-things-stack", "app/dev", name="é\ud800\uffff"))
    body = work.to_message()

    assert "é" in body
    assert "\\ud800" in body
    assert "\\uffff" in body
    assert WorkItem.from_message(body).event.name == "é\ud800\uffff"
    attributes = len("source") + len("String") + len("ttn-demo") + len("attempts") + len("Number") + 1
    assert message_bytes(work) == len(body.encode("utf-8")) + attributes
    assert MAX_MESSAGE_SIZE == 262144
