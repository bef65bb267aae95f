"""Operator commands for parked work (the dead-letter queue).

    python -m sensor_bridge.redrive list [--json] [--max N]
        what is parked, and why: source, device, attempts, first seen, reason
    python -m sensor_bridge.redrive move [--max N]
        move dead-lettered work back to the retry queue, once its cause is fixed

Queue URLs come from the same environment variables as the functions (RETRY_QUEUE_URL,
DEAD_LETTER_QUEUE_URL), and AWS access from the usual boto3 chain (AWS_ENDPOINT_URL reaches the
local stack). `move` receives, sends and deletes, in that order (a crash between send and delete
leaves a copy on both queues: delivery is idempotent, so a copy costs a call, never a duplicate).
It does not use SQS's StartMessageMoveTask: that moves bodies as they are, and a moved reading
must be marked `upload_uncertain` (`redriven`). Redriven work starts afresh: the retry function
resets its attempt count.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, TextIO

from sensor_bridge.model.work import WorkItem, bounded_reason
from sensor_bridge.runtime.settings import settings
from sensor_bridge.store.aws_clients import sqs

# A message moved by the retry queue's own redrive policy (its handler failed maxReceiveCount
# times) carries no reason of ours.
SQS_REDRIVEN = "no reason recorded: the retry function failed on it repeatedly (see its logs)"
# How long `list` hides the messages it has read, so one listing sees each once; they are made
# visible again straight after.
LIST_VISIBILITY_SECONDS = 30
# The API's definite refusal: a 4xx status first, as `sensor_data.client.read_answer` writes it
# (not 408: a timeout, which may have been applied).
_REFUSAL = re.compile(r"4(?!08)\d\d\b")


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
    messages: int
    marked: int  # works carrying a reading, marked `upload_uncertain` on their way (`redriven`)


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
        reason=reason_parked(work),
    )


def reason_parked(work: WorkItem) -> str:
    """Why the work is parked: its reason, or, parked by SQS itself, that none was recorded (cut
    to MAX_REASON_CHARS: the size the queues' check of a work reserves for it)."""
    if work.parked_reason:
        return work.parked_reason
    reason = f"{SQS_REDRIVEN}; last error: {work.last_error}" if work.last_error else SQS_REDRIVEN
    return bounded_reason(reason) or SQS_REDRIVEN


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
    """Dead-letter queue → retry queue, each message received, sent (its work marked, see
    `redriven`) and deleted, in that order."""
    s = settings()
    moved = marked = 0
    for message in _receive(s.dead_letter_queue_url, limit, visibility=60):
        attributes = {
            name: {k: v for k, v in value.items() if k in ("DataType", "StringValue", "BinaryValue")}
            for name, value in (message.get("MessageAttributes") or {}).items()
        }
        body, was_marked = redriven(message["Body"])
        sqs().send_message(QueueUrl=s.retry_queue_url, MessageBody=body, MessageAttributes=attributes)
        sqs().delete_message(QueueUrl=s.dead_letter_queue_url, ReceiptHandle=message["ReceiptHandle"])
        moved += 1
        marked += was_marked
    return Moved(moved, marked)


def redriven(body: str) -> tuple[str, bool]:
    """The body to send again, and whether it was marked `upload_uncertain` on its way.

    - A work carrying a reading is marked, unless its parked reason is the API's definite refusal.
      A reading parked by SQS's own redrive (its handler failed maxReceiveCount times, e.g. the
      registry's mark of a stored upload could not be written) carries no mark, and sent as a new
      message (received once) it would upload without looking: a moved reading may have been
      stored, and one query more is cheap.
    - A work SQS parked itself gets the reason `list` shows (SQS_REDRIVEN), so that the retry
      function starts it afresh as it does every parked work (its attempt count reset)."""
    try:
        work = WorkItem.from_message(body)
    except (ValueError, KeyError, TypeError):
        return body, False  # sent as it is, as it came: the retry function cannot read it either
    mark = work.event.reading is not None and not work.upload_uncertain and not refused(work.parked_reason)
    moved = replace(work, parked_reason=reason_parked(work), upload_uncertain=work.upload_uncertain or mark)
    return (body if moved == work else moved.to_message()), mark


def refused(reason: str | None) -> bool:
    """Whether a parked reason starts with the API's definite refusal of the work's last call (a
    4xx other than 408): nothing of that call was stored. What an earlier call whose answer was
    lost may have stored, the work's own mark already says (`retry.route.with_upload_mark`)."""
    return reason is not None and _REFUSAL.match(reason) is not None


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
    print(
        f"moved {result.messages} messages; {result.marked} carrying a reading marked upload_uncertain"
        " (looked up before they are uploaded)",
        file=out,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
