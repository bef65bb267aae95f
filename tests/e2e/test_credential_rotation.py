"""A rotated IMS client secret (docs/DEPLOYMENT.md, step 4), on the local stack: the functions
still hold the old secret in their cache when IMS starts refusing it, so the refusal makes them
read the secret afresh, once, instead of parking the work."""

from __future__ import annotations

import json
from collections.abc import Iterator

import boto3
import pytest

from local.simulator import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET
from local.stack import LocalStack
from tests.scenario import Ledger, changes, tts_event, with_node

ROTATED = "rotated-client-secret"


@pytest.fixture
def rotation(stack: LocalStack) -> Iterator[LocalStack]:
    """After the test, IMS takes the demo secret again (the simulator outlives the test)."""
    yield stack
    stack.simulator.rotate_client_secret(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET)


def _rotate_in_ims(stack: LocalStack) -> None:
    stack.simulator.rotate_client_secret(DEMO_CLIENT_ID, ROTATED)
    stack.simulator.expire_tokens()  # the cached token runs out: the next call needs a new one


def _put_in_secrets_manager(stack: LocalStack) -> None:
    assert stack.resources is not None
    boto3.client("secretsmanager").put_secret_value(
        SecretId=stack.resources.credentials_secret_id,
        SecretString=json.dumps({"client_id": DEMO_CLIENT_ID, "client_secret": ROTATED}),
    )


def test_after_rotation_the_new_secret_is_read_at_once_and_the_device_integrated(
    rotation: LocalStack, ledger: Ledger
) -> None:
    with_node(ledger)  # the old secret is now cached (SECRETS_MAX_AGE_SECONDS, 5 minutes)
    _rotate_in_ims(rotation)
    _put_in_secrets_manager(rotation)

    status, body = ledger.post(tts_event())

    assert status == 200
    assert body["results"][0]["status"] == "integrated"
    assert changes(rotation, "strain-gauge-01") == ["new:401", "new:200"]  # 401: the token ran out
    assert rotation.queue_messages("dead-letter") == []
    ledger.check()


def test_a_secret_still_refused_after_the_fresh_read_parks_with_the_oauth_error(
    rotation: LocalStack, ledger: Ledger
) -> None:
    with_node(ledger)
    _rotate_in_ims(rotation)  # rotated in the portal, not yet put in Secrets Manager

    status, body = ledger.post(tts_event())
    rotation.drain()

    assert status == 202
    assert body["results"][0]["status"] == "parked"
    assert changes(rotation, "strain-gauge-01") == ["new:401"]
    (parked,) = rotation.queue_messages("dead-letter")
    assert parked["parked_reason"] == "token endpoint refused the credentials: invalid_client"
    assert ROTATED not in json.dumps(parked)
    ledger.check()
