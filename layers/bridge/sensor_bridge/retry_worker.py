"""The retry function's work: one queued WorkItem through the same delivery code as the webhook."""

from __future__ import annotations

from dataclasses import replace

from sensor_bridge import clock
from sensor_bridge.actions import Result, act_on
from sensor_bridge.config_source import current_config
from sensor_bridge.delivery import deliver
from sensor_bridge.observability import logger
from sensor_bridge.retry_queue import schedule
from sensor_bridge.work import WorkItem


def process_message(body: str) -> Result:
    """Deliver one message. Raises (NotPersisted, outages) to leave it on the queue for SQS to retry."""
    work = WorkItem.from_message(body)
    logger.append_keys(source=work.event.source, device=work.event.device_id, platform=work.event.platform)
    if work.parked_reason is not None:
        # Redriven from the dead-letter queue after an operator fixed the cause: a fresh start.
        logger.info("redriven work", extra={"was_parked_for": work.parked_reason})
        work = replace(work, attempts=0, parked_reason=None)
    if work.not_before is not None:
        remaining = int(work.not_before - clock.now())
        if remaining > 0:
            # A wait longer than one SQS delay: another hop, no call, no attempt used.
            delay = schedule(replace(work, not_before=None), remaining)
            return Result(work.event.device_id, "queued", "waiting for Retry-After", retry_in_seconds=delay)
        work = replace(work, not_before=None)
    outcome = deliver(work, current_config())
    return act_on(work, outcome)
