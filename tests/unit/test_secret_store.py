"""Secrets Manager reads: one provider per process, its client bounded like the other AWS clients."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from sensor_bridge.runtime.settings import settings
from sensor_bridge.store import aws_clients
from sensor_bridge.store import secrets as secret_store
from sensor_bridge.store.secrets import SecretUnavailable, get_json_secret


@pytest.fixture(autouse=True)
def fresh_provider(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "unit")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "unit")
    provider = secret_store.secrets_provider  # the cached function, before any test patches it
    provider.cache_clear()
    yield
    provider.cache_clear()


def test_the_provider_client_fails_fast_like_the_other_aws_clients() -> None:
    import boto3

    config = secret_store.secrets_provider().client.meta.config
    other = boto3.client("sqs", config=aws_clients.client_config()).meta.config

    assert (config.connect_timeout, config.read_timeout) == (2, 3)
    assert (config.connect_timeout, config.read_timeout, config.retries) == (
        other.connect_timeout,
        other.read_timeout,
        other.retries,
    )


def test_the_provider_is_created_once_per_process_and_forgotten_on_reset() -> None:
    first = secret_store.secrets_provider()
    assert secret_store.secrets_provider() is first
    secret_store.reset()
    assert secret_store.secrets_provider() is not first


def test_the_local_cold_start_forgets_the_provider_and_its_cached_secrets() -> None:
    from local.lambda_runtime import cold_start

    first = secret_store.secrets_provider()
    cold_start()
    assert secret_store.secrets_provider() is not first


class FakeProvider:
    def __init__(self, value: Any) -> None:
        self.value = value
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def get(self, name: str, **kwargs: Any) -> Any:
        self.calls.append((name, kwargs))
        if isinstance(self.value, Exception):
            raise self.value
        return self.value


def test_reads_go_through_the_provider_with_max_age_and_force_fetch(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeProvider({"ttn-demo": "s3cret"})
    monkeypatch.setattr(secret_store, "secrets_provider", lambda: fake)

    assert get_json_secret("ids/webhook") == {"ttn-demo": "s3cret"}
    get_json_secret("ids/webhook", force_fetch=True)

    max_age = settings().secrets_max_age_seconds
    assert fake.calls == [
        ("ids/webhook", {"transform": "json", "max_age": max_age, "force_fetch": False}),
        ("ids/webhook", {"transform": "json", "max_age": max_age, "force_fetch": True}),
    ]


def test_a_provider_failure_names_the_secret_never_a_value(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeProvider(TimeoutError("read timeout on s3cret-value"))
    monkeypatch.setattr(secret_store, "secrets_provider", lambda: fake)

    with pytest.raises(SecretUnavailable) as caught:
        get_json_secret("ids/webhook")
    assert "ids/webhook" in str(caught.value)
    assert "s3cret-value" not in str(caught.value)


def test_a_secret_that_is_not_a_json_object_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(secret_store, "secrets_provider", lambda: FakeProvider(["a"]))
    with pytest.raises(SecretUnavailable, match="JSON object"):
        get_json_secret("ids/webhook")
