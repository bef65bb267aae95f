"""Choosing MAX_DEVICES_PER_CALL: API calls the delivery core makes for a backlog of new devices,
per devices-per-call limit N and share of devices the API refuses (422).

More devices per call means fewer calls, and so less time under a rate limit (the join storm's
coalesced floor is N / (N x rate)); but a 422 on a shared call is split, each of its devices sent
alone, so every refused device costs N more calls. The API documents no limit (sensor-data-api.md).
This runs the real delivery core (prepare, coalesce, send, the 422 split, settle) through its
ports, as tests/unit/test_delivery_core.py does: the in-memory registry and a scripted integrate
call that answers 200, or 422 to any call holding a refused device. The retry function's batches
of 100 messages are modelled, one source; the rate limiter and the queues are not (the join storm
benchmark runs those), so calls here are what pacing must spend, and time = calls / rate.

    python -m bench.devices_per_call [--devices 1000]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from bench.common import write
from local.lambda_runtime import cold_start
from sensor_bridge.delivery.context import Downstream
from sensor_bridge.delivery.deliver import deliver_many
from sensor_bridge.model.config import DEFAULT_CONFIG_FILE, load_config_file
from sensor_bridge.model.contract import NAME, IntegrationRequest
from sensor_bridge.model.device_event import DeviceEvent, Lifecycle
from sensor_bridge.model.outcomes import Outcome, Parked
from sensor_bridge.model.work import WorkItem
from sensor_bridge.runtime.budget import Budget
from sensor_bridge.store.memory_registry import InMemoryRegistry
from tests.unit.fake_sensor_data import FakeSensorData

SOURCE = "aws-iot-demo"
BATCH = 100  # template.yaml's BatchSize for the retry function
LIMITS = [1, 5, 10, 20, 33, 50, 100]
REFUSED_SHARES = [0.0, 0.001, 0.01, 0.05]


class RefusingSensorData(FakeSensorData):
    """422 to every call that holds a refused device, 200 to the rest."""

    def __init__(self, refused: set[str]) -> None:
        super().__init__()
        self.refused = refused

    def __call__(
        self, request: IntegrationRequest, source: str, *, budget: Budget | None, itwin_id: str | None
    ) -> Outcome:
        self.requests.append(request)
        if any(d.props.get(NAME) in self.refused for d in request.integration.devices):
            return Parked("422 InvalidProcessIntegrationRequest: unknown INTEGRATION_ID", 422)
        return self.ok(request)


def calls_for(devices: int, most: int, refused_share: float) -> dict[str, Any]:
    os.environ["MAX_DEVICES_PER_CALL"] = str(most)
    cold_start()  # the settings are read afresh
    every = round(1 / refused_share) if refused_share else 0
    names = [f"storm-{i:05d}" for i in range(devices)]
    refused = {n for i, n in enumerate(names) if every and i % every == every // 2}
    registry = InMemoryRegistry()
    registry.nodes[SOURCE] = {"node_id": "node-1"}
    api = RefusingSensorData(refused)
    config = load_config_file(Path(DEFAULT_CONFIG_FILE))
    works = [
        WorkItem(
            DeviceEvent(
                source=SOURCE, platform="aws-iot-core", device_id=n, lifecycle=Lifecycle.APPEARED, name=n
            )
        )
        for n in names
    ]
    for start in range(0, devices, BATCH):
        deliver_many(
            works[start : start + BATCH], config, registry=registry, downstream=Downstream(integrate=api)
        )
    return {
        "max_devices_per_call": most,
        "refused_share": refused_share,
        "refused": len(refused),
        "api_calls": len(api.requests),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.devices_per_call", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--devices", type=int, default=1000)
    args = parser.parse_args()
    saved = os.environ.get("MAX_DEVICES_PER_CALL")
    rows = [calls_for(args.devices, most, share) for share in REFUSED_SHARES for most in LIMITS]
    if saved is None:
        os.environ.pop("MAX_DEVICES_PER_CALL", None)
    best = {s: min(r["api_calls"] for r in rows if r["refused_share"] == s) for s in REFUSED_SHARES}
    for r in rows:
        r["calls_over_the_best"] = round(r["api_calls"] / best[r["refused_share"]], 2)
    path = write("devices_per_call", {"devices": args.devices, "batch": BATCH, "rows": rows})
    print(f"API calls for {args.devices} new devices (batches of {BATCH}): N down, share refused across")
    print("N      " + "".join(f"{s:>14.1%}" for s in REFUSED_SHARES))
    for most in LIMITS:
        cells = [r for r in rows if r["max_devices_per_call"] == most]
        print(f"{most:<7}" + "".join(f"{r['api_calls']:>8} ({r['calls_over_the_best']:.2f}x)" for r in cells))
    print(f"wrote {path.name}")


if __name__ == "__main__":
    main()
