"""The simulator's `POST /data/observations` (query raw data) over real HTTP: what is stored, by
sensor and time range; the same auth, rate limit and faults as the other calls."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from local.simulator import NO_ROLE_CLIENT_ID, NO_ROLE_CLIENT_SECRET, SensorDataSimulator
from tests.integration.test_simulator import error_of, get_token
from tests.integration.test_simulator_upload_and_nodes import http, observation, sensors, upload

__all__ = ["http", "sensors"]  # fixtures, shared with the upload tests

QUERY = "/sensor-data/data/observations"


def query_as(http: httpx.Client, body: Any, token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return http.post(QUERY, headers=headers, json=body)


def query(http: httpx.Client, body: Any) -> httpx.Response:
    return query_as(http, body, get_token(http))


def stored_three(http: httpx.Client, sensors: dict[str, str]) -> None:
    t, g = sensors["Temperature"], sensors["Generic"]
    body = {
        "observations": [
            observation(t, {"T": 20.0}, "2026-12-01T08:00:00Z"),
            observation(t, {"T": 21.0}, "2026-12-01T09:00:00Z"),
            observation(g, {"value": 3}, "2026-12-01T09:00:00Z"),
        ]
    }
    assert upload(http, body).status_code == 202


def test_query_answers_the_stored_observations_of_the_sensors_in_the_range(
    http: httpx.Client, simulator: SensorDataSimulator, sensors: dict[str, str]
) -> None:
    stored_three(http, sensors)
    t = sensors["Temperature"]
    # Inclusive at both ends, compared as instants: 10:00+01:00 is 09:00Z.
    answer = query(
        http, {"sensorIds": [t], "from": "2026-12-01T08:30:00Z", "to": "2026-12-01T10:00:00+01:00"}
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "observations": [{"sensorId": t, "timestamp": "2026-12-01T09:00:00Z", "values": {"T": 21.0}}]
    }
    both = query(
        http,
        {"sensorIds": [t, sensors["Generic"]], "from": "2026-12-01T08:00:00Z", "to": "2026-12-01T09:00:00Z"},
    )
    assert len(both.json()["observations"]) == 3
    assert simulator.state()["query_calls"][-1]["status"] == 200
    assert len(simulator.state()["observations"]) == 3  # a query changes nothing


def test_query_of_a_sensor_without_observations_answers_an_empty_list(
    http: httpx.Client, sensors: dict[str, str]
) -> None:
    stored_three(http, sensors)
    body = {"sensorIds": [sensors["Moisture"]], "from": "2026-12-01T00:00:00Z", "to": "2026-12-02T00:00:00Z"}
    assert query(http, body).json() == {"observations": []}


A, B = "2026-12-01T00:00:00Z", "2026-12-01T01:00:00Z"
T = "<the temperature sensor's id>"  # replaced by the test: ids are known only once created


@pytest.mark.parametrize(
    ("body", "target"),
    [
        ([], "sensorIds"),
        ({"from": A, "to": B}, "sensorIds"),
        ({"sensorIds": [], "from": A, "to": B}, "sensorIds"),
        ({"sensorIds": T, "from": A, "to": B}, "sensorIds"),
        ({"sensorIds": ["/api/000000/sensor"], "from": A, "to": B}, "sensorIds[0]"),
        ({"sensorIds": [T, 7], "from": A, "to": B}, "sensorIds[1]"),
        ({"sensorIds": [T], "from": "2026-12-01T00:00:00", "to": B}, "from"),
        ({"sensorIds": [T], "from": A}, "to"),
        ({"sensorIds": [T], "from": B, "to": A}, "from"),
    ],
)
def test_a_bad_query_is_refused_naming_the_field(
    http: httpx.Client, sensors: dict[str, str], body: Any, target: str
) -> None:
    if isinstance(body, dict) and isinstance(body.get("sensorIds"), list):
        body = {**body, "sensorIds": [sensors["Temperature"] if i == T else i for i in body["sensorIds"]]}
    answer = query(http, body)
    assert answer.status_code == 422, answer.text
    assert (error_of(answer)["code"], error_of(answer)["target"]) == ("InvalidQueryDataRequest", target)


def test_query_needs_a_valid_bearer_token_with_the_role(http: httpx.Client, sensors: dict[str, str]) -> None:
    body = {
        "sensorIds": [sensors["Temperature"]],
        "from": "2026-12-01T00:00:00Z",
        "to": "2026-12-01T01:00:00Z",
    }
    assert error_of(query_as(http, body, None))["code"] == "HeaderNotFound"
    assert error_of(query_as(http, body, "not-issued"))["code"] == "InvalidAuthorizationToken"
    assert query_as(http, body, get_token(http, NO_ROLE_CLIENT_ID, NO_ROLE_CLIENT_SECRET)).status_code == 403


def test_query_takes_its_own_faults_and_a_share_of_the_rate_budget(
    http: httpx.Client, simulator: SensorDataSimulator, sensors: dict[str, str]
) -> None:
    body = {
        "sensorIds": [sensors["Temperature"]],
        "from": "2026-12-01T00:00:00Z",
        "to": "2026-12-01T01:00:00Z",
    }
    simulator.inject({"status": 503, "operation": "query"}, {"drop": True, "operation": "query"})
    failed = query(http, body)
    assert (failed.status_code, error_of(failed)["code"]) == (503, "ServiceUnavailable")
    with pytest.raises(httpx.RemoteProtocolError):
        query(http, body)
    assert [c["status"] for c in simulator.state()["query_calls"]] == [503, 0]
    simulator.configure(rate_limit_per_minute=2)  # refills: two calls, then 429
    token = get_token(http)
    assert [query_as(http, body, token).status_code for _ in range(3)] == [200, 200, 429]
    assert upload(http, {"observations": [observation(sensors["Temperature"], {"T": 1})]}).status_code == 429
