"""A Standard Webhooks sender mapped by configuration (generic-demo), through the real handler."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

from standardwebhooks.webhooks import Webhook

from local.provision import LOCAL_WEBHOOK_SECRETS
from local.stack import LocalStack
from sensor_bridge.model.profiles import device_ref_id
from tests.conftest import event_body, load_event

SOURCE = "generic-demo"
SECRET = LOCAL_WEBHOOK_SECRETS[SOURCE]


def signed(
    body: dict[str, Any], *, msg_id: str = "msg_1", at: float | None = None, secret: str = SECRET
) -> tuple[dict[str, str], bytes]:
    raw = json.dumps(body).encode()
    stamp = int(time.time() if at is None else at)
    signature = Webhook(secret).sign(msg_id, datetime.fromtimestamp(stamp, tz=UTC), raw.decode())
    headers = {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": signature,
    }
    return headers, raw


def post(stack: LocalStack, headers: dict[str, str], raw: bytes) -> tuple[int, dict[str, str], Any]:
    return stack.invoke("POST", f"/webhooks/{SOURCE}", headers=headers, body=raw)


def created() -> dict[str, Any]:
    return event_body("generic-01-device-created.json")


def calls(stack: LocalStack) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = stack.simulator.state()["calls"]
    return result


def test_signed_device_created_is_mapped_by_the_configured_paths(stack: LocalStack) -> None:
    status, _, body = post(stack, *signed(created()))

    assert status == 200
    ref = device_ref_id(SOURCE, "acme-th-0042")
    device = calls(stack)[-1]["body"]["integration"]["devices"][0]
    assert device["refId"] == ref
    assert device["props"] == {
        "INTEGRATION_ID": "IMPORT_DEVICE_SDE",
        "NAME": "Cold store 4",
        "LOCATION": {"type": "Point", "coordinates": [-6.26, 53.35, 8.0]},
        "NOTES": "standard-webhooks device acme-th-0042 via source generic-demo; model acme/th-100",
    }
    assert [s["refId"] for s in device["sensors"]] == [
        f"{ref}-temperature",
        f"{ref}-battery",
        f"{ref}-signal",
    ]
    assert body["results"][0]["status"] == "integrated"


def test_the_shipped_event_file_is_signed_with_the_demo_secret(stack: LocalStack) -> None:
    event = load_event("generic-01-device-created.json")
    headers = event["headers"]
    # Its timestamp is stale by the time anyone replays it: check the HMAC, not the age.
    expected = Webhook(SECRET).sign(
        headers["webhook-id"],
        datetime.fromtimestamp(int(headers["webhook-timestamp"]), tz=UTC),
        event["body"],
    )
    assert headers["webhook-signature"] == expected


def test_same_webhook_id_sent_again_makes_no_second_call(stack: LocalStack) -> None:
    post(stack, *signed(created(), msg_id="msg_again"))
    status, _, _ = post(stack, *signed(created(), msg_id="msg_again"))

    assert status == 200
    assert len(calls(stack)) == 2


def test_device_deleted_type_removes_the_device(stack: LocalStack) -> None:
    post(stack, *signed(created()))

    status, _, body = post(stack, *signed({**created(), "type": "device.deleted"}, msg_id="msg_2"))

    assert status == 200
    assert body["results"][0]["status"] == "removed"
    assert calls(stack)[-1]["body"]["integration"]["devices"][0]["changeState"] == "remove"


def test_an_event_type_not_in_the_mapping_is_ignored_with_the_reason(stack: LocalStack) -> None:
    status, _, body = post(stack, *signed({**created(), "type": "device.heartbeat"}))

    assert status == 202
    assert body == {
        "status": "ignored",
        "reason": "event type 'device.heartbeat' is not listed in this source's mapping",
    }
    assert calls(stack) == []


def test_body_without_the_mapped_device_id_is_a_400_naming_the_path(stack: LocalStack) -> None:
    body = created()
    del body["data"]["device"]["id"]

    status, _, answer = post(stack, *signed(body))

    assert status == 400
    assert "data.device.id" in answer["error"]["message"]


def test_stale_signature_gets_401_and_reaches_nothing(stack: LocalStack) -> None:
    status, _, body = post(stack, *signed(created(), at=time.time() - 301))

    assert status == 401
    assert "tolerance" in body["error"]["message"]
    assert calls(stack) == []


def test_signature_from_another_secret_gets_401_without_revealing_ours(stack: LocalStack) -> None:
    status, _, body = post(stack, *signed(created(), secret="whsec_" + "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB"))

    assert status == 401
    assert SECRET not in json.dumps(body)
    assert calls(stack) == []


def test_body_changed_after_signing_gets_401(stack: LocalStack) -> None:
    headers, raw = signed(created())

    status, _, _ = post(stack, headers, raw.replace(b"Cold store 4", b"Cold store 5"))

    assert status == 401
    assert calls(stack) == []


def test_garbled_signature_header_gets_401_not_a_crash(stack: LocalStack) -> None:
    headers, raw = signed(created())

    status, _, _ = post(stack, {**headers, "webhook-signature": "garbage-without-comma"}, raw)

    assert status == 401


def test_missing_signature_headers_get_401(stack: LocalStack) -> None:
    headers, raw = signed(created())
    del headers["webhook-signature"]

    status, _, body = post(stack, headers, raw)

    assert status == 401
    assert "webhook-signature" in body["error"]["message"]
    assert calls(stack) == []
