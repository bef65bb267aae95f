"""Powertools Logger, Tracer and Metrics shared by both functions, and the metric names."""

from __future__ import annotations

from enum import StrEnum

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit, single_metric

from sensor_bridge.runtime.tracing import LazyXRayProvider

SERVICE = "sensor-bridge"
NAMESPACE = "SensorBridge"

logger = Logger(service=SERVICE)
# Only what the bridge calls, and not before the first traced request (runtime/tracing.py).
tracer = Tracer(service=SERVICE, auto_patch=False, provider=LazyXRayProvider(("botocore", "httpx")))
metrics = Metrics(service=SERVICE, namespace=NAMESPACE)


class Metric(StrEnum):
    WEBHOOKS_RECEIVED = "WebhooksReceived"
    WEBHOOKS_IGNORED = "WebhooksIgnored"
    WEBHOOKS_REJECTED = "WebhooksRejected"
    DEVICES_INTEGRATED = "DevicesIntegrated"
    DEVICES_REMOVED = "DevicesRemoved"
    DUPLICATES_SUPPRESSED = "DuplicatesSuppressed"
    RATE_LIMITED = "RateLimited"  # the API answered 429
    HELD_BACK = "HeldBack"  # not sent: waiting its turn (rate budget, time budget, a lease)
    RETRIED = "Retried"
    DEAD_LETTERED = "DeadLettered"
    API_LATENCY = "ApiLatency"
    READINGS_FORWARDED = "ReadingsForwarded"  # observations the API accepted
    READINGS_QUEUED = "ReadingsQueued"  # readings waiting on the retry queue (with their device)
    READINGS_PARKED = "ReadingsParked"  # readings on the dead-letter queue
    READING_FIELDS_UNMAPPED = "ReadingFieldsUnmapped"  # fields no profile maps: dropped, not sent


def count(metric: Metric, source: str | None, value: float = 1) -> None:
    """Add a count under the service dimension, and again per source.

    Alarms read the service-only series; the dashboard reads the per-source one.
    """
    unit = MetricUnit.Milliseconds if metric is Metric.API_LATENCY else MetricUnit.Count
    metrics.add_metric(name=metric.value, unit=unit, value=value)
    if source:
        with single_metric(
            name=metric.value,
            unit=unit,
            value=value,
            namespace=NAMESPACE,
            default_dimensions={"service": SERVICE},
        ) as m:
            m.add_dimension(name="source", value=source)
