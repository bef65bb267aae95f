"""Webhook function: API Gateway HTTP API → sensor_bridge. Wiring only."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from sensor_bridge.inbound.idempotency import register_lambda_context
from sensor_bridge.inbound.receive import receive, unrouted
from sensor_bridge.model.replies import HttpReply
from sensor_bridge.model.request import WebhookRequest
from sensor_bridge.runtime.observability import logger, metrics, tracer

app = APIGatewayHttpResolver()


def _to_response(reply: HttpReply) -> Response[str]:
    return Response(
        status_code=reply.status,
        content_type="application/json",
        body=json.dumps(reply.body) if reply.body is not None else "",
        headers=reply.headers,
    )


@app.post("/webhooks/<source>")
@app.route("/webhooks/<source>", method=["OPTIONS"])
def webhook(source: str) -> Response[str]:
    request = WebhookRequest.from_http_api_event(app.current_event.raw_event, source)
    return _to_response(receive(request, app.lambda_context))


@app.not_found
def not_routed(_: NotFoundError) -> Response[str]:
    event = app.current_event
    return _to_response(unrouted(event.request_context.http.method, event.path))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    register_lambda_context(context)
    return app.resolve(event, context)
