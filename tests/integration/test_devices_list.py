"""`python -m sensor_bridge.devices list`: what the registry holds, read with a paginated Scan of
the registry table in moto (the local stack's), after real deliveries."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

from local.stack import LocalStack
from sensor_bridge.model.profiles import device_ref_id
from sensor_bridge.store import device_listing
from tests.conftest import ROOT, load_event
from tests.e2e.test_delivery_scenarios import APP, SOURCE, Ledger, tts_event, with_node

AWS_SOURCE = "aws-iot-demo"


def run(*argv: str) -> str:
    out = io.StringIO()
    assert device_listing.main(list(argv), out=out) == 0
    return out.getvalue()


def deliver_some(stack: LocalStack) -> None:
    """Two devices integrated, one parked (403), one removed, on two sources."""
    ledger = Ledger(stack)
    with_node(ledger)  # bridge-monitoring/strain-gauge-02
    assert ledger.post(tts_event())[0] == 200  # bridge-monitoring/strain-gauge-01
    assert stack.simulator is not None
    stack.simulator.inject({"status": 403})
    assert ledger.post(tts_event(device="gauge-parked", session_key="p"))[0] == 202
    assert stack.post_event(load_event("aws-iot-02-thing-created.json"))[0] == 200
    assert stack.post_event(load_event("aws-iot-03-thing-deleted.json"))[0] == 200


def test_list_shows_every_device_with_its_state_ids_and_last_change(stack: LocalStack) -> None:
    deliver_some(stack)

    rows = [json.loads(line) for line in run("list", "--json").splitlines()]

    assert [(r["source"], r["device"], r["state"]) for r in rows] == [
        (AWS_SOURCE, "pier-env-11", "removed"),
        (SOURCE, f"{APP}/gauge-parked", "parked"),
        (SOURCE, f"{APP}/strain-gauge-01", "integrated"),
        (SOURCE, f"{APP}/strain-gauge-02", "integrated"),
    ]
    assert stack.simulator is not None
    live = {d["refId"]: d for d in stack.simulator.state()["devices"] if not d["removed"]}
    for row in rows:
        assert row["refId"] == device_ref_id(row["source"], row["device"])
        assert row["lastChange"].endswith("Z")
        if row["state"] == "integrated":
            downstream = live[row["refId"]]
            assert row["deviceId"] == downstream["id"]
            assert sorted(row["sensorIds"].values()) == sorted(s["id"] for s in downstream["sensors"])
        else:
            assert (row["deviceId"], row["sensorIds"]) == (None, {})
    assert rows[1]["reason"].startswith("403 InsufficientPermissions")


def test_source_filter_and_the_table(stack: LocalStack) -> None:
    deliver_some(stack)

    only_aws = [json.loads(line) for line in run("list", "--source", AWS_SOURCE, "--json").splitlines()]
    table = run("list", "--source", SOURCE).splitlines()

    assert [r["device"] for r in only_aws] == ["pier-env-11"]
    assert table[0].split()[:5] == ["source", "device", "state", "refId", "last"]
    assert [line.split()[:3] for line in table[1:-1]] == [
        [SOURCE, f"{APP}/gauge-parked", "parked"],
        [SOURCE, f"{APP}/strain-gauge-01", "integrated"],
        [SOURCE, f"{APP}/strain-gauge-02", "integrated"],
    ]
    assert table[-1] == "3 devices"
    assert run("list", "--source", "no-such-source") == "the registry holds no devices\n"


def test_every_page_of_the_scan_is_read(stack: LocalStack) -> None:
    deliver_some(stack)

    # One item per page: the node items and other sources' devices make pages with nothing kept.
    paged = device_listing.list_devices(page_size=1)

    assert [r.record.device_id for r in paged] == [r.record.device_id for r in device_listing.list_devices()]
    assert len(paged) == 4


def test_the_command_runs_through_its_door_with_the_stacks_environment(stack: LocalStack) -> None:
    deliver_some(stack)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "layers" / "bridge")}
    listed = subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "sensor_bridge.devices", "list", "--source", AWS_SOURCE],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    assert "pier-env-11" in listed.stdout
    assert listed.stdout.splitlines()[-1] == "1 device"
