"""Chaos: webhooks on all six platforms (device announcements, deletions, uplinks with readings),
with duplicates, reordering and concurrent deliveries, through the real handlers on the local
stack (moto server, the Sensor Data simulator over real HTTP, the retry function run by the
poller), while everything around the bridge goes wrong:

- the simulator answers 429, 500, 503, times out, drops connections, and drops the answer after
  it applied the change (`/_sim/faults`), on integrate calls, node listings, uploads and the
  raw-data queries alike;
- DynamoDB throttles (`ProvisionedThroughputExceededException`, `ThrottlingException`), SQS's
  SendMessage is out for a while, and invocations of both functions are killed at their deadline
  (bench/chaos_aws.py: botocore and httpx hooks on the process's clients);
- a platform resends what got a 5xx or no answer at all, byte for byte, as it would.

Then the faults stop, the retry queue drains, and the ledger (bench/chaos_ledger.py): webhooks
sent, accepted (2xx), devices expected, integrated, deleted and removed, parked (with reasons),
readings accepted and uploaded, lost (must be 0) and created twice in Sensor Data, devices or
nodes (must be 0), and every answer by status.

    python -m bench.chaos [--webhooks 2000] [--seed 0] [--instances 4]
"""

from __future__ import annotations

import argparse
import contextlib
import heapq
import random
import sys
import threading
import time
from collections import Counter, deque
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.chaos_aws import AwsFaults, Killed
from bench.chaos_ledger import Ledger
from bench.chaos_traffic import Delivery, traffic
from bench.common import write
from local.stack import LocalStack, logs_to

ROOT = Path(__file__).resolve().parent.parent
WAVE = 16  # webhooks sent between two looks at the faults
WAVES_PER_PHASE = 6
RESEND_AFTER_S = 5.0  # real seconds: the bridge's Retry-After for an event still in progress
MOST_SENDS = 15  # a platform gives up after this many (Event Grid retries for a day)
# (name, share of DynamoDB requests throttled, SQS SendMessage down)
PHASES = [
    ("calm AWS", 0.0, False),
    ("DynamoDB throttling", 0.15, False),
    ("SQS outage", 0.0, True),
    ("throttling and SQS outage", 0.15, True),
]
KILL_SHARE = 0.04
# The simulator's faults (docs/SIMULATOR.md), drawn for each wave. The bridge's API timeout is
# API_TIMEOUT_SECONDS (2 s): a 2.3 s latency is a timeout, and the call is still applied.
SIMULATOR_FAULTS: list[tuple[str, dict[str, Any]]] = [
    ("429", {"status": 429, "retry_after": "2"}),
    ("500", {"status": 500}),
    ("503", {"status": 503}),
    ("timeout (applied late)", {"latency_ms": 2300}),
    ("connection dropped", {"drop": True}),
    ("502 after apply", {"status": 502, "after_apply": True}),
    ("dropped after apply", {"drop": True, "after_apply": True}),
    ("timeout after apply", {"drop": True, "after_apply": True, "latency_ms": 2300}),
]
FAULTS_PER_WAVE = 4
# Which calls a drawn fault meets: mostly integrate; the node listing, the readings' uploads and
# the query that looks, after an upload's lost answer, at what is stored before it is re-sent.
OPERATIONS = ("integrate", "integrate", "integrate", "nodes", "upload", "query")


@dataclass
class Chaos:
    stack: LocalStack
    aws: AwsFaults
    rng: random.Random
    simulator_faults: Counter[str] = field(default_factory=Counter)
    phases: Counter[str] = field(default_factory=Counter)
    phase: str = PHASES[0][0]

    def set_wave(self, wave: int) -> None:
        name, throttle, sqs_down = PHASES[(wave // WAVES_PER_PHASE) % len(PHASES)]
        self.phases[name] += 1
        self.phase = name
        self.aws.throttle_share, self.aws.sqs_down, self.aws.kill_share = throttle, sqs_down, KILL_SHARE
        simulator = self.stack.simulator
        simulator.clear_faults()
        for _ in range(FAULTS_PER_WAVE):
            label, fault = self.rng.choice(SIMULATOR_FAULTS)
            operation = self.rng.choice(OPERATIONS)
            self.simulator_faults[label] += 1
            simulator.inject({**fault, "operation": operation})

    def calm(self) -> None:
        self.aws.calm()
        self.stack.simulator.clear_faults()

    def send(self, delivery: Delivery) -> None:
        """One attempt, as the platform makes it: an answer, or none (the invocation was killed:
        API Gateway answers the platform 5xx after the function's timeout)."""
        self.aws.arm()
        phase = self.phase  # the faults this send meets, though the wave may change while it runs
        try:
            status, _, answer = self.stack.invoke(
                delivery.method, delivery.path, headers=delivery.signed(), body=delivery.body
            )
        except Killed:
            delivery.answers.append("killed")
            delivery.sends.append(f"{phase}: killed")
            return
        finally:
            self.aws.disarm()
        delivery.answers.append(status)
        delivery.answer = answer
        error = answer.get("error") if isinstance(answer, dict) else None
        code = error.get("code", "") if isinstance(error, dict) else ""
        delivery.sends.append(f"{phase}: {status} {code}".rstrip())


def resend_wanted(delivery: Delivery) -> bool:
    last = delivery.answers[-1]
    failed = last == "killed" or (isinstance(last, int) and last >= 500)
    return failed and len(delivery.answers) < MOST_SENDS


def send_all(chaos: Chaos, deliveries: list[Delivery], instances: int) -> int:
    """Every delivery, `instances` at a time (a new one starts as soon as one ends), the
    platforms' resends included; the faults change every WAVE sends. The number of waves."""
    fresh = deque(deliveries)
    resends: list[tuple[float, int, Delivery]] = []
    running: dict[Future[None], Delivery] = {}
    sends = 0
    with ThreadPoolExecutor(max_workers=instances) as pool:
        while fresh or resends or running:
            while len(running) < instances and (nxt := _next(fresh, resends)) is not None:
                if sends % WAVE == 0:
                    chaos.set_wave(sends // WAVE)
                sends += 1
                running[pool.submit(chaos.send, nxt)] = nxt
            if not running:
                time.sleep(0.2)
                continue
            done, _ = wait(running, timeout=0.5, return_when=FIRST_COMPLETED)
            for future in done:
                delivery = running.pop(future)
                future.result()
                if resend_wanted(delivery):
                    heapq.heappush(resends, (time.monotonic() + RESEND_AFTER_S, delivery.number, delivery))
    return sends // WAVE + 1


def _next(fresh: deque[Delivery], resends: list[tuple[float, int, Delivery]]) -> Delivery | None:
    if resends and resends[0][0] <= time.monotonic():
        return heapq.heappop(resends)[2]
    return fresh.popleft() if fresh else None


def run_retry_function(stack: LocalStack, stop: threading.Event) -> None:
    """The event source mapping, all along: a batch whenever one is due; simulated time moves a
    second whenever none is."""
    while not stop.is_set():
        if not stack.poll_once():
            stack.advance(1.0)
            stop.wait(0.05)


def run(webhooks: int, seed: int, instances: int) -> dict[str, Any]:
    rng = random.Random(seed)
    log = ROOT / "bench" / "results" / "chaos.log"
    with LocalStack(tier="trial") as stack, logs_to(log), contextlib.redirect_stderr(sys.stdout):
        aws = AwsFaults(random.Random(seed + 1))
        aws.install()
        stack.poller.handler = aws.killable(stack.poller.handler)
        chaos = Chaos(stack, aws, rng)
        deliveries = traffic(webhooks, rng)
        stop = threading.Event()
        poller = threading.Thread(target=run_retry_function, args=(stack, stop), daemon=True)
        started = time.monotonic()
        poller.start()
        try:
            waves = send_all(chaos, deliveries, instances)
        finally:
            stop.set()
            poller.join()
        sent = time.monotonic() - started
        chaos.calm()
        stack.drain(max_simulated_s=7 * 24 * 3600)
        ledger = Ledger.of(stack, deliveries)
        api = stack.simulator.state()
        seconds = time.monotonic() - started
    return {
        "webhooks": webhooks,
        "seed": seed,
        "instances": instances,
        "waves": waves,
        "seconds": round(seconds, 1),
        "seconds_sending": round(sent, 1),
        **ledger.to_json(),
        "aws_faults_injected": dict(sorted(aws.injected.items())),
        "simulator_faults_queued": dict(sorted(chaos.simulator_faults.items())),
        # What the readings' calls met: an upload answered 0 was dropped, "applied" ones stored.
        "upload_calls": _by_status(api["upload_calls"]),
        "query_calls": _by_status(api["query_calls"]),
        "stored_twice_examples": _stored_twice(api),
        "waves_per_phase": dict(chaos.phases),
    }


def _by_status(calls: list[dict[str, Any]]) -> dict[str, int]:
    counted = Counter(str(c["status"]) + (" applied" if c.get("applied") else "") for c in calls)
    return dict(sorted(counted.items()))


def _stored_twice(api: dict[str, Any], most: int = 5) -> list[dict[str, Any]]:
    """For a few observations stored more than once: the upload and query calls that named them
    (status, applied, when), to tell which path sent them again."""
    seen = Counter((o["sensorId"], o["timestamp"]) for o in api["observations"])
    twice = [key for key, n in seen.items() if n > 1][:most]
    examples = []
    for sensor_id, timestamp in twice:
        uploads = [
            (c["status"], bool(c.get("applied")), round(c["at"], 1))
            for c in api["upload_calls"]
            if any(
                (o.get("sensorId"), o.get("timestamp")) == (sensor_id, timestamp) for o in _observations(c)
            )
        ]
        queries = [
            (c["status"], round(c["at"], 1))
            for c in api["query_calls"]
            if isinstance(c["body"], dict) and sensor_id in c["body"].get("sensorIds", [])
        ]
        examples.append(
            {"sensorId": sensor_id, "timestamp": timestamp, "uploads": uploads, "queries": queries}
        )
    return examples


def _observations(call: dict[str, Any]) -> list[dict[str, Any]]:
    body = call["body"]
    return body.get("observations", []) if isinstance(body, dict) else []


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__.split("\n\n")[0])
    parser.add_argument("--webhooks", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--instances", type=int, default=4, help="concurrent webhook invocations")
    args = parser.parse_args()
    result = run(args.webhooks, args.seed, args.instances)
    path = write("chaos", result)
    print(result_line(result))
    print(f"wrote {path.relative_to(ROOT)}")


def result_line(r: dict[str, Any]) -> str:
    statuses = " ".join(f"{k}:{v}" for k, v in r["answers_by_status"].items())
    return (
        f"chaos: {r['webhooks']} webhooks ({r['sends']} sends, seed {r['seed']}) in {r['seconds']:.0f} s: "
        f"accepted={r['accepted']} devices_expected={r['devices_expected']} "
        f"integrated={r['integrated']} deletions={r['deletions_expected']} removed={r['removed']} "
        f"parked={r['parked']} readings={r['readings_accepted']} uploaded={r['readings_uploaded']} "
        f"lost={r['lost']} "
        f"duplicates={r['duplicates']} answers {statuses}"
    )


if __name__ == "__main__":
    main()
