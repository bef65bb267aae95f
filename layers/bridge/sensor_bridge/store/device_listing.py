"""What the device registry holds, for an operator: `python -m sensor_bridge.devices list`.

    python -m sensor_bridge.devices list [--source S] [--json]
        one line per device: source, device, state, refId, Sensor Data ids, last change

A DynamoDB Scan of the registry table (REGISTRY_TABLE, as the functions have it), read page by
page; AWS access from the usual boto3 chain (AWS_ENDPOINT_URL reaches the local stack). The
operator needs `dynamodb:Scan` on the table; the functions never scan and are not granted it.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO

from sensor_bridge.runtime.settings import settings
from sensor_bridge.store.aws_clients import dynamodb
from sensor_bridge.store.registry import DeviceRecord
from sensor_bridge.store.registry_items import number_value, to_device


@dataclass(frozen=True)
class Listed:
    """A device as `scan_devices` finds it, with when the registry last wrote it (epoch seconds)."""

    record: DeviceRecord
    last_change: float | None


def scan_devices(source: str | None = None, *, page_size: int | None = None) -> Iterator[Listed]:
    """Every device item (of one source), page by page, with when the registry last wrote it.

    A Scan, for the operator's `python -m sensor_bridge.devices list`: the functions never scan,
    and the template does not grant them dynamodb:Scan.
    """
    prefix = f"device#{source}#" if source else "device#"
    pages = (
        dynamodb()
        .get_paginator("scan")
        .paginate(
            TableName=settings().registry_table,
            FilterExpression="begins_with(pk, :prefix)",
            ExpressionAttributeValues={":prefix": {"S": prefix}},
            PaginationConfig={"PageSize": page_size} if page_size else {},
        )
    )
    for page in pages:
        for item in page.get("Items", []):
            # device#<source>#<device id>: source names hold no '#', device ids may.
            _, source_name, device_id = item["pk"]["S"].split("#", 2)
            written = [number_value(item, name) for name in ("updated_at", "integrated_at", "removed_at")]
            last = max((t for t in written if t is not None), default=None)
            yield Listed(to_device(source_name, device_id, item), last)


def list_devices(source: str | None = None, *, page_size: int | None = None) -> list[Listed]:
    """Every device of the registry (of one source), by source and device."""
    listed = scan_devices(source, page_size=page_size)
    return sorted(listed, key=lambda row: (row.record.source, row.record.device_id))


def to_json(row: Listed) -> dict[str, Any]:
    r = row.record
    return {
        "source": r.source,
        "device": r.device_id,
        "state": r.state,
        "refId": r.ref_id,
        "nodeId": r.node_id,
        "deviceId": r.api_device_id,
        "sensorIds": r.sensor_ids,
        "maybeCreated": r.maybe_created,
        "reason": r.reason,
        "lastChange": _iso(row.last_change),
    }


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def print_table(rows: list[Listed], out: TextIO) -> None:
    if not rows:
        print("the registry holds no devices", file=out)
        return
    header = f"{'source':<16} {'device':<36} {'state':<10} {'refId':<24} {'last change':<20}"
    print(f"{header}  Sensor Data device (sensors)", file=out)
    for row in rows:
        r = row.record
        ids = f"{r.api_device_id} ({len(r.sensor_ids)})" if r.api_device_id else "-"
        if r.maybe_created:
            ids += "  may exist: an answer was lost"
        line = f"{r.source:<16} {r.device_id:<36} {r.state:<10} {r.ref_id or '-':<24} "
        print(f"{line}{_iso(row.last_change) or '?':<20}  {ids}", file=out)
    print(f"{len(rows)} device{'s' if len(rows) != 1 else ''}", file=out)


def main(argv: list[str] | None = None, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    parser = argparse.ArgumentParser(
        prog="python -m sensor_bridge.devices", description="the device registry"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    list_p = sub.add_parser("list", help="what the registry holds, one line per device")
    list_p.add_argument("--source", help="only this source's devices")
    list_p.add_argument("--json", action="store_true", help="one JSON object per device, every sensor id")
    args = parser.parse_args(argv)
    rows = list_devices(args.source)
    if args.json:
        for row in rows:
            print(json.dumps(to_json(row)), file=out)
    else:
        print_table(rows, out)
    return 0
