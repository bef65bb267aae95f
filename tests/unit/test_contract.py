"""The seed's own examples round-trip through our contract models unchanged."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from sensor_bridge.model.contract import ErrorResponse, IntegrationRequest, IntegrationResponse
from tests.conftest import DATA


def seed(name: str) -> dict:
    return json.loads((DATA / name).read_text(encoding="utf-8"))


def test_seed_request_round_trips_exactly() -> None:
    original = seed("seed_request.json")

    model = IntegrationRequest.model_validate(original)

    assert model.to_json_body() == original
    assert [s.props["INTEGRATION_ID"] for s in model.integration.devices[0].sensors][:2] == [
        "GENERIC_SENSOR_SDE",
        "ACTIVITY_SDE",
    ]


def test_seed_response_round_trips_exactly() -> None:
    original = seed("seed_response.json")

    model = IntegrationResponse.model_validate(original)

    assert model.model_dump(mode="json", exclude_none=True) == original
    assert model.integration.node is not None
    assert model.integration.node.id == "/api/95A09D/node"
    assert model.integration.devices[0].sensors[0].device == "/api/95A09D/node/dynamic/756BDE/device"


@pytest.mark.parametrize(
    ("status", "code"),
    [(401, "HeaderNotFound"), (403, "InsufficientPermissions"), (422, "InvalidProcessIntegrationRequest")],
)
def test_seed_error_bodies_parse(status: int, code: str) -> None:
    body = {"error": {"code": code, "message": f"seed message for {status}"}}

    error = ErrorResponse.model_validate(body).error

    assert error.code == code
    assert error.target is None


def test_change_state_outside_the_documented_three_is_refused() -> None:
    body = seed("seed_request.json")
    body["integration"]["devices"][0]["changeState"] = "upsert"

    with pytest.raises(ValidationError, match="changeState"):
        IntegrationRequest.model_validate(body)
