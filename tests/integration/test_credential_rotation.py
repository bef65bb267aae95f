"""A rotated IMS client secret: the cached old one is refused, the fresh one is read and used."""

from __future__ import annotations

import json
from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from local.simulator import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, SensorDataSimulator, default_clients
from sensor_bridge.runtime.process import reset_process_state
from sensor_bridge.sensor_data.tokens import TokenUnavailable, token_provider

SECRET_ID = "sensor-bridge/credentials"
ROTATED = "rotated-client-secret"


@pytest.fixture
def sim_and_secrets(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[SensorDataSimulator, object]]:
    clients = default_clients()
    with mock_aws(), SensorDataSimulator(port=0, clients=clients) as sim:
        for name, value in {
            "AWS_DEFAULT_REGION": "us-east-1",
            "IMS_TOKEN_URL": sim.token_url,
            "CREDENTIALS_SECRET_ID": SECRET_ID,
            "SECRETS_MAX_AGE_SECONDS": "300",  # the old secret stays cached through the rotation
        }.items():
            monkeypatch.setenv(name, value)
        reset_process_state()
        sm = boto3.client("secretsmanager", region_name="us-east-1")
        sm.create_secret(
            Name=SECRET_ID,
            SecretString=json.dumps({"client_id": DEMO_CLIENT_ID, "client_secret": DEMO_CLIENT_SECRET}),
        )
        yield sim, sm
        reset_process_state()


def _rotate(sim: SensorDataSimulator, sm: object, new_secret: str, *, in_secrets_manager: bool) -> None:
    for client in sim._clients.values():  # the simulator's IMS now accepts only the new secret
        if client.client_id == DEMO_CLIENT_ID:
            client.client_secret = new_secret
    if in_secrets_manager:
        sm.put_secret_value(  # type: ignore[attr-defined]
            SecretId=SECRET_ID,
            SecretString=json.dumps({"client_id": DEMO_CLIENT_ID, "client_secret": new_secret}),
        )


def test_after_rotation_the_fresh_secret_is_read_and_a_token_fetched(
    sim_and_secrets: tuple[SensorDataSimulator, object],
) -> None:
    sim, sm = sim_and_secrets
    first = token_provider.get()  # caches the old secret
    token_provider.invalidate()
    _rotate(sim, sm, ROTATED, in_secrets_manager=True)
    second = token_provider.get()
    assert second
    assert second != first


def test_a_secret_that_is_still_wrong_after_a_fresh_read_is_refused(
    sim_and_secrets: tuple[SensorDataSimulator, object],
) -> None:
    sim, sm = sim_and_secrets
    token_provider.get()
    token_provider.invalidate()
    _rotate(sim, sm, ROTATED, in_secrets_manager=False)  # IMS rotated, the secret not yet
    with pytest.raises(TokenUnavailable) as refused:
        token_provider.get()
    assert "invalid_client" in str(refused.value)
    assert refused.value.retryable is False
