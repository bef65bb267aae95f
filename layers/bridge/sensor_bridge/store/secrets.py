"""Secrets Manager reads through Powertools Parameters, cached for SECRETS_MAX_AGE_SECONDS."""

from __future__ import annotations

from functools import cache
from typing import Any

from sensor_bridge.runtime.process import on_reset
from sensor_bridge.runtime.settings import settings


class SecretUnavailable(RuntimeError):
    """A secret could not be read: an outage or a deployment mistake, never the caller's fault."""


@cache
def secrets_provider() -> Any:
    """The process's Secrets Manager provider: its client fails fast like the other AWS clients
    (the webhook function has 4 s in all; botocore's defaults wait 60 s to connect and to read),
    and its cache answers warm invocations. `parameters.get_secret`'s default provider has
    neither bound."""
    # Imported here: boto3 and the Parameters provider cost cold-start time.
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

    from sensor_bridge.store.aws_clients import CurrentClient

    return SecretsProvider(boto3_client=CurrentClient("secretsmanager"))


def get_json_secret(secret_id: str, *, force_fetch: bool = False) -> dict[str, Any]:
    try:
        value = secrets_provider().get(
            secret_id,
            transform="json",
            max_age=settings().secrets_max_age_seconds,
            force_fetch=force_fetch,
        )
    except Exception as exc:  # GetParameterError, TransformParameterError, botocore errors
        # The message names the secret, never its value.
        raise SecretUnavailable(f"cannot read secret {secret_id!r}: {type(exc).__name__}") from None
    if not isinstance(value, dict):
        raise SecretUnavailable(f"secret {secret_id!r} must hold a JSON object")
    return value


def webhook_secret(name: str) -> str | None:
    value = get_json_secret(settings().webhook_secrets_id).get(name)
    return str(value) if value is not None else None


@on_reset
def reset() -> None:
    """Forget the provider, its client and its cached values (a new execution environment)."""
    secrets_provider.cache_clear()
