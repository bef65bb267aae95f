"""A fleet's readings on the trial tier: 1,000 devices each reporting every minute for a simulated
hour (ChirpStack `up` events through the real handlers, the retry function on simulated time,
the simulator at the trial tier's 500 calls a minute and 5,000 an hour).

Readings arrive evenly over each minute; the retry function runs every 5 s of simulated time, as
the event source mapping's batching window does. It reports what reached the simulator:
observations forwarded, API calls per minute against the limit, observations per upload call,
the delay from measurement (the event's `time`) to upload (p50/p99), lost and uploaded twice.

    python -m bench.readings [--devices 1000] [--minutes 60] [--tier trial] [--name readings]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import aws_calls_wait_in_real_time, summary, write
from local.stack import LocalStack, logs_to
from local.virtual_time import advance
from sensor_bridge.runtime import clock

ROOT = Path(__file__).resolve().parent.parent
HEADERS = {"content-type": "application/json", "x-bridge-token": "local-chirpstack-token"}
POLL_EVERY_S = 5.0  # template.yaml: MaximumBatchingWindowInSeconds


def reading(device: int, minute: int, at: float) -> bytes:
    """A ChirpStack `up` of a light sensor (its tags select the light-sensor profile)."""
    when = datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "Z"
    body = {
        "deduplicationId": f"bench-{device:05d}-{minute:03d}",
        "time": when,
        "deviceInfo": {
            "devEui": f"{0xBE00000000000000 + device:016x}",
            "deviceName": f"bench-{device:05d}",
            "deviceProfileName": "Bench light",
            "tags": {"sensor": "light"},
        },
        "fCnt": minute,
        "object": {"lux": round(100 + device % 97 + minute * 0.5, 2), "rssi": -70},
    }
    return json.dumps(body).encode()


def run_fleet(stack: LocalStack, devices: int, minutes: int) -> Counter[int]:
    """Post every reading at its simulated time; the retry function polls every POLL_EVERY_S."""
    answers: Counter[int] = Counter()
    # The loop plays the batching window itself (a batch every POLL_EVERY_S of the fleet's time):
    # the poller waiting for a full batch would move the clock while no webhook arrives.
    stack.poller.batching_window_s = 0
    start = clock.now()
    next_poll = start + POLL_EVERY_S
    began = time.monotonic()
    for minute in range(minutes):
        # Progress on stderr: a simulated hour takes long on a shared machine.
        print(f"minute {minute}: {time.monotonic() - began:.0f} s", file=sys.stderr, flush=True)
        for device in range(devices):
            at = start + minute * 60 + device * 60 / devices
            while next_poll <= at:
                _catch_up(next_poll)
                stack.poller.deliver_ready()
                next_poll += POLL_EVERY_S
            _catch_up(at)
            status, _, _ = stack.invoke(
                "POST",
                "/webhooks/chirpstack-demo?event=up",
                headers=HEADERS,
                body=reading(device, minute, at),
            )
            answers[status] += 1
    stack.drain(step_s=POLL_EVERY_S)
    return answers


def _catch_up(at: float) -> None:
    """Simulated time to `at` (it never goes back: a slow machine only runs late)."""
    behind = at - clock.now()
    if behind > 0:
        advance(behind)


def per_minute(calls: list[dict[str, Any]], start: float) -> list[int]:
    counts = Counter(int((c["at"] - start) // 60) for c in calls if c.get("status") != 429)
    return [counts.get(m, 0) for m in range(max(counts, default=-1) + 1)]


def most_in_any(calls: list[dict[str, Any]], window_s: float) -> int:
    """The most admitted calls in any `window_s` seconds (a sliding window, not calendar minutes)."""
    times = sorted(c["at"] for c in calls if c.get("status") != 429)
    most, first = 0, 0
    for last, at in enumerate(times):
        while at - times[first] >= window_s:
            first += 1
        most = max(most, last - first + 1)
    return most


def measure(devices: int, minutes: int, tier: str) -> dict[str, Any]:
    with (
        # Simulated time stands still while the functions run: the delays are what the bridge and
        # the tier allow, not how fast this machine posts 1,000 webhooks a minute.
        LocalStack(tier=tier, frozen_clock=True) as stack,
        logs_to(ROOT / "bench" / "results" / "readings.log"),
    ):
        start = clock.now()
        answers = run_fleet(stack, devices, minutes)
        state = stack.simulator.state()
        parked = [m for m in stack.queue_messages("dead-letter") if m["event"].get("reading")]
        limit = stack.simulator.rate_limit
    observations = state["observations"]
    keys = [(o["sensorId"], o["timestamp"]) for o in observations]
    delays = [o["uploadedAt"] - datetime.fromisoformat(o["timestamp"]).timestamp() for o in observations]
    uploads = [c for c in state["upload_calls"] if c["status"] == 202]
    calls = [*state["calls"], *state["upload_calls"]]
    minute_counts = per_minute(calls, start)
    return {
        "devices": devices,
        "minutes": minutes,
        "tier": tier,
        "limit_per_minute": limit.per_minute,
        "limit_per_hour": limit.per_hour,
        "readings_sent": devices * minutes,
        "webhook_answers": dict(answers),
        "observations_forwarded": len(set(keys)),
        "uploaded_twice": len(keys) - len(set(keys)),
        "readings_parked": len(parked),
        "lost": devices * minutes - len(set(keys)) - len(parked),
        "upload_calls": len(uploads),
        "integrate_calls": sum(1 for c in state["calls"] if c["status"] == 200),
        "answered_429": sum(1 for c in calls if c["status"] == 429),
        "observations_per_upload_call": round(len(observations) / max(1, len(uploads)), 1),
        "api_calls_per_minute": {
            "max": max(minute_counts, default=0),
            "mean": round(sum(minute_counts) / max(1, len(minute_counts)), 1),
            # The trial bucket admits a minute's calls at once and refills continuously: any 60 s
            # may hold up to twice the per-minute figure; the hourly cap is a sliding 3,600 s.
            "max_in_any_60_s": most_in_any(calls, 60.0),
        },
        "api_calls_max_in_any_3600_s": most_in_any(calls, 3600.0),
        "api_calls_total": sum(minute_counts),
        "delay_measured_to_uploaded_s": summary(delays),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--minutes", type=int, default=60)
    parser.add_argument("--tier", default="trial")
    parser.add_argument("--name", default="readings", help="results file: bench/results/<name>.json")
    args = parser.parse_args()
    aws_calls_wait_in_real_time()
    result = measure(args.devices, args.minutes, args.tier)
    path = write(args.name, result)
    per_min, delay = result["api_calls_per_minute"], result["delay_measured_to_uploaded_s"]
    print(
        f"readings: {args.devices} devices x {args.minutes} min on {args.tier} -> "
        f"{result['observations_forwarded']} observations forwarded in {result['upload_calls']} upload calls "
        f"({result['observations_per_upload_call']} per call); API calls/min max {per_min['max']} "
        f"mean {per_min['mean']}, most in any 60 s {per_min['max_in_any_60_s']} "
        f"(limit {result['limit_per_minute']}/min as a bucket), {result['api_calls_total']} in all "
        f"(limit {result['limit_per_hour']}/h), answered 429 {result['answered_429']}; "
        f"delay p50 {delay['p50']} s p99 {delay['p99']} s; "
        f"lost {result['lost']}, uploaded twice {result['uploaded_twice']}"
    )
    print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
