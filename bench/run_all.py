"""Runs every benchmark and prints the README's table from their JSON results.

make bench        (or: python -m bench.run_all)
"""

from __future__ import annotations

import json
import subprocess
import sys

from bench.common import RESULTS

BENCHMARKS = ["bench.cold_start", "bench.webhook_latency", "bench.burst"]


def table() -> str:
    cold = json.loads((RESULTS / "cold_start.json").read_text())
    latency = json.loads((RESULTS / "webhook_latency.json").read_text())
    rows = ["| measure | p50 (or result) | p90/p99 (or detail) | notes |", "|---|---|---|---|"]
    for handler in cold["handlers"]:
        imp, rss = handler["import_ms"], handler["max_rss_mb"]
        rows.append(
            f"| cold start: import `{handler['module']}` | {imp['p50']} ms | p90 {imp['p90']} ms "
            f"| {cold['interpreter']}, {cold['machine']}; max RSS {rss['p50']} MB |"
        )
    new, repeat = latency["new_device_ms"], latency["repeat_device_ms"]
    rows.append(
        f"| first webhook of a fresh process (clients, secrets, token, node) | {latency['first_call_ms']} ms "
        f"| one sample | Python {latency['python']} |"
    )
    rows.append(
        "| webhook, new device (claim, write-ahead mark, API call, record) "
        f"| {new['p50']} ms | p99 {new['p99']} ms "
        f"| local stack over loopback, {latency['devices']} devices, Python {latency['python']} |"
    )
    rows.append(
        f"| webhook, repeat of an integrated device (no API call) | {repeat['p50']} ms "
        f"| p99 {repeat['p99']} ms "
        f"| {latency['device_creations_in_api']} creations for {latency['devices']} devices x 2 joins |"
    )
    burst = json.loads((RESULTS / "burst.json").read_text())
    rows.append(
        f"| burst: {burst['devices']} new devices at {burst['rate_limit_per_minute']} requests/min "
        f"| {burst['simulated_seconds_to_deliver_all']} s to deliver all (simulated) "
        f"| {burst['api_calls']} API calls, {burst['api_calls_429']} of them 429 "
        f"| created twice {burst['devices_created_twice']}, parked {burst['devices_parked']}, "
        f"lost {burst['devices_lost']} |"
    )
    return "\n".join(rows)


def main() -> None:
    for module in BENCHMARKS:
        subprocess.run([sys.executable, "-m", module], check=True)
    print()
    print(table())


if __name__ == "__main__":
    main()
