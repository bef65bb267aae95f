"""Learning what is downstream before changing it: the answer to an earlier `new` or `update` was
lost (a 5xx, a timeout, a crash before the registry write), so it may or may not have been applied.

The probe is a device-only `update` by refId. A 422 naming the device's refId: it is not there,
create it. A 200: it is, with the sensors the answer lists (matched by NAME); the change is then
computed against those, so no sensor is created twice or removed twice. Anything else is handled
like any other answer (retried, or parked for an operator).
"""

from __future__ import annotations

import re
from typing import Any

from sensor_bridge.delivery.changes import answered_device, full_change, sensors_by_name, update_change
from sensor_bridge.delivery.context import Delivery, Planned
from sensor_bridge.delivery.settle import settle
from sensor_bridge.model.config import BridgeConfig, Source
from sensor_bridge.model.contract import NAME, DeviceChange
from sensor_bridge.model.outcomes import Integrated, Outcome, Parked
from sensor_bridge.model.profiles import possible_sensors
from sensor_bridge.runtime.observability import logger
from sensor_bridge.store.registry import DeviceRecord

# A probe's result: the change to send and the sensor ids found downstream, or an Outcome.
Probed = Outcome | tuple[DeviceChange, dict[str, str]]


def probe(delivery: Delivery, planned: Planned, record: DeviceRecord, source: Source) -> Probed:
    work, spec = planned.work, planned.spec
    event = work.event
    probe_change = DeviceChange(changeState="update", refId=spec.ref_id, props=spec.props)
    answer = delivery.integrate(planned.node_id, [probe_change], source, event.source)
    if isinstance(answer, Parked) and answer.status == 422 and unknown_device(answer):
        logger.info("probe found no device: creating it", extra={"device": event.device_id})
        return full_change(spec, "new"), {}
    device = _answered(planned, answer)
    if device is None:
        return settle(delivery, planned, answer, changing=False)
    downstream = sensors_by_name(device)
    if spec.sensors and not downstream:
        # Undocumented: an `update` answered without the device's sensors. Without them we cannot
        # tell which exist, and guessing could create them twice: an operator looks.
        reason = "the probe's answer lists no sensors: cannot tell which exist"
        delivery.registry.record_parked(event.source, event.device_id, work.claimant, reason)
        return Parked(reason)
    present, sensor_ids = _present_sensors(planned, record, downstream, delivery.config)
    logger.info("probe found the device an earlier call changed", extra={"device": event.device_id})
    change = update_change(spec, {"sensors": present})
    if not change.sensors:
        return settle(delivery, planned, answer, changing=False)
    return change, sensor_ids


def _answered(planned: Planned, answer: Outcome) -> dict[str, Any] | None:
    if not (isinstance(answer, Integrated) and answer.response is not None):
        return None
    return answered_device(planned.spec, answer.response.integration.model_dump(mode="json"))


def _present_sensors(
    planned: Planned, record: DeviceRecord, downstream: dict[Any, Any], config: BridgeConfig
) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """The sensors found downstream, by refId (as described now, as integrated before, or as any
    profile describes them: the lost call may have changed the profile), and their ids. A sensor
    neither the record nor the spec names is then removed, not left to be created a second time
    when that profile comes back."""
    spec = planned.spec
    before: dict[str, dict[str, Any]] = (record.spec or {}).get("sensors", {})
    others = possible_sensors(config, spec.ref_id)
    present: dict[str, dict[str, Any]] = {}
    sensor_ids: dict[str, str] = {}
    unclaimed = dict(downstream)  # each sensor found is one refId's: the first that names it
    for ref in [*spec.sensors, *before, *others]:
        for props in (spec.sensors.get(ref), before.get(ref), others.get(ref)):
            if ref not in present and props is not None and props.get(NAME) in unclaimed:
                present[ref] = props
                sensor_ids[ref] = str(unclaimed.pop(props.get(NAME)))
                break
    return present, sensor_ids


def unknown_device(outcome: Parked) -> bool:
    """A 422 that says the device's refId is unknown (the simulator's and, we assume, the API's
    `target`); a 422 about anything else must not pass for an absent device."""
    if outcome.target is not None:
        return re.fullmatch(r"integration\.devices\[\d+\]\.refId", outcome.target) is not None
    return "refid" in outcome.reason.lower() and "not found" in outcome.reason.lower()
