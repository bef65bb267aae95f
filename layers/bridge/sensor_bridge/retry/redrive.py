"""Operator commands for parked work (the dead-letter queue).

    python -m sensor_bridge.redrive list [--json] [--max N]
        what is parked, and why: source, device, attempts, first seen, reason
    python -m sensor_bridge.redrive move [--max N]
        move dead-lettered work back to the retry queue, once its cause is fixed

Queue URLs come from the same environment variables as the functions (RETRY_QUEUE_URL,
DEAD_LETTER_QUEUE_URL), and AWS access from the usual boto3 chain (AWS_ENDPOINT_URL reaches the
local stack). `move` uses SQS StartMessageMoveTask where the endpoint implements it and no --max
is given; otherwise it receives, sends and deletes, in that order (a crash between send and delete
leaves a copy on both queues: delivery is idempotent, so a copy costs a call, never a duplicate).
Redriven work starts afresh: the retry function resets its attempt count.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO

from sensor_bridge.model.work import WorkItem
from sensor_bridge.runtime.settings import settings
from sensor_bridge.store.aws_clients import sqs

# A message moved by the retry queue's own redrive policy (its handler failed maxReceiveCount
# times) carries no reason of ours.
SQS_REDRIVEN = "no reason recorded: the retry function failed on it repeatedly (see its logs)"
# How long `list` hides the messages it has read, so one listing sees each once; they are made
# visible again straight after.
LIST_VISIBILITY_SECONDS = 30
MOVE_TASK = "StartMessageMoveTask"
RECEIVE_SEND_DELETE = "receive/send/delete"


@dataclass(frozen=True)
class ParkedWork:
    message_id: str
    source: str
    device: str
    attempts: int
    first_seen: float | None
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {
            "messageId": self.message_id,
            "source": self.source,
            "device": self.device,
            "attempts": self.attempts,
            "firstSeen": _iso(self.first_seen),
            "reason": self.reason,
        }


@dataclass(frozen=True)
class Moved:
    method: str  # MOVE_TASK or RECEIVE_SEND_DELETE
    messages: int  # moved (receive/send/delete), or to move (the task's estimate)
    detail: str = ""


def describe(message_id: str, body: str) -> ParkedWork:
    try:
        work = WorkItem.from_message(body)
    except (ValueError, KeyError, TypeError) as exc:
        return ParkedWork(message_id, "?", "?", 0, None, f"unreadable message: {exc}")
    return ParkedWork(
        message_id=message_id,
        source=work.event.source,
        device=work.event.device_id,
        attempts=work.attempts,
        first_seen=work.first_seen,
        reason=work.parked_reason
        or (f"{SQS_REDRIVEN}; last error: {work.last_error}" if work.last_error else SQS_REDRIVEN),
    )


def list_parked(limit: int | None = None) -> list[ParkedWork]:
    """Read the dead-letter queue without consuming it."""
    found: list[ParkedWork] = []
    handles: list[str] = []
    url = settings().dead_letter_queue_url
    try:
        for message in _receive(url, limit, visibility=LIST_VISIBILITY_SECONDS):
            handles.append(message["ReceiptHandle"])
            found.append(describe(message["MessageId"], message["Body"]))
    finally:
        for start in range(0, len(handles), 10):
            sqs().change_message_visibility_batch(
                QueueUrl=url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": h, "VisibilityTimeout": 0}
                    for i, h in enumerate(handles[start : start + 10])
                ],
            )
    return found


def move(limit: int | None = None) -> Moved:
    """Dead-letter queue → retry queue. A move task where available; else receive/send/delete."""
    s = settings()
    if limit is None:
        started = _start_move_task(_arn(s.dead_letter_queue_url), _arn(s.retry_queue_url))
        if isinstance(started, Moved):
            return started
        fallback = f"{MOVE_TASK} unavailable ({started})"
    else:
        fallback = f"{MOVE_TASK} cannot stop after {limit} messages"
    moved = 0
    for message in _receive(s.dead_letter_queue_url, limit, visibility=60):
        attributes = {
            name: {k: v for k, v in value.items() if k in ("DataType", "StringValue", "BinaryValue")}
            for name, value in (message.get("MessageAttributes") or {}).items()
        }
        sqs().send_message(
            QueueUrl=s.retry_queue_url, MessageBody=message["Body"], MessageAttributes=attributes
        )
        sqs().delete_message(QueueUrl=s.dead_letter_queue_url, ReceiptHandle=message["ReceiptHandle"])
        moved += 1
    return Moved(RECEIVE_SEND_DELETE, moved, fallback)


def _start_move_task(source_arn: str, destination_arn: str) -> Moved | str:
    from botocore.exceptions import ClientError

    try:
        answer = sqs().start_message_move_task(SourceArn=source_arn, DestinationArn=destination_arn)
    except ClientError as exc:
        error = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return _short(f"{error.get('Code') or status or 'error'}: {error.get('Message') or exc}")
    handle = answer.get("TaskHandle", "")
    estimate = _task_estimate(source_arn, handle)
    return Moved(MOVE_TASK, estimate, f"task {handle}")


def _task_estimate(source_arn: str, handle: str) -> int:
    for _ in range(10):
        tasks = sqs().list_message_move_tasks(SourceArn=source_arn, MaxResults=10).get("Results", [])
        mine = next((t for t in tasks if t.get("TaskHandle") == handle), tasks[0] if tasks else {})
        if "ApproximateNumberOfMessagesToMove" in mine:
            return int(mine["ApproximateNumberOfMessagesToMove"])
        time.sleep(0.5)
    return -1


def _receive(url: str, limit: int | None, *, visibility: int) -> Iterator[dict[str, Any]]:
    seen = 0
    while limit is None or seen < limit:
        batch = (
            sqs()
            .receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=min(10, limit - seen) if limit is not None else 10,
                VisibilityTimeout=visibility,
                MessageAttributeNames=["All"],
                AttributeNames=["All"],
                WaitTimeSeconds=0,
            )
            .get("Messages", [])
        )
        if not batch:
            return
        for message in batch:
            seen += 1
            yield message


def _short(text: str, limit: int = 120) -> str:
    """One line of an error: some endpoints answer an unimplemented action with an HTML page."""
    lines = [line.strip() for line in re.sub(r"<[^>]+>", " ", text).splitlines()]
    line = " ".join(" ".join(part for part in lines if part).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _arn(url: str) -> str:
    answer = sqs().get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    return str(answer["Attributes"]["QueueArn"])


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def print_table(parked: list[ParkedWork], out: TextIO) -> None:
    if not parked:
        print("nothing is parked", file=out)
        return
    print(f"{'source':<16} {'device':<36} {'attempts':>8}  {'first seen':<20}  reason", file=out)
    for p in parked:
        first_seen = _iso(p.first_seen) or "?"
        print(f"{p.source:<16} {p.device:<36} {p.attempts:>8}  {first_seen:<20}  {p.reason}", file=out)
    print(f"{len(parked)} parked", file=out)


def main(argv: list[str] | None = None, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    parser = argparse.ArgumentParser(prog="python -m sensor_bridge.redrive", description="parked work")
    sub = parser.add_subparsers(dest="command", required=True)
    list_p = sub.add_parser("list", help="what is parked, and why")
    list_p.add_argument("--json", action="store_true", help="one JSON object per line")
    list_p.add_argument("--max", type=int, default=None, help="read at most N messages")
    move_p = sub.add_parser("move", help="move parked work back to the retry queue")
    move_p.add_argument("--max", type=int, default=None, help="move at most N messages")
    args = parser.parse_args(argv)
    if not settings().dead_letter_queue_url or not settings().retry_queue_url:
        print("set RETRY_QUEUE_URL and DEAD_LETTER_QUEUE_URL (as the functions have them)", file=sys.stderr)
        return 2
    if args.command == "list":
        parked = list_parked(args.max)
        if args.json:
            for p in parked:
                print(json.dumps(p.to_json()), file=out)
        else:
            print_table(parked, out)
        return 0
    result = move(args.max)
    if result.method == MOVE_TASK:
        print(f"{MOVE_TASK} started ({result.detail}): about {result.messages} messages to move", file=out)
    else:
        print(f"moved {result.messages} messages with {RECEIVE_SEND_DELETE}: {result.detail}", file=out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
