"""Real AWS event shapes for invoking the handlers in-process: API Gateway HTTP API (payload
format 2.0), SQS event source mapping batches, and a Lambda context object."""

from __future__ import annotations

import base64
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from sensor_bridge.runtime import clock

ACCOUNT = "123456789012"
REGION = "eu-west-1"


@dataclass(frozen=True)
class HttpRequest:
    """One HTTP request as a client sent it, before API Gateway turns it into an event."""

    method: str
    path: str
    headers: dict[str, str]
    query: dict[str, str] | None = None
    body: bytes = b""
    source_ip: str = "127.0.0.1"


def http_api_event(request: HttpRequest, route_key: str, path_parameters: dict[str, str]) -> dict[str, Any]:
    """An API Gateway HTTP API v2 event as Lambda receives it, for the route the request matched."""
    method, path, headers, query, body = (
        request.method,
        request.path,
        request.headers,
        request.query,
        request.body,
    )
    source_ip = request.source_ip
    now = time.time()
    lowered = {k.lower(): v for k, v in headers.items()}
    text_body = _is_text(lowered.get("content-type", "")) and _is_utf8(body)
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": urlencode(query or {}),
        "headers": lowered,
        "requestContext": {
            "accountId": ACCOUNT,
            "apiId": "localapi",
            "domainName": "localhost",
            "domainPrefix": "localhost",
            "http": {
                "method": method.upper(),
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": lowered.get("user-agent", ""),
            },
            "requestId": uuid.uuid4().hex[:16],
            "routeKey": route_key,
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": not text_body,
    }
    if path_parameters:  # absent, not empty, on a route without parameters ($default)
        event["pathParameters"] = path_parameters
    if query:
        event["queryStringParameters"] = dict(query)
    if body:
        event["body"] = body.decode("utf-8") if text_body else base64.b64encode(body).decode("ascii")
    return event


def _is_utf8(body: bytes) -> bool:
    # Bytes that are not UTF-8 cannot travel in the event's JSON as text: they go base64-encoded,
    # as binary bodies do, so the handler sees exactly the bytes that arrived.
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _is_text(content_type: str) -> bool:
    # API Gateway base64-encodes every body that is not text per its content type.
    ct = content_type.lower()
    return ct.startswith("text/") or "json" in ct or "x-www-form-urlencoded" in ct or "xml" in ct


def sqs_event(messages: list[dict[str, Any]], queue_arn: str) -> dict[str, Any]:
    """An SQS event source mapping batch built from ReceiveMessage results."""
    records = []
    for message in messages:
        attributes = message.get("MessageAttributes") or {}
        records.append(
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
                "attributes": message.get("Attributes") or {},
                "messageAttributes": {
                    name: {
                        "stringValue": value.get("StringValue"),
                        "binaryValue": value.get("BinaryValue"),
                        "stringListValues": [],
                        "binaryListValues": [],
                        "dataType": value["DataType"],
                    }
                    for name, value in attributes.items()
                },
                "md5OfBody": message.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": REGION,
            }
        )
    return {"Records": records}


@dataclass
class LambdaContext:
    """The context object Lambda passes to a handler (the attributes Powertools reads)."""

    function_name: str
    memory_limit_in_mb: int = 512
    timeout_seconds: float = 4.0
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = ""
    log_stream_name: str = ""
    # On the bridge's clock: frozen (the benchmarks), the invocation's time runs with simulated time.
    _started: float = field(default_factory=clock.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.timeout_seconds - (clock.monotonic() - self._started)) * 1000))
