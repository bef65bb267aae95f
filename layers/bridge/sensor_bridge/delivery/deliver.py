"""Delivering device events to Sensor Data: the registry decides new, update, remove or nothing;
the API call's answer becomes an Outcome; the registry records what happened.

Every delivery goes through `deliver_many`: the webhook function delivers one event
(`deliver`), the retry function a batch. Delivery runs in three steps:

1. prepare: per event, the registry decides what to send and the device's lease is taken;
   what needs no call (unchanged, never created, in flight elsewhere) is answered here;
2. send: prepared changes for the same node go in one integrate call with several devices;
   a 422 on such a call is split, each device sent alone, so only the bad one is parked;
3. settle: each device reads its own part of the answer (matched by NAME: the API answers without
   refIds and in its own order), records it in the registry and gives its lease back.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sensor_bridge.model.config import BridgeConfig, Source
from sensor_bridge.model.contract import (
    NAME,
    DeviceChange,
    Integration,
    IntegrationRequest,
    IntegrationResponse,
    SensorChange,
)
from sensor_bridge.model.device_event import Lifecycle
from sensor_bridge.model.outcomes import Integrated, Outcome, Parked, Removed, Retryable
from sensor_bridge.model.profiles import DeviceSpec, describe_device, known_facts, with_known_facts
from sensor_bridge.model.work import WorkItem
from sensor_bridge.runtime.budget import BUDGET_SPENT, Budget
from sensor_bridge.runtime.observability import Metric, count, logger, tracer
from sensor_bridge.runtime.settings import settings
from sensor_bridge.sensor_data import rate_gate
from sensor_bridge.sensor_data.client import TokenRejected, post_integration
from sensor_bridge.sensor_data.tokens import TokenUnavailable, token_provider
from sensor_bridge.store import registry
from sensor_bridge.store.secrets import SecretUnavailable

IN_FLIGHT = "another delivery of this device is in progress"
# Devices per integrate call when coalescing. The API documents no limit; a bounded call keeps a
# 422 split and the answer's size small.
MAX_DEVICES_PER_CALL = 10


@tracer.capture_method(capture_response=False)
def call_api(
    request: IntegrationRequest, source: str, *, budget: Budget | None = None, itwin_id: str | None = None
) -> Outcome:
    """POST the integration; on 401 refresh the token once and try again, then park."""
    for refreshed in (False, True):
        held = rate_gate.held_back()
        if held is not None:
            return held
        timeout = budget.call_timeout() if budget is not None else None
        if budget is not None and timeout is None:
            return Retryable(BUDGET_SPENT)
        try:
            token = token_provider.get()
        except TokenUnavailable as exc:
            return Retryable(str(exc)) if exc.retryable else Parked(str(exc))
        except SecretUnavailable as exc:
            return Retryable(str(exc))
        call = post_integration(request, token, timeout_s=timeout, itwin_id=itwin_id)
        count(Metric.API_LATENCY, source, call.latency_ms)
        if not isinstance(call.outcome, TokenRejected):
            rate_gate.learn(call.outcome)
        if not isinstance(call.outcome, TokenRejected):
            return call.outcome
        token_provider.invalidate(token)
        if refreshed:
            return Parked(f"{call.outcome.reason} after a token refresh", 401)
    raise AssertionError("unreachable")


def deliver(work: WorkItem, config: BridgeConfig, *, budget: Budget | None = None) -> Outcome:
    """Deliver one event (the webhook function's path): a batch of one."""
    return deliver_many([work], config, budget=budget)[0]


@dataclass(frozen=True)
class Prepared:
    """A change ready to send; the device's lease is held until `settle` has run."""

    work: WorkItem
    node_id: str
    change: DeviceChange
    settle: Callable[[Outcome], Outcome]
    itwin_id: str | None = None
    coalesce: bool = True  # False: sent alone (removes)

    @property
    def name(self) -> Any:
        return self.change.props.get(NAME)


@tracer.capture_method(capture_response=False)
def deliver_many(
    works: Sequence[WorkItem], config: BridgeConfig, *, budget: Budget | None = None
) -> list[Outcome]:
    """One Outcome per work item, in order. Devices for the same node share integrate calls.

    Several items for the same device are delivered one after the other (in rounds), each seeing
    what the one before recorded, so a resent join after a first one makes no call.
    """
    outcomes: dict[int, Outcome] = {}
    nodes: dict[str, str | Outcome] = {}  # per source: its node, or why it could not be had
    for round_ in _rounds(works):
        prepared: list[tuple[int, Prepared]] = []
        for index in round_:
            ready = _prepare(works[index], config, nodes, budget)
            if isinstance(ready, Prepared):
                prepared.append((index, ready))
            else:
                outcomes[index] = ready
        for group in _calls(prepared):
            outcomes.update(_send(group, budget))
    return [outcomes[i] for i in range(len(works))]


def _rounds(works: Sequence[WorkItem]) -> list[list[int]]:
    """Indexes in rounds such that no device appears twice in one round (first come, first)."""
    seen: dict[tuple[str, str], int] = {}
    rounds: list[list[int]] = []
    for index, work in enumerate(works):
        key = (work.event.source, work.event.device_id)
        n = seen.get(key, 0)
        seen[key] = n + 1
        if n == len(rounds):
            rounds.append([])
        rounds[n].append(index)
    return rounds


def _calls(prepared: list[tuple[int, Prepared]]) -> list[list[tuple[int, Prepared]]]:
    """Group by (source, node); within a call device NAMEs are unique, since the answer is
    matched back by NAME."""
    calls: list[list[tuple[int, Prepared]]] = []
    open_calls: dict[tuple[str, str], list[list[tuple[int, Prepared]]]] = {}
    for index, item in prepared:
        if not item.coalesce:
            calls.append([(index, item)])
            continue
        key = (item.work.event.source, item.node_id)
        for call in open_calls.setdefault(key, []):
            if len(call) < MAX_DEVICES_PER_CALL and all(other.name != item.name for _, other in call):
                call.append((index, item))
                break
        else:
            call = [(index, item)]
            open_calls[key].append(call)
            calls.append(call)
    return calls


def _send(group: list[tuple[int, Prepared]], budget: Budget | None) -> dict[int, Outcome]:
    first = group[0][1]
    source = first.work.event.source
    outcome = _call_for(first.node_id, [p.change for _, p in group], source, budget, first.itwin_id)
    if len(group) > 1:
        logger.info("coalesced call", extra={"devices": len(group), "node_id": first.node_id})
        if isinstance(outcome, Parked) and outcome.status == 422:
            # One device spoils the call: send each alone, so only the bad one is parked.
            logger.warning(
                "coalesced call rejected: sending each device alone",
                extra={"devices": len(group), "why": outcome.reason},
            )
            return {
                index: p.settle(_call_for(p.node_id, [p.change], source, budget, p.itwin_id))
                for index, p in group
            }
    return {index: p.settle(outcome) for index, p in group}


def _prepare(
    work: WorkItem, config: BridgeConfig, nodes: dict[str, str | Outcome], budget: Budget | None
) -> Outcome | Prepared:
    event = work.event
    source = config.sources.get(event.source)
    if source is None:
        return Parked(f"source {event.source!r} is no longer configured")
    if event.lifecycle is Lifecycle.REMOVED:
        return _prepare_remove(work, source, budget)
    return _prepare_upsert(work, config, source, nodes, budget)


def _prepare_upsert(
    work: WorkItem,
    config: BridgeConfig,
    source: Source,
    nodes: dict[str, str | Outcome],
    budget: Budget | None,
) -> Outcome | Prepared:
    event = work.event
    current = registry.get_device(event.source, event.device_id)
    spec = _spec(config, work, current)
    if _unchanged(current, spec):
        _note_announcement(work)
        return Integrated(unchanged=True)
    if _deleted_since(current, work):
        return Removed()

    node_id = (
        current.node_id if current is not None and (current.integrated or current.maybe_created) else None
    )
    if node_id is None:
        if event.source not in nodes:
            nodes[event.source] = _ensure_node(event.source, source, work.claimant, budget)
        node = nodes[event.source]
        if not isinstance(node, str):
            return node
        node_id = node

    claimed = registry.claim_device(event.source, event.device_id, work.claimant, spec.ref_id)
    if claimed is None:
        return Retryable(IN_FLIGHT)
    spec = _spec(config, work, claimed)  # the record as it stands under our lease
    if _unchanged(claimed, spec):
        registry.release_device(event.source, event.device_id, work.claimant)
        _note_announcement(work)
        return Integrated(unchanged=True)
    if _deleted_since(claimed, work):
        registry.release_device(event.source, event.device_id, work.claimant)
        return Removed()

    facts = known_facts(with_known_facts(event, claimed.facts))
    previous_sensors = claimed.sensor_ids
    if claimed.maybe_created:
        # An earlier change's answer was lost: what is downstream is not what the record says.
        node_id = claimed.node_id or node_id
        probed = _probe(work, spec, claimed, node_id, source, budget, facts)
        if not isinstance(probed, tuple):
            return probed
        change, previous_sensors = probed
    elif claimed.integrated:
        node_id = claimed.node_id or node_id
        change = _update_change(spec, claimed.spec or {})
    else:
        change = _full_change(spec, "new")

    # Write-ahead: from here until its answer is recorded, the change may have been applied.
    try:
        registry.mark_changing(event.source, event.device_id, work.claimant, node_id)
    except registry.LeaseLost:
        return Retryable(IN_FLIGHT)

    def settle(outcome: Outcome) -> Outcome:
        return _settle(
            work, spec, node_id, outcome, changing=True, previous_sensors=previous_sensors, facts=facts
        )

    return Prepared(work, node_id, change, settle, itwin_id=_itwin(source))


def _note_announcement(work: WorkItem) -> None:
    if work.event.announced:
        registry.touch_appeared(work.event.source, work.event.device_id, _event_time(work))


def _unchanged(record: registry.DeviceRecord | None, spec: DeviceSpec) -> bool:
    """Integrated exactly as described, with nothing uncertain about it: no call needed."""
    return (
        record is not None
        and record.integrated
        and not record.maybe_created
        and record.fingerprint == spec.fingerprint
    )


def _spec(config: BridgeConfig, work: WorkItem, record: registry.DeviceRecord | None) -> DeviceSpec:
    return describe_device(config, with_known_facts(work.event, record.facts if record else None))


def _itwin(source: Source) -> str | None:
    return source.itwin_id or settings().itwin_id


def _probe(
    work: WorkItem,
    spec: DeviceSpec,
    record: registry.DeviceRecord,
    node_id: str,
    source: Source,
    budget: Budget | None,
    facts: dict[str, Any],
) -> Outcome | tuple[DeviceChange, dict[str, str]]:
    """Learn what is downstream before changing it: the answer to an earlier `new` or `update`
    was lost, so it may or may not have been applied.

    The probe is a device-only `update` by refId. A 422 naming the device's refId: it is not
    there, create it. A 200: it is, with the sensors the answer lists (matched by NAME); the change
    is then computed against those, so no sensor is created twice or removed twice. Anything else
    is handled like any other answer (retried, or parked for an operator).
    """
    event = work.event
    probe_change = DeviceChange(changeState="update", refId=spec.ref_id, props=spec.props)
    probe = _call_for(node_id, [probe_change], event.source, budget, _itwin(source))
    if isinstance(probe, Parked) and probe.status == 422 and _unknown_device(probe):
        logger.info("probe found no device: creating it", extra={"device": event.device_id})
        return _full_change(spec, "new"), {}
    if not (isinstance(probe, Integrated) and probe.response is not None):
        return _settle(work, spec, node_id, probe, changing=False, previous_sensors={}, facts=facts)
    answer = _answered_device(spec, probe.response.integration.model_dump(mode="json"))
    if answer is None:
        return _settle(work, spec, node_id, probe, changing=False, previous_sensors={}, facts=facts)
    downstream = {s.get("props", {}).get(NAME): s.get("id") for s in answer.get("sensors") or []}
    if spec.sensors and not downstream:
        # Undocumented: an `update` answered without the device's sensors. Without them we cannot
        # tell which exist, and guessing could create them twice: an operator looks.
        reason = "the probe's answer lists no sensors: cannot tell which exist"
        registry.record_parked(event.source, event.device_id, work.claimant, reason)
        return Parked(reason)
    before: dict[str, dict[str, Any]] = (record.spec or {}).get("sensors", {})
    present: dict[str, dict[str, Any]] = {}
    sensor_ids: dict[str, str] = {}
    for ref in {*before, *spec.sensors}:
        for props in (spec.sensors.get(ref), before.get(ref)):
            if props is not None and props.get(NAME) in downstream:
                present[ref] = props
                sensor_ids[ref] = str(downstream[props.get(NAME)])
                break
    logger.info("probe found the device an earlier call changed", extra={"device": event.device_id})
    change = _update_change(spec, {"sensors": present})
    if not change.sensors:
        return _settle(work, spec, node_id, probe, changing=False, previous_sensors={}, facts=facts)
    return change, sensor_ids


def _unknown_device(outcome: Parked) -> bool:
    """A 422 that says the device's refId is unknown (the simulator's and, we assume, the API's
    `target`); a 422 about anything else must not pass for an absent device."""
    if outcome.target is not None:
        return re.fullmatch(r"integration\.devices\[\d+\]\.refId", outcome.target) is not None
    return "refid" in outcome.reason.lower() and "not found" in outcome.reason.lower()


def _call_for(
    node_id: str, changes: list[DeviceChange], source: str, budget: Budget | None, itwin_id: str | None
) -> Outcome:
    request = IntegrationRequest(integration=Integration(nodeId=node_id, devices=changes))
    return call_api(request, source, budget=budget, itwin_id=itwin_id)


def _event_time(work: WorkItem) -> float:
    """When the platform says the event happened; when the bridge first had it, if it does not say.

    Deletions and creations are ordered by it: Event Grid and others redeliver out of order, for
    hours, so the order of arrival is not the order of events.
    """
    return work.event.occurred_at if work.event.occurred_at is not None else work.first_seen


def _deleted_since(record: registry.DeviceRecord | None, work: WorkItem) -> bool:
    """The platform deleted the device after this event happened: the work is superseded."""
    return (
        record is not None
        and not record.integrated
        and not record.maybe_created
        and record.removed_at is not None
        and _event_time(work) < record.removed_at
    )


def may_have_applied(outcome: Outcome) -> bool:
    """Whether a call that ended so may have been applied by the API all the same."""
    if isinstance(outcome, Retryable):
        return outcome.ambiguous  # timeouts after sending, dropped connections, 5xx
    if isinstance(outcome, Parked):
        return outcome.status is not None and 200 <= outcome.status < 300  # a 2xx we cannot read
    return False


def _settle(
    work: WorkItem,
    spec: DeviceSpec,
    node_id: str,
    outcome: Outcome,
    *,
    changing: bool,
    previous_sensors: dict[str, str],
    facts: dict[str, Any],
) -> Outcome:
    """Record what a call did and give the lease back. `changing`: the call carried a change
    under the write-ahead mark, which stays only if the change may have been applied."""
    event = work.event
    created_mark = may_have_applied(outcome) if changing else None
    if isinstance(outcome, Integrated) and outcome.response is not None:
        ids = match_ids(spec, outcome.response.integration.model_dump(mode="json"))
        if ids is None:
            registry.record_parked(
                event.source, event.device_id, work.claimant, "200 without our device", maybe_created=True
            )
            return Parked("the API answered 200 but did not list the device it was sent")
        api_device_id, sensor_ids = ids
        registry.record_integrated(
            event.source,
            event.device_id,
            work.claimant,
            node_id=node_id,
            api_device_id=api_device_id,
            sensor_ids={**{k: v for k, v in previous_sensors.items() if k in spec.sensors}, **sensor_ids},
            spec={"props": spec.props, "sensors": spec.sensors},
            fingerprint=spec.fingerprint,
            facts=facts,
            appeared_at=_event_time(work) if event.announced else None,
        )
        return Integrated(_only(outcome.response, api_device_id))
    if isinstance(outcome, Parked):
        if outcome.status == 422:
            logger.error(
                "integration rejected: the mapping or the profile is wrong",
                extra={"device": event.device_id, "profile": spec.profile, "why": outcome.reason},
            )
        registry.record_parked(
            event.source, event.device_id, work.claimant, outcome.reason, maybe_created=created_mark
        )
        return outcome
    registry.release_device(event.source, event.device_id, work.claimant, maybe_created=created_mark)
    return outcome


def _only(response: IntegrationResponse, api_device_id: str) -> IntegrationResponse:
    """The answer narrowed to one device (a coalesced call answers for several)."""
    integration = response.integration
    mine = [d for d in integration.devices if d.device.id == api_device_id]
    return response.model_copy(update={"integration": integration.model_copy(update={"devices": mine})})


def _prepare_remove(work: WorkItem, source: Source, budget: Budget | None) -> Outcome | Prepared:
    event = work.event
    current = registry.get_device(event.source, event.device_id)
    if current is None or not (current.integrated or current.maybe_created) or current.node_id is None:
        # Never created by us: nothing to remove downstream. The tombstone stops work for the
        # device still waiting on the retry queue from creating it afterwards.
        tombstoned = registry.record_tombstone(event.source, event.device_id, removed_at=_event_time(work))
        return Removed() if tombstoned else Retryable(IN_FLIGHT)
    if current.appeared_at is not None and _event_time(work) < current.appeared_at:
        # Delivered late: the platform announced the device again after this deletion.
        logger.warning("stale deletion ignored: the device was announced again after it")
        return Integrated(unchanged=True)
    claimed = registry.claim_device(event.source, event.device_id, work.claimant, current.ref_id or "")
    if claimed is None:
        return Retryable(IN_FLIGHT)
    change = DeviceChange(changeState="remove", refId=claimed.ref_id or "")

    def settle(outcome: Outcome) -> Outcome:
        gone = isinstance(outcome, Parked) and outcome.status == 422 and _unknown_device(outcome)
        if isinstance(outcome, Integrated) or gone:
            # 422 on remove: the API does not know the refId, so it is gone already.
            registry.record_removed(
                event.source, event.device_id, work.claimant, removed_at=_event_time(work)
            )
            return Removed()
        if isinstance(outcome, Parked):
            registry.record_parked(event.source, event.device_id, work.claimant, outcome.reason)
            return outcome
        registry.release_device(event.source, event.device_id, work.claimant)
        return outcome

    node_id = claimed.node_id or current.node_id
    return Prepared(work, node_id, change, settle, itwin_id=_itwin(source), coalesce=False)


def _ensure_node(source_name: str, source: Source, claimant: str, budget: Budget | None) -> str | Outcome:
    if source.node_id:
        return source.node_id
    node = registry.get_node(source_name)
    if node is not None and node.node_id:
        return node.node_id
    if not registry.claim_node(source_name, claimant):
        return Retryable("the source's node is being created by another delivery")
    request = IntegrationRequest(integration=Integration(changeState="new", devices=[]))
    outcome = call_api(request, source_name, budget=budget, itwin_id=_itwin(source))
    if isinstance(outcome, Integrated) and outcome.response and outcome.response.integration.node:
        node_id = registry.record_node(source_name, claimant, outcome.response.integration.node.id)
        logger.info("node created", extra={"node_id": node_id})
        return node_id
    registry.release_node(source_name, claimant)
    if isinstance(outcome, Integrated):
        return Parked("the API answered 200 to a node creation without a node")
    return outcome


def _full_change(spec: DeviceSpec, state: str) -> DeviceChange:
    return DeviceChange.model_validate(
        {
            "changeState": state,
            "refId": spec.ref_id,
            "props": spec.props,
            "sensors": [{"changeState": state, "refId": ref, "props": p} for ref, p in spec.sensors.items()],
        }
    )


def _update_change(spec: DeviceSpec, previous: dict[str, Any]) -> DeviceChange:
    """Only what changed: the device's props, sensors added, changed or no longer in the profile."""
    before: dict[str, dict[str, Any]] = previous.get("sensors", {})
    sensors = [
        SensorChange(changeState="new" if ref not in before else "update", refId=ref, props=props)
        for ref, props in spec.sensors.items()
        if before.get(ref) != props
    ]
    sensors += [SensorChange(changeState="remove", refId=ref) for ref in before if ref not in spec.sensors]
    return DeviceChange(changeState="update", refId=spec.ref_id, props=spec.props, sensors=sensors)


def _answered_device(spec: DeviceSpec, integration: dict[str, Any]) -> dict[str, Any] | None:
    """Our device in the API's answer. The answer has no refIds and its own order: match by NAME."""
    devices = integration.get("devices") or []
    name = spec.props.get(NAME)
    found = [d for d in devices if (d.get("device") or {}).get("props", {}).get(NAME) == name]
    if not found and len(devices) == 1 and NAME not in (devices[0].get("device") or {}).get("props", {}):
        found = devices  # a lone device answered without a NAME at all: it can only be ours
    return found[0] if found else None


def match_ids(spec: DeviceSpec, integration: dict[str, Any]) -> tuple[str, dict[str, str]] | None:
    """The API's ids for the device and sensors we sent, matched by NAME."""
    answer = _answered_device(spec, integration)
    if answer is None:
        return None
    by_name = {s.get("props", {}).get(NAME): s.get("id") for s in answer.get("sensors") or []}
    sensor_ids = {ref: by_name[p.get(NAME)] for ref, p in spec.sensors.items() if by_name.get(p.get(NAME))}
    return str(answer["device"]["id"]), sensor_ids
