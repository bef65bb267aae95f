"""A burst of new devices against a rate-limited API: how long until every device is in Sensor
Data (simulated time), how many API calls it took, and that none was lost or created twice.

The retry function coalesces queued devices for the same node into one call, so a burst that
meets 429s costs fewer calls than devices.

    python -m bench.burst [--devices 120] [--rate-limit 60]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.common import write
from bench.devices import join_accept
from local import virtual_time
from local.stack import LocalStack, logs_to
from sensor_bridge.model.profiles import device_ref_id

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--devices", type=int, default=120)
    parser.add_argument("--rate-limit", type=int, default=60)
    args = parser.parse_args()
    headers = {"content-type": "application/json", "x-bridge-token": "local-ttn-webhook-token"}
    answered: dict[int, int] = {}
    with (
        LocalStack(rate_limit_per_minute=args.rate_limit) as stack,
        logs_to(ROOT / "bench" / "results" / "burst.log"),
    ):
        for i in range(args.devices):
            status, _, _ = stack.invoke("POST", "/webhooks/ttn-demo", headers=headers, body=join_accept(i))
            answered[status] = answered.get(status, 0) + 1
        stack.drain()
        state = stack.simulator.state()
        calls = state["calls"]
        refs = {device_ref_id("ttn-demo", f"bridge-monitoring/bench-{i:05d}") for i in range(args.devices)}
        live = {d["refId"] for d in state["devices"] if not d["removed"]}
        created = state["created"]
        parked = len(stack.queue_messages("dead-letter"))
        batches = stack.poller.stats.batches if stack.poller else 0
        simulated = virtual_time.elapsed()  # read before the stack stops and the clock resets
    result = {
        "devices": args.devices,
        "rate_limit_per_minute": args.rate_limit,
        "webhook_answers": answered,
        "simulated_seconds_to_deliver_all": round(simulated, 1),
        "api_calls": len(calls),
        "api_calls_429": sum(1 for c in calls if c["status"] == 429),
        "api_calls_per_device": round(len(calls) / args.devices, 2),
        "retry_batches": batches,
        "devices_integrated": len(refs & live),
        "devices_created_twice": sum(1 for r in refs if created.get(r, 0) > 1),
        "devices_parked": parked,
        "devices_lost": len(refs - live) - parked,
    }
    path = write("burst", result)
    print(
        f"burst: {args.devices} new devices at {args.rate_limit} requests/min -> all in Sensor Data after "
        f"{result['simulated_seconds_to_deliver_all']} s simulated; {result['api_calls']} API calls "
        f"({result['api_calls_429']} answered 429, {result['api_calls_per_device']} per device); "
        f"created twice {result['devices_created_twice']}, parked {parked}, lost {result['devices_lost']}"
    )
    print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
