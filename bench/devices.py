"""Webhook bodies for the benchmarks: a The Things Stack join of a device no one has seen; an
Azure Event Grid batch of IoT Hub DeviceCreated events."""

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


EVENT_GRID_HUB = "bridge-hub"


def event_grid_device_id(index: int) -> str:
    return f"batch-{index:05d}"


def event_grid_batch(count: int, first: int = 0) -> bytes:
    """One Event Grid delivery of `count` DeviceCreated events (the Event Grid schema: an array),
    each a new device (no twin, no eventTime: about 180 bytes an event, 1,400 in 251 KB)."""
    events = [
        {
            "id": f"00000000-0000-4000-8000-{first + i:012d}",
            "subject": f"devices/{event_grid_device_id(first + i)}",
            "eventType": "Microsoft.Devices.DeviceCreated",
            "data": {"hubName": EVENT_GRID_HUB, "deviceId": event_grid_device_id(first + i)},
        }
        for i in range(count)
    ]
    return json.dumps(events, separators=(",", ":")).encode()
