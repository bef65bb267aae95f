"""What a webhook leaves in CloudWatch: structured log lines and EMF metrics, and no secrets."""

from __future__ import annotations

import contextlib
import io
import json
import logging
from collections.abc import Iterator

import webhook_handler
from local.apigw import LambdaContext
from local.provision import LOCAL_WEBHOOK_SECRETS
from local.simulator import DEMO_CLIENT_SECRET
from local.stack import LocalStack
from sensor_bridge.runtime.observability import Metric, count, logger, metrics
from tests.conftest import load_event


@contextlib.contextmanager
def cloudwatch_output() -> Iterator[io.StringIO]:
    """Lambda sends stdout to CloudWatch Logs: capture the logger's stream and EMF's prints."""
    buffer = io.StringIO()
    handler = logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    previous = handler.setStream(buffer)
    try:
        with contextlib.redirect_stdout(buffer):
            yield buffer
    finally:
        handler.setStream(previous)


def post_answer(stack: LocalStack, name: str) -> dict:
    """The events/ file through the real handler; the whole Lambda answer."""
    event = load_event(name)
    answer: dict = webhook_handler.lambda_handler(event, LambdaContext("WebhookFunction"))
    return answer


def lines(buffer: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in buffer.getvalue().splitlines() if line.startswith("{")]


def post(stack: LocalStack, name: str) -> tuple[int, str]:
    """The events/ file exactly as API Gateway would hand it to the function."""
    event = load_event(name)
    answer = webhook_handler.lambda_handler(event, LambdaContext("WebhookFunction"))
    return answer["statusCode"], event["requestContext"]["requestId"]


def test_integrated_webhook_logs_with_correlation_id_and_device_and_emits_metrics(stack: LocalStack) -> None:
    with cloudwatch_output() as out:
        status, request_id = post(stack, "ttn-01-join-accept.json")

    assert status == 200
    records = lines(out)
    logs = [r for r in records if "level" in r]
    integrated = next(r for r in logs if r["message"] == "delivery integrated")
    # The log line says what the answer says: the status and the profile that matched.
    assert (integrated["status"], integrated["profile"]) == ("integrated", "generic")
    assert integrated["correlation_id"] == request_id
    assert integrated["source"] == "ttn-demo"
    assert integrated["platform"] == "the-things-stack"
    assert integrated["device"] == "bridge-monitoring/strain-gauge-01"
    assert integrated["function_name"] == "WebhookFunction"
    assert integrated["function_request_id"]  # what ties the line to Lambda's REPORT line
    # What the log stream and the REPORT line already say is not repeated on every line.
    assert "function_arn" not in integrated
    assert "function_memory_size" not in integrated

    # One EMF document for the invocation: every count under the service and under its source.
    (emf,) = [r for r in records if "_aws" in r]
    (directive,) = emf["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "SensorBridge"
    assert directive["Dimensions"] == [["service"], ["service", "source"]]
    names = {m["Name"] for m in directive["Metrics"]}
    assert names == {"WebhooksReceived", "DevicesIntegrated", "ApiLatency"}
    assert (emf["service"], emf["source"]) == ("sensor-bridge", "ttn-demo")
    assert (emf["WebhooksReceived"], emf["DevicesIntegrated"]) == ([1.0], [1.0])


def test_counts_of_several_sources_go_one_document_per_source_besides_the_totals() -> None:
    with cloudwatch_output() as out:
        count(Metric.RETRIED, "ttn-demo")
        count(Metric.RETRIED, "chirpstack-demo", 2)
        count(Metric.DEAD_LETTERED, None)
        metrics.flush_metrics()

    emf = [r for r in lines(out) if "_aws" in r]
    dimensions = [r["_aws"]["CloudWatchMetrics"][0]["Dimensions"] for r in emf]
    assert dimensions == [[["service", "source"]], [["service", "source"]], [["service"]]]
    assert [(r.get("source"), r["Retried"]) for r in emf] == [
        ("ttn-demo", [1.0]),
        ("chirpstack-demo", [2.0]),
        (None, [1.0, 2.0]),
    ]
    assert "DeadLettered" not in emf[0]
    assert emf[2]["DeadLettered"] == [1.0]


def test_no_secret_or_token_appears_in_logs_metrics_answers_or_queues(stack: LocalStack) -> None:
    answers = []
    with cloudwatch_output() as out:
        answers.append(post_answer(stack, "ttn-01-join-accept.json"))
        answers.append(post_answer(stack, "ttn-09-wrong-token.json"))
        stack.simulator.expire_tokens()
        answers.append(post_answer(stack, "ttn-02-join-accept-second-device.json"))
        stack.simulator.inject({"status": 503}, {"status": 403})
        answers.append(post_answer(stack, "ttn-03-join-accept-third-device.json"))  # queued
        answers.append(post_answer(stack, "ttn-06-uplink-new-device.json"))  # parked
        for name in ("aws-iot-01-destination-confirmation.json", "azure-02-device-created.json"):
            answers.append(post_answer(stack, name))

    status = answers[1]["statusCode"]
    assert status == 401
    queued, parked = stack.queue_messages("retry"), stack.queue_messages("dead-letter")
    assert len(queued) == 1
    assert len(parked) == 1
    text = out.getvalue() + json.dumps(answers) + json.dumps(queued) + json.dumps(parked)
    issued_tokens = list(stack.simulator._tokens)  # every bearer token the IMS simulator issued
    assert len(issued_tokens) == 2  # the first, and the one fetched after the API refused it
    assert len(stack.simulator.state()["calls"]) >= 5
    for secret in [*LOCAL_WEBHOOK_SECRETS.values(), DEMO_CLIENT_SECRET, *issued_tokens, "not-the-token"]:
        assert secret not in text
    assert "webhook refused" in text
