"""A join storm: N new devices from several sources all join within one second, against the
simulated API at a given tier, with several webhook instances at once (each thread is one Lambda
instance, with its own copy of the limiter's remembered state; all share moto's DynamoDB, so the
limiter's budget is one). Simulated time stands still while the functions run and moves only
while all work waits, so the figures are what the limits allow, not what this machine's speed
allows; the SQS event source's batching window is modelled (template.yaml's). The webhook
instances are warm (each answered one ignored webhook first; bench.cold_start measures cold).

Reports the time until every device is in Sensor Data, API calls, the share answered 429,
devices per call, parked, lost and duplicates, and two floors: one device per call (N / rate) and
N devices per call (N / (MAX_DEVICES_PER_CALL x rate)), with the measured time as a ratio of each.

    python -m bench.join_storm [--devices 1000] [--tier trial | --rate-limit 60] [--instances 4]
"""

from __future__ import annotations

import argparse
import json
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench.common import write
from bench.devices import join_accept
from local import virtual_time
from local.sim_rate_limit import RateLimit, add_rate_limit_arguments, rate_limit_from_args
from local.stack import LocalStack, logs_to
from sensor_bridge.runtime import clock
from sensor_bridge.sensor_data.tokens import token_provider

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events"


def chirpstack_join(index: int) -> bytes:
    body = json.loads(json.loads((EVENTS / "chirpstack-01-join.json").read_text())["body"])
    body["deviceInfo"]["deviceName"] = f"storm-{index:05d}"
    body["deviceInfo"]["devEui"] = f"{0xC0FFEE0000000000 + index:016X}"
    body["deduplicationId"] = f"storm-join-{index}"
    return json.dumps(body).encode()


def aws_iot_created(index: int) -> bytes:
    body = json.loads(json.loads((EVENTS / "aws-iot-02-thing-created.json").read_text())["body"])
    body["thingName"] = f"storm-thing-{index:05d}"
    body["thingId"] = f"storm-thing-id-{index}"
    body["eventId"] = f"storm-event-{index}"
    return json.dumps(body).encode()


SOURCES = [  # (path, token header, body for device i)
    ("/webhooks/ttn-demo", "local-ttn-token", join_accept),
    ("/webhooks/chirpstack-demo?event=join", "local-chirpstack-token", chirpstack_join),
    ("/webhooks/aws-iot-demo", "local-aws-iot-token", aws_iot_created),
]


def storm(stack: LocalStack, devices: int, instances: int) -> dict[int, int]:
    """Every device joins within one simulated second, `instances` webhook invocations at a time."""
    answered: dict[int, int] = {}
    lock = threading.Lock()

    def join(i: int) -> None:
        path, token, body = SOURCES[i % len(SOURCES)]
        headers = {"content-type": "application/json", "x-bridge-token": token}
        status, _, _ = stack.invoke("POST", path, headers=headers, body=body(i))
        with lock:
            answered[status] = answered.get(status, 0) + 1

    waves = 10  # a tenth of the devices each tenth of a second
    with ThreadPoolExecutor(max_workers=instances) as pool:
        for wave in range(waves):
            list(pool.map(join, range(wave, devices, waves)))
            virtual_time.advance(1 / waves)
    return answered


def warm(stack: LocalStack, instances: int) -> None:
    """Warm instances: each has answered a webhook (a ChirpStack status event, ignored: nothing is
    created or called) and the process holds a token, so the storm measures pacing, not the cold
    start (bench.cold_start measures that)."""
    event = json.loads((EVENTS / "chirpstack-03-status-ignored.json").read_text())
    path = f"{event['rawPath']}?{event['rawQueryString']}"

    def ignored(_: int) -> None:
        stack.invoke("POST", path, headers=event["headers"], body=event["body"].encode())

    with ThreadPoolExecutor(max_workers=instances) as pool:
        list(pool.map(ignored, range(instances)))
    token_provider.get()


def measure(stack: LocalStack, limit: RateLimit, devices: int, instances: int) -> dict[str, Any]:
    warm(stack, instances)
    started = clock.now()
    answered = storm(stack, devices, instances)
    stack.drain(step_s=1.0, max_simulated_s=7 * 24 * 3600)
    state = stack.simulator.state()
    calls = state["calls"]
    live = {d["refId"] for d in state["devices"] if not d["removed"]}
    carrying = [c for c in calls if c["status"] == 200 and c["body"]["integration"].get("devices")]
    last = max(float(c["at"]) for c in carrying) - started  # the simulator times calls on the clock
    parked = len(stack.queue_messages("dead-letter"))
    per_minute = limit.per_minute or 0
    most = int(os.environ.get("MAX_DEVICES_PER_CALL", "10"))
    floor_one = devices / (per_minute / 60)
    floor_coalesced = devices / (most * per_minute / 60)
    refused = sum(1 for c in calls if c["status"] == 429)
    return {
        "devices": devices,
        "tier": limit.tier,
        "rate_limit_per_minute": limit.per_minute,
        "rate_limit_per_hour": limit.per_hour,
        "max_devices_per_call": most,
        "webhook_instances": instances,
        "webhook_answers": answered,
        "simulated_seconds_to_deliver_all": round(last, 1),
        "api_calls": len(calls),
        "api_calls_429": refused,
        "share_429": round(refused / len(calls), 4) if calls else 0.0,
        "devices_per_call": round(
            sum(len(c["body"]["integration"]["devices"]) for c in carrying) / len(carrying), 2
        ),
        "in_sensor_data": len(live),
        "duplicates": sum(1 for r in live if state["created"].get(r, 0) > 1),
        "parked": parked,
        "lost": devices - len(live) - parked,
        "floor_one_per_call_s": round(floor_one, 1),
        "floor_coalesced_s": round(floor_coalesced, 1),
        "ratio_to_one_per_call": round(last / floor_one, 3),
        "ratio_to_coalesced": round(last / floor_coalesced, 3),
    }


def label(limit: RateLimit) -> str:
    return limit.tier if limit.tier != "custom" else f"{limit.per_minute}-per-minute"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.join_storm", description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--instances", type=int, default=4, help="concurrent webhook instances")
    parser.add_argument("--max-per-call", type=int, default=None, help="MAX_DEVICES_PER_CALL (default 10)")
    add_rate_limit_arguments(parser)
    args = parser.parse_args()
    limit = rate_limit_from_args(args)
    if not limit.limited:
        limit = RateLimit.of("trial")
    if args.max_per_call is not None:
        os.environ["MAX_DEVICES_PER_CALL"] = str(args.max_per_call)
    name = f"join_storm_{label(limit)}_{args.devices}" + (
        f"_n{args.max_per_call}" if args.max_per_call else ""
    )
    with (
        LocalStack(
            tier=limit.tier,
            rate_limit_per_minute=limit.per_minute,
            rate_limit_per_hour=limit.per_hour,
            frozen_clock=True,
        ) as stack,
        logs_to(ROOT / "bench" / "results" / f"{name}.log"),
    ):
        result = measure(stack, limit, args.devices, args.instances)
    path = write(name, result)
    r = result
    print(
        f"join storm: {r['devices']} devices ({limit.describe()}), "
        f"{r['webhook_instances']} webhook instances -> all in Sensor Data after "
        f"{r['simulated_seconds_to_deliver_all']} s simulated "
        f"({r['ratio_to_coalesced']}x the coalesced floor {r['floor_coalesced_s']} s, "
        f"{r['ratio_to_one_per_call']}x the one-per-call floor {r['floor_one_per_call_s']} s); "
        f"{r['api_calls']} API calls, {r['share_429']:.1%} answered 429, "
        f"{r['devices_per_call']} devices per call; "
        f"parked {r['parked']}, lost {r['lost']}, duplicates {r['duplicates']}"
    )
    print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
