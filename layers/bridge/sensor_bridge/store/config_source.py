"""Where the running bridge reads its configuration: a file, optionally overridden from SSM."""

from __future__ import annotations

from functools import cache

from sensor_bridge.model.config import DEFAULT_CONFIG_FILE, BridgeConfig, load_config_file, parse_config
from sensor_bridge.runtime.process import on_reset
from sensor_bridge.runtime.settings import settings


@cache
def current_config() -> BridgeConfig:
    """Parsed once per process; a wrong file fails the cold start with a message naming the key."""
    s = settings()
    if s.config_parameter:
        from aws_lambda_powertools.utilities.parameters import SSMProvider

        from sensor_bridge.store.aws_clients import CurrentClient

        text = SSMProvider(boto3_client=CurrentClient("ssm")).get(s.config_parameter)
        return parse_config(str(text), origin=f"ssm:{s.config_parameter}")
    return load_config_file(s.config_file or DEFAULT_CONFIG_FILE)


on_reset(current_config.cache_clear)
