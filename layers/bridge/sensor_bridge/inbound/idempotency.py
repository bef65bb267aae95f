"""Event-level idempotency (Powertools Idempotency on DynamoDB): a repeated delivery of the same
platform event gets the first answer back without doing the work again.

Only answers that mean "we have it" are stored: a failure to persist raises, and Powertools then
deletes the in-progress record so the platform's resend is processed afresh. A replayed answer is
marked as such (Powertools' response hook), so the caller can say `duplicate` rather than repeat
the first answer as if it had just happened.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

from sensor_bridge.model.replies import RequestError
from sensor_bridge.runtime.process import on_reset
from sensor_bridge.runtime.settings import settings
from sensor_bridge.store.aws_clients import CurrentClient

KEY_PREFIX = "sensor-bridge.webhook-event"
RECORD_TTL_SECONDS = 24 * 3600  # longer than any platform's own redelivery window (Event Grid: 24 h)

IN_PROGRESS = "the same event is being processed by an earlier delivery: send it again shortly"

Handler = Callable[..., dict[str, Any]]
# What a wrapped handler answers: the answer, and whether it is the first one replayed.
Once = Callable[..., tuple[dict[str, Any], bool]]
# Set on a replayed answer by the response hook (never stored: the hook runs after the read).
_REPLAYED = "_replayed"


@cache
def _persistence() -> Any:
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

    # The registry's clients: timeouts from the invocation's deadline, no second session to build
    # at a cold start.
    return DynamoDBPersistenceLayer(
        table_name=settings().idempotency_table, boto3_client=CurrentClient("dynamodb")
    )


@cache
def _config() -> Any:
    from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig

    # Scoped by source: one platform event can reach several sources (two Event Grid
    # subscriptions on one IoT Hub), and each must be processed.
    return IdempotencyConfig(
        event_key_jmespath="[source, event_id]",
        expires_after_seconds=RECORD_TTL_SECONDS,
        response_hook=_mark_replayed,
    )


def _mark_replayed(response: Any, idempotent_data: Any) -> Any:
    """Powertools calls this only for an answer it read back from an earlier processing."""
    return {**response, _REPLAYED: True} if isinstance(response, dict) else response


def register_lambda_context(context: Any) -> None:
    """Lets Powertools expire an in-progress record when the invocation times out."""
    _config().register_lambda_context(context)


def once_per_event(process: Handler) -> Once:
    """Wrap `process(event=<dict with "event_id">)`; events without an id run every time.
    The wrapper answers (answer, replayed): replayed is True for the first answer given back."""
    from aws_lambda_powertools.utilities.idempotency import idempotent_function

    wrapped: Handler = idempotent_function(
        data_keyword_argument="event",
        config=_config(),
        persistence_store=_persistence(),
        # Without it the key starts with the function's module and name: renaming either would
        # make every event seen in the last day new again.
        key_prefix=KEY_PREFIX,
    )(process)

    from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError

    def run(*, event: dict[str, Any], **kwargs: Any) -> tuple[dict[str, Any], bool]:
        if not event.get("event_id"):
            return process(event=event, **kwargs), False
        try:
            answer = wrapped(event=event, **kwargs)
        except IdempotencyAlreadyInProgressError:
            # Not ours to promise yet: the first delivery may still fail. Ask for a resend, which
            # will get the first delivery's answer.
            raise RequestError(503, "EventInProgress", IN_PROGRESS, headers={"Retry-After": "5"}) from None
        replayed = bool(answer.pop(_REPLAYED, False))
        return answer, replayed

    return run


@on_reset
def reset() -> None:
    _persistence.cache_clear()
    _config.cache_clear()
