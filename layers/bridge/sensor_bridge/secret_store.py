"""Secrets Manager reads through Powertools Parameters, cached for SECRETS_MAX_AGE_SECONDS."""

from __future__ import annotations

from typing import Any

from sensor_bridge.settings import settings


class SecretUnavailable(RuntimeError):
    """A secret could not be read: an outage or a deployment mistake, never the caller's fault."""


def get_json_secret(secret_id: str, *, force_fetch: bool = False) -> dict[str, Any]:
    # Imported here: boto3 and the Parameters provider cost cold-start time, and warm invocations
    # are answered from the provider's cache.
    from aws_lambda_powertools.utilities import parameters

    try:
        value = parameters.get_secret(
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
