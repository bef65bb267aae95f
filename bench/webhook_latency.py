"""Webhook handling time on the local stack: a new device (registry claim, token, API call,
registry write) and a repeat of an integrated device (registry read, no call).

Everything is real but the network: moto (server mode) and the Sensor Data simulator answer over
loopback HTTP, so the figures are the bridge's own overhead plus loopback round trips, not AWS's.

    python -m bench.webhook_latency [--devices 200]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from bench.common import summary, write
from bench.devices import join_accept
from local.stack import LocalStack, logs_to

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--devices", type=int, default=200)
    args = parser.parse_args()
    headers = {"content-type": "application/json", "x-bridge-token": "local-ttn-webhook-token"}
    new_ms: list[float] = []
    repeat_ms: list[float] = []
    statuses: dict[int, int] = {}
    with LocalStack() as stack, logs_to(ROOT / "bench" / "results" / "webhook_latency.log"):
        for phase, sink in (("new", new_ms), ("repeat", repeat_ms)):
            for i in range(args.devices):
                body = join_accept(i)
                if phase == "repeat":
                    # A rejoin: a new session key, so a new event id, the same device.
                    body = body.replace(b"bench-session-", b"bench-rejoin-")
                started = time.perf_counter()
                status, _, _ = stack.invoke("POST", "/webhooks/ttn-demo", headers=headers, body=body)
                sink.append((time.perf_counter() - started) * 1000)
                statuses[status] = statuses.get(status, 0) + 1
        state = stack.simulator.state()
        created = state["created"]
        device_creations = sum(n for ref, n in created.items() if "-" not in ref[3:])
    result = {
        "devices": args.devices,
        "new_device_ms": summary(new_ms[1:]),  # the first call pays the process's cold caches
        "first_call_ms": round(new_ms[0], 2),
        "repeat_device_ms": summary(repeat_ms),
        "http_statuses": statuses,
        "device_creations_in_api": device_creations,
    }
    path = write("webhook_latency", result)
    n, r = result["new_device_ms"], result["repeat_device_ms"]
    print(
        f"webhook_latency: new device p50 {n['p50']} ms p99 {n['p99']} ms; "
        f"repeat p50 {r['p50']} ms p99 {r['p99']} ms; first call {result['first_call_ms']} ms; "
        f"{device_creations} devices created for {args.devices} devices x 2 webhooks"
    )
    print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
