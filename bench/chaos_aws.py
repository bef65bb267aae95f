"""AWS going wrong under the bridge, through the process's real clients: DynamoDB throttling, an
SQS outage and invocations killed at their deadline.

- botocore event hooks on the boto3 session the functions' clients are made from
  (`before-send`): a DynamoDB request answered `ProvisionedThroughputExceededException` or
  `ThrottlingException` (HTTP 400, as DynamoDB answers it; botocore's standard retry mode retries
  it, as in Lambda), an SQS `SendMessage`/`SendMessageBatch` answered 500 `InternalError` or never
  connected while the outage lasts. Clients made before `install()` (the local event source
  mapping's) are not affected: AWS's own poller is not our code.
- A kill: Lambda stops an invocation at its timeout wherever it is, typically while it waits on
  a call. An armed invocation raises `Killed` (a BaseException, so no `except Exception` of the
  bridge sees it, as none would see the real kill) at its k-th outbound call, AWS or HTTP: before
  the request leaves, or after its answer came back (the call's effect made, the answer lost).
"""

from __future__ import annotations

import json
import random
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

MOST_CALLS_BEFORE_KILL = 8
WHEN = ("before", "after")  # the k-th call: before its request leaves, or after its answer came


class Killed(BaseException):
    """The invocation was stopped at its deadline."""


class _Raw:
    """What botocore reads an HTTP response body from."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


def _json_error(url: str, status: int, error_type: str, message: str) -> Any:
    from botocore.awsrequest import AWSResponse

    headers = {
        "x-amzn-RequestId": str(uuid.uuid4()),
        "Content-Type": "application/x-amz-json-1.0",
        "x-amzn-query-error": f"{error_type.rsplit('#', 1)[-1]};Receiver",
    }
    body = json.dumps({"__type": error_type, "message": message}).encode()
    return AWSResponse(url, status, headers, _Raw(body))


THROTTLES = (
    (
        "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
        "The level of configured "
        "provisioned throughput for the table was exceeded. Consider increasing your provisioning level.",
    ),
    ("com.amazon.coral.availability#ThrottlingException", "Rate of requests exceeds the allowed throughput."),
)


@dataclass
class AwsFaults:
    """What AWS does wrong right now; the benchmark changes it between waves of webhooks."""

    rng: random.Random
    throttle_share: float = 0.0  # of DynamoDB requests answered with a throttling error
    sqs_down: bool = False  # SendMessage and SendMessageBatch fail
    kill_share: float = 0.0  # of invocations killed at a random outbound call
    injected: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _local: threading.local = field(default_factory=threading.local)

    def calm(self) -> None:
        self.throttle_share, self.sqs_down, self.kill_share = 0.0, False, 0.0

    def _chance(self, share: float) -> bool:
        with self._lock:
            return share > 0 and self.rng.random() < share

    def _count(self, what: str) -> None:
        with self._lock:
            self.injected[what] += 1

    # -- installing ------------------------------------------------------------------------
    def install(self) -> None:
        """Hooks on the default boto3 session (clients made from now on) and on the process's
        one HTTP client (the Sensor Data and IMS calls)."""
        import boto3

        from sensor_bridge.runtime.http import http_client

        events = boto3._get_default_session().events
        events.register("before-send.dynamodb", self._dynamodb, unique_id="chaos-dynamodb")
        for operation in ("SendMessage", "SendMessageBatch"):
            events.register(f"before-send.sqs.{operation}", self._sqs, unique_id=f"chaos-sqs-{operation}")
        events.register("before-send", self._before_call, unique_id="chaos-kill-before")
        events.register("after-call", self._after_call, unique_id="chaos-kill-after")
        hooks = http_client().event_hooks
        hooks["request"].append(lambda _request: self._outbound("before"))
        hooks["response"].append(lambda _response: self._outbound("after"))

    # -- DynamoDB and SQS ------------------------------------------------------------------
    def _dynamodb(self, request: Any, **_: Any) -> Any:
        if not self._chance(self.throttle_share):
            return None
        with self._lock:
            error_type, message = self.rng.choice(THROTTLES)
        self._count(f"dynamodb {error_type.rsplit('#', 1)[-1]}")
        return _json_error(request.url, 400, error_type, message)

    def _sqs(self, request: Any, **_: Any) -> Any:
        if not self.sqs_down:
            return None
        from botocore.exceptions import EndpointConnectionError

        if self._chance(0.5):
            self._count("sqs send: connection refused")
            raise EndpointConnectionError(endpoint_url=request.url)
        self._count("sqs send: 500 InternalError")
        return _json_error(request.url, 500, "com.amazonaws.sqs#InternalError", "internal error")

    # -- kills -----------------------------------------------------------------------------
    def arm(self) -> None:
        """This thread's next invocation: killed at one of its first outbound calls, or not."""
        local = self._local
        local.calls = 0
        local.doom = None
        if self._chance(self.kill_share):
            with self._lock:
                local.doom = (self.rng.randint(1, MOST_CALLS_BEFORE_KILL), self.rng.choice(WHEN))

    def disarm(self) -> None:
        self._local.doom = None

    def _before_call(self, **_: Any) -> None:
        self._outbound("before")

    def _after_call(self, **_: Any) -> None:
        self._outbound("after")

    def _outbound(self, when: str) -> None:
        doom = getattr(self._local, "doom", None)
        if doom is None:
            return
        if when == "before":
            self._local.calls += 1
        if (self._local.calls, when) == doom:
            self._local.doom = None
            self._count(f"killed {when} call {doom[0]}")
            raise Killed(f"killed at its deadline ({when} outbound call {doom[0]})")

    def killable(self, handler: Callable[[dict[str, Any], Any], Any]) -> Callable[[dict[str, Any], Any], Any]:
        """The retry function as Lambda runs it: a killed batch is not deleted, every message
        comes back after the visibility timeout."""

        def run(event: dict[str, Any], context: Any) -> Any:
            self.arm()
            try:
                return handler(event, context)
            except Killed:
                return {"batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in event["Records"]]}
            finally:
                self.disarm()

        return run
