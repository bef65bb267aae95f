"""Calls that only look (the node listing, the raw-data query): one place sends them and reads
their answers, as `client` does for the integrate call.

They change nothing, so no failure of theirs is ambiguous: a timeout, a dropped answer or a 5xx is
asked again as it was, never probed for what it may have done. A 200 whose body is not the
expected shape, or is larger than the bridge reads (`http.ANSWER_MAX_BYTES`), is `Parked`: the
bridge cannot tell what the API holds, and its callers decide what that means.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from sensor_bridge.model.outcomes import Integrated, Outcome, Parked, Retryable
from sensor_bridge.runtime.http import AnswerTooLarge
from sensor_bridge.sensor_data.client import (
    ApiCall,
    TokenRejected,
    ms_since,
    read_answer,
    remaining_calls,
    transport_failure,
)

Answer = TypeVar("Answer", bound=BaseModel)


@dataclass(frozen=True)
class Looked:
    """What a look-up is called and the body it expects, as its parked reasons name them."""

    call: str
    shape: str


def look(
    send: Callable[[], httpx.Response], answer: type[Answer], found: list[Answer], what: Looked
) -> ApiCall:
    """Send one look-up; a readable 200 appends its `answer` model to `found` and is `Integrated()`."""
    started = time.perf_counter()
    try:
        response = send()
    except AnswerTooLarge as exc:
        if exc.status != 200:  # a 429, 5xx or 401 means what its status says, whatever its body
            outcome = read_answer_changing_nothing(httpx.Response(exc.status, request=exc.request))
            return ApiCall(outcome, exc.status, ms_since(started))
        return ApiCall(Parked(f"{what.call} answered {exc}", exc.status), exc.status, ms_since(started))
    except httpx.HTTPError as exc:
        return changing_nothing(transport_failure(exc, started))
    return ApiCall(
        read_look(response, answer, found, what),
        response.status_code,
        ms_since(started),
        remaining_calls(response),
    )


def read_look(
    response: httpx.Response, answer: type[Answer], found: list[Answer], what: Looked
) -> Outcome | TokenRejected:
    if response.status_code != 200:
        return read_answer_changing_nothing(response)
    try:
        found.append(answer.model_validate_json(response.content))
    except ValidationError:
        return Parked(f"{what.call} answered 200 with a body that is not {what.shape}", 200)
    return Integrated()


def changing_nothing(call: ApiCall) -> ApiCall:
    """A call that changes nothing: a timeout or a dropped answer is asked again as it was."""
    if isinstance(call.outcome, Retryable):
        return replace(call, outcome=replace(call.outcome, ambiguous=False))
    return call


def read_answer_changing_nothing(response: httpx.Response) -> Outcome | TokenRejected:
    """`read_answer` of a call that changes nothing: a 5xx is retried as it was."""
    outcome = read_answer(response)
    return replace(outcome, ambiguous=False) if isinstance(outcome, Retryable) else outcome
