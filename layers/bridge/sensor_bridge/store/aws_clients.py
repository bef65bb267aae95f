"""boto3 clients, created on first use and kept for the process.

Imported lazily: the success path of a warm webhook touches DynamoDB only, and boto3's import
and client creation are a large part of a cold start. Powertools' idempotency and parameters get
these clients too: each one they would make for themselves comes with a session of its own, which
loads botocore's data again (about 100 ms of CPU for a second DynamoDB client, 7 ms on this session).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from sensor_bridge.runtime.process import on_reset


def client_config() -> Any:
    """The botocore Config of every AWS client the bridge makes (Secrets Manager's included)."""
    from botocore.config import Config

    # Fail fast: the webhook must answer within the platforms' timeouts (5 s at the least).
    return Config(connect_timeout=2, read_timeout=3, retries={"max_attempts": 2, "mode": "standard"})


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


@cache
def sqs() -> Any:
    import boto3

    return boto3.client("sqs", config=client_config())


@cache
def dynamodb() -> Any:
    import boto3

    return boto3.client("dynamodb", config=client_config())


@cache
def secretsmanager() -> Any:
    import boto3

    return boto3.client("secretsmanager", config=client_config())


@on_reset
def reset() -> None:
    """Forget the clients (tests and the local stack change endpoints between runs)."""
    sqs.cache_clear()
    dynamodb.cache_clear()
    secretsmanager.cache_clear()
