"""Injected faults for the Sensor Data simulator: a FIFO of failures for the next API calls.

A fault is ``{"status", "retry_after", "body", "latency_ms", "trickle_ms", "drop", "count",
"after_apply", "operation"}``. ``operation`` says which calls it is for: ``integrate`` (the default,
so faults written before the other operations existed keep meaning what they meant), ``upload``,
``query`` (the raw-data query), ``nodes`` (the node listing), ``token`` (the IMS token endpoint) or
``any`` (every API call, not the token endpoint). A call takes the first queued fault for its
operation; faults for other operations stay queued in their order. ``trickle_ms`` sends the answer's
status and headers at once and then its body one byte every ``trickle_ms`` (alone: a normal answer,
trickled), as a slow proxy or a struggling backend does: no single read waits long, the whole answer
does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["OPERATIONS", "Fault", "FaultQueue", "fault_code", "parse_fault"]

OPERATIONS = ("integrate", "upload", "query", "nodes", "token", "any")
FAULT_KEYS = frozenset(
    {"status", "count", "retry_after", "latency_ms", "trickle_ms", "drop", "body", "after_apply", "operation"}
)
JSON = Any


@dataclass
class Fault:
    count: int
    status: int | None = None
    retry_after: str | None = None
    latency_ms: int = 0
    trickle_ms: int = 0
    drop: bool = False
    body: str | None = None
    after_apply: bool = False
    operation: str = "integrate"


def fault_code(status: int) -> str:
    """The API-style error code an injected status is answered with."""
    codes = {
        400: "BadRequest",
        401: "InvalidAuthorizationToken",
        403: "InsufficientPermissions",
        404: "NotFound",
        409: "Conflict",
        422: "InvalidProcessIntegrationRequest",
        429: "TooManyRequests",
        502: "BadGateway",
        503: "ServiceUnavailable",
        504: "GatewayTimeout",
    }
    if status in codes:
        return codes[status]
    return "InternalServerError" if status >= 500 else "SimulatedFault"


def _is_int(value: JSON) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_types(raw: dict[str, JSON]) -> None:
    count, status, latency = raw.get("count", 1), raw.get("status"), raw.get("latency_ms", 0)
    if not _is_int(count) or count < 1:
        raise ValueError("fault count must be a positive integer")
    if status is not None and (not _is_int(status) or not 100 <= status <= 599):
        raise ValueError("fault status must be an HTTP status code")
    if not _is_int(latency) or latency < 0:
        raise ValueError("fault latency_ms must be a non-negative integer")
    trickle = raw.get("trickle_ms", 0)
    if not _is_int(trickle) or trickle < 0:
        raise ValueError("fault trickle_ms must be a non-negative integer")
    if not isinstance(raw.get("drop", False), bool):
        raise ValueError("fault drop must be a boolean")
    if raw.get("retry_after") is not None and not isinstance(raw["retry_after"], str | int):
        raise ValueError("fault retry_after must be a string (sent verbatim)")
    if raw.get("body") is not None and not isinstance(raw["body"], str):
        raise ValueError("fault body must be a string (sent verbatim)")
    if not isinstance(raw.get("after_apply", False), bool):
        raise ValueError("fault after_apply must be a boolean")
    if raw.get("operation", "integrate") not in OPERATIONS:
        raise ValueError(f"fault operation must be one of {', '.join(OPERATIONS)}")


def parse_fault(raw: JSON) -> Fault:
    if not isinstance(raw, dict):
        raise ValueError("a fault must be a JSON object")
    unknown = set(raw) - FAULT_KEYS
    if unknown:
        raise ValueError(f"unknown fault keys: {sorted(unknown)}")
    _check_types(raw)
    status, drop, latency = raw.get("status"), raw.get("drop", False), raw.get("latency_ms", 0)
    trickle = raw.get("trickle_ms", 0)
    if status is None and not drop and latency == 0 and trickle == 0:
        raise ValueError("a fault needs one of status, latency_ms, trickle_ms or drop")
    if drop and trickle:
        raise ValueError("a dropped connection has no answer to trickle")
    if status is not None and drop:
        raise ValueError("a fault cannot both answer a status and drop the connection")
    after_apply = raw.get("after_apply", False)
    if after_apply and status is None and not drop:
        raise ValueError("an after_apply fault needs a status or drop")
    retry_after = raw.get("retry_after")
    return Fault(
        count=raw.get("count", 1),
        status=status,
        retry_after=None if retry_after is None else str(retry_after),
        latency_ms=latency,
        trickle_ms=trickle,
        drop=drop,
        body=raw.get("body"),
        after_apply=after_apply,
        operation=raw.get("operation", "integrate"),
    )


class FaultQueue:
    """The queued faults; not thread-safe on its own (the simulator holds its lock)."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []

    def extend(self, faults: list[Fault]) -> int:
        self._faults.extend(faults)
        return self.queued_calls()

    def queued_calls(self) -> int:
        return sum(f.count for f in self._faults)

    def clear(self) -> None:
        self._faults.clear()

    def take(self, operation: str) -> Fault | None:
        """Use up one call of the first fault for ``operation``, if any."""
        for index, fault in enumerate(self._faults):
            # "any" is every API call; the token endpoint takes only the faults meant for it.
            if fault.operation == operation or (fault.operation == "any" and operation != "token"):
                fault.count -= 1
                if fault.count <= 0:
                    self._faults.pop(index)
                return fault
        return None
