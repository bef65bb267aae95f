"""Preparing one work item: the registry decides what to send, and the device's lease is taken.

What needs no call is answered here: unchanged (integrated exactly as described), superseded by a
later deletion or by a later full description already applied, never created (a removal with
nothing downstream), or in flight elsewhere.
Everything else becomes a `Prepared` change; `new` and `update` carry their write-ahead mark,
which `send` writes just before their call (a device the registry has never seen has its record
created with the mark and the lease in one write).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from sensor_bridge.delivery.changes import full_change, update_change
from sensor_bridge.delivery.context import IN_FLIGHT, Delivery, Planned
from sensor_bridge.delivery.nodes import node_for
from sensor_bridge.delivery.probe import probe, unknown_device
from sensor_bridge.delivery.send import Prepared
from sensor_bridge.delivery.settle import settle
from sensor_bridge.model.config import Source
from sensor_bridge.model.contract import DeviceChange
from sensor_bridge.model.device_event import Lifecycle
from sensor_bridge.model.outcomes import Deferred, Integrated, Outcome, Parked, Removed
from sensor_bridge.model.profiles import DeviceSpec, describe_device, known_facts, with_known_facts
from sensor_bridge.model.work import WorkItem
from sensor_bridge.runtime.observability import logger
from sensor_bridge.store.registry import DeviceRecord


def prepare(work: WorkItem, delivery: Delivery) -> Outcome | Prepared:
    source = delivery.config.sources.get(work.event.source)
    if source is None:
        return Parked(f"source {work.event.source!r} is no longer configured")
    if work.event.lifecycle is Lifecycle.REMOVED:
        prepared = _prepare_removal(work, source, delivery)
    else:
        prepared = _prepare_upsert(work, source, delivery)
    if not (isinstance(prepared, Integrated) and prepared.unchanged):
        delivery.changing.add((work.event.source, work.event.device_id))
    return prepared


def _prepare_upsert(work: WorkItem, source: Source, delivery: Delivery) -> Outcome | Prepared:
    event = work.event
    registry = delivery.registry
    current = registry.get_device(event.source, event.device_id)
    spec = _spec(delivery, work, current)
    skipped = _needs_no_call(work, current, spec, delivery)
    if skipped is not None:
        return skipped
    node_id = _known_node(current)
    if node_id is None:
        node = node_for(delivery, event.source, source, work.claimant)
        if not isinstance(node, str):
            return node
        node_id = node
    facts = known_facts(event)
    if current is None and registry.claim_new_device(
        event.source, event.device_id, work.claimant, spec.ref_id, node_id, facts
    ):
        # Never seen, now ours and already under the write-ahead mark: its `new`, nothing to probe.
        planned = Planned(work, spec, node_id, facts)
        return _prepared(delivery, planned, full_change(spec, "new"), source, None)

    claimed = registry.claim_device(event.source, event.device_id, work.claimant, spec.ref_id)
    if claimed is None:
        return Deferred(IN_FLIGHT)
    spec = _spec(delivery, work, claimed)  # the record as it stands under our lease
    skipped = _needs_no_call(work, claimed, spec, delivery)
    if skipped is not None:
        registry.release_device(event.source, event.device_id, work.claimant)
        return skipped
    if claimed.maybe_created or claimed.integrated:
        node_id = claimed.node_id or node_id
    planned = Planned(work, spec, node_id, known_facts(with_known_facts(event, claimed.facts)))
    return _change_under_mark(delivery, planned, claimed, source)


def _change_under_mark(
    delivery: Delivery, planned: Planned, claimed: DeviceRecord, source: Source
) -> Outcome | Prepared:
    """The change to send (probing first if an earlier answer was lost), and its write-ahead mark."""
    work = planned.work
    event = work.event
    if claimed.maybe_created:
        # An earlier change's answer was lost: what is downstream is not what the record says.
        probed = probe(delivery, planned, claimed, source)
        if not isinstance(probed, tuple):
            return probed
        change, previous_sensors = probed
    elif claimed.integrated:
        change, previous_sensors = update_change(planned.spec, claimed.spec or {}), claimed.sensor_ids
    else:
        change, previous_sensors = full_change(planned.spec, "new"), claimed.sensor_ids
    planned = replace(
        planned,
        previous_sensors=previous_sensors,
        uncertain=claimed.maybe_created,
        creates=change.changeState == "new",
    )

    def mark() -> None:
        # Write-ahead, just before the call: until its answer is recorded, it may have been applied.
        delivery.registry.mark_changing(
            event.source, event.device_id, work.claimant, planned.node_id, planned.facts
        )

    return _prepared(delivery, planned, change, source, mark)


def _prepared(
    delivery: Delivery,
    planned: Planned,
    change: DeviceChange,
    source: Source,
    mark: Callable[[], None] | None,
) -> Prepared:
    """A change under the write-ahead mark (`mark` writes it just before the call; None: the
    record already carries it), settled as one: the mark stays only if it may have been applied."""
    return Prepared(
        planned.work,
        source,
        planned.node_id,
        change,
        lambda outcome, sent: settle(delivery, planned, outcome, changing=True, sent=sent),
        mark=mark,
    )


def _needs_no_call(
    work: WorkItem, record: DeviceRecord | None, spec: DeviceSpec, delivery: Delivery
) -> Outcome | None:
    """Unchanged (note the announcement) or superseded by a later deletion or description: no call."""
    if _unchanged(record, spec):
        assert record is not None  # _unchanged holds only for a record
        delivery.unchanged[(work.event.source, work.event.device_id)] = record
        if work.event.announced:
            delivery.registry.touch_appeared(work.event.source, work.event.device_id, work.event_time)
        return Integrated(unchanged=True, profile=spec.profile)
    if _deleted_since(record, work):
        return Removed(superseded=True)
    if _described_since(record, work):
        logger.warning("stale description ignored: the platform described the device again after it")
        return Integrated(unchanged=True, superseded=True, profile=spec.profile)
    return None


def _known_node(record: DeviceRecord | None) -> str | None:
    """The node a device already lives in (or may, after a lost answer)."""
    if record is not None and (record.integrated or record.maybe_created):
        return record.node_id
    return None


def _unchanged(record: DeviceRecord | None, spec: DeviceSpec) -> bool:
    """Integrated exactly as described, with nothing uncertain about it: no call needed."""
    return (
        record is not None
        and record.integrated
        and not record.maybe_created
        and record.fingerprint == spec.fingerprint
    )


def _deleted_since(record: DeviceRecord | None, work: WorkItem) -> bool:
    """The platform deleted the device after this event happened: the work is superseded."""
    return (
        record is not None
        and not record.integrated
        and not record.maybe_created
        and record.removed_at is not None
        and work.event_time < record.removed_at
    )


def _described_since(record: DeviceRecord | None, work: WorkItem) -> bool:
    """A full description (an AWS IoT thing, an Azure twin) older than the last one applied or
    noted (`appeared_at`: announcements are full descriptions): applied, it would put back what
    the newer one changed. A partial event (an uplink) fills in known facts instead."""
    return (
        record is not None
        and work.event.announced
        and not work.event.partial
        and record.appeared_at is not None
        and work.event_time < record.appeared_at
    )


def _spec(delivery: Delivery, work: WorkItem, record: DeviceRecord | None) -> DeviceSpec:
    return describe_device(delivery.config, with_known_facts(work.event, record.facts if record else None))


def _prepare_removal(work: WorkItem, source: Source, delivery: Delivery) -> Outcome | Prepared:
    event = work.event
    registry = delivery.registry
    current = registry.get_device(event.source, event.device_id)
    if current is None or not (current.integrated or current.maybe_created) or current.node_id is None:
        # Never created by us: nothing to remove downstream. The tombstone stops work for the
        # device still waiting on the retry queue from creating it afterwards.
        tombstoned = registry.record_tombstone(event.source, event.device_id, removed_at=work.event_time)
        return Removed(existed=False) if tombstoned else Deferred(IN_FLIGHT)
    if current.appeared_at is not None and work.event_time < current.appeared_at:
        # Delivered late: the platform announced the device again after this deletion.
        logger.warning("stale deletion ignored: the device was announced again after it")
        return Integrated(unchanged=True)
    claimed = registry.claim_device(event.source, event.device_id, work.claimant, current.ref_id or "")
    if claimed is None:
        return Deferred(IN_FLIGHT)
    change = DeviceChange(changeState="remove", refId=claimed.ref_id or "")
    node_id = claimed.node_id or current.node_id
    return Prepared(
        work,
        source,
        node_id,
        change,
        lambda outcome, _sent: _settle_removal(delivery, work, outcome),
        coalesce=False,
    )


def _settle_removal(delivery: Delivery, work: WorkItem, outcome: Outcome) -> Outcome:
    event = work.event
    registry = delivery.registry
    gone = isinstance(outcome, Parked) and outcome.status == 422 and unknown_device(outcome)
    if isinstance(outcome, Integrated) or gone:
        # 422 on remove: the API does not know the refId, so it is gone already.
        registry.record_removed(event.source, event.device_id, work.claimant, removed_at=work.event_time)
        return Removed()
    if isinstance(outcome, Parked):
        registry.record_parked(event.source, event.device_id, work.claimant, outcome.reason)
        return outcome
    registry.release_device(event.source, event.device_id, work.claimant)
    return outcome
