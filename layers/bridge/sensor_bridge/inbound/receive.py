"""Receiving one webhook: find the source, authenticate, answer handshakes, parse, deliver."""

from __future__ import annotations

import re
from dataclasses import replace
from functools import cache
from typing import Any

from sensor_bridge.delivery.deliver import deliver
from sensor_bridge.inbound.auth.authenticate import authenticate
from sensor_bridge.inbound.batch import direct, receive_batch
from sensor_bridge.inbound.idempotency import Once, once_per_event
from sensor_bridge.model.config import BridgeConfig
from sensor_bridge.model.device_event import DeviceEvent
from sensor_bridge.model.outcomes import Integrated
from sensor_bridge.model.readings import keep_mapped, mapped_paths
from sensor_bridge.model.replies import HttpReply, RequestError, error_reply
from sensor_bridge.model.request import WebhookRequest
from sensor_bridge.model.work import WorkItem, work_id_for
from sensor_bridge.platforms import platform_for
from sensor_bridge.platforms.identity import at_the_edge
from sensor_bridge.retry.queue import NotPersisted, check_queueable, schedule
from sensor_bridge.retry.route import act_on, duplicate_of
from sensor_bridge.runtime.budget import Budget, HasRemainingTime, invocation
from sensor_bridge.runtime.observability import Metric, count, logger
from sensor_bridge.runtime.process import on_reset
from sensor_bridge.runtime.settings import settings
from sensor_bridge.store.aws_clients import caused_by_outage
from sensor_bridge.store.config_source import current_config

_WEBHOOK_PATH = re.compile(r"/webhooks/[^/]+")
_ALLOW = {"Allow": "POST, OPTIONS"}
STORAGE_UNAVAILABLE = "the bridge's storage is busy or unavailable: send the event again shortly"


def receive(request: WebhookRequest, context: HasRemainingTime | None = None) -> HttpReply:
    """Answer one webhook. `context` (the Lambda context) bounds the API calls: what does not fit
    in the invocation's remaining time is queued rather than cut off."""
    source_name = request.source
    logger.append_keys(source=source_name)
    # Per-source series only for configured sources: a caller must not mint metric dimensions.
    known = source_name if source_name in current_config().sources else None
    count(Metric.WEBHOOKS_RECEIVED, known)
    try:
        with invocation(Budget.from_context(context, settings().api_timeout_seconds)) as budget:
            reply = _receive(request, budget)
    except RequestError as exc:
        if exc.status < 500:
            count(Metric.WEBHOOKS_REJECTED, known)
        logger.warning("webhook refused", extra={"status": exc.status, "why": exc.message})
        return exc.reply()
    except NotPersisted:
        logger.exception("work could not be persisted: the platform must send again")
        return error_reply(503, "ServiceUnavailable", "the bridge could not store the work: send it again")
    except Exception as exc:
        # DynamoDB throttled or down (the registry, the idempotency record, the limiter): nothing
        # was promised, so a resend is safe; answered in our shape with a Retry-After, not as a
        # crash (a 500 without either, and the function's error alarm).
        if not caused_by_outage(exc):
            raise
        logger.warning("storage unavailable: the platform must send again", extra={"why": type(exc).__name__})
        return error_reply(503, "StorageUnavailable", STORAGE_UNAVAILABLE, {"Retry-After": "5"})
    return reply


def unrouted(method: str, path: str) -> HttpReply:
    """The answer to a request no route serves, in our error shape like every other refusal."""
    count(Metric.WEBHOOKS_RECEIVED, None)
    count(Metric.WEBHOOKS_REJECTED, None)
    if _WEBHOOK_PATH.fullmatch(path):
        return error_reply(405, "MethodNotAllowed", f"{method} is not served here: use POST", _ALLOW)
    return error_reply(404, "NotFound", "no such route: webhooks are POSTed to /webhooks/<source>")


def _receive(request: WebhookRequest, budget: Budget) -> HttpReply:
    config = current_config()
    source = config.sources.get(request.source)
    if source is None:
        raise RequestError(404, "UnknownSource", f"no source named {request.source!r} is configured")
    logger.append_keys(platform=source.platform)
    if len(request.body) > source.max_body_bytes:
        raise RequestError(413, "PayloadTooLarge", f"the body is larger than {source.max_body_bytes} bytes")
    if request.method not in ("POST", "OPTIONS"):
        raise RequestError(405, "MethodNotAllowed", "use POST", headers=_ALLOW)
    platform = platform_for(source.platform)
    if not platform.handshake_before_auth:
        authenticate(request, source)
    handshake = platform.handshake(request, request.source, source)
    if handshake is not None:
        logger.info("handshake answered")
        return handshake
    if platform.handshake_before_auth:
        authenticate(request, source)
    if request.method != "POST":
        raise RequestError(405, "MethodNotAllowed", "use POST", headers={"Allow": "POST"})
    parsed = platform.parse(request, request.source, source)
    if not parsed.events:
        count(Metric.WEBHOOKS_IGNORED, request.source)
        return HttpReply(202, {"status": "ignored", "reason": parsed.ignored or "no device event"})
    # Every event is checked before any is acted on: a refusal must not follow half the work.
    events = [_only_mapped(config, at_the_edge(event)) for event in parsed.events]
    for event in events:  # a 2xx promises the work a place on the queues, however it goes on
        check_queueable(WorkItem(event))
    return _deliver(request.source, events, budget)


def _deliver(source: str, events: list[DeviceEvent], budget: Budget) -> HttpReply:
    if len(events) > 1:  # an Event Grid batch: up to 5,000 events, handled as one
        return receive_batch(source, events, budget)
    return _summarise([_deliver_once(event, budget) for event in events])


def _deliver_once(event: DeviceEvent, budget: Budget) -> dict[str, Any]:
    answer, replayed = _deliver_once_per_event()(event=event.to_json(), budget=budget)
    return duplicate_of(answer, event.source) if replayed else answer


def _only_mapped(config: BridgeConfig, event: DeviceEvent) -> DeviceEvent:
    """The event with only the reading fields some profile maps: what no profile maps is counted
    and dropped here, so the work item stays small on the queue."""
    if event.reading is None:
        return event
    reading = keep_mapped(event.reading, mapped_paths(config, event.platform))
    if reading.unmapped:
        count(Metric.READING_FIELDS_UNMAPPED, event.source, reading.unmapped)
        logger.info("reading fields no profile maps", extra={"unmapped_fields": reading.unmapped})
    if not reading.fields:
        return replace(event, reading=None)
    # Its values are uploaded once: a resent message is answered from the idempotency record.
    return replace(event, reading=reading, event_id=event.event_id or reading.message_id)


def _deliver_event(*, event: dict[str, Any], budget: Budget) -> dict[str, Any]:
    device_event = DeviceEvent.from_json(event)
    logger.append_keys(device=device_event.device_id)
    work = WorkItem(device_event, work_id=work_id_for(device_event))
    # The device now (under pressure the limiter does not admit the direct call: it is queued at
    # once, to go with others in a shared call); its reading, if any, goes on the retry queue to be
    # uploaded with others (one upload call per retry batch: readings outnumber the rate budget).
    outcome = deliver(work.device_only(), current_config(), budget=budget, downstream=direct())
    if isinstance(outcome, Integrated) and device_event.reading is not None:
        schedule(work.its_reading(), 0)
        count(Metric.READINGS_QUEUED, device_event.source)
    return act_on(work, outcome).to_json()


@on_reset
def _forget_handler() -> None:
    _deliver_once_per_event.cache_clear()


@cache
def _deliver_once_per_event() -> Once:
    return once_per_event(_deliver_event)


def _summarise(results: list[dict[str, Any]]) -> HttpReply:
    statuses = {r["status"] for r in results}
    # A duplicate stands for its first answer: the work may still be queued or parked.
    waiting = {r.get("firstStatus", r["status"]) for r in results} & {"queued", "parked"}
    # 200: the API has every device; 202: we hold some of the work (queued or parked).
    overall = "accepted" if len(statuses) > 1 else next(iter(statuses))
    return HttpReply(202 if waiting else 200, {"status": overall, "results": results})
