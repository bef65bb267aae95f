"""The deployed function can take its configuration from SSM Parameter Store instead of the file."""

from __future__ import annotations

import boto3
import pytest

from local.lambda_runtime import cold_start
from local.stack import LocalStack
from sensor_bridge.model.config import ConfigError
from sensor_bridge.store.config_source import current_config
from tests.conftest import load_event

PARAMETER = "/sensor-bridge/config"
SSM_CONFIG = """
sources:
  site-north:
    platform: the-things-stack
    auth: {type: header, header: X-Bridge-Token, secret: ttn-demo}
default_profile:
  name: generic
  sensors:
    - {key: generic, integration_id: GENERIC_SENSOR_SDE, name: Generic sensor,
       unknown_metrics: [value], unknown_units: [unitless]}
"""


def post_to(stack: LocalStack, source: str) -> tuple[int, dict]:
    event = load_event("ttn-01-join-accept.json")
    status, _, body = stack.invoke(
        "POST", f"/webhooks/{source}", headers=event["headers"], body=event["body"].encode()
    )
    return status, body


def test_configuration_in_ssm_replaces_the_bundled_file(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    boto3.client("ssm").put_parameter(Name=PARAMETER, Value=SSM_CONFIG, Type="String")
    monkeypatch.setenv("BRIDGE_CONFIG_PARAMETER", PARAMETER)
    cold_start()

    status, body = post_to(stack, "site-north")
    bundled_status, bundled = post_to(stack, "ttn-demo")

    assert status == 200
    assert body["results"][0]["status"] == "integrated"
    assert bundled_status == 404
    assert bundled["error"]["code"] == "UnknownSource"
    assert len([c for c in stack.simulator.state()["calls"] if c["body"]["integration"].get("devices")]) == 1


def test_wrong_configuration_in_ssm_names_the_parameter_and_the_key(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = SSM_CONFIG.replace("platform: the-things-stack", "platform: the-things-stack\n    colour: blue")
    boto3.client("ssm").put_parameter(Name=PARAMETER, Value=wrong, Type="String")
    monkeypatch.setenv("BRIDGE_CONFIG_PARAMETER", PARAMETER)
    cold_start()

    with pytest.raises(ConfigError) as failure:
        current_config()

    assert str(failure.value).startswith(f"ssm:{PARAMETER}: ")
    assert "sources.site-north.colour: unknown key" in str(failure.value)
