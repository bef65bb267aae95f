"""A join storm: N new devices from several sources all join within one second, against the
simulated API at a given tier, with several webhook instances at once (each thread is one Lambda
instance, with its own copy of the limiter's remembered state; all share moto's DynamoDB, so the
limiter's budget is one). Simulated time stands still while the functions run and moves only
while all work waits, so the figures are what the limits allow, not what this machine's speed
allows; the SQS event source's batching window is modelled (template.yaml's). The functions'
time budgets run on the same simulated clock (else a loaded machine would queue devices a
deployment sends at once); how long each webhook took in real time is reported beside, with how
many ran past their budget's time for calls. The webhook instances are warm (each answered one
ignored webhook first; bench.cold_start measures cold).

Reports the time until every device is in Sensor Data, API calls, the share answered 429,
devices per call (and the calls that carried fewer than the most, and node creations), why
webhooks queued their device, parked, lost and duplicates, and two floors: one device per call (N / rate) and
N devices per call (N / (MAX_DEVICES_PER_CALL x rate)), with the measured time as a ratio of each.

    python -m bench.join_storm [--devices 1000] [--tier trial | --rate-limit 60] [--instances 4]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bench.common import aws_calls_wait_in_real_time, summary, write
from bench.devices import join_accept
from local import virtual_time
from local.apigw import LambdaContext
from local.options import StackOptions
from local.provision import LOCAL_WEBHOOK_SECRETS
from local.sim_rate_limit import RateLimit, add_rate_limit_arguments, rate_limit_from_args
from local.stack import LocalStack, logs_to
from sensor_bridge.model.config import DEFAULT_CONFIG_FILE
from sensor_bridge.runtime import clock
from sensor_bridge.runtime.budget import ANSWER_SECONDS, RESERVE_SECONDS
from sensor_bridge.runtime.settings import settings
from sensor_bridge.sensor_data.tokens import token_provider

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events"


# The API refuses (422) every REFUSED_EVERY-th device (a ChirpStack device with a profile whose
# integration id the API's catalogue does not hold); 0: none (--refused-share).
REFUSED_EVERY = 0
REFUSED_PROFILE = "Refused by the API"


def is_refused(index: int) -> bool:
    return REFUSED_EVERY > 0 and index % REFUSED_EVERY == 1  # 1 mod 3: a ChirpStack device


def refusing_config(folder: Path) -> tuple[Path, list[str]]:
    """The shipped config plus a profile the API refuses, and the integration ids it knows."""
    config = yaml.safe_load(Path(DEFAULT_CONFIG_FILE).read_text(encoding="utf-8"))
    known = sorted(set(re.findall(r"integration_id: (\w+)", yaml.safe_dump(config))))
    config["profiles"].insert(
        0,
        {
            "name": "refused",
            "match": {"platforms": ["chirpstack"], "profile_names": [REFUSED_PROFILE]},
            "sensors": [{"key": "vibration", "integration_id": "VIBRATION_SDE", "name": "Vibration"}],
        },
    )
    path = folder / "bridge.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path, known


def chirpstack_join(index: int) -> bytes:
    body = json.loads(json.loads((EVENTS / "chirpstack-01-join.json").read_text())["body"])
    if is_refused(index):
        body["deviceInfo"]["deviceProfileName"] = REFUSED_PROFILE
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


SOURCES = [  # (source, path, body for device i)
    ("ttn-demo", "/webhooks/ttn-demo", join_accept),
    ("chirpstack-demo", "/webhooks/chirpstack-demo?event=join", chirpstack_join),
    ("aws-iot-demo", "/webhooks/aws-iot-demo", aws_iot_created),
]
# The local stack's webhook invocation (template.yaml's Timeout): its calls must end a reserve before.
WEBHOOK_CALLS_S = LambdaContext("WebhookFunction").timeout_seconds - ANSWER_SECONDS - RESERVE_SECONDS


@dataclass
class Storm:
    """What the webhooks answered, why those answered 202 were queued, and how long each took on
    this machine (real seconds: simulated time stands still while a function runs)."""

    answered: dict[int, int] = field(default_factory=dict)
    queued_for: dict[str, int] = field(default_factory=dict)
    real_s: list[float] = field(default_factory=list)
    resent: int = 0  # answered 5xx and sent again
    retry_after_s: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, status: int, payload: Any, real_s: float) -> None:
        details = [
            r.get("detail", "") for r in (payload or {}).get("results", []) if r.get("status") == "queued"
        ]
        with self.lock:
            self.answered[status] = self.answered.get(status, 0) + 1
            self.real_s.append(real_s)
            for detail in details:
                self.queued_for[detail] = self.queued_for.get(detail, 0) + 1


def storm(stack: LocalStack, devices: int, instances: int) -> Storm:
    """Every device joins within one simulated second, `instances` webhook invocations at a time.
    A webhook answered 5xx is sent again after its Retry-After, as the platforms do (once)."""
    seen = Storm()
    again: list[int] = []

    def join(i: int) -> None:
        source, path, body = SOURCES[i % len(SOURCES)]
        headers = {"content-type": "application/json", "x-bridge-token": LOCAL_WEBHOOK_SECRETS[source]}
        started = time.perf_counter()
        status, answer_headers, payload = stack.invoke("POST", path, headers=headers, body=body(i))
        seen.add(status, payload, time.perf_counter() - started)
        if status >= 500:
            with seen.lock:
                again.append(i)
                seen.retry_after_s = max(
                    seen.retry_after_s,
                    float({k.lower(): v for k, v in answer_headers.items()}.get("retry-after", "1")),
                )

    waves = 10  # a tenth of the devices each tenth of a second
    began = time.perf_counter()
    with ThreadPoolExecutor(max_workers=instances) as pool:
        for wave in range(waves):
            list(pool.map(join, range(wave, devices, waves)))
            virtual_time.advance(1 / waves)
            # Progress (a 10,000-device storm takes this machine an hour): stderr, not the result.
            print(
                f"wave {wave + 1}/{waves}: {sum(seen.answered.values())} webhooks answered "
                f"{seen.answered} after {time.perf_counter() - began:.0f} s real",
                file=sys.stderr,
                flush=True,
            )
        if again:
            seen.resent = len(again)
            virtual_time.advance(seen.retry_after_s)
            list(pool.map(join, again))
    return seen


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
    seen = storm(stack, devices, instances)
    queued = len(stack.queue_messages("retry"))
    print(f"storm sent; draining the retry queue ({queued} messages)", file=sys.stderr, flush=True)
    stack.drain(step_s=1.0, max_simulated_s=7 * 24 * 3600)
    state = stack.simulator.state()
    calls = state["calls"]
    live = {d["refId"] for d in state["devices"] if not d["removed"]}
    carrying = [c for c in calls if c["status"] == 200 and c["body"]["integration"].get("devices")]
    last = max(float(c["at"]) for c in carrying) - started  # the simulator times calls on the clock
    parked = len(stack.queue_messages("dead-letter"))
    per_minute = limit.per_minute or 0
    most = settings().max_devices_per_call
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
        "webhook_answers": seen.answered,
        "webhooks_queued_for": seen.queued_for,
        "webhooks_resent_after_5xx": seen.resent,
        # Real time on this machine, which simulated time does not count: what would have made
        # a webhook queue its device for lack of time in a deployment running this slowly.
        "webhook_real_seconds": {**summary(seen.real_s), "max": round(max(seen.real_s), 2)},
        "webhooks_past_their_time_budget_real": sum(1 for t in seen.real_s if t > WEBHOOK_CALLS_S),
        "simulated_seconds_to_deliver_all": round(last, 1),
        "api_calls": len(calls),
        "api_calls_429": refused,
        "node_calls": sum(1 for c in calls if not c["body"]["integration"].get("nodeId")),
        "partial_calls": sum(1 for c in carrying if len(c["body"]["integration"]["devices"]) < most),
        "share_429": round(refused / len(calls), 4) if calls else 0.0,
        "devices_per_call": round(
            sum(len(c["body"]["integration"]["devices"]) for c in carrying) / len(carrying), 2
        ),
        "in_sensor_data": len(live),
        "duplicates": sum(1 for r in live if state["created"].get(r, 0) > 1),
        "refused_by_the_api": sum(1 for i in range(devices) if is_refused(i)),
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
    parser.add_argument(
        "--refused-share", type=float, default=0.0, help="share of devices the API refuses (422), e.g. 0.01"
    )
    add_rate_limit_arguments(parser)
    args = parser.parse_args()
    limit = rate_limit_from_args(args)
    if not limit.limited:
        limit = RateLimit.of("trial")
    if args.max_per_call is not None:
        os.environ["MAX_DEVICES_PER_CALL"] = str(args.max_per_call)
    global REFUSED_EVERY
    REFUSED_EVERY = 3 * round(1 / (3 * args.refused_share)) if args.refused_share else 0
    name = f"join_storm_{label(limit)}_{args.devices}" + (
        f"_n{args.max_per_call}" if args.max_per_call else ""
    )
    if REFUSED_EVERY:
        name += f"_refused{args.refused_share:g}"
    aws_calls_wait_in_real_time()
    with tempfile.TemporaryDirectory() as folder:
        config, known = refusing_config(Path(folder)) if REFUSED_EVERY else (None, None)
        with (
            LocalStack(
                StackOptions(config_file=config),
                tier=limit.tier,
                rate_limit_per_minute=limit.per_minute,
                rate_limit_per_hour=limit.per_hour,
                frozen_clock=True,
            ) as stack,
            logs_to(ROOT / "bench" / "results" / f"{name}.log"),
        ):
            stack.simulator.set_catalogue(known)
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
        f"parked {r['parked']}, lost {r['lost']}, duplicates {r['duplicates']}; "
        f"webhooks in real time p50 {r['webhook_real_seconds']['p50']} s, max "
        f"{r['webhook_real_seconds']['max']} s, {r['webhooks_past_their_time_budget_real']} past their "
        f"{WEBHOOK_CALLS_S:g} s for calls"
    )
    print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
