"""Delivering device events to Sensor Data: the round loop both functions go through.

The webhook function delivers one event (`deliver`), the retry function a batch (`deliver_many`).
Each round runs three steps:

1. prepare (`prepare.py`): per event, the registry decides what to send and the device's lease
   is taken; what needs no call (unchanged, never created, in flight elsewhere) is answered there;
2. send (`send.py`): prepared changes for the same node go in one integrate call with several
   devices; a 422 on such a call is split, each device sent alone, so only the bad one is parked;
3. settle (`settle.py`): each device reads its own part of the answer, records it in the
   registry and gives its lease back.

After the rounds, the readings of the works whose device the API now has are uploaded in shared
calls (`readings.py`): the devices first, so that a short rate budget goes to onboarding.

An item whose step raises is answered `Failed` and fails alone: its siblings are still sent and
settled, and its lease is given back.
"""

from __future__ import annotations

from collections.abc import Sequence

from sensor_bridge.delivery.context import Delivered, Delivery, Downstream, Failed
from sensor_bridge.delivery.prepare import prepare
from sensor_bridge.delivery.readings import forward_readings
from sensor_bridge.delivery.send import Group, Prepared, calls, send
from sensor_bridge.model.config import BridgeConfig
from sensor_bridge.model.outcomes import Outcome
from sensor_bridge.model.work import WorkItem
from sensor_bridge.runtime.budget import Budget
from sensor_bridge.runtime.observability import logger, tracer
from sensor_bridge.store.registry import DeviceRegistry, default_registry


def deliver(
    work: WorkItem,
    config: BridgeConfig,
    *,
    budget: Budget | None = None,
    registry: DeviceRegistry | None = None,
    downstream: Downstream | None = None,
) -> Outcome:
    """Deliver one event (the webhook function's path): a batch of one. A step that raises
    raises here (the platform is answered 5xx and sends again)."""
    (delivered,) = deliver_many([work], config, budget=budget, registry=registry, downstream=downstream)
    if isinstance(delivered, Failed):
        raise delivered.error
    return delivered


@tracer.capture_method(capture_response=False)
def deliver_many(
    works: Sequence[WorkItem],
    config: BridgeConfig,
    *,
    budget: Budget | None = None,
    registry: DeviceRegistry | None = None,
    downstream: Downstream | None = None,
) -> list[Delivered]:
    """One Outcome (or Failed) per work item, in order. Devices for the same node share calls.

    Several items for the same device are delivered one after the other (in rounds), each seeing
    what the one before recorded, so a resent join after a first one makes no call. `registry`
    and `downstream` default to DynamoDB and the real calls; unit tests pass fakes.
    """
    delivery = _delivery(config, budget, registry or default_registry(), downstream or Downstream())
    outcomes: dict[int, Delivered] = {}
    for round_ in rounds(works):
        prepared: Group = []
        for index in round_:
            ready = _prepared(works[index], delivery)
            if isinstance(ready, Prepared):
                prepared.append((index, ready))
            else:
                outcomes[index] = ready
        for group in calls(prepared):
            outcomes.update(send(group, delivery))
    forward_readings(works, outcomes, delivery)
    return [outcomes[i] for i in range(len(works))]


def _delivery(
    config: BridgeConfig, budget: Budget | None, registry: DeviceRegistry, downstream: Downstream
) -> Delivery:
    # Imported here: the real calls bring httpx and the token provider.
    from sensor_bridge.sensor_data.client import integrate
    from sensor_bridge.sensor_data.nodes import list_nodes
    from sensor_bridge.sensor_data.query import stored_observations
    from sensor_bridge.sensor_data.upload import upload

    return Delivery(
        config,
        registry,
        downstream.integrate or integrate,
        downstream.list_nodes or list_nodes,
        budget,
        downstream.upload or upload,
        downstream.query or stored_observations,
    )


def _prepared(work: WorkItem, delivery: Delivery) -> Prepared | Delivered:
    try:
        return prepare(work, delivery)
    except Exception as exc:  # this item alone: its siblings are prepared and sent all the same
        logger.exception("preparing the delivery failed", extra={"device": work.event.device_id})
        try:
            # Nothing was sent for it: its lease goes back, any earlier mark stays as it was.
            delivery.registry.release_device(work.event.source, work.event.device_id, work.claimant)
        except Exception:
            logger.exception("lease not given back: it runs out by itself")
        return Failed(exc, "prepare")


def rounds(works: Sequence[WorkItem]) -> list[list[int]]:
    """Indexes in rounds such that no device appears twice in one round (first come, first)."""
    seen: dict[tuple[str, str], int] = {}
    grouped: list[list[int]] = []
    for index, work in enumerate(works):
        key = (work.event.source, work.event.device_id)
        n = seen.get(key, 0)
        seen[key] = n + 1
        if n == len(grouped):
            grouped.append([])
        grouped[n].append(index)
    return grouped
