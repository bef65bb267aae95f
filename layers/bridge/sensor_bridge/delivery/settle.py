"""Settling a call: each device reads its own part of the answer, records it in the registry and
gives its lease back. What a call that ended badly may still have done decides the write-ahead mark.
"""

from __future__ import annotations

from sensor_bridge.delivery.changes import match_ids
from sensor_bridge.delivery.context import Delivery, Planned
from sensor_bridge.model.contract import IntegrationResponse
from sensor_bridge.model.outcomes import Integrated, Outcome, Parked, Retryable, with_profile
from sensor_bridge.runtime.observability import logger
from sensor_bridge.store.registry import IntegratedDevice


def may_have_applied(outcome: Outcome) -> bool:
    """Whether a call that ended so may have been applied by the API all the same."""
    if isinstance(outcome, Retryable):
        return outcome.ambiguous  # timeouts after sending, dropped connections, 5xx
    if isinstance(outcome, Parked):
        return outcome.status is not None and 200 <= outcome.status < 300  # a 2xx we cannot read
    return False


def settle(
    delivery: Delivery, planned: Planned, outcome: Outcome, *, changing: bool, sent: int = 1
) -> Outcome:
    """Record what a call did and give the lease back. `changing`: the call carried a change
    under the write-ahead mark, which stays only if the change may have been applied (or an
    earlier one's answer was lost). `sent`: how
    many devices the call carried."""
    work = planned.work
    event = work.event
    created_mark = (may_have_applied(outcome) or planned.uncertain) if changing else None
    if isinstance(outcome, Integrated) and outcome.response is not None:
        return _record_answer(delivery, planned, outcome.response, sent)
    if isinstance(outcome, Parked):
        if outcome.status == 422:
            logger.error(
                "integration rejected: the mapping or the profile is wrong",
                extra={"device": event.device_id, "profile": planned.spec.profile, "why": outcome.reason},
            )
        delivery.registry.record_parked(
            event.source, event.device_id, work.claimant, outcome.reason, maybe_created=created_mark
        )
        return with_profile(outcome, planned.spec.profile)
    delivery.registry.release_device(event.source, event.device_id, work.claimant, maybe_created=created_mark)
    return with_profile(outcome, planned.spec.profile)


def _record_answer(delivery: Delivery, planned: Planned, response: IntegrationResponse, sent: int) -> Outcome:
    work, spec = planned.work, planned.spec
    event = work.event
    ids = match_ids(spec, response.integration.model_dump(mode="json"), sent)
    if ids is None:
        delivery.registry.record_parked(
            event.source, event.device_id, work.claimant, "200 without our device", maybe_created=True
        )
        return Parked("the API answered 200 but did not list the device it was sent", profile=spec.profile)
    api_device_id, sensor_ids = ids
    kept = {k: v for k, v in planned.previous_sensors.items() if k in spec.sensors}
    result = IntegratedDevice(
        node_id=planned.node_id,
        api_device_id=api_device_id,
        sensor_ids={**kept, **sensor_ids},
        spec={"props": spec.props, "sensors": spec.sensors},
        fingerprint=spec.fingerprint,
        facts=planned.facts,
        appeared_at=work.event_time if event.announced else None,
    )
    delivery.registry.record_integrated(event.source, event.device_id, work.claimant, result)
    return Integrated(_only(response, api_device_id), created=planned.creates, profile=spec.profile)


def _only(response: IntegrationResponse, api_device_id: str) -> IntegrationResponse:
    """The answer narrowed to one device (a coalesced call answers for several)."""
    integration = response.integration
    mine = [d for d in integration.devices if d.device.id == api_device_id]
    return response.model_copy(update={"integration": integration.model_copy(update={"devices": mine})})
