"""The Sensor Data API simulator over real HTTP on loopback (httpx against a started simulator)."""

from __future__ import annotations

import base64
import copy
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from local.simulator import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    NO_ROLE_CLIENT_ID,
    NO_ROLE_CLIENT_SECRET,
    SensorDataSimulator,
)

DATA = Path(__file__).resolve().parents[1] / "data"
SEED_MISSING_ID = (
    "Minimum request parameters not provided, new Devices and Sensors must have a valid "
    "`props.INTEGRATION_ID` set."
)
NODE_ID_RE = re.compile(r"^/api/[0-9A-F]{6}/node$")
DEVICE_ID_RE = re.compile(r"^/api/[0-9A-F]{6}/node/dynamic/[0-9A-F]{6}/device$")
SENSOR_ID_RE = re.compile(r"^/api/[0-9A-F]{6}/node/dynamic/[0-9A-F]{6}/device/[0-9A-F]{6}/sensor$")
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
ISO_Z_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


# ---------------------------------------------------------------------------- helpers


@pytest.fixture
def http(simulator: SensorDataSimulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=simulator.url, timeout=10) as client:
        yield client


def get_token(
    client: httpx.Client, client_id: str = DEMO_CLIENT_ID, client_secret: str = DEMO_CLIENT_SECRET
) -> str:
    resp = client.post(
        "/connect/token",
        data={
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": client_secret,
            "scope": "itwin-platform",
        },
    )
    assert resp.status_code == 200, resp.text
    token = resp.json()["access_token"]
    assert isinstance(token, str)
    return token


def integrate(
    client: httpx.Client, token: str | None, body: Any, params: dict[str, str] | None = None
) -> httpx.Response:
    headers = {"Accept": "application/vnd.bentley.itwin-platform.v1+json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    content = body if isinstance(body, str | bytes) else json.dumps(body)
    headers["Content-Type"] = "application/json"
    return client.post("/sensor-data/integrations/integrate", headers=headers, content=content, params=params)


def create_node(client: httpx.Client, token: str) -> dict[str, Any]:
    resp = integrate(client, token, {"integration": {"changeState": "new"}})
    assert resp.status_code == 200, resp.text
    node = resp.json()["integration"]["node"]
    assert isinstance(node, dict)
    return node


def sensor(ref_id: str, integration_id: str, name: str, state: str = "new") -> dict[str, Any]:
    return {"changeState": state, "refId": ref_id, "props": {"INTEGRATION_ID": integration_id, "NAME": name}}


def device(ref_id: str, sensors: list[dict[str, Any]], state: str = "new", **props: Any) -> dict[str, Any]:
    base = {"INTEGRATION_ID": "IMPORT_DEVICE_SDE", "NAME": f"Device {ref_id}"}
    return {"changeState": state, "refId": ref_id, "props": {**base, **props}, "sensors": sensors}


def three_sensors() -> list[dict[str, Any]]:
    return [
        sensor("s-temp", "TEMPERATURE_SDE", "Temperature"),
        sensor("s-moist", "MOISTURE_SDE", "Moisture"),
        sensor("s-light", "LIGHT_SDE", "Light"),
    ]


def error_of(resp: httpx.Response) -> dict[str, Any]:
    body = resp.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert isinstance(error, dict)
    return error


def same_shape(actual: Any, expected: Any, where: str = "$") -> None:
    """Same keys at every level; lists compared element-wise against the seed's first element."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), where
        assert set(actual) == set(expected), f"{where}: {sorted(actual)} != {sorted(expected)}"
        for key, value in expected.items():
            same_shape(actual[key], value, f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list), where
        assert len(actual) == len(expected), where
        for i, item in enumerate(actual):
            same_shape(item, expected[0], f"{where}[{i}]")
    else:
        assert type(actual) is type(expected), f"{where}: {type(actual)} != {type(expected)}"


# ---------------------------------------------------------------------------- token endpoint


def test_token_is_issued_for_known_client_with_client_credentials(http: httpx.Client) -> None:
    resp = http.post(
        "/connect/token",
        data={
            "grant_type": "client_credentials",
            "client_id": DEMO_CLIENT_ID,
            "client_secret": DEMO_CLIENT_SECRET,
            "scope": "itwin-platform",
        },
    )
    assert resp.status_code == 200
    body = resp.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "scope"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert body["scope"] == "itwin-platform"
    assert len(body["access_token"]) >= 32
    assert get_token(http) != body["access_token"]


def test_token_accepts_http_basic_client_auth(http: httpx.Client) -> None:
    basic = base64.b64encode(f"{DEMO_CLIENT_ID}:{DEMO_CLIENT_SECRET}".encode()).decode()
    resp = http.post(
        "/connect/token",
        data={"grant_type": "client_credentials", "scope": "itwin-platform"},
        headers={"Authorization": f"Basic {basic}"},
    )
    assert resp.status_code == 200
    token = resp.json()["access_token"]
    assert integrate(http, token, {"integration": {"changeState": "new"}}).status_code == 200


@pytest.mark.parametrize(
    ("form", "error"),
    [
        ({"client_id": "nobody", "client_secret": DEMO_CLIENT_SECRET}, "invalid_client"),
        ({"client_id": DEMO_CLIENT_ID, "client_secret": "wrong"}, "invalid_client"),
        ({"client_id": DEMO_CLIENT_ID}, "invalid_client"),
        ({"grant_type": "password"}, "unsupported_grant_type"),
        ({"grant_type": ""}, "unsupported_grant_type"),
        ({"scope": "openid"}, "invalid_scope"),
        ({"scope": ""}, "invalid_scope"),
    ],
)
def test_token_request_errors_use_oauth2_error_format(
    http: httpx.Client, form: dict[str, str], error: str
) -> None:
    data = {
        "grant_type": "client_credentials",
        "client_id": DEMO_CLIENT_ID,
        "client_secret": DEMO_CLIENT_SECRET,
        "scope": "itwin-platform",
    }
    if "client_id" in form and "client_secret" not in form:
        del data["client_secret"]
    data.update(form)
    resp = http.post("/connect/token", data=data)
    assert resp.status_code == 400
    assert resp.json() == {"error": error}


def test_token_requests_are_counted_in_state(http: httpx.Client, simulator: SensorDataSimulator) -> None:
    get_token(http)
    http.post("/connect/token", data={"grant_type": "client_credentials", "client_id": "x"})
    assert http.get("/_sim/state").json()["token_requests"] == 2


# ---------------------------------------------------------------------------- authentication / authorization


def test_integrate_without_authorization_header_answers_seed_header_not_found(http: httpx.Client) -> None:
    resp = integrate(http, None, {"integration": {"changeState": "new"}})
    assert resp.status_code == 401
    assert resp.json() == {
        "error": {
            "code": "HeaderNotFound",
            "message": "Header Authorization was not found in the request. Access denied.",
        }
    }


@pytest.mark.parametrize("authorization", ["Bearer not-a-token-we-issued", "Basic abc", "Bearer"])
def test_integrate_with_token_we_did_not_issue_is_unauthorized(
    http: httpx.Client, authorization: str
) -> None:
    resp = http.post(
        "/sensor-data/integrations/integrate",
        headers={"Authorization": authorization},
        json={"integration": {"changeState": "new"}},
    )
    assert resp.status_code == 401
    error = error_of(resp)
    assert error["code"] == "InvalidAuthorizationToken"
    assert "invalid or has expired" in error["message"]


def test_expired_token_is_rejected_as_invalid_authorization_token() -> None:
    with (
        SensorDataSimulator(token_ttl_seconds=1) as sim,
        httpx.Client(base_url=sim.url, timeout=10) as http,
    ):
        resp = http.post(
            "/connect/token",
            data={
                "grant_type": "client_credentials",
                "client_id": DEMO_CLIENT_ID,
                "client_secret": DEMO_CLIENT_SECRET,
                "scope": "itwin-platform",
            },
        )
        assert resp.json()["expires_in"] == 1
        token = resp.json()["access_token"]
        assert integrate(http, token, {"integration": {"changeState": "new"}}).status_code == 200
        assert http.post("/_sim/expire-tokens").json() == {"expired": 1}
        resp = integrate(http, token, {"integration": {"changeState": "new"}})
        assert resp.status_code == 401
        assert error_of(resp)["code"] == "InvalidAuthorizationToken"
        # a fresh token works again
        assert integrate(http, get_token(http), {"integration": {"changeState": "new"}}).status_code == 200


def test_client_without_iot_creator_role_is_forbidden_with_seed_message(http: httpx.Client) -> None:
    token = get_token(http, NO_ROLE_CLIENT_ID, NO_ROLE_CLIENT_SECRET)
    resp = integrate(http, token, {"integration": {"changeState": "new"}})
    assert resp.status_code == 403
    assert resp.json() == {
        "error": {
            "code": "InsufficientPermissions",
            "message": "The user has insufficient permissions for the requested operation.",
        }
    }
    assert http.get("/_sim/state").json()["nodes"] == []


# ---------------------------------------------------------------------------- validation (422)


@pytest.mark.parametrize(
    "body",
    ["this is not json", "[1, 2]", '{"devices": []}', '{"integration": []}', '{"integration": null}', ""],
)
def test_body_that_is_not_an_integration_is_rejected(http: httpx.Client, body: str) -> None:
    resp = integrate(http, get_token(http), body)
    assert resp.status_code == 422
    error = error_of(resp)
    assert error["code"] == "InvalidProcessIntegrationRequest"
    assert "not an integration" in error["message"]


def test_new_device_without_integration_id_is_rejected_with_seed_message(http: httpx.Client) -> None:
    token = get_token(http)
    node = create_node(http, token)
    sensors = three_sensors()
    del sensors[2]["props"]["INTEGRATION_ID"]
    resp = integrate(http, token, {"integration": {"nodeId": node["id"], "devices": [device("d1", sensors)]}})
    assert resp.status_code == 422
    assert resp.json() == {
        "error": {
            "code": "InvalidProcessIntegrationRequest",
            "message": SEED_MISSING_ID,
            "target": "integration.devices[0].sensors[2].props.INTEGRATION_ID",
        }
    }


def test_new_device_with_empty_integration_id_is_rejected_with_device_target(http: httpx.Client) -> None:
    token = get_token(http)
    node = create_node(http, token)
    dev = device("d1", [], INTEGRATION_ID="")
    resp = integrate(http, token, {"integration": {"nodeId": node["id"], "devices": [dev]}})
    assert resp.status_code == 422
    assert error_of(resp)["message"] == SEED_MISSING_ID
    assert error_of(resp)["target"] == "integration.devices[0].props.INTEGRATION_ID"


def test_unknown_change_state_is_rejected_with_target(http: httpx.Client) -> None:
    token = get_token(http)
    node = create_node(http, token)
    sensors = three_sensors()
    sensors[1]["changeState"] = "upsert"
    resp = integrate(http, token, {"integration": {"nodeId": node["id"], "devices": [device("d1", sensors)]}})
    assert resp.status_code == 422
    error = error_of(resp)
    assert error["code"] == "InvalidProcessIntegrationRequest"
    assert error["target"] == "integration.devices[0].sensors[1].changeState"


def test_missing_ref_id_is_rejected_with_target(http: httpx.Client) -> None:
    token = get_token(http)
    node = create_node(http, token)
    dev = device("d1", three_sensors())
    del dev["refId"]
    resp = integrate(http, token, {"integration": {"nodeId": node["id"], "devices": [dev]}})
    assert resp.status_code == 422
    assert error_of(resp)["target"] == "integration.devices[0].refId"


def test_unknown_node_is_rejected(http: httpx.Client) -> None:
    resp = integrate(
        http, get_token(http), {"integration": {"nodeId": "/api/ABCDEF/node", "devices": [device("d1", [])]}}
    )
    assert resp.status_code == 422
    assert resp.json() == {
        "error": {
            "code": "InvalidProcessIntegrationRequest",
            "message": "Node /api/ABCDEF/node was not found",
            "target": "integration.nodeId",
        }
    }


def test_missing_node_id_without_new_change_state_is_rejected(http: httpx.Client) -> None:
    resp = integrate(http, get_token(http), {"integration": {"devices": [device("d1", [])]}})
    assert resp.status_code == 422
    assert error_of(resp)["target"] == "integration.nodeId"
    assert http.get("/_sim/state").json()["nodes"] == []


def test_update_of_unknown_ref_id_is_rejected_with_target(http: httpx.Client) -> None:
    token = get_token(http)
    node = create_node(http, token)
    assert integrate(
        http, token, {"integration": {"nodeId": node["id"], "devices": [device("d1", [])]}}
    ).is_success
    devices = [device("d1", []), device("ghost", [], state="update")]
    resp = integrate(http, token, {"integration": {"nodeId": node["id"], "devices": devices}})
    assert resp.status_code == 422
    error = error_of(resp)
    assert error["target"] == "integration.devices[1].refId"
    assert "ghost" in error["message"]


def test_update_of_unknown_sensor_ref_id_is_rejected_with_target(http: httpx.Client) -> None:
    token = get_token(http)
    node = create_node(http, token)
    integrate(
        http, token, {"integration": {"nodeId": node["id"], "devices": [device("d1", three_sensors())]}}
    )
    upd = device("d1", [sensor("s-ghost", "LIGHT_SDE", "Ghost", state="update")], state="update")
    resp = integrate(http, token, {"integration": {"nodeId": node["id"], "devices": [upd]}})
    assert resp.status_code == 422
    assert error_of(resp)["target"] == "integration.devices[0].sensors[0].refId"


def test_rejected_request_changes_no_state(http: httpx.Client, simulator: SensorDataSimulator) -> None:
    token = get_token(http)
    node = create_node(http, token)
    before = simulator.state()
    devices = [device("d1", three_sensors()), device("d2", [], state="remove")]
    resp = integrate(http, token, {"integration": {"nodeId": node["id"], "devices": devices}})
    assert resp.status_code == 422
    after = simulator.state()
    assert after["devices"] == before["devices"] == []
    assert after["created"] == {}
    assert after["nodes"] == before["nodes"]


def test_rejected_request_leaves_the_devices_it_changed_before_failing_as_they_were(
    http: httpx.Client, simulator: SensorDataSimulator
) -> None:
    token = get_token(http)
    node = create_node(http, token)
    first = {"integration": {"nodeId": node["id"], "devices": [device("d1", three_sensors())]}}
    assert integrate(http, token, first).status_code == 200
    before = simulator.state()
    changes = [
        device(
            "d1", [sensor("s-temp", "TEMPERATURE_SDE", "Renamed", state="update")], state="update", NAME="x"
        ),
        device("d1", [sensor("s-moist", "MOISTURE_SDE", "Moisture", state="remove")], state="update"),
        device("d1", [sensor("s-new", "LIGHT_SDE", "Extra")], state="update"),
        device("missing", [], state="update"),  # fails after the three changes above
    ]
    resp = integrate(http, token, {"integration": {"nodeId": node["id"], "devices": changes}})
    assert error_of(resp)["target"] == "integration.devices[3].refId"
    rename = {"integration": {"nodeId": node["id"], "changeState": "update", "props": {"NAME": "y"}}}
    bad_rename = copy.deepcopy(rename)
    bad_rename["integration"]["devices"] = [device("missing", [], state="remove")]
    assert integrate(http, token, bad_rename).status_code == 422
    after = simulator.state()
    assert (after["devices"], after["created"], after["nodes"]) == (
        before["devices"],
        before["created"],
        before["nodes"],
    )


# ---------------------------------------------------------------------------- successful integrations


def test_node_creation_answers_seed_shaped_node(http: httpx.Client) -> None:
    resp = integrate(
        http, get_token(http), {"integration": {"changeState": "new"}}, params={"iTwinId": "itwin-123"}
    )
    assert resp.status_code == 200
    body = resp.json()
    assert body["integration"]["devices"] == []
    node = body["integration"]["node"]
    assert NODE_ID_RE.match(node["id"])
    assert node["type"] == "DYNAMIC"
    serial = node["props"]["SERIAL_NO"]
    assert re.fullmatch(r"[0-9A-F]{6}", serial)
    assert node["id"] == f"/api/{serial}/node"
    assert node["props"]["NAME"] == f"Data Source API Import {serial}"
    assert node["props"]["INTEGRATION_ID"] == "NODE_API_SDE"
    assert node["props"]["PROJECT_ID"] == "itwin-123"
    assert ISO_Z_RE.match(node["props"]["CREATION_DATE"])
    state = http.get("/_sim/state").json()
    assert state["nodes"] == [node]
    assert state["calls"][-1]["query"] == {"iTwinId": "itwin-123"}


def test_node_without_itwin_id_gets_default_24_hex_project_id(http: httpx.Client) -> None:
    node = create_node(http, get_token(http))
    assert re.fullmatch(r"[0-9A-F]{24}", node["props"]["PROJECT_ID"])


def test_new_device_and_sensors_get_seed_shaped_ids_and_props(http: httpx.Client) -> None:
    token = get_token(http)
    node = create_node(http, token)
    location = {"type": "Point", "coordinates": [4.35, 50.85, 12.0]}
    dev = device("d1", three_sensors(), LOCATION=location, NOTES="roof")
    resp = integrate(http, token, {"integration": {"nodeId": node["id"], "devices": [dev]}})
    assert resp.status_code == 200
    answered = resp.json()["integration"]
    assert answered["node"] == node
    (entry,) = answered["devices"]
    assert set(entry) == {"device", "sensors"}
    dev_out = entry["device"]
    assert DEVICE_ID_RE.match(dev_out["id"])
    assert dev_out["id"].startswith(node["id"] + "/dynamic/")
    assert dev_out["type"] == "DYNAMIC"
    props = dev_out["props"]
    assert UUID_RE.match(props["SERIAL_NO"])
    assert props["SIZE"] == 3
    assert ISO_Z_RE.match(props["CREATION_DATE"])
    assert props["NODE_ID"] == node["id"]
    assert props["PROJECT_ID"] == node["props"]["PROJECT_ID"]
    assert props["INTEGRATION_ID"] == "IMPORT_DEVICE_SDE"
    assert props["NAME"] == "Device d1"
    assert props["LOCATION"] == location
    assert props["NOTES"] == "roof"
    assert len(entry["sensors"]) == 3
    for sen in entry["sensors"]:
        assert set(sen) == {"props", "id", "observationType", "type", "device"}
        assert SENSOR_ID_RE.match(sen["id"])
        assert sen["id"].startswith(dev_out["id"] + "/")
        assert sen["device"] == dev_out["id"]
        assert sen["observationType"] == sen["type"] == "DYNAMIC"
        assert UUID_RE.match(sen["props"]["SERIAL_NO"])
        assert sen["props"]["NODE_ID"] == node["id"]
        assert "SIZE" not in sen["props"]
    assert len({s["id"] for s in entry["sensors"]}) == 3


def test_answer_lists_sensors_in_another_order_and_echoes_no_ref_id(http: httpx.Client) -> None:
    token = get_token(http)
    node = create_node(http, token)
    sent = three_sensors()
    resp = integrate(http, token, {"integration": {"nodeId": node["id"], "devices": [device("d1", sent)]}})
    assert resp.status_code == 200
    assert "refId" not in resp.text
    answered_names = [s["props"]["NAME"] for s in resp.json()["integration"]["devices"][0]["sensors"]]
    sent_names = [s["props"]["NAME"] for s in sent]
    assert sorted(answered_names) == sorted(sent_names)
    assert answered_names != sent_names


def test_every_device_answers_its_sensors_in_another_order_than_sent(http: httpx.Client) -> None:
    token = get_token(http)
    node = create_node(http, token)
    devices = [
        device(f"d{i}", [sensor("a", "LIGHT_SDE", "A"), sensor("b", "MOISTURE_SDE", "B")]) for i in range(12)
    ]
    resp = integrate(http, token, {"integration": {"nodeId": node["id"], "devices": devices}})
    assert resp.status_code == 200
    orders = [[s["props"]["NAME"] for s in d["sensors"]] for d in resp.json()["integration"]["devices"]]
    assert orders == [["B", "A"]] * 12


def test_update_merges_device_and_sensor_props(http: httpx.Client, simulator: SensorDataSimulator) -> None:
    token = get_token(http)
    node = create_node(http, token)
    created = integrate(
        http,
        token,
        {"integration": {"nodeId": node["id"], "devices": [device("d1", three_sensors(), NOTES="a")]}},
    ).json()["integration"]["devices"][0]
    upd = {
        "changeState": "update",
        "refId": "d1",
        "props": {"NAME": "Renamed", "SERIAL_NO": "client-cannot-set-this"},
        "sensors": [{"changeState": "update", "refId": "s-light", "props": {"NAME": "Lux"}}],
    }
    resp = integrate(http, token, {"integration": {"nodeId": node["id"], "devices": [upd]}})
    assert resp.status_code == 200
    entry = resp.json()["integration"]["devices"][0]
    assert entry["device"]["id"] == created["device"]["id"]
    assert entry["device"]["props"]["NAME"] == "Renamed"
    assert entry["device"]["props"]["NOTES"] == "a"
    assert entry["device"]["props"]["SERIAL_NO"] == created["device"]["props"]["SERIAL_NO"]
    assert sorted(s["props"]["NAME"] for s in entry["sensors"]) == ["Lux", "Moisture", "Temperature"]
    (stored,) = simulator.state()["devices"]
    assert stored["props"]["NAME"] == "Renamed"
    assert {s["refId"]: s["props"]["NAME"] for s in stored["sensors"]}["s-light"] == "Lux"
    assert simulator.state()["created"]["d1"] == 1


def test_remove_device_marks_it_and_its_sensors_removed(http: httpx.Client) -> None:
    token = get_token(http)
    node = create_node(http, token)
    integrate(
        http, token, {"integration": {"nodeId": node["id"], "devices": [device("d1", three_sensors())]}}
    )
    rem = {"changeState": "remove", "refId": "d1"}
    resp = integrate(http, token, {"integration": {"nodeId": node["id"], "devices": [rem]}})
    assert resp.status_code == 200
    answered = resp.json()["integration"]["devices"]
    assert len(answered) == 1
    assert answered[0]["device"]["props"]["NAME"] == "Device d1"
    (stored,) = http.get("/_sim/state").json()["devices"]
    assert stored["removed"] is True
    assert [s["removed"] for s in stored["sensors"]] == [True, True, True]
    again = integrate(http, token, {"integration": {"nodeId": node["id"], "devices": [rem]}})
    assert again.status_code == 422
    assert error_of(again)["target"] == "integration.devices[0].refId"


def test_sensor_can_be_added_and_removed_inside_existing_device(http: httpx.Client) -> None:
    token = get_token(http)
    node = create_node(http, token)
    integrate(
        http, token, {"integration": {"nodeId": node["id"], "devices": [device("d1", three_sensors())]}}
    )
    upd = device(
        "d1",
        [
            {"changeState": "remove", "refId": "s-moist"},
            sensor("s-batt", "BATTERY_CHARGE_SDE", "Battery"),
        ],
        state="update",
    )
    resp = integrate(http, token, {"integration": {"nodeId": node["id"], "devices": [upd]}})
    assert resp.status_code == 200
    assert resp.json()["integration"]["devices"][0]["device"]["props"]["SIZE"] == 3
    (stored,) = http.get("/_sim/state").json()["devices"]
    assert {s["refId"]: s["removed"] for s in stored["sensors"]} == {
        "s-temp": False,
        "s-moist": True,
        "s-light": False,
        "s-batt": False,
    }


def test_repeated_new_for_same_ref_id_creates_a_second_device(http: httpx.Client) -> None:
    token = get_token(http)
    node = create_node(http, token)
    body = {"integration": {"nodeId": node["id"], "devices": [device("d1", [])]}}
    first = integrate(http, token, body).json()["integration"]["devices"][0]["device"]["id"]
    second = integrate(http, token, body).json()["integration"]["devices"][0]["device"]["id"]
    assert first != second
    state = http.get("/_sim/state").json()
    assert state["created"] == {"d1": 2}
    assert [d["id"] for d in state["devices"]] == [first, second]


def test_seed_request_integrates_into_seed_shaped_response(http: httpx.Client) -> None:
    seed_request = json.loads((DATA / "seed_request.json").read_text())
    seed_response = json.loads((DATA / "seed_response.json").read_text())
    token = get_token(http)
    node = create_node(http, token)
    request = copy.deepcopy(seed_request)
    request["integration"]["nodeId"] = node["id"]
    resp = integrate(http, token, request)
    assert resp.status_code == 200
    answer = resp.json()
    same_shape(answer, seed_response)
    dev = answer["integration"]["devices"][0]
    assert (
        dev["device"]["props"]["SIZE"]
        == seed_response["integration"]["devices"][0]["device"]["props"]["SIZE"]
    )
    sent = [
        (s["props"]["INTEGRATION_ID"], s["props"]["NAME"])
        for s in seed_request["integration"]["devices"][0]["sensors"]
    ]
    got = [(s["props"]["INTEGRATION_ID"], s["props"]["NAME"]) for s in dev["sensors"]]
    assert sorted(got) == sorted(sent)
    assert got != sent


# ---------------------------------------------------------------------------- rate limiting


def test_rate_limit_answers_429_with_headers_once_exceeded() -> None:
    with (
        SensorDataSimulator(rate_limit_per_minute=2) as sim,
        httpx.Client(base_url=sim.url, timeout=10) as http,
    ):
        token = get_token(http)
        body = {"integration": {"changeState": "new"}}
        first, second = integrate(http, token, body), integrate(http, token, body)
        assert (first.status_code, second.status_code) == (200, 200)
        assert first.headers["iTwinPlatform-RateLimit-RemainingCalls"] == "1"
        assert second.headers["iTwinPlatform-RateLimit-RemainingCalls"] == "0"
        third = integrate(http, token, body)
        assert third.status_code == 429
        assert third.json() == {
            "error": {
                "code": "TooManyRequests",
                "message": "More requests were received than the subscription rate-limit allows.",
            }
        }
        # A bucket of 2 a minute refills one call every 30 s.
        assert third.headers["retry-after"] == "30"
        assert third.headers["iTwinPlatform-RateLimit-RemainingCalls"] == "0"
        assert third.headers["iTwinPlatform-RateLimit-Retry-After-Seconds"] == "30"
        assert third.headers["iTwinPlatform-Tier"] == "Custom"
        assert len(sim.state()["nodes"]) == 2
        assert [c["status"] for c in sim.state()["calls"]] == [200, 200, 429]


def test_unauthenticated_calls_do_not_consume_the_rate_limit(http: httpx.Client) -> None:
    assert http.post("/_sim/config", json={"rate_limit_per_minute": 1}).status_code == 200
    for _ in range(3):
        assert integrate(http, None, {"integration": {"changeState": "new"}}).status_code == 401
    assert integrate(http, get_token(http), {"integration": {"changeState": "new"}}).status_code == 200


def test_config_endpoint_changes_limits_and_refills_the_bucket(http: httpx.Client) -> None:
    token = get_token(http)
    body = {"integration": {"changeState": "new"}}
    resp = http.post("/_sim/config", json={"rate_limit_per_minute": 1})
    assert resp.json() == {
        "tier": "custom",
        "rate_limit_per_minute": 1,
        "rate_limit_per_hour": None,
        "token_ttl_seconds": 3600,
        "upload_max_observations": None,
    }
    assert integrate(http, token, body).status_code == 200
    assert integrate(http, token, body).status_code == 429
    assert http.post("/_sim/config", json={"token_ttl_seconds": 60}).json() == {
        "tier": "custom",
        "rate_limit_per_minute": 1,
        "rate_limit_per_hour": None,
        "token_ttl_seconds": 60,
        "upload_max_observations": None,
    }
    assert integrate(http, token, body).status_code == 200  # the bucket was refilled
    assert (
        http.post("/_sim/config", json={"rate_limit_per_minute": None}).json()["rate_limit_per_minute"]
        is None
    )
    assert [integrate(http, token, body).status_code for _ in range(3)] == [200, 200, 200]
    assert http.post("/_sim/config", json={"rate_limit_per_minute": "many"}).status_code == 400


# ---------------------------------------------------------------------------- injected faults


def test_injected_5xx_faults_answer_then_normal_processing_resumes(http: httpx.Client) -> None:
    token = get_token(http)
    resp = http.post("/_sim/faults", json={"faults": [{"status": 503, "count": 2}, {"status": 500}]})
    assert resp.status_code == 200
    body = {"integration": {"changeState": "new"}}
    answers = [integrate(http, token, body) for _ in range(4)]
    assert [a.status_code for a in answers] == [503, 503, 500, 200]
    assert error_of(answers[0])["code"] == "ServiceUnavailable"
    assert error_of(answers[2])["code"] == "InternalServerError"
    assert len(http.get("/_sim/state").json()["nodes"]) == 1


@pytest.mark.parametrize("retry_after", ["1200", "Wed, 21 Oct 2015 07:28:00 GMT", "soon-ish"])
def test_injected_429_fault_sends_retry_after_verbatim(http: httpx.Client, retry_after: str) -> None:
    http.post("/_sim/faults", json={"faults": [{"status": 429, "retry_after": retry_after, "count": 1}]})
    resp = integrate(http, get_token(http), {"integration": {"changeState": "new"}})
    assert resp.status_code == 429
    assert resp.headers["retry-after"] == retry_after
    assert error_of(resp)["code"] == "TooManyRequests"


def test_injected_latency_delays_then_processes_normally(http: httpx.Client) -> None:
    token = get_token(http)
    http.post("/_sim/faults", json={"faults": [{"latency_ms": 400, "count": 1}]})
    started = time.monotonic()
    resp = integrate(http, token, {"integration": {"changeState": "new"}})
    assert time.monotonic() - started >= 0.4
    assert resp.status_code == 200
    started = time.monotonic()
    assert integrate(http, token, {"integration": {"changeState": "new"}}).status_code == 200
    assert time.monotonic() - started < 0.4


def test_injected_drop_closes_connection_without_answer(simulator: SensorDataSimulator) -> None:
    simulator.inject({"drop": True, "count": 1})
    with httpx.Client(base_url=simulator.url, timeout=10) as http:
        token = get_token(http)
        with pytest.raises(httpx.RemoteProtocolError):
            integrate(http, token, {"integration": {"changeState": "new"}})
        assert integrate(http, token, {"integration": {"changeState": "new"}}).status_code == 200
    calls = simulator.state()["calls"]
    assert [c["status"] for c in calls] == [0, 200]
    assert calls[0]["dropped"] is True
    assert len(simulator.state()["nodes"]) == 1  # the dropped call was not processed


def test_delete_faults_clears_the_queue(http: httpx.Client) -> None:
    http.post("/_sim/faults", json={"faults": [{"status": 503, "count": 5}]})
    assert http.delete("/_sim/faults").status_code == 200
    assert integrate(http, get_token(http), {"integration": {"changeState": "new"}}).status_code == 200


def test_invalid_fault_definition_is_rejected(http: httpx.Client) -> None:
    assert http.post("/_sim/faults", json={"faults": [{"count": 1}]}).status_code == 400
    assert http.post("/_sim/faults", json={"faults": [{"status": "boom"}]}).status_code == 400
    assert http.post("/_sim/faults", json={"nope": []}).status_code == 400
    assert integrate(http, get_token(http), {"integration": {"changeState": "new"}}).status_code == 200


def test_faults_apply_after_auth(http: httpx.Client) -> None:
    http.post("/_sim/faults", json={"faults": [{"status": 503}]})
    assert integrate(http, None, {"integration": {"changeState": "new"}}).status_code == 401
    assert integrate(http, get_token(http), {"integration": {"changeState": "new"}}).status_code == 503


@pytest.mark.parametrize("status", [502, 504])
def test_status_fault_after_apply_creates_the_device_then_answers_the_fault(
    http: httpx.Client, simulator: SensorDataSimulator, status: int
) -> None:
    token = get_token(http)
    node = create_node(http, token)
    http.post("/_sim/faults", json={"faults": [{"status": status, "after_apply": True}]})
    body = {"integration": {"nodeId": node["id"], "devices": [device("d1", three_sensors())]}}
    resp = integrate(http, token, body)
    assert resp.status_code == status
    assert error_of(resp)["code"] == {502: "BadGateway", 504: "GatewayTimeout"}[status]
    state = simulator.state()
    assert state["created"] == {"d1": 1, "s-temp": 1, "s-moist": 1, "s-light": 1}
    assert [(d["refId"], d["removed"], len(d["sensors"])) for d in state["devices"]] == [("d1", False, 3)]
    assert state["calls"][-1]["status"] == status
    assert state["calls"][-1]["applied"] is True
    assert "dropped" not in state["calls"][-1]
    # The device really exists: an update addresses it, and the fault was used up.
    update = {"integration": {"nodeId": node["id"], "devices": [device("d1", [], state="update", NAME="x")]}}
    assert integrate(http, token, update).status_code == 200
    assert simulator.state()["created"]["d1"] == 1


def test_drop_fault_after_apply_creates_the_device_and_the_client_sees_a_disconnect(
    simulator: SensorDataSimulator,
) -> None:
    with httpx.Client(base_url=simulator.url, timeout=10) as http:
        token = get_token(http)
        node = create_node(http, token)
        http.post("/_sim/faults", json={"faults": [{"drop": True, "after_apply": True}]})
        body = {"integration": {"nodeId": node["id"], "devices": [device("d1", [])]}}
        with pytest.raises(httpx.RemoteProtocolError):
            integrate(http, token, body)
    state = simulator.state()
    assert state["created"] == {"d1": 1}
    assert [(d["refId"], d["removed"]) for d in state["devices"]] == [("d1", False)]
    last = state["calls"][-1]
    assert (last["status"], last["dropped"], last["applied"]) == (0, True, True)


def test_after_apply_fault_on_a_request_that_would_be_rejected_answers_422_and_changes_nothing(
    http: httpx.Client, simulator: SensorDataSimulator
) -> None:
    token = get_token(http)
    node = create_node(http, token)
    before = simulator.state()
    simulator.inject({"status": 502, "after_apply": True}, {"drop": True, "after_apply": True})
    missing_id = device("d1", [])
    del missing_id["props"]["INTEGRATION_ID"]
    resp = integrate(http, token, {"integration": {"nodeId": node["id"], "devices": [missing_id]}})
    assert resp.status_code == 422
    assert error_of(resp)["message"] == SEED_MISSING_ID
    unknown = integrate(
        http, token, {"integration": {"nodeId": node["id"], "devices": [device("nope", [], state="update")]}}
    )
    assert unknown.status_code == 422
    assert error_of(unknown)["target"] == "integration.devices[0].refId"
    after = simulator.state()
    assert (after["nodes"], after["devices"], after["created"]) == (
        before["nodes"],
        before["devices"],
        before["created"],
    )
    assert [c["status"] for c in after["calls"][-2:]] == [422, 422]
    assert not any("applied" in c or "dropped" in c for c in after["calls"])


def test_fault_without_after_apply_still_changes_nothing(
    http: httpx.Client, simulator: SensorDataSimulator
) -> None:
    token = get_token(http)
    node = create_node(http, token)
    simulator.inject({"status": 502, "after_apply": False})
    body = {"integration": {"nodeId": node["id"], "devices": [device("d1", [])]}}
    assert integrate(http, token, body).status_code == 502
    state = simulator.state()
    assert state["created"] == {}
    assert state["devices"] == []
    assert "applied" not in state["calls"][-1]


def test_after_apply_fault_definition_is_validated(
    http: httpx.Client, simulator: SensorDataSimulator
) -> None:
    assert (
        http.post("/_sim/faults", json={"faults": [{"status": 502, "after_apply": "yes"}]}).status_code == 400
    )
    assert (
        http.post("/_sim/faults", json={"faults": [{"latency_ms": 10, "after_apply": True}]}).status_code
        == 400
    )
    with pytest.raises(ValueError, match="after_apply"):
        simulator.inject({"latency_ms": 5, "after_apply": True})
    assert integrate(http, get_token(http), {"integration": {"changeState": "new"}}).status_code == 200


# ---------------------------------------------------------------------------- inspection / admin


def test_calls_record_every_integrate_request_with_final_status(http: httpx.Client) -> None:
    token = get_token(http)
    http.post("/_sim/faults", json={"faults": [{"status": 502}]})
    integrate(http, None, {"integration": {"changeState": "new"}})
    integrate(http, token, {"integration": {"changeState": "new"}})
    integrate(http, token, "garbage", params={"iTwinId": "t1"})
    integrate(http, token, {"integration": {"changeState": "new"}})
    calls = http.get("/_sim/state").json()["calls"]
    assert [c["status"] for c in calls] == [401, 502, 422, 200]
    assert calls[0]["body"] == {"integration": {"changeState": "new"}}
    assert calls[2]["body"] == "garbage"
    assert calls[2]["query"] == {"iTwinId": "t1"}
    assert all(isinstance(c["at"], float) for c in calls)
    assert calls[0]["at"] <= calls[3]["at"]


def test_reset_clears_state_tokens_and_faults_but_keeps_config(http: httpx.Client) -> None:
    http.post("/_sim/config", json={"rate_limit_per_minute": 50, "token_ttl_seconds": 120})
    token = get_token(http)
    node = create_node(http, token)
    integrate(http, token, {"integration": {"nodeId": node["id"], "devices": [device("d1", [])]}})
    http.post("/_sim/faults", json={"faults": [{"status": 503}]})
    resp = http.post("/_sim/reset")
    assert resp.status_code == 200
    state = http.get("/_sim/state").json()
    assert state == {
        "nodes": [],
        "devices": [],
        "created": {},
        "calls": [],
        "observations": [],
        "upload_calls": [],
        "query_calls": [],
        "node_list_calls": [],
        "token_requests": 0,
    }
    assert integrate(http, token, {"integration": {"changeState": "new"}}).status_code == 401
    fresh = get_token(http)
    answer = integrate(http, fresh, {"integration": {"changeState": "new"}})
    assert answer.status_code == 200  # the 503 fault is gone
    assert answer.headers["iTwinPlatform-RateLimit-RemainingCalls"] == "49"
    assert http.get("/_sim/config").json() == {
        "tier": "custom",
        "rate_limit_per_minute": 50,
        "rate_limit_per_hour": None,
        "token_ttl_seconds": 120,
        "upload_max_observations": None,
    }


def test_python_admin_api_matches_http_behaviour(simulator: SensorDataSimulator) -> None:
    assert simulator.api_base_url == simulator.url + "/sensor-data"
    assert simulator.token_url == simulator.url + "/connect/token"
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", simulator.url)
    assert simulator.configure(rate_limit_per_minute=7) == {
        "tier": "custom",
        "rate_limit_per_minute": 7,
        "rate_limit_per_hour": None,
        "token_ttl_seconds": 3600,
        "upload_max_observations": None,
    }
    with httpx.Client(base_url=simulator.url, timeout=10) as http:
        token = get_token(http)
        simulator.inject({"status": 504})
        assert integrate(http, token, {"integration": {"changeState": "new"}}).status_code == 504
        assert simulator.expire_tokens() == 1
        assert integrate(http, token, {"integration": {"changeState": "new"}}).status_code == 401
    simulator.reset()
    assert simulator.state()["calls"] == []
    assert simulator.configure()["rate_limit_per_minute"] == 7
    with pytest.raises(ValueError, match="needs one of"):
        simulator.inject({"count": 2})


def test_unknown_route_is_404_and_wrong_method_is_405(http: httpx.Client) -> None:
    missing = http.get("/sensor-data/nope")
    assert missing.status_code == 404
    assert error_of(missing)["code"] == "NotFound"
    wrong = http.get("/sensor-data/integrations/integrate")
    assert wrong.status_code == 405
    assert wrong.headers["Allow"] == "POST"
    assert http.get("/connect/token").status_code == 405
    assert http.put("/_sim/state").status_code == 405
