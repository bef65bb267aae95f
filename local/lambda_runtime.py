"""What a new Lambda execution environment starts without: the bridge's per-process caches.

The local stack and the tests call `cold_start()` whenever they change the environment the
handlers read, as a new deployment would.
"""

from __future__ import annotations

from aws_lambda_powertools.utilities import parameters

from sensor_bridge.inbound import idempotency
from sensor_bridge.inbound import receive as bridge
from sensor_bridge.runtime import settings
from sensor_bridge.sensor_data import rate_gate, tokens
from sensor_bridge.store import aws_clients, config_source
from sensor_bridge.store import secrets as secret_store


def cold_start() -> None:
    settings.settings.cache_clear()
    config_source.current_config.cache_clear()
    aws_clients.reset()
    secret_store.reset()
    idempotency.reset()
    bridge._process.cache_clear()
    tokens.token_provider.invalidate()
    rate_gate.reset()
    parameters.clear_caches()  # type: ignore[no-untyped-call]
