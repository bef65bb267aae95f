"""Plays the SQS event source mapping for the retry function: receive a batch, invoke the
handler with a real SQS event, delete what succeeded, leave the batch item failures.

On simulated time (the embedded simulator) it fast-forwards while every message waits; on the
real clock (an API of yours, whose rate window runs in wall-clock time) it waits."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3

from local.apigw import LambdaContext, sqs_event
from local.virtual_time import advance, elapsed

logger = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any], Any], Any]
# Seconds until the first message that waits (delayed, or in flight) may be received; None: none.
NextDue = Callable[[], float | None]


@dataclass
class PollStats:
    batches: int = 0
    messages: int = 0
    failures: int = 0
    fast_forwarded_s: float = 0.0
    # Per batch: (simulated seconds since the stack's clock was reset, messages in it).
    batch_log: list[tuple[float, int]] = field(default_factory=list)


class RetryPoller:
    def __init__(  # noqa: PLR0913 -- the event source mapping's own settings, each by keyword
        self,
        queue_url: str,
        queue_arn: str,
        handler: Handler,
        *,
        batch_size: int = 10,
        client: Any = None,
        real_clock: bool = False,
        batching_window_s: int = 0,
        next_due: NextDue | None = None,
    ) -> None:
        self.queue_url = queue_url
        self.queue_arn = queue_arn
        self.handler = handler
        self.batch_size = batch_size
        self.real_clock = real_clock
        # MaximumBatchingWindowInSeconds: wait (simulated) up to this long for a full batch.
        self.batching_window_s = batching_window_s
        # Read from the queue's own state: drain() then jumps over the steps in which nothing
        # can be received (a backlog paced at one call a minute waits most of every minute).
        self.next_due = next_due
        self.stats = PollStats()
        self._sqs: Any = client or boto3.client("sqs")  # the event source mapping's credentials

    def with_handler(self, handler: Handler, client: Any) -> RetryPoller:
        """The same event source mapping (queue, batch size, window, clock) invoking another
        handler with other credentials: what `LocalStack.run_functions_with` switches to."""
        return RetryPoller(
            self.queue_url,
            self.queue_arn,
            handler,
            batch_size=self.batch_size,
            client=client,
            real_clock=self.real_clock,
            batching_window_s=self.batching_window_s,
            next_due=self.next_due,
        )

    def poll_once(self) -> int:
        """One batch; the number of messages it held."""
        messages = self._receive()
        if not messages:
            return 0
        for _ in range(self.batching_window_s):
            if len(messages) >= self.batch_size:
                break
            advance(1.0)  # the event source mapping waits for more, up to its window
            self.stats.fast_forwarded_s += 1.0
            messages += self._receive(self.batch_size - len(messages))
        self.stats.batch_log.append((elapsed(), len(messages)))
        try:
            answer = self.handler(
                sqs_event(messages, self.queue_arn), LambdaContext("sensor-bridge-retry", timeout_seconds=60)
            )
        except Exception:
            # A failed invocation: the event source mapping deletes nothing, and every message
            # comes back after its visibility timeout (and, past maxReceiveCount, to the DLQ).
            logger.exception("retry function invocation failed: the whole batch returns to the queue")
            answer = {"batchItemFailures": [{"itemIdentifier": m["MessageId"]} for m in messages]}
        failed = {item["itemIdentifier"] for item in (answer or {}).get("batchItemFailures", [])}
        done = [m for m in messages if m["MessageId"] not in failed]
        for start in range(0, len(done), 10):  # DeleteMessageBatch takes at most 10
            self._sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                    for i, m in enumerate(done[start : start + 10])
                ],
            )
        self.stats.batches += 1
        self.stats.messages += len(messages)
        self.stats.failures += len(failed)
        return len(messages)

    def _receive(self, most: int | None = None) -> list[dict[str, Any]]:
        """Up to `most` (the batch size) messages: ReceiveMessage returns at most 10 at a time."""
        most = self.batch_size if most is None else most
        messages: list[dict[str, Any]] = []
        while len(messages) < most:
            more = self._sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=min(10, most - len(messages)),
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if not more:
                break
            messages += more
        return messages

    def pending(self) -> int:
        attrs = self._sqs.get_queue_attributes(
            QueueUrl=self.queue_url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesDelayed",
                "ApproximateNumberOfMessagesNotVisible",
            ],
        )["Attributes"]
        return sum(int(v) for v in attrs.values())

    def deliver_ready(self) -> int:
        """Every batch that is due now, without moving any clock; how many messages."""
        delivered = 0
        while count := self.poll_once():
            delivered += count
        return delivered

    def drain(self, *, step_s: float = 5.0, max_simulated_s: float = 48 * 3600) -> PollStats:
        """Deliver until the queue is empty, fast-forwarding simulated time while all messages wait
        (on the real clock: waiting, a second at a time)."""
        budget = max_simulated_s
        while True:
            if self.poll_once():
                continue
            if not self.pending():
                return self.stats
            if budget <= 0:
                raise TimeoutError(f"retry queue not drained after {max_simulated_s} seconds")
            budget -= self._wait(step_s)

    def _wait(self, step_s: float) -> float:
        if self.real_clock:
            time.sleep(1.0)
            return 1.0
        step = step_s
        due = self.next_due() if self.next_due is not None else None
        if due is not None and due > step_s:
            step = step_s * math.ceil(due / step_s)  # where stepping would first find it
        advance(step)
        self.stats.fast_forwarded_s += step
        return step

    def run_for(self, simulated_s: float, *, step_s: float = 5.0) -> PollStats:
        """Play the event source mapping for `simulated_s` of simulated time, whether or not the
        queue empties: what a test uses to show that nothing is delivered before its time."""
        if self.real_clock:
            raise RuntimeError("run_for moves simulated time; this poller runs on the real clock")
        budget = simulated_s
        while budget > 0:
            if self.poll_once():
                continue
            step = min(step_s, budget)
            advance(step)
            self.stats.fast_forwarded_s += step
            budget -= step
        return self.stats
