"""The Sensor Data raw-data query, `POST {base}/data/observations`: which observations are stored
for some sensors in a time range. The bridge asks it after an upload whose answer was lost (a
dropped connection, a timeout, a 5xx after sending), so that it re-sends only what the API does
not have: the upload has no idempotency key.

The reference lists the operation but no body: the bridge sends `{"sensorIds": [...], "from",
"to"}` (ISO 8601) and reads `{"observations": [{"sensorId", "timestamp", "values"}]}` in one page
(docs/SIMULATOR.md: the simulator's model of it). It is one API call like the others: the same
token, budget and shared rate limiter. An uncertain work's look-up is one more call through that
limiter (kind ONBOARDING), which `retry.pace` budgets beside the work's upload call; a 429, 5xx or timeout
of it counts an attempt toward MAX_ATTEMPTS, as the upload's would. Its answer is read as
`sensor_data.lookups` reads a look-up's: no failure of it is ambiguous, and a 200 whose body has
another shape, or is too large to read, is `Parked` (the bridge cannot tell what is stored).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from sensor_bridge.model.outcomes import Integrated, Outcome
from sensor_bridge.runtime.budget import Budget
from sensor_bridge.runtime.http import post_within
from sensor_bridge.runtime.observability import tracer
from sensor_bridge.runtime.settings import settings
from sensor_bridge.sensor_data.client import ACCEPT, ApiCall, with_token
from sensor_bridge.sensor_data.limiter import ONBOARDING
from sensor_bridge.sensor_data.lookups import Looked, look


class StoredObservation(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)
    sensorId: str  # the API's field name
    timestamp: datetime
    # As stored ({metric: value}); None when the answer leaves them out (matched by instant then).
    # Any shape: one that is no such mapping only fails to match, it does not void the answer.
    values: Any = None


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


QUERY = Looked("the observations query", '{"observations": [...]}')


def post_query(
    body: dict[str, Any], token: str, found: list[list[StoredObservation]], timeout_s: float | None
) -> ApiCall:
    """One POST; a readable 200 appends its observations to `found` and is `Integrated()`."""
    s = settings()
    answers: list[QueryAnswer] = []
    call = look(
        lambda: post_within(
            f"{s.api_base_url}/data/observations",
            timeout_s if timeout_s is not None else s.api_timeout_seconds,
            json=body,
            headers={"Authorization": f"Bearer {token}", "Accept": ACCEPT},
        ),
        QueryAnswer,
        answers,
        QUERY,
    )
    found.extend(a.observations for a in answers)
    return call
