"""Dollars per million: new-device onboardings, repeats of a known device (no API call) and
devices that went through the retry queue, from what one run on the local stack measures.

Measured here, per path: the AWS requests the functions make (every botocore call is counted),
DynamoDB capacity units from the items' real sizes, the bytes of logs and EMF metrics the
functions print (what CloudWatch Logs ingests) and the handlers' durations. The memory size is the
template's; the init duration comes from bench/results/cold_start.json. What one machine cannot
measure is an assumption on the command line, printed with the result: the Sensor Data API's own
latency and each AWS call's network time (loopback here), the share of invocations that are cold
starts, the X-Ray sampling rate, and the webhook rate one execution environment serves (secrets
are fetched once per SECRETS_MAX_AGE_SECONDS per environment).

    python -m bench.cost [--devices 30] [--api-latency-ms 150] [--aws-latency-ms 5] [--cold-share 0.01]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from bench.aws_meter import AwsMeter, metered
from bench.common import RESULTS, write
from bench.devices import join_accept
from local.lambda_tracing import ROOT
from local.stack import LocalStack, logs_to

# Public list prices: us-east-1, arm64, on-demand, past the free tiers, first volume tier. Each
# checked on 2026-12-01 against the page named beside it (and a second public copy of its figures).
PRICES_DATE = "2026-12-01 (DynamoDB on-demand after its 2024-11-01 cut; Lambda INIT billed since 2025-08-01)"
PRICES = {
    # aws.amazon.com/api-gateway/pricing: HTTP APIs, first 300 M requests a month (512 KB each)
    "apigw_http_request": 1.00 / 1e6,
    # aws.amazon.com/lambda/pricing: $0.20 per 1 M requests, either architecture
    "lambda_request": 0.20 / 1e6,
    # aws.amazon.com/lambda/pricing: Arm, first 7.5 G GB-s a month; INIT billed alike (AWS Compute
    # Blog, "AWS Lambda standardizes billing for INIT Phase", effective 2025-08-01)
    "lambda_gb_second_arm64": 0.0000133334,
    # aws.amazon.com/dynamodb/pricing/on-demand: per write request unit (1 KB), per read request
    # unit (a strongly consistent read of 4 KB); failed conditional writes are billed too
    "dynamodb_wru": 0.625 / 1e6,
    "dynamodb_rru": 0.125 / 1e6,
    # aws.amazon.com/sqs/pricing: standard queue, first 100 G requests a month, per 64 KB chunk
    "sqs_request": 0.40 / 1e6,
    # aws.amazon.com/secrets-manager/pricing: $0.05 per 10,000 API calls ($0.40 a secret a month aside)
    "secrets_manager_call": 0.05 / 1e4,
    # aws.amazon.com/cloudwatch/pricing: Lambda logs (vended, tiered since 2025-05-01), Standard
    # class, first 10 TB a month; EMF needs Standard (Infrequent Access extracts no metrics)
    "logs_ingested_gb": 0.50,
    # aws.amazon.com/xray/pricing: per trace recorded, after 100,000 free a month
    "xray_trace_recorded": 5.00 / 1e6,
}
MEMORY_MB = 512  # template.yaml's MemorySize
PLATFORM_LOG_BYTES = 330  # START, END and REPORT lines Lambda writes per invocation (their format)
SECRETS = 2  # the credentials and the webhook secrets, each cached SECRETS_MAX_AGE_SECONDS
HEADERS = {"content-type": "application/json", "x-bridge-token": "local-ttn-webhook-token"}


class PathRun:
    """One path's samples: durations of the webhook and retry invocations and the bytes printed."""

    def __init__(self, stack: LocalStack) -> None:
        self.stack = stack
        self.webhook_ms: list[tuple[float, float]] = []  # (wall, this thread's CPU) per invocation
        self.retry_ms: list[tuple[float, float]] = []
        self.log_bytes = 0
        self.retry_batches = 0

    def webhook(self, body: bytes) -> None:
        with self._counted(self.webhook_ms):
            self.stack.invoke("POST", "/webhooks/ttn-demo", headers=HEADERS, body=body)

    def retried(self, body: bytes) -> None:
        """The API answers the webhook's call 429; the retry function delivers it later."""
        # The previous device's 429 still holds the shared limiter: past its minute, the webhook's
        # own call is admitted and meets this 429 (else the retry function would, and retry twice).
        self.stack.advance(60)
        self.stack.simulator.inject({"status": 429, "retry_after": "2"})
        self.webhook(body)
        poller = self.stack.poller
        handler, batches = poller.handler, poller.stats.batches

        def timed(event: dict[str, Any], context: Any) -> Any:
            with self._counted(self.retry_ms):
                return handler(event, context)

        poller.handler = timed
        try:
            self.stack.drain()
        finally:
            poller.handler = handler
        self.retry_batches += poller.stats.batches - batches

    def _counted(self, durations: list[tuple[float, float]]) -> Any:
        run = self

        class _Span:
            def __enter__(self) -> None:
                sys.stdout.flush()
                self.bytes, self.started = sys.stdout.tell(), time.perf_counter()
                self.cpu = time.thread_time()  # the handler's own CPU, not moto's or the simulator's

            def __exit__(self, *exc: object) -> None:
                wall, cpu = time.perf_counter() - self.started, time.thread_time() - self.cpu
                durations.append((wall * 1000, cpu * 1000))
                sys.stdout.flush()
                run.log_bytes += sys.stdout.tell() - self.bytes

        return _Span()


def _summary(run: PathRun, meter: AwsMeter, devices: int, api_calls: int) -> dict[str, Any]:
    snap = meter.snapshot()

    def p50(samples: list[tuple[float, float]], part: int) -> float:
        return round(statistics.median(s[part] for s in samples), 2) if samples else 0.0

    return {
        "webhook_ms_p50": p50(run.webhook_ms, 0),
        "webhook_cpu_ms_p50": p50(run.webhook_ms, 1),
        "retry_ms_p50": p50(run.retry_ms, 0),
        "retry_cpu_ms_p50": p50(run.retry_ms, 1),
        "retry_invocations_per_device": round(run.retry_batches / devices, 3),
        "api_calls_per_device": round(api_calls / devices, 3),
        "log_bytes_per_device": round(run.log_bytes / devices, 1),
        "requests_per_device": {k: round(v / devices, 3) for k, v in sorted(snap["requests"].items())},
        "wru_per_device": round(snap["wru"] / devices, 3),
        "rru_per_device": round(snap["rru"] / devices, 3),
    }


def measure_paths(devices: int) -> dict[str, Any]:
    rejoin = lambda i: join_accept(i).replace(b"bench-session-", b"bench-rejoin-")  # noqa: E731
    paths: dict[str, tuple[str, Callable[[int], bytes]]] = {
        "new_device": ("webhook", join_accept),
        "repeat": ("webhook", rejoin),  # a new session key: a new event, the same device
        "retried_device": ("retried", lambda i: join_accept(devices + i)),
    }
    results = {}
    with LocalStack() as stack, logs_to(RESULTS / "cost.log"):
        PathRun(stack).webhook(join_accept(10_000))  # the process's first call: clients, token, node
        for name, (kind, body) in paths.items():
            run, calls = PathRun(stack), len(stack.simulator.state()["calls"])
            with metered(ignore=(stack.poller._sqs,)) as meter:
                for i in range(devices):
                    getattr(run, kind)(body(i))
            calls = len(stack.simulator.state()["calls"]) - calls
            results[name] = _summary(run, meter, devices, calls)
    return results


# At 1,769 MB a function has the equivalent of one vCPU; below, its CPU time stretches in proportion.
FULL_VCPU_MB = 1769


def cpu_on_lambda(cpu_ms: float, memory_mb: int) -> float:
    """CPU time measured on a full core, as wall time on Lambda at memory_mb (same core speed)."""
    return cpu_ms * max(1.0, FULL_VCPU_MB / memory_mb)


def dollars(
    path: dict[str, Any], assume: argparse.Namespace, cold: dict[str, float], memory_mb: int
) -> dict[str, float]:
    """Dollars per million devices on this path, by item."""
    req = path["requests_per_device"]
    retries = path["retry_invocations_per_device"]
    api_calls = path["api_calls_per_device"]
    aws_calls = sum(req.values())
    # Billed time: the handlers' own CPU (measured), stretched by Lambda's CPU share, plus the
    # round trips they wait on (assumed: loopback to moto here says nothing about AWS's latency).
    billed_ms = (
        cpu_on_lambda(path["webhook_cpu_ms_p50"] + retries * path["retry_cpu_ms_p50"], memory_mb)
        + aws_calls * assume.aws_latency_ms
        + api_calls * assume.api_latency_ms
        + assume.cold_share * (1 + retries) * cpu_on_lambda(cold["cpu_ms"], memory_mb)
    )
    invocations = 1 + retries
    sqs = sum(v for k, v in req.items() if k.startswith("sqs.")) + 2 * retries  # + ESM receive, delete
    secrets_calls = SECRETS / (assume.secrets_max_age_s * assume.webhooks_per_second)
    log_bytes = path["log_bytes_per_device"] + invocations * PLATFORM_LOG_BYTES
    items = {
        "api_gateway": PRICES["apigw_http_request"],
        "lambda_requests": invocations * PRICES["lambda_request"],
        "lambda_duration": billed_ms / 1000 * memory_mb / 1024 * PRICES["lambda_gb_second_arm64"],
        "dynamodb": path["wru_per_device"] * PRICES["dynamodb_wru"]
        + path["rru_per_device"] * PRICES["dynamodb_rru"],
        "sqs": sqs * PRICES["sqs_request"],
        "secrets_manager": secrets_calls * PRICES["secrets_manager_call"],
        "cloudwatch_logs": log_bytes / 1e9 * PRICES["logs_ingested_gb"],
        "xray": assume.xray_sampling * invocations * PRICES["xray_trace_recorded"],
    }
    per_million = {k: round(v * 1e6, 4) for k, v in items.items()}
    per_million["total"] = round(sum(items.values()) * 1e6, 3)
    per_million["billed_ms_per_device"] = round(billed_ms, 1)
    return per_million


def _at_memory(
    paths: dict[str, Any], assume: argparse.Namespace, cold: dict[str, float], mb: int
) -> dict[str, float]:
    """Cost per million of each path at mb, and how long a cold webhook takes to answer a new
    device (init and first request: CPU stretched by the CPU share, plus the same waits)."""
    totals = {name: dollars(p, assume, cold, mb)["total"] for name, p in paths.items()}
    new = paths["new_device"]
    waits = sum(new["requests_per_device"].values()) * assume.aws_latency_ms + assume.api_latency_ms
    totals["cold_new_device_answer_ms"] = round(
        cpu_on_lambda(cold["cpu_ms"] + new["webhook_cpu_ms_p50"], mb) + waits
    )
    return totals


def cold_init() -> dict[str, float]:
    """The CPU a cold start adds (bench.cold_start): the import, and the first request's extra."""
    first = json.loads((RESULTS / "cold_start.json").read_text())["first_request"]
    return {
        "wall_ms": first["import_ms"] + first["first_request_ms"] - first["second_request_ms"],
        "cpu_ms": first["import_cpu_ms"] + first["first_request_cpu_ms"] - first["second_request_cpu_ms"],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--devices", type=int, default=30)
    parser.add_argument(
        "--api-latency-ms", type=float, default=150.0, help="assumed: the API's own time per call"
    )
    parser.add_argument("--aws-latency-ms", type=float, default=6.0, help="assumed: per AWS call, in-region")
    parser.add_argument(
        "--cold-share", type=float, default=0.01, help="assumed: invocations that are cold starts"
    )
    parser.add_argument(
        "--xray-sampling", type=float, default=0.05, help="X-Ray's default: 1/s, then 5 percent"
    )
    parser.add_argument("--webhooks-per-second", type=float, default=1.0, help="assumed: per environment")
    parser.add_argument("--secrets-max-age-s", type=float, default=300.0, help="SECRETS_MAX_AGE_SECONDS")
    args = parser.parse_args()
    paths = measure_paths(args.devices)
    cold = cold_init()
    by_memory = {mb: _at_memory(paths, args, cold, mb) for mb in (256, 384, 512, 768, 1024, 1769)}
    costs = {name: dollars(p, args, cold, MEMORY_MB) for name, p in paths.items()}
    assumptions = {k: v for k, v in vars(args).items() if k != "devices"}
    path = write(
        "cost",
        {
            "prices": PRICES,
            "prices_date": PRICES_DATE,
            "memory_mb": MEMORY_MB,
            "assumptions": assumptions,
            "devices": args.devices,
            "cold_start": cold,
            "paths": paths,
            "dollars_per_million": costs,
            "total_by_memory_mb": by_memory,
        },
    )
    print(
        f"cost per million at {MEMORY_MB} MB arm64 (us-east-1, prices {PRICES_DATE[:7]}): "
        f"new-device onboardings ${costs['new_device']['total']}, repeats ${costs['repeat']['total']}, "
        f"retried devices ${costs['retried_device']['total']} (assumed: API {args.api_latency_ms} ms a call, "
        f"AWS {args.aws_latency_ms} ms a call, "
        f"{args.cold_share:.0%} cold starts, X-Ray {args.xray_sampling:.0%} sampled)"
    )
    print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
