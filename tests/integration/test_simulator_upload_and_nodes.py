"""The simulator's `POST /data/upload` and `GET /integrations/nodes` over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from local.simulator import NO_ROLE_CLIENT_ID, NO_ROLE_CLIENT_SECRET, SensorDataSimulator
from tests.integration.test_simulator import create_node, device, error_of, get_token, integrate, sensor

UPLOAD = "/sensor-data/data/upload"
NODES = "/sensor-data/integrations/nodes"
WHEN = "2026-12-01T08:00:00Z"


@pytest.fixture
def http(simulator: SensorDataSimulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=simulator.url, timeout=10) as client:
        yield client


def declaring(ref_id: str, integration_id: str, name: str, **metrics: dict[str, str]) -> dict[str, Any]:
    """A new sensor whose props declare metrics/units, as the bridge's profiles send them."""
    item = sensor(ref_id, integration_id, name)
    item["props"].update(metrics)
    return item


@pytest.fixture
def sensors(http: httpx.Client) -> dict[str, str]:
    """A device with a temperature sensor (T), a generic one (value) and one declaring nothing;
    their ids by NAME, as the integrate answer gave them."""
    token = get_token(http)
    node = create_node(http, token)
    dev = device(
        "d1",
        [
            declaring(
                "s-t", "TEMPERATURE_SDE", "Temperature", KNOWN_METRICS={"0": "T"}, KNOWN_UNITS={"0": "C"}
            ),
            declaring("s-g", "GENERIC_SENSOR_SDE", "Generic", UNKNOWN_METRICS={"0": "value", "1": "peak"}),
            sensor("s-m", "MOISTURE_SDE", "Moisture"),
        ],
    )
    answer = integrate(http, token, {"integration": {"nodeId": node["id"], "devices": [dev]}})
    assert answer.status_code == 200, answer.text
    return {s["props"]["NAME"]: s["id"] for s in answer.json()["integration"]["devices"][0]["sensors"]}


def upload_as(http: httpx.Client, body: Any, token: str | None) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    content = body if isinstance(body, str | bytes) else httpx.Request("POST", "/", json=body).content
    return http.post(UPLOAD, headers=headers, content=content)


def upload(http: httpx.Client, body: Any) -> httpx.Response:
    return upload_as(http, body, get_token(http))


def observation(sensor_id: str, values: dict[str, Any], timestamp: Any = WHEN) -> dict[str, Any]:
    return {"sensorId": sensor_id, "timestamp": timestamp, "values": values}


# ---------------------------------------------------------------------------- upload accepted


def test_upload_answers_202_and_the_observations_are_readable_over_state(
    http: httpx.Client, simulator: SensorDataSimulator, sensors: dict[str, str]
) -> None:
    body = {
        "observations": [
            observation(sensors["Temperature"], {"T": 21.5}),
            observation(sensors["Generic"], {"value": 3, "peak": -0.25}, "2026-12-01T09:00:00+01:00"),
        ]
    }
    answer = upload(http, body)
    assert answer.status_code == 202
    assert answer.content == b""
    stored = http.get("/_sim/state").json()["observations"]
    assert [{k: o[k] for k in ("sensorId", "timestamp", "values")} for o in stored] == body["observations"]
    assert all(isinstance(o["uploadedAt"], float) for o in stored)
    calls = simulator.state()["upload_calls"]
    assert [(c["status"], c["body"]) for c in calls] == [(202, body)]


def test_a_repeated_upload_is_stored_twice_so_duplicates_can_be_counted(
    http: httpx.Client, simulator: SensorDataSimulator, sensors: dict[str, str]
) -> None:
    body = {"observations": [observation(sensors["Temperature"], {"T": 20})]}
    assert [upload(http, body).status_code for _ in range(2)] == [202, 202]
    assert len(simulator.state()["observations"]) == 2


# ---------------------------------------------------------------------------- upload refused


def refusal(answer: httpx.Response) -> tuple[str, str, str]:
    assert answer.status_code == 422, answer.text
    error = error_of(answer)
    return error["code"], error["target"], error["message"]


def test_unknown_sensor_id_refuses_the_whole_upload(
    http: httpx.Client, simulator: SensorDataSimulator, sensors: dict[str, str]
) -> None:
    good = observation(sensors["Temperature"], {"T": 21.5})
    missing = observation("/api/000000/node/dynamic/000000/device/000000/sensor", {"T": 1})
    code, target, message = refusal(upload(http, {"observations": [good, missing]}))
    assert (code, target) == ("InvalidUploadDataRequest", "observations[1].sensorId")
    assert "/api/000000/node/dynamic/000000/device/000000/sensor" in message
    assert simulator.state()["observations"] == []  # all or nothing


@pytest.mark.parametrize(
    "timestamp",
    [
        "yesterday",
        "2026-12-01",  # a date without a time
        "2026-12-01T08:00:00",  # no time zone: which hour?
        "2026-13-01T08:00:00Z",
        "",
        1764576000,
        None,
    ],
)
def test_bad_timestamp_is_refused_naming_the_field(
    http: httpx.Client, sensors: dict[str, str], timestamp: Any
) -> None:
    answer = upload(http, {"observations": [observation(sensors["Temperature"], {"T": 1}, timestamp)]})
    code, target, message = refusal(answer)
    assert (code, target) == ("InvalidUploadDataRequest", "observations[0].timestamp")
    assert "ISO 8601" in message


def test_value_for_a_metric_the_sensor_does_not_declare_is_refused(
    http: httpx.Client, sensors: dict[str, str]
) -> None:
    _, target, message = refusal(
        upload(http, {"observations": [observation(sensors["Temperature"], {"T": 1, "H": 40})]})
    )
    assert target == "observations[0].values.H"
    assert message == f"Sensor {sensors['Temperature']} does not declare metric 'H' (declared: T)."
    # A sensor created without metrics accepts none; UNKNOWN_METRICS count as declared.
    _, target, message = refusal(upload(http, {"observations": [observation(sensors["Moisture"], {"T": 1})]}))
    assert (target, message.endswith("(declared: none).")) == ("observations[0].values.T", True)
    generic = observation(sensors["Generic"], {"peak": 1.5})
    assert upload(http, {"observations": [generic]}).status_code == 202


def test_metrics_follow_the_sensors_props_after_an_update(
    http: httpx.Client, sensors: dict[str, str]
) -> None:
    token = get_token(http)
    node_id = sensors["Temperature"].split("/dynamic/")[0]
    renamed = declaring("s-t", "TEMPERATURE_SDE", "Temperature", KNOWN_METRICS={"0": "T", "1": "TMAX"})
    renamed["changeState"] = "update"
    change = device("d1", [renamed], state="update")
    assert (
        integrate(http, token, {"integration": {"nodeId": node_id, "devices": [change]}}).status_code == 200
    )
    accepted = upload(http, {"observations": [observation(sensors["Temperature"], {"TMAX": 30})]})
    assert accepted.status_code == 202


@pytest.mark.parametrize(
    ("raw_value", "described"),
    [
        ('"21.5"', "a string"),
        ("true", "a boolean"),
        ("null", "null"),
        ('{"v": 1}', "an object"),
        ("[1]", "an array"),
        ("NaN", "a non-finite number"),
        ("Infinity", "a non-finite number"),
    ],
)
def test_non_numeric_value_is_refused(
    http: httpx.Client, sensors: dict[str, str], raw_value: str, described: str
) -> None:
    body = (
        f'{{"observations": [{{"sensorId": "{sensors["Temperature"]}", "timestamp": "{WHEN}", '
        f'"values": {{"T": {raw_value}}}}}]}}'
    )
    _, target, message = refusal(upload(http, body))
    assert target == "observations[0].values.T"
    assert message == f"The value of metric 'T' must be a number, not {described}."


@pytest.mark.parametrize(
    ("body", "target"),
    [
        ("not json", "observations"),
        ({"readings": []}, "observations"),
        ({"observations": {}}, "observations"),
        ({"observations": []}, "observations"),
        ({"observations": ["x"]}, "observations[0]"),
    ],
)
def test_upload_that_is_not_a_list_of_observations_is_refused(
    http: httpx.Client, body: Any, target: str
) -> None:
    assert refusal(upload(http, body))[1] == target


def test_empty_values_are_refused(http: httpx.Client, sensors: dict[str, str]) -> None:
    assert refusal(upload(http, {"observations": [observation(sensors["Temperature"], {})]}))[1] == (
        "observations[0].values"
    )


def test_configured_maximum_of_observations_per_call(
    http: httpx.Client, simulator: SensorDataSimulator, sensors: dict[str, str]
) -> None:
    simulator.configure(upload_max_observations=2)
    three = {"observations": [observation(sensors["Temperature"], {"T": i}) for i in range(3)]}
    _, target, message = refusal(upload(http, three))
    assert (target, message) == ("observations", "At most 2 observations are accepted per call; 3 were sent.")
    assert upload(http, {"observations": three["observations"][:2]}).status_code == 202


def test_upload_needs_a_valid_bearer_token_with_the_role(http: httpx.Client, sensors: dict[str, str]) -> None:
    body = {"observations": [observation(sensors["Temperature"], {"T": 1})]}
    assert error_of(upload_as(http, body, None))["code"] == "HeaderNotFound"
    assert error_of(upload_as(http, body, "not-issued"))["code"] == "InvalidAuthorizationToken"
    no_role = get_token(http, NO_ROLE_CLIENT_ID, NO_ROLE_CLIENT_SECRET)
    assert upload_as(http, body, no_role).status_code == 403


def test_removing_a_device_removes_its_observations(
    http: httpx.Client, simulator: SensorDataSimulator, sensors: dict[str, str]
) -> None:
    assert upload(http, {"observations": [observation(sensors["Temperature"], {"T": 1})]}).status_code == 202
    node_id = sensors["Temperature"].split("/dynamic/")[0]
    gone = {"integration": {"nodeId": node_id, "devices": [device("d1", [], state="remove")]}}
    assert integrate(http, get_token(http), gone).status_code == 200
    assert simulator.state()["observations"] == []
    again = upload(http, {"observations": [observation(sensors["Temperature"], {"T": 1})]})
    assert refusal(again)[1] == "observations[0].sensorId"


# ---------------------------------------------------------------------------- upload faults


def test_upload_faults_are_aimed_at_uploads_and_leave_integrate_alone(
    http: httpx.Client, simulator: SensorDataSimulator, sensors: dict[str, str]
) -> None:
    body = {"observations": [observation(sensors["Temperature"], {"T": 1})]}
    simulator.inject({"status": 503, "operation": "upload"}, {"status": 504})  # the second: integrate
    assert integrate(http, get_token(http), {"integration": {"changeState": "new"}}).status_code == 504
    failed = upload(http, body)
    assert (failed.status_code, error_of(failed)["code"]) == (503, "ServiceUnavailable")
    assert simulator.state()["observations"] == []
    assert upload(http, body).status_code == 202


def test_upload_429_fault_carries_retry_after_verbatim(
    http: httpx.Client, simulator: SensorDataSimulator
) -> None:
    simulator.inject({"status": 429, "retry_after": "17", "operation": "upload"})
    answer = upload(http, {"observations": []})
    assert answer.status_code == 429
    assert answer.headers["Retry-After"] == "17"
    assert answer.headers["iTwinPlatform-RateLimit-Retry-After-Seconds"] == "17"


def test_upload_applied_then_failed_stores_the_observations(
    http: httpx.Client, simulator: SensorDataSimulator, sensors: dict[str, str]
) -> None:
    body = {"observations": [observation(sensors["Temperature"], {"T": 1})]}
    simulator.inject({"status": 502, "after_apply": True, "operation": "upload"})
    assert upload(http, body).status_code == 502
    assert len(simulator.state()["observations"]) == 1
    assert simulator.state()["upload_calls"][-1]["applied"] is True
    simulator.inject({"drop": True, "operation": "upload"})
    with pytest.raises(httpx.RemoteProtocolError):
        upload(http, body)
    assert len(simulator.state()["observations"]) == 1  # dropped before it was processed


def test_fault_for_any_operation_meets_the_next_call_whatever_it_is(
    http: httpx.Client, simulator: SensorDataSimulator
) -> None:
    simulator.inject({"status": 500, "operation": "any"})
    token = get_token(http)
    assert http.get(NODES, headers={"Authorization": f"Bearer {token}"}).status_code == 500
    assert integrate(http, token, {"integration": {"changeState": "new"}}).status_code == 200
    assert (
        http.post("/_sim/faults", json={"faults": [{"status": 500, "operation": "all"}]}).status_code == 400
    )


# ---------------------------------------------------------------------------- node listing


def list_nodes(http: httpx.Client, token: str, params: dict[str, str] | None = None) -> httpx.Response:
    return http.get(NODES, headers={"Authorization": f"Bearer {token}"}, params=params)


def test_node_listing_answers_each_node_as_integrate_answered_it(http: httpx.Client) -> None:
    token = get_token(http)
    assert list_nodes(http, token).json() == {"nodes": []}
    first, second = create_node(http, token), create_node(http, token)
    answer = list_nodes(http, token)
    assert answer.status_code == 200
    assert answer.json() == {"nodes": [first, second]}


def test_a_node_keeps_the_name_it_was_created_with_and_is_found_by_it(
    http: httpx.Client, simulator: SensorDataSimulator
) -> None:
    token = get_token(http)
    create_node(http, token)
    named = {"integration": {"changeState": "new", "props": {"NAME": "bridge: ttn-demo"}}}
    created = integrate(http, token, named).json()["integration"]["node"]
    assert created["props"]["NAME"] == "bridge: ttn-demo"
    assert created["props"]["INTEGRATION_ID"] == "NODE_API_SDE"
    found = [n for n in list_nodes(http, token).json()["nodes"] if n["props"]["NAME"] == "bridge: ttn-demo"]
    assert found == [created]
    assert [c["status"] for c in simulator.state()["node_list_calls"]] == [200]


def test_a_node_can_be_renamed_with_update(http: httpx.Client) -> None:
    token = get_token(http)
    node = create_node(http, token)
    rename = {"integration": {"nodeId": node["id"], "changeState": "update", "props": {"NAME": "renamed"}}}
    assert integrate(http, token, rename).json()["integration"]["node"]["props"]["NAME"] == "renamed"
    assert list_nodes(http, token).json()["nodes"][0]["props"]["NAME"] == "renamed"
    bad = {"integration": {"changeState": "new", "props": ["NAME"]}}
    assert error_of(integrate(http, token, bad))["target"] == "integration.props"


def test_node_listing_is_per_itwin(http: httpx.Client) -> None:
    token = get_token(http)
    default = create_node(http, token)
    resp = integrate(http, token, {"integration": {"changeState": "new"}}, params={"iTwinId": "asset-b"})
    other = resp.json()["integration"]["node"]
    assert list_nodes(http, token, {"iTwinId": "asset-b"}).json() == {"nodes": [other]}
    assert list_nodes(http, token).json() == {"nodes": [default]}  # no iTwinId: the default asset


def test_node_listing_needs_auth_and_takes_nodes_faults(
    http: httpx.Client, simulator: SensorDataSimulator
) -> None:
    assert error_of(http.get(NODES))["code"] == "HeaderNotFound"
    token = get_token(http)
    simulator.inject({"status": 503, "operation": "nodes"}, {"latency_ms": 1, "operation": "nodes"})
    assert list_nodes(http, token).status_code == 503
    assert list_nodes(http, token).status_code == 200
    assert [c["status"] for c in simulator.state()["node_list_calls"]] == [401, 503, 200]
    assert http.post(NODES).status_code == 405
