"""Redrive: list what is parked and why, move it back to the retry queue, and see it delivered.
Against the local stack (moto SQS, which does not implement StartMessageMoveTask)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from typing import Any

import pytest

from local.stack import LocalStack
from sensor_bridge.model.device_event import DeviceEvent
from sensor_bridge.model.work import WorkItem
from sensor_bridge.retry import redrive
from sensor_bridge.store.aws_clients import sqs
from tests.conftest import ROOT
from tests.scenario import APP, Ledger, changes, ref, tts_event, with_node

PARKED = ["gauge-a", "gauge-b", "gauge-c"]


def park_three(stack: LocalStack) -> Ledger:
    """Three devices meet a 403 (the service identity lacks its role) and are parked."""
    ledger = Ledger(stack)
    with_node(ledger)
    stack.simulator.inject({"status": 403, "count": len(PARKED)})
    for device in PARKED:
        status, body = ledger.post(tts_event(device=device, session_key=f"k-{device}"))
        assert status == 202
        assert body["results"][0]["status"] == "parked"
    return ledger


def run(*argv: str) -> str:
    out = io.StringIO()
    assert redrive.main(list(argv), out=out) == 0
    return out.getvalue()


def test_list_shows_each_parked_device_with_attempts_first_seen_and_reason_without_consuming(
    stack: LocalStack,
) -> None:
    park_three(stack)

    rows = [json.loads(line) for line in run("list", "--json").splitlines()]
    again = [json.loads(line) for line in run("list", "--json").splitlines()]

    assert sorted(r["device"] for r in rows) == [f"{APP}/{d}" for d in PARKED]
    assert {r["source"] for r in rows} == {"ttn-demo"}
    assert {r["attempts"] for r in rows} == {1}
    assert all(r["firstSeen"].endswith("Z") for r in rows)
    assert all(r["reason"].startswith("403 InsufficientPermissions") for r in rows)
    assert sorted(r["messageId"] for r in again) == sorted(r["messageId"] for r in rows)
    assert len(stack.queue_messages("dead-letter")) == 3  # listing consumed nothing
    table = run("list")
    assert "3 parked" in table
    assert f"{APP}/gauge-a" in table


def test_move_redrives_parked_work_which_is_then_delivered_once(stack: LocalStack) -> None:
    ledger = park_three(stack)
    stack.simulator.clear_faults()  # the operator fixed the role

    printed = run("move")

    assert printed.startswith("moved 3 messages with receive/send/delete")
    assert "StartMessageMoveTask unavailable" in printed
    assert stack.queue_messages("dead-letter") == []
    assert len(stack.queue_messages("retry")) == 3
    stack.drain()
    for device in PARKED:
        assert changes(stack, device) == ["new:403", "new:200"]
        assert stack.simulator.state()["created"][ref(device)] == 1
    assert run("list") == "nothing is parked\n"
    ledger.check()


def test_move_with_max_moves_only_that_many(stack: LocalStack) -> None:
    park_three(stack)

    printed = run("move", "--max", "2")

    assert printed.startswith("moved 2 messages with receive/send/delete")
    assert len(stack.queue_messages("retry")) == 2
    assert len(stack.queue_messages("dead-letter")) == 1


def test_redriven_work_starts_its_attempts_afresh(stack: LocalStack) -> None:
    """Work that gave up after the maximum attempts gets the maximum again after a redrive."""
    ledger = Ledger(stack)
    with_node(ledger)
    assert stack.resources is not None
    worn = WorkItem(DeviceEvent("ttn-demo", "the-things-stack", f"{APP}/gauge-z", name="gauge-z"))
    worn = WorkItem(worn.event, attempts=8, parked_reason="gave up after 8 attempts: 503 ServiceUnavailable")
    sqs().send_message(QueueUrl=stack.resources.dead_letter_queue_url, MessageBody=worn.to_message())
    stack.simulator.inject({"status": 503})

    run("move")
    stack.drain()

    # The 503 may have followed an applied `new`: the next attempt probes (422: absent), then creates.
    assert changes(stack, "gauge-z") == ["new:503", "update:422", "new:200"]
    assert stack.queue_messages("dead-letter") == []


def test_list_explains_messages_the_retry_queue_redrove_itself(stack: LocalStack) -> None:
    assert stack.resources is not None
    work = WorkItem(DeviceEvent("ttn-demo", "the-things-stack", f"{APP}/gauge-y"), attempts=2)
    work = WorkItem(work.event, attempts=2, last_error="connection dropped: RemoteProtocolError")
    sqs().send_message(QueueUrl=stack.resources.dead_letter_queue_url, MessageBody=work.to_message())
    sqs().send_message(QueueUrl=stack.resources.dead_letter_queue_url, MessageBody="not a work item")

    rows = sorted(
        (json.loads(line) for line in run("list", "--json").splitlines()), key=lambda r: r["device"]
    )

    assert [r["device"] for r in rows] == ["?", f"{APP}/gauge-y"]
    assert rows[0]["reason"].startswith("unreadable message")
    assert rows[1]["reason"] == f"{redrive.SQS_REDRIVEN}; last error: connection dropped: RemoteProtocolError"


class _MoveTaskSqs:
    """An SQS client that implements StartMessageMoveTask (as AWS does)."""

    def __init__(self) -> None:
        self.started: list[dict[str, Any]] = []

    def get_queue_attributes(self, QueueUrl: str, AttributeNames: list[str]) -> dict[str, Any]:
        return {
            "Attributes": {"QueueArn": f"arn:aws:sqs:eu-west-1:123456789012:{QueueUrl.rsplit('/', 1)[1]}"}
        }

    def start_message_move_task(self, **kwargs: Any) -> dict[str, Any]:
        self.started.append(kwargs)
        return {"TaskHandle": "task-1"}

    def list_message_move_tasks(self, **kwargs: Any) -> dict[str, Any]:
        return {
            "Results": [{"TaskHandle": "task-1", "Status": "RUNNING", "ApproximateNumberOfMessagesToMove": 7}]
        }


def test_move_uses_start_message_move_task_where_the_endpoint_has_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from sensor_bridge.runtime import settings

    monkeypatch.setenv("RETRY_QUEUE_URL", "https://sqs.eu-west-1.amazonaws.com/123456789012/sb-retry")
    monkeypatch.setenv("DEAD_LETTER_QUEUE_URL", "https://sqs.eu-west-1.amazonaws.com/123456789012/sb-dlq")
    settings.settings.cache_clear()
    fake = _MoveTaskSqs()
    monkeypatch.setattr(redrive, "sqs", lambda: fake)
    try:
        printed = run("move")
    finally:
        settings.settings.cache_clear()

    assert printed == "StartMessageMoveTask started (task task-1): about 7 messages to move\n"
    assert fake.started == [
        {
            "SourceArn": "arn:aws:sqs:eu-west-1:123456789012:sb-dlq",
            "DestinationArn": "arn:aws:sqs:eu-west-1:123456789012:sb-retry",
        }
    ]


def test_cli_lists_parked_work_against_the_local_stack(stack: LocalStack) -> None:
    park_three(stack)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "layers" / "bridge"), str(ROOT)])}

    done = subprocess.run(
        [sys.executable, "-m", "sensor_bridge.redrive", "list"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert "3 parked" in done.stdout
    assert "403 InsufficientPermissions" in done.stdout
    assert len(stack.queue_messages("dead-letter")) == 3
