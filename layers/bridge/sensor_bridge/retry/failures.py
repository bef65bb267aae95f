"""An item whose delivery raised (`delivery.context.Failed`): it fails alone. An outage that
passes (AWS throttling, a 5xx, the network) leaves its message for SQS to hand out again; any
other error would fail the same way on every receive, so the item is parked at once with its
reason instead of reaching the dead-letter queue blind after maxReceiveCount receives."""

from __future__ import annotations

from dataclasses import replace

from sensor_bridge.delivery.context import Failed
from sensor_bridge.model.outcomes import Parked
from sensor_bridge.model.work import WorkItem
from sensor_bridge.retry.queue import NotPersisted
from sensor_bridge.retry.route import Result, act_on
from sensor_bridge.runtime.observability import logger
from sensor_bridge.store.aws_clients import is_outage

CANNOT_DELIVER = "the bridge cannot deliver this work"


def act_on_failure(work: WorkItem, failed: Failed) -> Result | Exception:
    """The message's answer: the error (SQS retries this message alone) or a parked Result."""
    if isinstance(failed.error, NotPersisted) or is_outage(failed.error):
        logger.warning(
            "delivery failed on an outage: this message alone goes back to SQS",
            extra={"device": work.event.device_id, "why": failed.reason},
        )
        return failed.error
    if failed.step == "readings":
        # It may have raised after its upload left (recording the answer): a redrive looks first.
        work = replace(work, upload_uncertain=True)
    return act_on(work, Parked(f"{CANNOT_DELIVER}: {failed.reason}"))
