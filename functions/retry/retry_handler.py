"""Retry function: SQS retry queue → sensor_bridge, with partial batch failures. Wiring only.

The batch is delivered as a whole first (so devices for the same node share integrate calls);
the BatchProcessor then reports each message's own answer, failing only those that failed.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from sensor_bridge.retry.worker import Answers, process_batch, received_again
from sensor_bridge.runtime.observability import logger, metrics, tracer

processor = BatchProcessor(event_type=EventType.SQS)


def _answer_from(answers: Answers) -> Any:
    def record_handler(record: SQSRecord) -> dict[str, Any]:
        answer = answers[record.message_id]
        if isinstance(answer, Exception):
            raise answer
        return answer.to_json()

    return record_handler


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    records = event.get("Records", [])
    answers = process_batch(
        [(r["messageId"], r["body"]) for r in records], context, received_before=received_again(records)
    )
    return process_partial_response(
        event=event, record_handler=_answer_from(answers), processor=processor, context=context
    )
