"""Platform adapters: one module per platform, each behind the `Platform` interface.

Adding a platform is adding one module and one line in `_ADAPTERS`.
"""

from __future__ import annotations

from importlib import import_module

from sensor_bridge.platforms.base import ParseResult, Platform

# Module per platform name; imported on first use so a cold start loads only the platform it serves.
_ADAPTERS = {
    "the-things-stack": "sensor_bridge.platforms.things_stack",
    "chirpstack": "sensor_bridge.platforms.chirpstack",
    "particle": "sensor_bridge.platforms.particle",
    "azure-iot-hub": "sensor_bridge.platforms.azure_event_grid",
    "aws-iot-core": "sensor_bridge.platforms.aws_iot_core",
    "standard-webhooks": "sensor_bridge.platforms.standard_webhooks",
}


def platform_for(name: str) -> Platform:
    module = import_module(_ADAPTERS[name])
    adapter: Platform = module.ADAPTER
    return adapter


__all__ = ["ParseResult", "Platform", "platform_for"]
