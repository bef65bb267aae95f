"""Runs every benchmark and prints the README's table from their JSON results.

make bench        (or: python -m bench.run_all)
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from bench.common import RESULTS

# bench.cost reads bench.cold_start's results: it runs after it.
BENCHMARKS = [
    "bench.cold_start",
    "bench.cost",
    "bench.webhook_latency",
    "bench.burst",
    "bench.event_grid_batch",  # 1,400 events in one POST, then the retry function: minutes here
    "bench.simulator_scale",
    "bench.fuzz",
    "bench.devices_per_call",
    "bench.chaos",  # 2,000 webhooks under faults: about 20 minutes here
    # 1,000 devices for a simulated hour: 60,000 webhooks, about 70 minutes on this 2-core machine.
    "bench.readings",
]
# The README's join-storm rows: (devices, rate-limit flags). The 10,000-device rows take minutes.
JOIN_STORMS = [
    (1000, ["--tier", "trial"]),
    (10000, ["--tier", "trial"]),
    (1000, ["--tier", "paid"]),
    (10000, ["--tier", "paid"]),
    (1000, ["--rate-limit", "60"]),
    (1000, ["--rate-limit", "1"]),
]
COST_ITEMS = [
    ("api_gateway", "API Gateway HTTP API"),
    ("lambda_requests", "Lambda requests"),
    ("lambda_duration", "Lambda duration (GB-s, arm64)"),
    ("dynamodb", "DynamoDB on-demand (WRU, RRU)"),
    ("sqs", "SQS requests"),
    ("secrets_manager", "Secrets Manager calls"),
    ("cloudwatch_logs", "CloudWatch Logs ingestion"),
    ("xray", "X-Ray traces"),
    ("total", "**total**"),
]


def table() -> str:
    cold = json.loads((RESULTS / "cold_start.json").read_text())
    latency = json.loads((RESULTS / "webhook_latency.json").read_text())
    rows = ["| measure | p50 (or result) | p90/p99 (or detail) | notes |", "|---|---|---|---|"]
    for r in cold["imports"]:
        rows.append(
            f"| cold start: import `{r['handler']}` / import its dependencies alone | ratio {r['ratio']} "
            f"| {r['handler_import_ms']['p50']} ms / {r['deps_import_ms']['p50']} ms "
            f"| medians of {cold['pairs']} alternating pairs, {cold['interpreter']}, sampled-tracing env |"
        )
    bytecode = cold["bytecode"]
    rows.append(
        f"| cold start: `webhook_handler` import CPU with bytecode / without "
        f"| {bytecode['with_bytecode_cpu_ms']['p50']} ms | {bytecode['without_bytecode_cpu_ms']['p50']} ms "
        f"| without: what SAM's python3.13 builder ships (no .pyc); with: layers/bridge/Makefile |"
    )
    first = cold["first_request"]
    rows.append(
        f"| fresh webhook process: import + first request (new device) | {first['import_ms']} ms "
        f"+ {first['first_request_ms']} ms | second request {first['second_request_ms']} ms "
        f"| medians of {first['processes']} processes, {cold['interpreter']}, traced |"
    )
    new, repeat = latency["new_device_ms"], latency["repeat_device_ms"]
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
    cost = json.loads((RESULTS / "cost.json").read_text())
    usd = cost["dollars_per_million"]
    rows.append(
        f"| cost per million new-device onboardings | ${usd['new_device']['total']} "
        f"| repeats ${usd['repeat']['total']}, retried devices ${usd['retried_device']['total']} "
        f"| {cost['memory_mb']} MB arm64, us-east-1 list prices; assumptions in the cost table |"
    )
    burst = json.loads((RESULTS / "burst.json").read_text())
    rows.append(
        f"| burst: {burst['devices']} new devices at {burst['rate_limit_per_minute']} requests/min "
        f"| {burst['simulated_seconds_to_deliver_all']} s to deliver all (simulated) "
        f"| {burst['api_calls']} API calls, {burst['api_calls_429']} of them 429 "
        f"| created twice {burst['devices_created_twice']}, parked {burst['devices_parked']}, "
        f"lost {burst['devices_lost']} |"
    )
    scale = json.loads((RESULTS / "simulator_scale.json").read_text())
    update, upload = scale["integrate_update_one_device"], scale["upload_one_observation"]
    rows.append(
        f"| simulator holding {scale['devices_held']} devices vs none: one-device integrate, "
        f"one-observation upload | ratio {update['ratio_of_medians']}, {upload['ratio_of_medians']} "
        f"| {update['full_ms']['p50']} ms vs {update['empty_ms']['p50']} ms; "
        f"{upload['full_ms']['p50']} ms vs {upload['empty_ms']['p50']} ms "
        f"| medians of {scale['pairs']} alternating pairs |"
    )
    rows.append(event_grid_batch_row())
    rows.append(fuzz_row())
    rows.append(chaos_row())
    rows.append(_readings_row(json.loads((RESULTS / "readings.json").read_text())))
    return "\n".join(rows)


def fuzz_row() -> str:
    fuzz = json.loads((RESULTS / "fuzz.json").read_text())
    accepted = sum(n for status, n in fuzz["statuses"].items() if int(status) < 300)
    return (
        f"| fuzz: {fuzz['requests']} hostile requests (hypothesis, seed {fuzz['seed']}), every platform "
        f"and auth type | 5xx {fuzz['server_errors_5xx']} "
        f"| API calls from refused requests {fuzz['downstream_calls_from_refused_requests']}, "
        f"control/bidi characters at the API {fuzz['unsafe_characters_that_reached_the_simulator']}, "
        f"answers without the error shape {fuzz['answers_without_error_shape']} "
        f"| {accepted} accepted, {fuzz['integrate_calls']} integrate calls checked |"
    )


def event_grid_batch_row() -> str:
    r = json.loads((RESULTS / "event_grid_batch.json").read_text())
    return (
        f"| Event Grid batch: {r['events']} events ({r['body_bytes'] // 1000} KB) in one POST, "
        f"{r['function_timeout_seconds']:g} s function budget | answered {r['answer_status']} in "
        f"{r['answer_seconds']} s (moto's SQS alone: {r['seconds_to_queue_as_many_alone']} s for as many) "
        f"| all in Sensor Data after {r['seconds_until_all_in_sensor_data']} s, "
        f"{r['api_calls']} API calls; resend {r['resend_status']} in {r['resend_answer_seconds']} s, "
        f"{r['resend_api_calls']} calls | created twice {r['devices_created_twice_after_resend']}, lost "
        f"{r['devices_lost']}; load average {r['load_average_1min'][0]} |"
    )


def chaos_row() -> str:
    r = json.loads((RESULTS / "chaos.json").read_text())
    statuses = ", ".join(f"{status} {n}" for status, n in r["answers_by_status"].items())
    return (
        f"| chaos: {r['webhooks']} webhooks on all six platforms (seed {r['seed']}), simulator and AWS "
        f"faults, kills | lost {r['lost']}, duplicates {r['duplicates']} "
        f"| accepted {r['accepted']}, devices expected {r['devices_expected']}, integrated "
        f"{r['integrated']}, deleted {r['deletions_expected']} (removed {r['removed']}), parked "
        f"{r['parked']}, readings {r['readings_accepted']} (uploaded {r['readings_uploaded']}) "
        f"| {r['sends']} sends: {statuses} |"
    )


def _readings_row(r: dict[str, Any]) -> str:
    per_minute, delay = r["api_calls_per_minute"], r["delay_measured_to_uploaded_s"]
    return (
        f"| readings: {r['devices']} devices x {r['minutes']} min, a reading a minute each, "
        f"{r['tier']} tier | {r['observations_forwarded']} observations forwarded, "
        f"{r['observations_per_upload_call']} per upload call "
        f"| measured to uploaded p50 {delay['p50']} s, p99 {delay['p99']} s; API calls "
        f"{r['api_calls_total']} ({r['integrate_calls']} integrate, {r['upload_calls']} upload), "
        f"most in any 60 s {per_minute['max_in_any_60_s']} (limit {r['limit_per_minute']}/min as a "
        f"bucket), in any hour {r['api_calls_max_in_any_3600_s']} (limit {r['limit_per_hour']}), "
        f"answered 429 {r['answered_429']} "
        f"| lost {r['lost']}, uploaded twice {r['uploaded_twice']}, parked {r['readings_parked']} |"
    )


def cost_table() -> str:
    cost = json.loads((RESULTS / "cost.json").read_text())
    paths = cost["paths"]
    per = cost["dollars_per_million"]
    names = ("new_device", "repeat", "retried_device")
    rows = [
        "| $ per million | new-device onboardings | repeats (known device, no call) | retried devices |",
        "|---|---|---|---|",
    ]
    for key, label in COST_ITEMS:
        rows.append(f"| {label} | " + " | ".join(f"{per[n][key]:.3f}" for n in names) + " |")
    rows.append(
        "| measured: AWS requests, WRU / RRU per device | "
        + " | ".join(
            f"{sum(paths[n]['requests_per_device'].values()):g}, "
            f"{paths[n]['wru_per_device']:g} / {paths[n]['rru_per_device']:g}"
            for n in names
        )
        + " |"
    )
    rows.append(
        "| measured: handler CPU ms, log bytes per device | "
        + " | ".join(
            f"{paths[n]['webhook_cpu_ms_p50'] + paths[n]['retry_cpu_ms_p50']:.1f}, "
            f"{paths[n]['log_bytes_per_device']:.0f}"
            for n in names
        )
        + " |"
    )
    rows.append(
        "| billed ms per device (derived) | "
        + " | ".join(f"{per[n]['billed_ms_per_device']}" for n in names)
        + " |"
    )
    return "\n".join(rows)


def _real_time(r: dict[str, Any]) -> str:
    """How long the webhooks took on this machine (simulated time does not count it)."""
    real = r.get("webhook_real_seconds")
    if real is None:
        return "not measured"
    return f"{real['p50']} s / {real['max']} s ({r['webhooks_past_their_time_budget_real']})"


def join_storm_table() -> str:
    rows = [
        "| devices | limit | time to all in Sensor Data | / coalesced floor | / one-per-call floor "
        "| API calls | answered 429 | devices per call | parked | lost | duplicates "
        "| webhook real time p50 / max (past 3 s) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for devices, flags in JOIN_STORMS:
        label = flags[1] if flags[0] == "--tier" else f"{flags[1]}-per-minute"
        path = RESULTS / f"join_storm_{label}_{devices}.json"
        if not path.exists():
            continue
        r = json.loads(path.read_text())
        hour = f" + {r['rate_limit_per_hour']}/h" if r["rate_limit_per_hour"] else ""
        rows.append(
            f"| {devices:,} | {r['rate_limit_per_minute']}/min{hour} "
            f"| {r['simulated_seconds_to_deliver_all']} s "
            f"| {r['ratio_to_coalesced']} ({r['floor_coalesced_s']} s) "
            f"| {r['ratio_to_one_per_call']} ({r['floor_one_per_call_s']} s) | {r['api_calls']} "
            f"| {r['share_429']:.1%} | {r['devices_per_call']} | {r['parked']} | {r['lost']} "
            f"| {r['duplicates']} | {_real_time(r)} |"
        )
    return "\n".join(rows)


def main() -> None:
    for command in BENCHMARKS:
        subprocess.run([sys.executable, "-m", *command.split()], check=True)
    for devices, flags in JOIN_STORMS:
        storm = ["-m", "bench.join_storm", "--devices", str(devices), *flags]
        subprocess.run([sys.executable, *storm], check=True)
    print()
    print(table())
    print()
    print(cost_table())
    print()
    print(join_storm_table())


if __name__ == "__main__":
    main()
