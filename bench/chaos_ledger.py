"""What the chaos run promised and what happened: accepted webhooks against Sensor Data (the
simulator's state) and the dead-letter queue."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from bench.chaos_traffic import Delivery
from local.readings_report import reading_marks
from local.stack import LocalStack
from sensor_bridge.model.profiles import device_ref_id

EXAMPLES_KEPT = 5
NO_REASON = "(none: moved by SQS after maxReceiveCount, without the bridge's reason)"


def accepted(delivery: Delivery) -> bool:
    return any(isinstance(a, int) and 200 <= a < 300 for a in delivery.answers)


def _answered_devices(delivery: Delivery) -> set[str]:
    answer = delivery.answer if isinstance(delivery.answer, dict) else {}
    return {str(r.get("device")) for r in answer.get("results", []) if isinstance(r, dict)}


def _refusals(state: dict[str, Any]) -> dict[str, set[int]]:
    """Per refId, the statuses the simulator answered other than 200 to calls that carried it
    (0: the connection was dropped)."""
    seen: dict[str, set[int]] = {}
    for call in state["calls"]:
        if call["status"] == 200 and not call.get("dropped"):
            continue
        for device in call["body"].get("integration", {}).get("devices", []):
            seen.setdefault(device["refId"], set()).add(int(call["status"]))
    return seen


def names_a_refusal(reason: str, refused: set[int]) -> bool:
    """The reason quotes an answer the API gave this device's calls, or the dropped connection
    or timeout the simulator made of one."""
    quoted = {int(n) for n in re.findall(r"\b([45]\d\d)\b", reason)}
    if quoted & refused:
        return True
    return bool(refused) and bool(re.search(r"timed? ?out|dropped|connection|disconnect", reason, re.I))


@dataclass
class Ledger:
    sends: int = 0
    accepted: int = 0
    answers_by_status: Counter[str] = field(default_factory=Counter)
    never_accepted: int = 0
    not_accepted: list[dict[str, Any]] = field(default_factory=list)
    misanswered: list[dict[str, Any]] = field(default_factory=list)
    expected: set[str] = field(default_factory=set)  # refIds announced (and not deleted)
    removals: set[str] = field(default_factory=set)  # refIds the platform deleted
    integrated: set[str] = field(default_factory=set)
    removed: set[str] = field(default_factory=set)
    parked: dict[str, str] = field(default_factory=dict)  # refId -> reason
    unreal_reasons: list[dict[str, Any]] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    devices_created_twice: int = 0
    created_twice_examples: list[dict[str, Any]] = field(default_factory=list)
    nodes_created_twice: int = 0
    left_on_retry_queue: int = 0
    readings_accepted: dict[str, set[str]] = field(default_factory=dict)  # refId -> uplink ids
    readings_done: int = 0
    readings_parked: int = 0
    readings_lost: int = 0
    observations_stored_twice: int = 0

    @classmethod
    def of(cls, stack: LocalStack, deliveries: list[Delivery]) -> Ledger:
        ledger = cls()
        ledger._answers(deliveries)
        state = stack.simulator.state()
        live = {d["refId"] for d in state["devices"] if not d["removed"]}
        ledger.expected -= ledger.removals
        ledger.integrated = ledger.expected & live
        ledger.removed = ledger.removals - live
        ledger._parked(stack, state)
        parked = set(ledger.parked)
        ledger.lost = sorted(
            (ledger.expected - ledger.integrated - parked) | (ledger.removals & live - parked)
        )
        twice = sorted(ref for ref, n in state["created"].items() if n > 1)
        ledger.devices_created_twice = len(twice)
        ledger.created_twice_examples = [_history(state, ref) for ref in twice[:EXAMPLES_KEPT]]
        names = Counter(node["props"].get("NAME") for node in state["nodes"])
        ledger.nodes_created_twice = sum(n - 1 for n in names.values())
        ledger.left_on_retry_queue = len(stack.queue_messages("retry"))
        ledger._readings(stack, state)
        return ledger

    def _answers(self, deliveries: list[Delivery]) -> None:
        for delivery in deliveries:
            self.sends += len(delivery.answers)
            self.answers_by_status.update(str(a) for a in delivery.answers)
            ref = device_ref_id(delivery.source, delivery.device)
            if not accepted(delivery):
                self.never_accepted += 1
                if len(self.not_accepted) < EXAMPLES_KEPT:
                    self.not_accepted.append(_describe(delivery))
                continue
            self.accepted += 1
            (self.removals if delivery.removes else self.expected).add(ref)
            if delivery.reading is not None:
                self.readings_accepted.setdefault(ref, set()).add(delivery.reading)
            if delivery.device not in _answered_devices(delivery) and len(self.misanswered) < EXAMPLES_KEPT:
                self.misanswered.append(_describe(delivery))

    def _parked(self, stack: LocalStack, state: dict[str, Any]) -> None:
        refused = _refusals(state)
        for message in stack.queue_messages("dead-letter"):
            event = message["event"]
            ref = device_ref_id(event["source"], event["device_id"])
            reason = message.get("parked_reason") or NO_REASON
            self.parked.setdefault(ref, reason)
            real = names_a_refusal(reason, refused.get(ref, set()))
            if not real and len(self.unreal_reasons) < EXAMPLES_KEPT:
                self.unreal_reasons.append({"device": event["device_id"], "reason": reason})

    def _readings(self, stack: LocalStack, state: dict[str, Any]) -> None:
        """Per device: the distinct uplinks accepted, against the registry's upload marks (one per
        reading message done) and the readings parked."""
        assert stack.resources is not None
        marks = {
            device_ref_id(s, d): n for (s, d), n in reading_marks(stack.resources.registry_table).items()
        }
        parked: Counter[str] = Counter()
        for message in stack.queue_messages("dead-letter"):
            if message["event"].get("reading"):
                parked[device_ref_id(message["event"]["source"], message["event"]["device_id"])] += 1
        for ref, uplinks in self.readings_accepted.items():
            done = min(len(uplinks), marks.get(ref, 0))
            self.readings_done += done
            self.readings_parked += parked[ref]
            self.readings_lost += max(0, len(uplinks) - done - parked[ref])
        keys = [(o["sensorId"], o["timestamp"]) for o in state["observations"]]
        self.observations_stored_twice = len(keys) - len(set(keys))

    @property
    def duplicates(self) -> int:
        return self.devices_created_twice + self.nodes_created_twice

    def to_json(self) -> dict[str, Any]:
        reasons = Counter(re.sub(r"\d+(\.\d+)? s\b", "N s", r) for r in self.parked.values())
        return {
            "sends": self.sends,
            "accepted": self.accepted,
            "never_accepted": self.never_accepted,
            "not_accepted_examples": self.not_accepted,
            "answers_naming_another_device": self.misanswered,
            "devices_expected": len(self.expected),
            "integrated": len(self.integrated),
            "deletions_expected": len(self.removals),
            "removed": len(self.removed),
            "parked": len(self.parked),
            "parked_reasons": dict(reasons.most_common()),
            "parked_without_a_real_refusal": self.unreal_reasons,
            "lost": len(self.lost) + self.readings_lost,
            "devices_lost": len(self.lost),
            "lost_examples": self.lost[:EXAMPLES_KEPT],
            "duplicates": self.duplicates,
            "devices_created_twice": self.devices_created_twice,
            "created_twice_examples": self.created_twice_examples,
            "nodes_created_twice": self.nodes_created_twice,
            "left_on_retry_queue": self.left_on_retry_queue,
            "readings_accepted": sum(len(u) for u in self.readings_accepted.values()),
            "readings_uploaded": self.readings_done,
            "readings_parked": self.readings_parked,
            "readings_lost": self.readings_lost,
            "observations_stored_twice": self.observations_stored_twice,
            "answers_by_status": dict(sorted(self.answers_by_status.items())),
        }


def _describe(delivery: Delivery) -> dict[str, Any]:
    return {
        "sample": delivery.sample,
        "kind": delivery.kind,
        "device": delivery.device,
        "answers": delivery.answers,
        "sends": delivery.sends,
        "last_answer": str(delivery.answer)[:300],
    }


def _history(state: dict[str, Any], ref: str) -> dict[str, Any]:
    """Every integrate call that carried one device or sensor: what it asked (for a sensor, also
    its device's change) and what the simulator did."""
    calls = []
    for call in state["calls"]:
        flags = " ".join(k for k in ("dropped", "applied") if call.get(k))
        for device in call["body"].get("integration", {}).get("devices", []):
            asked = [device["changeState"]] if device["refId"] == ref else []
            asked += [
                f"{device['changeState']}/{s['changeState']}"
                for s in device.get("sensors") or []
                if s.get("refId") == ref
            ]
            calls += [f"{call['at']:.1f} {a} -> {call['status']} {flags}".rstrip() for a in asked]
    return {"refId": ref, "calls": calls}
