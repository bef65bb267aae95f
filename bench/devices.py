"""Webhook bodies for the benchmarks: a The Things Stack join of a device no one has seen."""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def join_accept(index: int) -> bytes:
    template = json.loads((ROOT / "events" / "ttn-01-join-accept.json").read_text())
    body = json.loads(template["body"])
    body["end_device_ids"]["device_id"] = f"bench-{index:05d}"
    body["end_device_ids"]["dev_eui"] = f"70B3D57ED{index:07X}"
    body["join_accept"]["session_key_id"] = f"bench-session-{index}"
    return json.dumps(body).encode()
