"""Delivering one device event to Sensor Data: the registry decides new, update, remove or
nothing; the API call's answer becomes an Outcome; the registry records what happened.

The webhook function and the retry function both deliver through `deliver`.
"""

from __future__ import annotations

from typing import Any

from sensor_bridge import registry
from sensor_bridge.api_client import TokenRejected, post_integration
from sensor_bridge.config import BridgeConfig, Source
from sensor_bridge.contract import NAME, DeviceChange, Integration, IntegrationRequest, SensorChange
from sensor_bridge.device_event import Lifecycle
from sensor_bridge.observability import Metric, count, logger
from sensor_bridge.outcomes import Integrated, Outcome, Parked, Removed, Retryable
from sensor_bridge.profiles import DeviceSpec, describe_device
from sensor_bridge.secret_store import SecretUnavailable
from sensor_bridge.tokens import TokenUnavailable, token_provider
from sensor_bridge.work import WorkItem

IN_FLIGHT = "another delivery of this device is in progress"


def call_api(request: IntegrationRequest, source: str, *, timeout_s: float | None = None) -> Outcome:
    """POST the integration; on 401 refresh the token once and try again, then park."""
    for refreshed in (False, True):
        try:
            token = token_provider.get()
        except TokenUnavailable as exc:
            return Retryable(str(exc)) if exc.retryable else Parked(str(exc))
        except SecretUnavailable as exc:
            return Retryable(str(exc))
        call = post_integration(request, token, timeout_s=timeout_s)
        count(Metric.API_LATENCY, source, call.latency_ms)
        if not isinstance(call.outcome, TokenRejected):
            return call.outcome
        token_provider.invalidate(token)
        if refreshed:
            return Parked(f"{call.outcome.reason} after a token refresh", 401)
    raise AssertionError("unreachable")


def deliver(work: WorkItem, config: BridgeConfig, *, timeout_s: float | None = None) -> Outcome:
    event = work.event
    source = config.sources.get(event.source)
    if source is None:
        return Parked(f"source {event.source!r} is no longer configured")
    if event.lifecycle is Lifecycle.REMOVED:
        return _remove(work, source, timeout_s)
    return _upsert(work, config, source, timeout_s)


def _upsert(work: WorkItem, config: BridgeConfig, source: Source, timeout_s: float | None) -> Outcome:
    event = work.event
    spec = describe_device(config, event)
    current = registry.get_device(event.source, event.device_id)
    if current is not None and current.integrated and current.fingerprint == spec.fingerprint:
        return Integrated(unchanged=True)

    node_id = current.node_id if current is not None and current.integrated else None
    if node_id is None:
        node = _ensure_node(event.source, source, work.work_id, timeout_s)
        if not isinstance(node, str):
            return node
        node_id = node

    claimed = registry.claim_device(event.source, event.device_id, work.work_id, spec.ref_id)
    if claimed is None:
        return Retryable(IN_FLIGHT)
    if claimed.integrated and claimed.fingerprint == spec.fingerprint:
        registry.release_device(event.source, event.device_id, work.work_id)
        return Integrated(unchanged=True)

    if claimed.integrated:
        change = _update_change(spec, claimed.spec or {})
        node_id = claimed.node_id or node_id
    elif claimed.maybe_created:
        # An earlier `new` may have landed unseen: address the device by refId first. The API
        # answers 422 for an unknown refId, and only then do we create it.
        probe = _call_for(node_id, _full_change(spec, "update"), event.source, timeout_s)
        if not (isinstance(probe, Parked) and probe.status == 422):
            return _settle(work, spec, node_id, probe, maybe_created=True, previous_sensors={})
        change = _full_change(spec, "new")
    else:
        change = _full_change(spec, "new")

    outcome = _call_for(node_id, change, event.source, timeout_s)
    return _settle(
        work,
        spec,
        node_id,
        outcome,
        maybe_created=change.changeState == "new" or claimed.maybe_created,
        previous_sensors=claimed.sensor_ids,
    )


def _call_for(node_id: str, change: DeviceChange, source: str, timeout_s: float | None) -> Outcome:
    request = IntegrationRequest(integration=Integration(nodeId=node_id, devices=[change]))
    return call_api(request, source, timeout_s=timeout_s)


def _settle(
    work: WorkItem,
    spec: DeviceSpec,
    node_id: str,
    outcome: Outcome,
    *,
    maybe_created: bool,
    previous_sensors: dict[str, str],
) -> Outcome:
    event = work.event
    if isinstance(outcome, Integrated) and outcome.response is not None:
        ids = match_ids(spec, outcome.response.integration.model_dump(mode="json"))
        if ids is None:
            registry.record_parked(event.source, event.device_id, work.work_id, "200 without our device")
            return Parked("the API answered 200 but did not list the device it was sent")
        api_device_id, sensor_ids = ids
        registry.record_integrated(
            event.source,
            event.device_id,
            work.work_id,
            node_id=node_id,
            api_device_id=api_device_id,
            sensor_ids={**{k: v for k, v in previous_sensors.items() if k in spec.sensors}, **sensor_ids},
            spec={"props": spec.props, "sensors": spec.sensors},
            fingerprint=spec.fingerprint,
        )
        return outcome
    if isinstance(outcome, Parked):
        if outcome.status == 422:
            logger.error(
                "integration rejected: the mapping or the profile is wrong", extra={"why": outcome.reason}
            )
        registry.record_parked(event.source, event.device_id, work.work_id, outcome.reason)
        return outcome
    ambiguous = isinstance(outcome, Retryable) and outcome.ambiguous and maybe_created
    registry.release_device(event.source, event.device_id, work.work_id, maybe_created=ambiguous)
    return outcome


def _remove(work: WorkItem, source: Source, timeout_s: float | None) -> Outcome:
    event = work.event
    current = registry.get_device(event.source, event.device_id)
    if current is None or not (current.integrated or current.maybe_created) or current.node_id is None:
        return Removed()  # never created by us: nothing to remove
    claimed = registry.claim_device(event.source, event.device_id, work.work_id, current.ref_id or "")
    if claimed is None:
        return Retryable(IN_FLIGHT)
    change = DeviceChange(changeState="remove", refId=claimed.ref_id or "")
    outcome = _call_for(claimed.node_id or current.node_id, change, event.source, timeout_s)
    if isinstance(outcome, Integrated) or (isinstance(outcome, Parked) and outcome.status == 422):
        # 422 on remove: the API does not know the refId, so it is gone already.
        registry.record_removed(event.source, event.device_id, work.work_id)
        return Removed()
    if isinstance(outcome, Parked):
        registry.record_parked(event.source, event.device_id, work.work_id, outcome.reason)
        return outcome
    registry.release_device(event.source, event.device_id, work.work_id)
    return outcome


def _ensure_node(source_name: str, source: Source, claimant: str, timeout_s: float | None) -> str | Outcome:
    if source.node_id:
        return source.node_id
    node = registry.get_node(source_name)
    if node is not None and node.node_id:
        return node.node_id
    if not registry.claim_node(source_name, claimant):
        return Retryable("the source's node is being created by another delivery")
    request = IntegrationRequest(integration=Integration(changeState="new", devices=[]))
    outcome = call_api(request, source_name, timeout_s=timeout_s)
    if isinstance(outcome, Integrated) and outcome.response and outcome.response.integration.node:
        node_id = outcome.response.integration.node.id
        registry.record_node(source_name, claimant, node_id)
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


def match_ids(spec: DeviceSpec, integration: dict[str, Any]) -> tuple[str, dict[str, str]] | None:
    """The API's ids for what we sent. The answer has no refIds and its own order: match by NAME."""
    devices = integration.get("devices") or []
    name = spec.props.get(NAME)
    found = [d for d in devices if (d.get("device") or {}).get("props", {}).get(NAME) == name]
    if not found and len(devices) == 1:
        found = devices
    if not found:
        return None
    answer = found[0]
    by_name = {s.get("props", {}).get(NAME): s.get("id") for s in answer.get("sensors") or []}
    sensor_ids = {ref: by_name[p.get(NAME)] for ref, p in spec.sensors.items() if by_name.get(p.get(NAME))}
    return str(answer["device"]["id"]), sensor_ids
