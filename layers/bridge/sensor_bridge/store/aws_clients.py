"""boto3 clients, created on first use and kept for the process, with timeouts that fit the
invocation's deadline.

Imported lazily: the success path of a warm webhook touches DynamoDB only, and boto3's import
and client creation are a large part of a cold start. Powertools' idempotency and parameters get
these clients too: each one they would make for themselves comes with a session of its own, which
loads botocore's data again (about 100 ms of CPU for a second DynamoDB client, 7 ms on this session).

botocore's timeouts are per client (connect and read, per attempt; no total, no per-call
override), so a call's bound comes from choosing the client: one per service and per step of a
short ladder of time limits, each made once (a client more on the same session costs some
milliseconds, not the 100 ms of a session). A call with more time than the ladder's top gets the
default client; one with less gets fewer attempts and shorter timeouts, never more than is left.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import cache
from typing import Any

from sensor_bridge.runtime.budget import current_budget
from sensor_bridge.runtime.process import on_reset

# Outside an invocation's deadline (operator commands, tests): fail fast all the same.
CONNECT_SECONDS, READ_SECONDS, ATTEMPTS = 2.0, 3.0, 2
# Per-attempt time limits a client can be made with: each step one client per service, at most.
ATTEMPT_LADDER = (0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0)
# botocore's standard retry mode sleeps up to 1 s (throttling) before a second attempt.
RETRY_PAUSE_SECONDS = 1.0
# A second attempt only when each still gets this long: a slow endpoint is better served by one
# longer read than by two short ones.
MIN_RETRIED_ATTEMPT_SECONDS = 2.0


@dataclass(frozen=True)
class CallLimits:
    connect_seconds: float
    read_seconds: float
    attempts: int

    @property
    def worst_case_seconds(self) -> float:
        """Every attempt connecting and reading as long as it may, and the pauses between them."""
        pauses = RETRY_PAUSE_SECONDS * (self.attempts - 1)
        return self.attempts * (self.connect_seconds + self.read_seconds) + pauses


DEFAULT_LIMITS = CallLimits(CONNECT_SECONDS, READ_SECONDS, ATTEMPTS)


def limits_for(seconds: float) -> CallLimits:
    """The largest limits whose worst case fits in `seconds` (the shortest step if none does:
    one short try, after which the work is queued, rather than none)."""
    if seconds >= DEFAULT_LIMITS.worst_case_seconds:
        return DEFAULT_LIMITS
    retried = (seconds - RETRY_PAUSE_SECONDS) / 2 >= MIN_RETRIED_ATTEMPT_SECONDS
    attempts = 2 if retried else 1
    per_attempt = (seconds - RETRY_PAUSE_SECONDS * (attempts - 1)) / attempts
    step = max((s for s in ATTEMPT_LADDER if s <= per_attempt), default=ATTEMPT_LADDER[0])
    connect = min(step / 3, CONNECT_SECONDS)
    return CallLimits(connect, step - connect, attempts)


def client_config(limits: CallLimits = DEFAULT_LIMITS) -> Any:
    """The botocore Config of an AWS client the bridge makes."""
    from botocore.config import Config

    return Config(
        connect_timeout=limits.connect_seconds,
        read_timeout=limits.read_seconds,
        retries={"total_max_attempts": limits.attempts, "mode": "standard"},
    )


def _limits_now(*, queueing: bool) -> CallLimits:
    budget = current_budget()
    if budget is None:
        return DEFAULT_LIMITS
    return limits_for(budget.aws_seconds_left(queueing=queueing))


# Error codes of an AWS call that fail for a while, not for good: trying again later can help.
_PASSING_ERRORS = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "ThrottlingException",
        "Throttling",
        "ThrottledException",
        "TooManyRequestsException",
        "TransactionConflictException",
        "InternalServerError",
        "InternalFailure",
        "ServiceUnavailable",
        "RequestTimeout",
        "RequestTimeoutException",
    }
)


def is_outage(error: BaseException) -> bool:
    """Whether an AWS call failed for a reason that passes (throttling, a 5xx, the network)."""
    from botocore.exceptions import BotoCoreError, ClientError

    if isinstance(error, ClientError):
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        return status >= 500 or error.response.get("Error", {}).get("Code") in _PASSING_ERRORS
    return isinstance(error, BotoCoreError | OSError)


def caused_by_outage(error: BaseException) -> bool:
    """Whether `error`, or what it wraps (Powertools' idempotency persistence error carries the
    botocore error as its cause), is an AWS outage that passes."""
    seen: BaseException | None = error
    for _ in range(4):  # a chain is a few links long; a cycle must not loop
        if seen is None:
            return False
        if is_outage(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _client(service: str, limits: CallLimits) -> Any:
    # One at a time: threads (the pool that queues a large delivery) may ask for clients at once,
    # and making clients from boto3's default session is not thread-safe (using them is).
    with _making:
        return _made(service, limits)


_making = threading.Lock()


@cache
def _made(service: str, limits: CallLimits) -> Any:
    import boto3

    return boto3.client(service, config=client_config(limits))


def sqs() -> Any:
    """SQS sends are the queueing itself: they may take the invocation up to its end."""
    return _client("sqs", _limits_now(queueing=True))


def sqs_within(seconds: float) -> Any:
    """An SQS client whose calls end within `seconds`: for a thread, which does not see the
    invocation's budget (a context variable), given the time its caller read from it."""
    return _client("sqs", limits_for(seconds))


def dynamodb() -> Any:
    return _client("dynamodb", _limits_now(queueing=False))


def secretsmanager() -> Any:
    return _client("secretsmanager", _limits_now(queueing=False))


class CurrentClient:
    """A client for Powertools' utilities, which keep the one they are given: each call goes to
    the client that fits the time left when it is made."""

    def __init__(self, service: str) -> None:
        self._service = service

    def __getattr__(self, name: str) -> Any:
        return getattr(_client(self._service, _limits_now(queueing=False)), name)


@on_reset
def reset() -> None:
    """Forget the clients (tests and the local stack change endpoints between runs)."""
    _made.cache_clear()
