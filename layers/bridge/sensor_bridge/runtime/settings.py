"""Settings from the environment (set by template.yaml, or by the local stack)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache

from sensor_bridge.runtime.process import on_reset


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name, default)
    return value if value else default


@dataclass(frozen=True)
class Settings:
    api_base_url: str
    token_url: str
    credentials_secret_id: str
    webhook_secrets_id: str
    retry_queue_url: str
    dead_letter_queue_url: str
    registry_table: str
    idempotency_table: str
    itwin_id: str | None
    config_file: str | None
    config_parameter: str | None
    max_attempts: int
    max_work_age_seconds: int
    api_rate_limit_per_minute: int
    api_rate_limit_per_hour: int | None  # None: no hourly cap (paid tiers)
    max_devices_per_call: int
    api_timeout_seconds: float
    secrets_max_age_seconds: int
    upload_max_observations: int
    queue_max_message_bytes: int

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            api_base_url=(_env("SENSOR_DATA_API_URL") or "https://api.bentley.com/sensor-data").rstrip("/"),
            token_url=_env("IMS_TOKEN_URL") or "https://ims.bentley.com/connect/token",
            credentials_secret_id=_env("CREDENTIALS_SECRET_ID") or "sensor-bridge/credentials",
            webhook_secrets_id=_env("WEBHOOK_SECRETS_ID") or "sensor-bridge/webhook-secrets",
            retry_queue_url=_env("RETRY_QUEUE_URL") or "",
            dead_letter_queue_url=_env("DEAD_LETTER_QUEUE_URL") or "",
            registry_table=_env("REGISTRY_TABLE") or "sensor-bridge-registry",
            idempotency_table=_env("IDEMPOTENCY_TABLE") or "sensor-bridge-idempotency",
            itwin_id=_env("ITWIN_ID"),
            config_file=_env("BRIDGE_CONFIG_FILE"),
            config_parameter=_env("BRIDGE_CONFIG_PARAMETER"),
            max_attempts=int(_env("MAX_ATTEMPTS") or "8"),
            max_work_age_seconds=int(_env("MAX_WORK_AGE_SECONDS") or "86400"),
            # The trial tier's limits: the lowest, so a bridge left at its defaults is not refused.
            api_rate_limit_per_minute=int(_env("API_RATE_LIMIT_PER_MINUTE") or "500"),
            api_rate_limit_per_hour=int(_env("API_RATE_LIMIT_PER_HOUR") or "5000") or None,
            max_devices_per_call=int(_env("MAX_DEVICES_PER_CALL") or "10"),
            api_timeout_seconds=float(_env("API_TIMEOUT_SECONDS") or "2"),
            secrets_max_age_seconds=int(_env("SECRETS_MAX_AGE_SECONDS") or "300"),
            # Observations per upload call (the API documents no maximum); bench/readings.py.
            upload_max_observations=max(1, int(_env("UPLOAD_MAX_OBSERVATIONS") or "500")),
            # The queues' MaximumMessageSize (template.yaml): work that could outgrow it is refused.
            queue_max_message_bytes=int(_env("QUEUE_MAX_MESSAGE_BYTES") or "262144"),
        )


@cache
def settings() -> Settings:
    """The process's settings, read once (forgotten by reset_process_state())."""
    return Settings.from_env()


on_reset(settings.cache_clear)
