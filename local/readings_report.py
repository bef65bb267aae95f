"""What `make run` says about readings: the reading messages the bridge accepted, done (uploaded,
or nothing of them mapped) per the registry's marks, parked on the dead-letter queue, or lost;
the observations the simulator stored, and how many of them were stored twice."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import boto3


@dataclass
class Readings:
    accepted: int = 0
    forwarded: int = 0
    observations: int | str = "-"  # "-": an API of yours, whose store we cannot read
    parked: int = 0
    uploaded_twice: int = 0  # observations stored more than once (same sensor and timestamp)

    @property
    def lost(self) -> int:
        return max(0, self.accepted - self.forwarded - self.parked)


def readings_of(
    answers: list[dict[str, Any]],
    marks: dict[tuple[str, str], int],
    parked: list[dict[str, Any]],
    stored: list[dict[str, Any]] | None,
) -> Readings:
    """`answers`: the per-device results of the accepted webhooks (an event that carried a
    reading says `readingsForwarded`); `stored`: the simulator's observations, if it is one."""
    readings = Readings(
        accepted=sum(1 for result in answers if "readingsForwarded" in result),
        forwarded=sum(marks.values()),
        parked=sum(1 for m in parked if m["event"].get("reading")),
    )
    if stored is not None:
        keys = [(o["sensorId"], o["timestamp"]) for o in stored]
        readings.observations = len(stored)
        readings.uploaded_twice = len(keys) - len(set(keys))
    return readings


def reading_marks(registry_table: str) -> dict[tuple[str, str], int]:
    """Per device, the reading messages done: the registry's upload marks."""
    found: dict[tuple[str, str], int] = {}
    for page in boto3.client("dynamodb").get_paginator("scan").paginate(TableName=registry_table):
        for item in page["Items"]:
            kind, _, rest = item["pk"]["S"].partition("#")
            if kind == "device" and "uploaded" in item:
                source, _, device = rest.partition("#")
                found[(source, device)] = len(item["uploaded"]["SS"])
    return found
