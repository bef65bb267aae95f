"""The Sensor Data integrate call (with its token and the shared rate limiter) and the reading of
its answer into an Outcome.

One place decides what an answer means: 200 integrated, 429 rate-limited, 408/5xx/transport
errors retryable, 401 a token problem (the caller refreshes once), other 4xx parked.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
from pydantic import ValidationError

from sensor_bridge.model.contract import ErrorResponse, IntegrationRequest, IntegrationResponse
from sensor_bridge.model.outcomes import Deferred, Integrated, Outcome, Parked, RateLimited, Retryable
from sensor_bridge.runtime import clock
from sensor_bridge.runtime.budget import BUDGET_SPENT, Budget
from sensor_bridge.runtime.http import post_within
from sensor_bridge.runtime.observability import Metric, count, tracer
from sensor_bridge.runtime.settings import settings
from sensor_bridge.sensor_data.limiter import BUDGET_SHORT, DIRECT, HELD_BACK, ONBOARDING, Kind, limiter
from sensor_bridge.sensor_data.retry_after import retry_after_of
from sensor_bridge.sensor_data.tokens import TokenUnavailable, token_provider
from sensor_bridge.store.secrets import SecretUnavailable

ACCEPT = "application/vnd.bentley.itwin-platform.v1+json"


@dataclass(frozen=True)
class TokenRejected:
    """401 from the API: the caller refreshes the token once, then parks."""

    reason: str


@dataclass(frozen=True)
class ApiCall:
    outcome: Outcome | TokenRejected
    status: int | None
    latency_ms: float
    remaining_calls: int | None = None  # iTwinPlatform-RateLimit-RemainingCalls, when sent


@tracer.capture_method(capture_response=False)
def integrate(
    request: IntegrationRequest,
    source: str,
    *,
    budget: Budget | None = None,
    itwin_id: str | None = None,
    kind: Kind = ONBOARDING,
) -> Outcome:
    """POST the integration with a token; on 401 refresh the token once and try again, then park.

    Not sent at all when the limiter does not admit it (Deferred: the retry function's call gets
    a reserved turn, the webhook's is queued to go with others), or the budget has no room."""
    return with_token(
        lambda token, timeout: post_integration(request, token, timeout_s=timeout, itwin_id=itwin_id),
        source,
        budget,
        kind,
    )


def with_token(
    post: Callable[[str, float | None], ApiCall], source: str, budget: Budget | None, kind: Kind
) -> Outcome:
    """One API call (`post(token, timeout)`) through the budget, the token and the limiter: on 401
    the token is refreshed once and the call tried again, then parked. Every call goes here."""
    for refreshed in (False, True):
        timeout = budget.call_timeout() if budget is not None else None
        if budget is not None and timeout is None:
            return Deferred(BUDGET_SPENT)
        try:
            token = token_provider.get()  # a fetch from IMS takes its time from the same budget
        except TokenUnavailable as exc:
            return Retryable(str(exc)) if exc.retryable else Parked(str(exc))
        except SecretUnavailable as exc:
            return Retryable(str(exc))
        if budget is not None:
            timeout = budget.call_timeout()
            if timeout is None:
                return Deferred(BUDGET_SPENT)
        refused = _not_admitted(kind)
        if refused is not None:
            return refused
        call = post(token, timeout)
        count(Metric.API_LATENCY, source, call.latency_ms)
        if not isinstance(call.outcome, TokenRejected):
            _learn(call)
            return call.outcome
        token_provider.invalidate(token)
        if refreshed:
            return Parked(f"{call.outcome.reason} after a token refresh", 401)
    raise AssertionError("unreachable")


def integrate_direct(
    request: IntegrationRequest, source: str, *, budget: Budget | None = None, itwin_id: str | None = None
) -> Outcome:
    """The webhook function's call: sent only while the budget is not short (else queued)."""
    return integrate(request, source, budget=budget, itwin_id=itwin_id, kind=DIRECT)


def _not_admitted(kind: Kind) -> Deferred | None:
    admission = limiter().admit(kind)
    if admission.admitted:
        return None
    if kind is ONBOARDING:
        # Queued work that finds no budget takes the next free turn, so a backlog is spread over
        # the windows it needs instead of all coming back at once.
        return Deferred(HELD_BACK, limiter().reserve_slot())
    # The webhook's device goes on as queued onboarding; an upload stays READINGS: it waits for
    # READINGS' own turn (a quarter kept), or it would come back only to be refused again.
    return Deferred(BUDGET_SHORT, limiter().peek(ONBOARDING if kind is DIRECT else kind))


def _learn(call: ApiCall) -> None:
    outcome = call.outcome
    refused = isinstance(outcome, RateLimited)
    retry_after = outcome.retry_after_s if isinstance(outcome, RateLimited) else None
    limiter().learn(refused=refused, retry_after_s=retry_after, remaining=call.remaining_calls)


def post_integration(
    request: IntegrationRequest, token: str, *, timeout_s: float | None = None, itwin_id: str | None = None
) -> ApiCall:
    s = settings()
    itwin_id = itwin_id or s.itwin_id
    params = {"iTwinId": itwin_id} if itwin_id else None
    started = time.perf_counter()
    try:
        answer = post_within(
            f"{s.api_base_url}/integrations/integrate",
            timeout_s if timeout_s is not None else s.api_timeout_seconds,
            json=request.to_json_body(),
            params=params,
            headers={"Authorization": f"Bearer {token}", "Accept": ACCEPT},
        )
    except httpx.HTTPError as exc:
        return transport_failure(exc, started)
    return ApiCall(read_answer(answer), answer.status_code, ms_since(started), remaining_calls(answer))


def remaining_calls(answer: httpx.Response) -> int | None:
    remaining = answer.headers.get("iTwinPlatform-RateLimit-RemainingCalls", "")
    return int(remaining) if remaining.isdigit() else None


def transport_failure(exc: httpx.HTTPError, started: float) -> ApiCall:
    """A call that got no readable answer: whether it may have been applied decides `ambiguous`."""
    if isinstance(exc, httpx.ConnectError):
        # Nothing was sent: safe to retry as it was.
        return ApiCall(Retryable(f"connection failed: {type(exc).__name__}"), None, ms_since(started))
    if isinstance(exc, httpx.TimeoutException):
        ambiguous = not isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout)
        return ApiCall(
            Retryable(f"timed out: {type(exc).__name__}", ambiguous=ambiguous), None, ms_since(started)
        )
    if isinstance(exc, httpx.TransportError):
        return ApiCall(
            Retryable(f"connection dropped: {type(exc).__name__}", ambiguous=True), None, ms_since(started)
        )
    # e.g. a body that cannot be decoded: it was sent and answered
    return ApiCall(
        Retryable(f"unreadable answer: {type(exc).__name__}", ambiguous=True), None, ms_since(started)
    )


def read_answer(answer: httpx.Response) -> Outcome | TokenRejected:
    status = answer.status_code
    if status == 200:
        try:
            return Integrated(IntegrationResponse.model_validate_json(answer.content))
        except ValidationError:
            # The call succeeded but its answer is unreadable: retrying would duplicate. Park it
            # for an operator, who can see the device in Sensor Data.
            return Parked("200 with an answer that is not an IntegrationResponse", status)
    reason = f"{status} {_error_summary(answer)}"
    if 200 <= status < 300:
        # Not the documented 200: it may well have been applied, so it is not retried blindly.
        return Parked(f"{status}: an answer other than the documented 200", status)
    if status == 429:
        # An HTTP-date is read against the bridge's one clock (simulated in the local stack).
        now = datetime.fromtimestamp(clock.now(), UTC)
        return RateLimited(retry_after_of(answer.headers, now), reason)
    if status == 401:
        return TokenRejected(reason)
    if status == 408 or status >= 500:
        # A gateway may answer 5xx after the service applied the request: the next attempt of a
        # `new` probes before creating again.
        return Retryable(reason, ambiguous=True)
    return Parked(reason, status, _error_target(answer))


def _error_target(answer: httpx.Response) -> str | None:
    try:
        return ErrorResponse.model_validate_json(answer.content).error.target
    except ValidationError:
        return None


def _error_summary(answer: httpx.Response) -> str:
    # Clients must not assume every failure has the error body (seed: Error Response).
    try:
        error = ErrorResponse.model_validate_json(answer.content).error
    except ValidationError:
        return answer.reason_phrase or "error"
    target = f" (target {error.target})" if error.target else ""
    return f"{error.code}: {error.message}{target}"


def ms_since(started: float) -> float:
    """Milliseconds since `started` (time.perf_counter()), as a call's duration is reported."""
    return round((time.perf_counter() - started) * 1000, 1)
