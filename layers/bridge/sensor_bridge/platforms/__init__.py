"""Platform adapters: one module per platform, each behind the `Platform` interface.

Each module parses its platform's own payload (a pydantic model with the platform's field names)
into DeviceEvents and answers its handshakes. Adding a platform is adding one module here and one
line in `model.config.PLATFORM_MODULES`.

May import: model, runtime. Never delivery, retry, sensor_data, store or inbound: a platform only
translates what it was sent.
"""

from __future__ import annotations

from importlib import import_module

from sensor_bridge.model.config import PLATFORM_MODULES
from sensor_bridge.platforms.base import ParseResult, Platform


def platform_for(name: str) -> Platform:
    """The adapter of a platform, imported on first use: a cold start loads only the one it serves."""
    module = import_module(f"{__name__}.{PLATFORM_MODULES[name]}")
    adapter: Platform = module.ADAPTER
    return adapter


__all__ = ["ParseResult", "Platform", "platform_for"]
