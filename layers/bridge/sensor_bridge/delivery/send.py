"""Coalescing prepared changes into integrate calls, and sending them.

Changes for the same (source, node) share a call, up to MAX_DEVICES_PER_CALL (a setting), with device NAMEs
unique within it (the answer is matched back by NAME). A 422 on a shared call is split: each
device is sent alone, so only the bad one is parked.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sensor_bridge.delivery.context import Delivery
from sensor_bridge.model.config import Source
from sensor_bridge.model.contract import NAME, DeviceChange
from sensor_bridge.model.outcomes import Outcome, Parked
from sensor_bridge.model.work import WorkItem
from sensor_bridge.runtime.observability import logger
from sensor_bridge.runtime.settings import settings


@dataclass(frozen=True)
class Prepared:
    """A change ready to send; the device's lease is held until `settle(outcome, devices in the
    call)` has run."""

    work: WorkItem
    source: Source
    node_id: str
    change: DeviceChange
    settle: Callable[[Outcome, int], Outcome]
    coalesce: bool = True  # False: sent alone (removes)

    @property
    def name(self) -> Any:
        return self.change.props.get(NAME)


Group = list[tuple[int, Prepared]]  # (index of the work item, its prepared change) per device


def calls(prepared: Group) -> list[Group]:
    """Group by (source, node) into calls of at most MAX_DEVICES_PER_CALL unique NAMEs."""
    # The API documents no limit; a bounded call keeps a 422 split and the answer's size small.
    most = settings().max_devices_per_call
    grouped: list[Group] = []
    open_calls: dict[tuple[str, str], list[Group]] = {}
    for index, item in prepared:
        if not item.coalesce:
            grouped.append([(index, item)])
            continue
        key = (item.work.event.source, item.node_id)
        for call in open_calls.setdefault(key, []):
            if len(call) < most and all(other.name != item.name for _, other in call):
                call.append((index, item))
                break
        else:
            call = [(index, item)]
            open_calls[key].append(call)
            grouped.append(call)
    return grouped


def send(group: Group, delivery: Delivery) -> dict[int, Outcome]:
    """One call for the group; each device settles its own part of the answer."""
    first = group[0][1]
    outcome = _call(delivery, first, [p.change for _, p in group])
    if len(group) > 1:
        logger.info("coalesced call", extra={"devices": len(group), "node_id": first.node_id})
        if isinstance(outcome, Parked) and outcome.status == 422:
            # One device spoils the call: send each alone, so only the bad one is parked.
            logger.warning(
                "coalesced call rejected: sending each device alone",
                extra={"devices": len(group), "why": outcome.reason},
            )
            return {index: p.settle(_call(delivery, p, [p.change]), 1) for index, p in group}
    return {index: p.settle(outcome, len(group)) for index, p in group}


def _call(delivery: Delivery, first: Prepared, changes: list[DeviceChange]) -> Outcome:
    return delivery.integrate(first.node_id, changes, first.source, first.work.event.source)
