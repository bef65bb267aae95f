"""Changes whose answers were lost, late deletions, absurd Retry-After values and full versus
partial descriptions: each scenario counts what the simulator created, and what is left."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from local.lambda_runtime import cold_start
from local.stack import LocalStack
from sensor_bridge.model.config import DEFAULT_CONFIG_FILE
from sensor_bridge.model.profiles import device_ref_id
from tests.conftest import load_event
from tests.scenario import changes, ref, registry, tts_event

AWS_SOURCE = "aws-iot-demo"
NODE_MODEL = "the-things-products/the-things-node"  # matches the environment-sensor profile


def aws_event(name: str, **body: Any) -> dict[str, Any]:
    """An AWS IoT registry event from events/, with fields replaced (None: removed)."""
    event = copy.deepcopy(load_event(name))
    data = json.loads(event["body"])
    for key, value in body.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    event["body"] = json.dumps(data)
    return event


def creations(stack: LocalStack, device: str) -> dict[str, int]:
    """How often the device and each of its sensors were created downstream."""
    return {k: v for k, v in stack.simulator.state()["created"].items() if k.startswith(ref(device))}


def with_device(stack: LocalStack) -> None:
    """strain-gauge-01 integrated with the default (generic) profile, its node in place."""
    stack.post_event(tts_event("ttn-02-join-accept-second-device.json"))
    status, _ = stack.post_event(tts_event())
    assert status == 200


def test_update_whose_answer_was_lost_is_not_sent_again_but_probed(stack: LocalStack) -> None:
    with_device(stack)
    # An uplink tells the model: the profile changes (generic -> 3 sensors). The API applies the
    # update and answers 502.
    stack.simulator.inject({"status": 502, "after_apply": True})
    status, _ = stack.post_event(tts_event(session_key="x", model=NODE_MODEL))
    assert status == 202

    stack.drain()

    # The retry probes (device-only update), sees the 3 sensors and no generic one: nothing to send.
    assert changes(stack, "strain-gauge-01") == ["new:200", "update:502", "update:200"]
    assert set(creations(stack, "strain-gauge-01").values()) == {1}
    record = registry.get_device("ttn-demo", "bridge-monitoring/strain-gauge-01")
    assert record is not None
    assert record.state == "integrated"
    assert not record.maybe_created
    assert sorted(record.sensor_ids) == sorted(
        f"{ref('strain-gauge-01')}-{key}" for key in ("temperature", "battery", "signal")
    )
    # Later uplinks of the same device make no call at all.
    status, body = stack.post_event(tts_event(session_key="y", model=NODE_MODEL))
    assert body["results"][0]["status"] == "unchanged"


def test_sensor_added_by_a_profile_change_is_created_once_after_a_lost_answer(
    stack: LocalStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with_device(stack)
    config = yaml.safe_load(Path(DEFAULT_CONFIG_FILE).read_text(encoding="utf-8"))
    config["default_profile"]["sensors"].append(
        {"key": "battery", "integration_id": "BATTERY_CHARGE_SDE", "name": "Battery"}
    )
    path = tmp_path / "bridge.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    monkeypatch.setenv("BRIDGE_CONFIG_FILE", str(path))
    cold_start()
    stack.simulator.inject({"status": 504, "after_apply": True})

    stack.post_event(tts_event(session_key="z"))
    stack.drain()

    assert creations(stack, "strain-gauge-01") == {
        ref("strain-gauge-01"): 1,
        f"{ref('strain-gauge-01')}-generic": 1,
        f"{ref('strain-gauge-01')}-battery": 1,
    }


def test_probe_refused_for_another_reason_parks_instead_of_creating_again(stack: LocalStack) -> None:
    stack.post_event(tts_event("ttn-02-join-accept-second-device.json"))
    stack.simulator.inject({"status": 502, "after_apply": True})
    stack.post_event(tts_event())
    # The probe meets a 422 that does not say the device is unknown.
    stack.simulator.inject({"status": 422})

    stack.drain()

    assert changes(stack, "strain-gauge-01") == ["new:502", "update:422"]
    assert creations(stack, "strain-gauge-01")[ref("strain-gauge-01")] == 1
    (parked,) = stack.queue_messages("dead-letter")
    assert parked["parked_reason"].startswith("422")
    record = registry.get_device("ttn-demo", "bridge-monitoring/strain-gauge-01")
    assert record is not None
    assert record.maybe_created  # a redrive probes again rather than creating


def test_deletion_delivered_after_a_later_re_creation_leaves_the_device(stack: LocalStack) -> None:
    stack.post_event(load_event("aws-iot-04-second-thing-created.json"))
    stack.post_event(aws_event("aws-iot-02-thing-created.json", timestamp=1764288600000))  # T1
    # Deleted at T2 (that delivery fails and the platform will send it again), created again at T3.
    status, answer = stack.post_event(
        aws_event("aws-iot-02-thing-created.json", timestamp=1764288900000, eventId="created-again")
    )
    assert answer["results"][0]["status"] == "unchanged"

    status, answer = stack.post_event(aws_event("aws-iot-03-thing-deleted.json", timestamp=1764288700000))

    assert status == 200
    assert answer["results"][0]["status"] == "unchanged"
    refid = device_ref_id(AWS_SOURCE, "pier-env-11")
    live = [d for d in stack.simulator.state()["devices"] if d["refId"] == refid and not d["removed"]]
    assert len(live) == 1


def test_absurd_retry_after_falls_back_to_backoff_and_does_not_stop_delivery(stack: LocalStack) -> None:
    stack.post_event(tts_event("ttn-02-join-accept-second-device.json"))
    stack.simulator.inject({"status": 429, "retry_after": "100000000", "count": 1})

    status, answer = stack.post_event(tts_event())
    other_status, other = stack.post_event(tts_event("ttn-03-join-accept-third-device.json"))
    stack.drain(max_simulated_s=3600)

    assert status == 202
    assert answer["results"][0]["retryInSeconds"] <= 10  # backoff after a first failure, not years
    # An unusable Retry-After holds nothing back: the 429 said no calls were left, so the next
    # device is queued to go with others, for a second, not for the Retry-After.
    assert other_status == 202
    assert other["results"][0]["retryInSeconds"] == 1
    assert creations(stack, "strain-gauge-01")[ref("strain-gauge-01")] == 1
    assert creations(stack, "tilt-meter-03")[ref("tilt-meter-03")] == 1


def test_full_description_without_model_or_location_changes_the_device(stack: LocalStack) -> None:
    stack.post_event(load_event("aws-iot-04-second-thing-created.json"))
    stack.post_event(load_event("aws-iot-02-thing-created.json"))
    # The thing type is taken away and the location attributes deleted: AWS IoT sends the thing
    # as it now is, so what it leaves out was removed (unlike a The Things Stack join).
    status, answer = stack.post_event(
        aws_event(
            "aws-iot-02-thing-created.json",
            operation="UPDATED",
            eventId="updated-1",
            thingTypeName=None,
            attributes={"site": "south-pier"},
            timestamp=1764289600000,
        )
    )

    assert status == 200
    assert answer["results"][0]["status"] == "updated"
    record = registry.get_device(AWS_SOURCE, "pier-env-11")
    assert record is not None
    assert record.spec is not None
    assert "LOCATION" not in record.spec["props"]
    assert list(record.spec["sensors"]) == [f"{device_ref_id(AWS_SOURCE, 'pier-env-11')}-generic"]
