"""`make serve` pointed at a Sensor Data API and IMS of your own, as README's "Try it against your
Bentley account" describes: a second, independent simulator in another process plays that API.

`python -m local.stack serve` runs as `make serve` runs it, with an env file, a config file and a
webhook secrets file of the test's own. It onboards a device from each platform (the events/
samples, sent to the test's sources with the test's secrets), waits out a `Retry-After: 5` in
wall-clock time, starts no simulator of its own, and fails at start on a broken config.
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx
import pytest
import yaml
from standardwebhooks.webhooks import Webhook

from tests.conftest import ROOT, load_event
from tests.e2e.local_processes import Serve, clean_env, free_port, simulator_process, wait_for

pytestmark = pytest.mark.e2e

CLIENT_ID = "farm-service-app"
CLIENT_SECRET = "farm-client-secret-" + secrets.token_hex(8)
# One sample per platform, and the test's source it is sent to.
SAMPLES = {
    "ttn-01-join-accept.json": "farm-ttn",
    "chirpstack-01-join.json": "farm-chirpstack",
    "particle-01-online-form.json": "farm-particle",
    "azure-02-device-created.json": "farm-azure",
    "aws-iot-02-thing-created.json": "farm-aws-iot",
    "generic-01-device-created.json": "farm-generic",
}
RENAMED = {
    "ttn-demo": "farm-ttn",
    "chirpstack-demo": "farm-chirpstack",
    "particle-demo": "farm-particle",
    "azure-demo": "farm-azure",
    "aws-iot-demo": "farm-aws-iot",
    "generic-demo": "farm-generic",
}


@pytest.fixture(scope="module")
def your_api() -> Iterator[str]:
    """Sensor Data + IMS in another process, knowing the test's client."""
    with simulator_process("--client", f"{CLIENT_ID}:{CLIENT_SECRET}") as url:
        yield url


@dataclass
class Files:
    env_file: Path
    config: dict[str, Any]
    webhook_secrets: dict[str, str]


def write_files(tmp: Path, api_url: str) -> Files:
    """The test's own config (the bundled profiles, its own sources and secret names), its
    secrets file and its env file."""
    bundled = yaml.safe_load((ROOT / "config" / "bridge.yaml").read_text(encoding="utf-8"))
    sources = {}
    for old, new in RENAMED.items():
        source = dict(bundled["sources"][old])
        source["auth"] = {**source["auth"], "secret": f"{new}-secret"}
        sources[new] = source
    config = {**bundled, "sources": sources}
    webhook_secrets = {f"{name}-secret": secrets.token_urlsafe(24) for name in RENAMED.values()}
    webhook_secrets["farm-generic-secret"] = "whsec_" + base64.b64encode(os.urandom(24)).decode()
    (tmp / "farm.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    (tmp / "farm-secrets.json").write_text(json.dumps(webhook_secrets), encoding="utf-8")
    env_file = tmp / "farm.env"
    env_file.write_text(
        f"SENSOR_DATA_API_URL={api_url}/sensor-data\n"
        f"IMS_TOKEN_URL={api_url}/connect/token\n"
        f"IMS_CLIENT_ID={CLIENT_ID}\n"
        f"IMS_CLIENT_SECRET={CLIENT_SECRET}\n"
        f"BRIDGE_CONFIG_FILE={tmp / 'farm.yaml'}\n"
        f"WEBHOOK_SECRETS_FILE={tmp / 'farm-secrets.json'}\n",
        encoding="utf-8",
    )
    return Files(env_file, config, webhook_secrets)


def signed(source: dict[str, Any], secret: str, event: dict[str, Any]) -> tuple[dict[str, str], str]:
    """The sample's headers and query string, authenticated as `source` expects with `secret`."""
    auth = source["auth"]
    headers = dict(event["headers"])
    query = dict(parse_qsl(event.get("rawQueryString") or ""))
    if auth["type"] == "header":
        headers[auth["header"].lower()] = auth.get("prefix", "") + secret
    elif auth["type"] == "basic":
        token = base64.b64encode(f"{auth['username']}:{secret}".encode()).decode()
        headers["authorization"] = f"Basic {token}"
    elif auth["type"] == "query":
        query[auth["parameter"]] = secret
    elif auth["type"] == "standard-webhooks":
        now = datetime.now(UTC)
        headers["webhook-timestamp"] = str(int(now.timestamp()))
        headers["webhook-signature"] = Webhook(secret).sign(headers["webhook-id"], now, event["body"])
    return headers, urlencode(query)


def send(gateway: str, files: Files, sample: str, source_name: str) -> httpx.Response:
    event = load_event(sample)
    source = files.config["sources"][source_name]
    headers, query = signed(source, files.webhook_secrets[source["auth"]["secret"]], event)
    url = f"{gateway}/webhooks/{source_name}" + (f"?{query}" if query else "")
    return httpx.post(url, headers=headers, content=event["body"].encode(), timeout=30)


def listening_ports(pid: int) -> set[int]:
    """The TCP ports a process listens on (Linux /proc: its socket inodes in the LISTEN state)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with_inode = re.fullmatch(r"socket:\[(\d+)\]", os.readlink(fd)) if fd.is_symlink() else None
        if with_inode:
            inodes.add(with_inode.group(1))
    ports = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[3] == "0A" and fields[9] in inodes:
            ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def test_serve_against_your_api_onboards_every_platform_and_waits_out_retry_after_in_real_time(
    your_api: str, tmp_path: Path
) -> None:
    files = write_files(tmp_path, your_api)
    port = free_port()
    serve = Serve("--env-file", str(files.env_file), "--port", str(port))
    try:
        banner = "\n".join(serve.read_banner())
        gateway = f"http://127.0.0.1:{port}"
        answers = {sample: send(gateway, files, sample, source) for sample, source in SAMPLES.items()}

        httpx.post(f"{your_api}/_sim/faults", json={"faults": [{"status": 429, "retry_after": "5"}]})
        queued = send(gateway, files, "ttn-02-join-accept-second-device.json", "farm-ttn")
        wait_for(lambda: len(devices(your_api)) == len(SAMPLES) + 1, 40, "the queued device never arrived")
        calls = httpx.get(f"{your_api}/_sim/state", timeout=5).json()["calls"]
        listening = listening_ports(serve.process.pid)
        environment = serve.export()
        parked = subprocess.run(
            [sys.executable, "-m", "sensor_bridge.redrive", "list"],
            cwd=ROOT,
            env={**clean_env(), **environment},
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        out, err = serve.stop()

    assert {s: a.status_code for s, a in answers.items()} == dict.fromkeys(SAMPLES, 200), err
    assert all(a.json()["results"][0]["status"] == "integrated" for a in answers.values())
    assert queued.status_code == 202
    assert queued.json()["results"][0]["status"] == "queued"
    refused = next(i for i, c in enumerate(calls) if c["status"] == 429)
    assert calls[refused + 1]["at"] - calls[refused]["at"] >= 5  # no retry sooner, in wall-clock seconds
    assert calls[-1]["status"] == 200
    # Only the gateway and moto listen: no embedded simulator was started.
    moto_port = int(environment["AWS_ENDPOINT_URL"].rsplit(":", 1)[1])
    assert listening == {port, moto_port}
    assert "; no simulator" in banner
    assert "clock:           real" in banner
    for source in RENAMED.values():
        assert f"POST {gateway}/webhooks/{source}" in banner
    assert parked.returncode == 0
    assert parked.stdout.strip() == "nothing is parked"
    shown = out + err + (ROOT / ".local-stack.log").read_text(encoding="utf-8")
    assert CLIENT_SECRET not in shown
    assert not any(value in shown for value in files.webhook_secrets.values())


def devices(api: str) -> list[dict[str, Any]]:
    state = httpx.get(f"{api}/_sim/state", timeout=5).json()
    return [d for d in state["devices"] if not d["removed"]]


def test_serve_with_a_broken_config_fails_at_start_naming_the_problem(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        "sources:\n  my-farm:\n    platfrom: chirpstack\n    auth: {type: none}\n"
        "default_profile:\n  name: g\n  sensors: [{key: g, integration_id: GENERIC_SENSOR_SDE, name: G, "
        "unknown_metrics: [v], unknown_units: [u]}]\n",
        encoding="utf-8",
    )
    empty_env = tmp_path / "empty.env"
    empty_env.write_text("", encoding="utf-8")

    done = subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "local.stack", "serve", "--env-file", str(empty_env), "--config", str(broken)],
        cwd=ROOT,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 2
    assert "gateway" not in done.stdout  # nothing started
    assert done.stderr.startswith(f"local stack: {broken}: 2 problems, nothing started:\n")
    assert "  sources.my-farm.platfrom: unknown key: remove it or check its spelling\n" in done.stderr
    assert "  sources.my-farm.platform: required key is missing: add it\n" in done.stderr
