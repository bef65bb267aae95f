"""A large Azure Event Grid delivery: one POST of 1,400 IoT Hub DeviceCreated events (251 KB),
through the real webhook handler on the local stack with its real time budget (the template's
4 s Lambda context): how long until it is answered, how long until every device is in Sensor
Data (the retry function delivering what was queued, on simulated time), and what a resend of the
same delivery costs. The function is warm and the source's node exists (one event is delivered
first). Event Grid waits 30 s for an answer and resends the whole batch on a
failure or a timeout, so an answer after the function's timeout is a batch that never completes.

    python -m bench.event_grid_batch [--events 1400] [--tier trial]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

from bench.common import write
from bench.devices import EVENT_GRID_HUB, event_grid_batch, event_grid_device_id
from local import virtual_time
from local.stack import LocalStack, logs_to
from sensor_bridge.model.device_event import DeviceEvent
from sensor_bridge.model.profiles import device_ref_id
from sensor_bridge.model.work import WorkItem
from sensor_bridge.retry.queue_batch import schedule_all

ROOT = Path(__file__).resolve().parent.parent
SOURCE = "azure-demo"
PATH = f"/webhooks/{SOURCE}"
HEADERS = {"content-type": "application/json", "aeg-event-type": "Notification"}
FUNCTION_TIMEOUT_S = 4.0  # template.yaml's WebhookFunction Timeout


def post(stack: LocalStack, body: bytes) -> tuple[int, Any, float]:
    started = time.perf_counter()
    status, _, answer = stack.invoke("POST", f"{PATH}?code=local-azure-code", headers=HEADERS, body=body)
    return status, answer, time.perf_counter() - started


def in_sensor_data(stack: LocalStack, refs: set[str]) -> tuple[int, int]:
    """Devices of the batch in Sensor Data, and those created more than once."""
    state = stack.simulator.state()
    live = {d["refId"] for d in state["devices"] if not d["removed"]}
    return len(refs & live), sum(1 for r in refs if state["created"].get(r, 0) > 1)


def queueing_alone(events: int) -> float:
    """Seconds the local stack's SQS (moto, in this process) takes for the same number of work
    items in SendMessageBatch calls alone, on an empty queue: most of the answer here is this."""
    works = [
        WorkItem(DeviceEvent(SOURCE, "azure-iot-hub", f"{EVENT_GRID_HUB}/{event_grid_device_id(i)}"))
        for i in range(events)
    ]
    started = time.perf_counter()
    schedule_all(works)
    return time.perf_counter() - started


def run(stack: LocalStack, events: int) -> dict[str, Any]:
    # A warm function whose source's node exists, as after the hub's first device: one delivery
    # of one event (another device) first, so that the batch does not pay a cold start.
    warm_status, _, _ = post(stack, event_grid_batch(1, first=events))
    assert warm_status in (200, 202), warm_status
    stack.drain()
    body = event_grid_batch(events)
    refs = {device_ref_id(SOURCE, f"{EVENT_GRID_HUB}/{event_grid_device_id(i)}") for i in range(events)}
    started = time.perf_counter()
    status, answer, answer_s = post(stack, body)
    direct, _ = in_sensor_data(stack, refs)
    stack.drain()
    all_in_s = time.perf_counter() - started
    simulated = virtual_time.elapsed()
    delivered, twice = in_sensor_data(stack, refs)
    calls = len(stack.simulator.state()["calls"]) - 2  # the warm-up's node and device
    resend_status, resend_answer, resend_s = post(stack, body)
    stack.drain()
    after_resend, twice_after = in_sensor_data(stack, refs)
    lost = events - after_resend - len(stack.queue_messages("dead-letter"))
    alone = queueing_alone(events)
    return {
        "events": events,
        "body_bytes": len(body),
        "answer_status": status,
        "answer_seconds": round(answer_s, 3),
        "function_timeout_seconds": FUNCTION_TIMEOUT_S,
        "answered_within_timeout": answer_s < FUNCTION_TIMEOUT_S and 200 <= status < 300,
        "answer_body_bytes": len(str(answer)),
        "devices_in_sensor_data_at_answer": direct,
        "seconds_until_all_in_sensor_data": round(all_in_s, 2),
        "simulated_seconds_until_all_in_sensor_data": round(simulated, 1),
        "devices_in_sensor_data": delivered,
        "devices_created_twice": twice,
        "devices_parked": len(stack.queue_messages("dead-letter")),
        "api_calls": calls,
        "resend_status": resend_status,
        "resend_answer_seconds": round(resend_s, 3),
        "resend_api_calls": len(stack.simulator.state()["calls"]) - 2 - calls,
        "resend_answer_status": (resend_answer or {}).get("status")
        if isinstance(resend_answer, dict)
        else None,
        "devices_created_twice_after_resend": twice_after,
        "devices_lost": lost,
        "seconds_to_queue_as_many_alone": round(alone, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1400)
    parser.add_argument("--tier", default="trial", help="the simulator's and the limiter's rate limit")
    args = parser.parse_args()
    with LocalStack(tier=args.tier) as stack, logs_to(ROOT / "bench" / "results" / "event_grid_batch.log"):
        load_before = os.getloadavg()[0]
        result = {"tier": args.tier, **run(stack, args.events)}
    # The machine's own load: on a shared machine the seconds are its speed as much as the bridge's.
    result["load_average_1min"] = [round(load_before, 1), round(os.getloadavg()[0], 1)]
    path = write("event_grid_batch", result)
    r = result
    print(
        f"event grid batch: {r['events']} events ({r['body_bytes']} bytes) answered {r['answer_status']} "
        f"in {r['answer_seconds']} s (function timeout {FUNCTION_TIMEOUT_S} s; "
        f"{r['devices_in_sensor_data_at_answer']} devices delivered directly; moto takes "
        f"{r['seconds_to_queue_as_many_alone']} s to queue as many alone); all "
        f"{r['devices_in_sensor_data']} in Sensor Data after {r['seconds_until_all_in_sensor_data']} s "
        f"({r['simulated_seconds_until_all_in_sensor_data']} s simulated, {r['api_calls']} API calls); "
        f"resend answered {r['resend_status']} in {r['resend_answer_seconds']} s with "
        f"{r['resend_api_calls']} API calls; created twice {r['devices_created_twice_after_resend']}, "
        f"parked {r['devices_parked']}, lost {r['devices_lost']} (load average {r['load_average_1min']})"
    )
    print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
