"""The Sensor Data upload call, `POST {base}/data/upload`: readings against the sensor ids the
integrate answer assigned, with the same token, shared rate limiter and budget as the integrate
call. Only the retry function uploads, and `retry.pace` has already given each work it lets
through its call: upload-only work when READINGS' turn has come (onboarding first, a quarter
kept), a device's own work at its onboarding turn. So the call is admitted as queued work's
(kind ONBOARDING): as READINGS it would wait behind the very turn reserved for it, and a work
whose device was already in would come back at every turn, never to fit (issue 10's parked
readings at 1 call/minute).

Its answer is read as the integrate call's is (429 rate-limited, 408/5xx/transport errors
retryable, 401 refreshed once, other 4xx parked), except that success is the documented 202 with
no body: `Integrated()` here means "the API accepted the observations".
"""

from __future__ import annotations

import time
from typing import Any

import httpx

from sensor_bridge.model.outcomes import Integrated, Outcome
from sensor_bridge.runtime.budget import Budget
from sensor_bridge.runtime.http import post_within
from sensor_bridge.runtime.observability import tracer
from sensor_bridge.runtime.settings import settings
from sensor_bridge.sensor_data.client import (
    ACCEPT,
    ApiCall,
    TokenRejected,
    ms_since,
    read_answer,
    remaining_calls,
    transport_failure,
    with_token,
)
from sensor_bridge.sensor_data.limiter import ONBOARDING

Observation = dict[str, Any]  # {"sensorId", "timestamp", "values": {metric: number}}


@tracer.capture_method(capture_response=False)
def upload(observations: list[Observation], source: str, *, budget: Budget | None = None) -> Outcome:
    """POST the observations; Integrated() when the API accepted them (202)."""
    # ONBOARDING: pace already applied READINGS' rule; this call is the turn it gave the work.
    return with_token(
        lambda token, timeout: post_upload(observations, token, timeout), source, budget, ONBOARDING
    )


def post_upload(observations: list[Observation], token: str, timeout_s: float | None = None) -> ApiCall:
    s = settings()
    started = time.perf_counter()
    try:
        answer = post_within(
            f"{s.api_base_url}/data/upload",
            timeout_s if timeout_s is not None else s.api_timeout_seconds,
            json={"observations": observations},
            headers={"Authorization": f"Bearer {token}", "Accept": ACCEPT},
        )
    except httpx.HTTPError as exc:
        return transport_failure(exc, started)
    return ApiCall(_read(answer), answer.status_code, ms_since(started), remaining_calls(answer))


def _read(answer: httpx.Response) -> Outcome | TokenRejected:
    if 200 <= answer.status_code < 300:
        return Integrated()  # 202 ACCEPTED, no body
    return read_answer(answer)
