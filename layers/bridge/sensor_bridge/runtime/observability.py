"""Powertools Logger, Tracer and Metrics shared by both functions, and the metric names."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import AmazonCloudWatchEMFProvider

from sensor_bridge.runtime.tracing import LazyXRayProvider

SERVICE = "sensor-bridge"
NAMESPACE = "SensorBridge"


class _LogLine(LambdaPowertoolsFormatter):
    """Powertools' JSON line without what the log stream and Lambda's REPORT line already say,
    the function's ARN and memory size (about 100 bytes a line: CloudWatch Logs bills each)."""

    def serialize(self, log: dict[str, Any]) -> str:  # type: ignore[override]
        log.pop("function_arn", None)
        log.pop("function_memory_size", None)
        return super().serialize(log)


logger = Logger(service=SERVICE, logger_formatter=_LogLine())
# Only what the bridge calls, and not before the first traced request (runtime/tracing.py).
tracer = Tracer(service=SERVICE, auto_patch=False, provider=LazyXRayProvider(("botocore", "httpx")))


class _CountsBySource(AmazonCloudWatchEMFProvider):
    """Powertools' EMF provider that also files each count under its source. An invocation whose
    every count has the same source (a webhook) prints one document with both dimension sets,
    (service) and (service, source), instead of one more document per count: CloudWatch Logs
    bills every byte. Otherwise (a retry batch of several sources) one document per source."""

    def __init__(self) -> None:
        super().__init__(namespace=NAMESPACE, service=SERVICE)
        self.by_source: dict[str, dict[str, tuple[MetricUnit, list[float]]]] = {}

    def add_count(self, source: str, name: str, unit: MetricUnit, value: float) -> None:
        self.by_source.setdefault(source, {}).setdefault(name, (unit, []))[1].append(float(value))

    def flush_metrics(self, raise_on_empty_metrics: bool = False) -> None:
        by_source, self.by_source = self.by_source, {}
        totals = {name: (MetricUnit(m["Unit"]), m["Value"]) for name, m in self.metric_set.items()}
        if len(by_source) == 1 and next(iter(by_source.values())) == totals:
            self.add_dimensions(service=SERVICE, source=next(iter(by_source)))
        else:
            for source, counts in by_source.items():
                document = AmazonCloudWatchEMFProvider(namespace=NAMESPACE, service=SERVICE)
                document.add_dimension(name="service", value=SERVICE)
                document.add_dimension(name="source", value=source)
                for name, (unit, values) in counts.items():
                    for value in values:
                        document.add_metric(name=name, unit=unit, value=value)
                document.flush_metrics()
        super().flush_metrics(raise_on_empty_metrics)


_emf = _CountsBySource()
metrics = Metrics(provider=_emf)


class Metric(StrEnum):
    WEBHOOKS_RECEIVED = "WebhooksReceived"
    WEBHOOKS_IGNORED = "WebhooksIgnored"
    WEBHOOKS_REJECTED = "WebhooksRejected"
    # One per answer status (retry.route): what happened to a device.
    DEVICES_INTEGRATED = "DevicesIntegrated"  # created
    DEVICES_UPDATED = "DevicesUpdated"
    DEVICES_UNCHANGED = "DevicesUnchanged"  # already as described: no call
    DEVICES_REMOVED = "DevicesRemoved"
    UNKNOWN_DEVICE_REMOVALS = "UnknownDeviceRemovals"  # a delete of a device never created
    SUPERSEDED = "Superseded"  # older than a deletion or a full description already processed
    DUPLICATES = "Duplicates"  # an event the platform sent before (idempotency replay)
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
        _emf.add_count(source, metric.value, unit, value)
