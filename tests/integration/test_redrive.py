"""Redrive: list what is parked and why, move it back to the retry queue, and see it delivered.
Against the local stack (moto SQS)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from dataclasses import replace

from local.stack import LocalStack
from sensor_bridge.model.device_event import DeviceEvent
from sensor_bridge.model.work import MAX_REASON_CHARS, WorkItem
from sensor_bridge.retry import redrive
from sensor_bridge.runtime.settings import settings
from sensor_bridge.store.aws_clients import sqs
from tests.conftest import ROOT
from tests.scenario import APP, Ledger, changes, ref, tts_event, with_node
from tests.unit.test_upload_lookup import reading_work

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

    assert printed.startswith("moved 3 messages; 0 carrying a reading marked upload_uncertain")
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

    assert printed.startswith("moved 2 messages;")
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


def test_work_sqs_parked_itself_also_starts_afresh_when_moved(stack: LocalStack) -> None:
    """SQS dead-letters a message whose handler failed maxReceiveCount times: its body has no
    parked reason. Moved, it gets the reason `list` shows, and the retry function resets its
    attempts as for any parked work: one more 503 is retried, not given up on."""
    ledger = Ledger(stack)
    with_node(ledger)
    assert stack.resources is not None
    event = DeviceEvent("ttn-demo", "the-things-stack", f"{APP}/gauge-x", name="gauge-x")
    worn = WorkItem(event, attempts=settings().max_attempts - 1, last_error="503 ServiceUnavailable")
    sqs().send_message(QueueUrl=stack.resources.dead_letter_queue_url, MessageBody=worn.to_message())
    stack.simulator.inject({"status": 503, "count": 2})

    run("move")
    stack.drain()

    assert changes(stack, "gauge-x") == ["new:503", "update:503", "update:422", "new:200"]
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


def test_move_marks_each_moved_reading_upload_uncertain_unless_the_api_refused_it(
    stack: LocalStack,
) -> None:
    """A reading on the dead-letter queue may have been stored (SQS moved it after its handler
    failed, or it gave up after lost answers): moved, it is looked up before it is uploaded. One
    the API refused (a 4xx) was not stored; a device's work has no reading; both go as they are."""
    assert stack.resources is not None
    reading = reading_work()
    works = {
        "sqs-redriven": reading,
        "gave-up": replace(reading, attempts=8, parked_reason="gave up after 8 attempts: 503 Unavailable"),
        "refused": replace(reading, parked_reason="422 InvalidUploadDataRequest: unknown metric"),
        "device-only": reading.device_only(),
    }
    for name, work in works.items():
        sqs().send_message(
            QueueUrl=stack.resources.dead_letter_queue_url,
            MessageBody=replace(work, work_id=name).to_message(),
        )
    sqs().send_message(QueueUrl=stack.resources.dead_letter_queue_url, MessageBody="not a work item")

    printed = run("move")

    assert printed.startswith("moved 5 messages; 2 carrying a reading marked upload_uncertain")
    bodies = [
        m["Body"]
        for m in sqs().receive_message(QueueUrl=stack.resources.retry_queue_url, MaxNumberOfMessages=10)[
            "Messages"
        ]
    ]
    assert "not a work item" in bodies
    marks = {
        w.work_id: w.upload_uncertain for w in map(WorkItem.from_message, set(bodies) - {"not a work item"})
    }
    assert marks == {"sqs-redriven": True, "gave-up": True, "refused": False, "device-only": False}


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


def test_a_body_that_is_json_but_no_work_is_moved_as_it_is() -> None:
    assert redrive.redriven("[]") == ("[]", False)  # before: AttributeError, and the move stopped
    assert redrive.describe("m-1", "[]").reason.startswith("unreadable message")


def test_the_reason_given_to_work_sqs_parked_fits_the_size_the_queues_reserve() -> None:
    event = DeviceEvent("ttn-demo", "the-things-stack", f"{APP}/gauge-w")
    long_error = WorkItem(event, last_error="503 " + "x" * (MAX_REASON_CHARS - 4))
    reason = redrive.reason_parked(long_error)
    assert reason.startswith(redrive.SQS_REDRIVEN)
    assert len(reason) == MAX_REASON_CHARS
