"""The Sensor Data raw-data query, `POST {base}/data/observations`: which observations are stored
for some sensors in a time range. The bridge asks it after an upload whose answer was lost (a
dropped connection, a timeout, a 5xx after sending), so that it re-sends only what the API does
not have: the upload has no idempotency key.

The reference lists the operation but no body: the bridge sends `{"sensorIds": [...], "from",
"to"}` (ISO 8601) and reads `{"observations": [{"sensorId", "timestamp", "values"}]}` in one page
(docs/SIMULATOR.md: the simulator's model of it). It is one API call like the others: the same
token, budget and shared rate limiter. An uncertain work's look-up is one more call through that
limiter (kind ONBOARDING), beyond the upload turn `retry.pace` gave the work; a 429, 5xx or timeout
of it counts an attempt toward MAX_ATTEMPTS, as the upload's would. Its answer is read as the
integrate call's is, except that a query changes nothing, so no failure of it is ambiguous, and a
200 whose body has another shape is `Parked` (the bridge cannot tell what is stored).
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError

from sensor_bridge.model.outcomes import Integrated, Outcome, Parked
from sensor_bridge.runtime.budget import Budget
from sensor_bridge.runtime.http import post_within
from sensor_bridge.runtime.observability import tracer
from sensor_bridge.runtime.settings import settings
from sensor_bridge.sensor_data.client import (
    ACCEPT,
    ApiCall,
    TokenRejected,
    changing_nothing,
    ms_since,
    read_answer_changing_nothing,
    remaining_calls,
    transport_failure,
    with_token,
)
from sensor_bridge.sensor_data.limiter import ONBOARDING


class StoredObservation(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)
    sensorId: str  # the API's field name
    timestamp: datetime


class QueryAnswer(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)
    observations: list[StoredObservation]


def query_body(sensor_ids: list[str], start: str, end: str) -> dict[str, Any]:
    return {"sensorIds": sensor_ids, "from": start, "to": end}


@tracer.capture_method(capture_response=False)
def stored_observations(
    sensor_ids: list[str], start: str, end: str, source: str, *, budget: Budget | None = None
) -> list[StoredObservation] | Outcome:
    """The observations the API holds for these sensors from `start` to `end` (inclusive), or the
    Outcome that kept the bridge from reading them."""
    found: list[list[StoredObservation]] = []
    outcome = with_token(
        lambda token, timeout: post_query(query_body(sensor_ids, start, end), token, found, timeout),
        source,
        budget,
        ONBOARDING,
    )
    return found[-1] if isinstance(outcome, Integrated) and found else outcome


def post_query(
    body: dict[str, Any], token: str, found: list[list[StoredObservation]], timeout_s: float | None
) -> ApiCall:
    """One POST; a readable 200 appends its observations to `found` and is `Integrated()`."""
    s = settings()
    started = time.perf_counter()
    try:
        answer = post_within(
            f"{s.api_base_url}/data/observations",
            timeout_s if timeout_s is not None else s.api_timeout_seconds,
            json=body,
            headers={"Authorization": f"Bearer {token}", "Accept": ACCEPT},
        )
    except httpx.HTTPError as exc:
        return changing_nothing(transport_failure(exc, started))
    return ApiCall(_read(answer, found), answer.status_code, ms_since(started), remaining_calls(answer))


def _read(answer: httpx.Response, found: list[list[StoredObservation]]) -> Outcome | TokenRejected:
    if answer.status_code != 200:
        return read_answer_changing_nothing(answer)
    try:
        found.append(QueryAnswer.model_validate_json(answer.content).observations)
    except ValidationError:
        return Parked(
            'the observations query answered 200 with a body that is not {"observations": [...]}', 200
        )
    return Integrated()
