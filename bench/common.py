"""Shared bits of the benchmarks: percentiles, writing results, and AWS calls that wait for moto."""

from __future__ import annotations

import json
import platform
import statistics
import sys
from pathlib import Path
from typing import Any

from sensor_bridge.store import aws_clients

RESULTS = Path(__file__).resolve().parent / "results"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def summary(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50": round(percentile(values, 50), 2),
        "p90": round(percentile(values, 90), 2),
        "p99": round(percentile(values, 99), 2),
        "mean": round(statistics.fmean(values), 2) if values else float("nan"),
    }


def write(name: str, result: dict[str, Any]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    result = {
        "benchmark": name,
        "python": sys.version.split()[0],
        "machine": platform.machine(),
        **result,
    }
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return path


# Simulated time stands still while a function runs, so no AWS call takes any of it; but moto
# answers in real seconds, which this shared machine stretches: a botocore read timeout counted
# in them answered webhooks 503 (and queued devices) that DynamoDB answers in milliseconds.
# The calls keep their attempts; each attempt may wait this long in real time.
REAL_TIMEOUT_S = 120.0


def aws_calls_wait_in_real_time() -> None:
    """Every AWS client the bridge makes from now on waits up to REAL_TIMEOUT_S per attempt."""
    made = aws_clients.client_config

    def patient(limits: aws_clients.CallLimits = aws_clients.DEFAULT_LIMITS) -> Any:
        return made(aws_clients.CallLimits(REAL_TIMEOUT_S, REAL_TIMEOUT_S, limits.attempts))

    aws_clients.client_config = patient
