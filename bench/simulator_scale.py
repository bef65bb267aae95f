"""Does the Sensor Data simulator stay out of the way at fleet scale? One small call to a simulator
holding N devices (two sensors each) against the same call to an empty one, alternating.

A fleet benchmark (thousands of devices joining) measures the bridge only if a call to the
simulator costs about the same whatever it holds: each integrate call is applied to a fork of the
model that copies only what the call touches.

    python -m bench.simulator_scale [--devices 10000] [--pairs 40]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import httpx

from bench.common import summary, write
from local.simulator import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, SensorDataSimulator

JSON_HEADERS = {"Content-Type": "application/json"}


def token(http: httpx.Client) -> str:
    form = {
        "grant_type": "client_credentials",
        "client_id": DEMO_CLIENT_ID,
        "client_secret": DEMO_CLIENT_SECRET,
        "scope": "itwin-platform",
    }
    value: str = http.post("/connect/token", data=form).json()["access_token"]
    return value


def new_device(ref: str) -> dict[str, Any]:
    sensors = [
        {"changeState": "new", "refId": f"{ref}/t", "props": {"INTEGRATION_ID": "TEMPERATURE_SDE",
         "NAME": "Temperature", "KNOWN_METRICS": {"0": "T"}, "KNOWN_UNITS": {"0": "C"}}},
        {"changeState": "new", "refId": f"{ref}/b", "props": {"INTEGRATION_ID": "BATTERY_CHARGE_SDE",
         "NAME": "Battery"}},
    ]  # fmt: skip
    props = {"INTEGRATION_ID": "IMPORT_DEVICE_SDE", "NAME": ref}
    return {"changeState": "new", "refId": ref, "props": props, "sensors": sensors}


class Target:
    """A started simulator with a node, a token and N devices; the calls the benchmark times."""

    def __init__(self, devices: int) -> None:
        self.sim = SensorDataSimulator().start()
        self.http = httpx.Client(base_url=self.sim.url, timeout=120)
        self.auth = {**JSON_HEADERS, "Authorization": f"Bearer {token(self.http)}"}
        self.node_id = self.integrate({"integration": {"changeState": "new"}})["integration"]["node"]["id"]
        for start in range(0, devices, 100):
            batch = [new_device(f"fleet-{i}") for i in range(start, min(devices, start + 100))]
            self.integrate({"integration": {"nodeId": self.node_id, "devices": batch}})
        answer = self.integrate({"integration": {"nodeId": self.node_id, "devices": [new_device("probe")]}})
        sensors = answer["integration"]["devices"][0]["sensors"]
        self.sensor_id = next(s["id"] for s in sensors if s["props"]["NAME"] == "Temperature")
        self.count = 0

    def integrate(self, body: dict[str, Any]) -> Any:
        answer = self.http.post("/sensor-data/integrations/integrate", headers=self.auth, json=body)
        answer.raise_for_status()
        return answer.json()

    def update_one(self) -> None:
        self.count += 1
        change = {"changeState": "update", "refId": "probe", "props": {"NOTES": str(self.count)}}
        self.integrate({"integration": {"nodeId": self.node_id, "devices": [change]}})

    def upload_one(self) -> None:
        observation = {"sensorId": self.sensor_id, "timestamp": "2026-12-01T08:00:00Z", "values": {"T": 1}}
        answer = self.http.post(
            "/sensor-data/data/upload", headers=self.auth, json={"observations": [observation]}
        )
        assert answer.status_code == 202, answer.text

    def close(self) -> None:
        self.http.close()
        self.sim.stop()


def timed(call: Callable[[], None]) -> float:
    started = time.perf_counter()
    call()
    return (time.perf_counter() - started) * 1000


def alternate(empty: Callable[[], None], full: Callable[[], None], pairs: int) -> dict[str, Any]:
    small, large = [], []
    for _ in range(pairs):
        small.append(timed(empty))
        large.append(timed(full))
    return {
        "empty_ms": summary(small),
        "full_ms": summary(large),
        "ratio_of_medians": round(statistics.median(large) / statistics.median(small), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--pairs", type=int, default=40)
    args = parser.parse_args()
    built = time.perf_counter()
    empty, full = Target(0), Target(args.devices)
    build_s = time.perf_counter() - built
    try:
        result = {
            "devices_held": args.devices,
            "sensors_held": 2 * args.devices,
            "pairs": args.pairs,
            "seconds_to_build": round(build_s, 1),
            "integrate_update_one_device": alternate(empty.update_one, full.update_one, args.pairs),
            "upload_one_observation": alternate(empty.upload_one, full.upload_one, args.pairs),
        }
    finally:
        empty.close()
        full.close()
    write("simulator_scale", result)
    update, upload = result["integrate_update_one_device"], result["upload_one_observation"]
    print(
        f"simulator scale: holding {args.devices} devices vs none, medians of {args.pairs} alternating "
        f"pairs: one-device integrate {update['full_ms']['p50']} ms vs {update['empty_ms']['p50']} ms "
        f"(ratio {update['ratio_of_medians']}); one-observation upload {upload['full_ms']['p50']} ms vs "
        f"{upload['empty_ms']['p50']} ms (ratio {upload['ratio_of_medians']})"
    )


if __name__ == "__main__":
    main()
