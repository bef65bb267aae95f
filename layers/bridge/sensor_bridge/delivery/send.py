"""Coalescing prepared changes into integrate calls, and sending them.

Changes for the same (source, node) share a call, up to MAX_DEVICES_PER_CALL (a setting), with device NAMEs
unique within it (the answer is matched back by NAME). A 422 on a shared call is split: each
device is sent alone, so only the bad one is parked.

The write-ahead mark ("this change may have been applied") is written for a call's devices just
before that call goes, not when they are prepared: a failure before it leaves no device marked
for a call that was never sent. A device whose mark or settling raises fails alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sensor_bridge.delivery.context import IN_FLIGHT, Delivered, Delivery, Failed
from sensor_bridge.model.config import Source
from sensor_bridge.model.contract import NAME, DeviceChange
from sensor_bridge.model.outcomes import Deferred, Outcome, Parked
from sensor_bridge.model.work import WorkItem
from sensor_bridge.runtime.observability import logger
from sensor_bridge.runtime.settings import settings
from sensor_bridge.store.registry import LeaseLost


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
    # The write-ahead mark, written just before the call (None: a change without one, a remove).
    # Raises LeaseLost when another delivery took the device over.
    mark: Callable[[], None] | None = None

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


def send(group: Group, delivery: Delivery) -> dict[int, Delivered]:
    """One call for the group; each device settles its own part of the answer."""
    results, marked = _marked(group)
    if not marked:
        return results
    first = marked[0][1]
    try:
        outcome = _call(delivery, first, [p.change for _, p in marked])
    except Exception as exc:  # a bug or an outage: sent or not, the marks stay (the next one probes)
        logger.exception("integrate call raised", extra={"devices": len(marked)})
        return {**results, **{index: Failed(exc, "send") for index, _ in marked}}
    if len(marked) > 1:
        logger.info("coalesced call", extra={"devices": len(marked), "node_id": first.node_id})
        if isinstance(outcome, Parked) and outcome.status == 422:
            # One device spoils the call: send each alone, so only the bad one is parked.
            logger.warning(
                "coalesced call rejected: sending each device alone",
                extra={"devices": len(marked), "why": outcome.reason},
            )
            return {**results, **{index: _send_alone(delivery, p) for index, p in marked}}
    return {**results, **{index: _settled(p, outcome, len(marked)) for index, p in marked}}


def _marked(group: Group) -> tuple[dict[int, Delivered], Group]:
    """Write each device's write-ahead mark: the devices the call may carry, and the answers of
    those it may not (the lease lost to another delivery, or the mark's write failed)."""
    results: dict[int, Delivered] = {}
    marked: Group = []
    for index, prepared in group:
        try:
            if prepared.mark is not None:
                prepared.mark()
        except LeaseLost:
            results[index] = Deferred(IN_FLIGHT)
            continue
        except Exception as exc:
            logger.exception("write-ahead mark failed", extra={"device": prepared.work.event.device_id})
            results[index] = _settled_without_call(prepared, exc)
            continue
        marked.append((index, prepared))
    return results, marked


def _settled_without_call(prepared: Prepared, error: Exception) -> Delivered:
    """The device is not sent: give its lease back (nothing sent, so no mark changes)."""
    try:
        prepared.settle(Deferred(f"not sent: {type(error).__name__}"), 0)
    except Exception:
        logger.exception("lease not given back: it runs out by itself")
    return Failed(error, "send")


def _send_alone(delivery: Delivery, prepared: Prepared) -> Delivered:
    try:
        outcome = _call(delivery, prepared, [prepared.change])
    except Exception as exc:
        logger.exception("integrate call raised", extra={"device": prepared.work.event.device_id})
        return Failed(exc, "send")
    return _settled(prepared, outcome, 1)


def _settled(prepared: Prepared, outcome: Outcome, sent: int) -> Delivered:
    """The device reads its part of the answer; if recording it raises, this device alone fails
    (its mark stays: the call was sent, so the next delivery probes)."""
    try:
        return prepared.settle(outcome, sent)
    except Exception as exc:
        logger.exception("settling the answer failed", extra={"device": prepared.work.event.device_id})
        return Failed(exc, "settle")


def _call(delivery: Delivery, first: Prepared, changes: list[DeviceChange]) -> Outcome:
    return delivery.integrate(first.node_id, changes, first.source, first.work.event.source)
