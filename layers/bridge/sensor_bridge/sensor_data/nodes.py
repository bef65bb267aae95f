"""The Sensor Data node listing, `GET {base}/integrations/nodes?iTwinId=<id>`: the nodes of the
asset, each with its props (`NAME` among them), so the bridge finds the node it created before it
would create another (a lost creation answer, a lost registry item, a second deployment).

Its answer is read as the integrate call's is (429 rate-limited, 408/5xx/transport errors
retryable, 401 refreshed once, other 4xx parked). The body's shape is not in the seed: the bridge
reads `{"nodes": [{"id", "props"}...]}` (sensor-data-api.md) and parks an answer it cannot read
rather than guess that its node is missing.
"""

from __future__ import annotations

import time

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError

from sensor_bridge.model.contract import NodeInfo
from sensor_bridge.model.outcomes import Integrated, Outcome, Parked
from sensor_bridge.runtime.budget import Budget
from sensor_bridge.runtime.http import http_client
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
from sensor_bridge.sensor_data.limiter import DIRECT, ONBOARDING, Kind


class NodeListing(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)
    nodes: list[NodeInfo]


@tracer.capture_method(capture_response=False)
def list_nodes(
    source: str, *, budget: Budget | None = None, itwin_id: str | None = None, kind: Kind = ONBOARDING
) -> list[NodeInfo] | Outcome:
    """The asset's nodes, or the Outcome that kept the bridge from reading them."""
    listed: list[list[NodeInfo]] = []
    outcome = with_token(
        lambda token, timeout: get_nodes(token, listed, timeout_s=timeout, itwin_id=itwin_id),
        source,
        budget,
        kind,
    )
    return listed[-1] if isinstance(outcome, Integrated) and listed else outcome


def list_nodes_direct(
    source: str, *, budget: Budget | None = None, itwin_id: str | None = None
) -> list[NodeInfo] | Outcome:
    """The webhook function's listing: sent only while the budget is not short (else queued)."""
    return list_nodes(source, budget=budget, itwin_id=itwin_id, kind=DIRECT)


def get_nodes(
    token: str, listed: list[list[NodeInfo]], *, timeout_s: float | None, itwin_id: str | None
) -> ApiCall:
    """One GET; a readable 200 appends its nodes to `listed` and is answered `Integrated()`."""
    s = settings()
    itwin_id = itwin_id or s.itwin_id
    started = time.perf_counter()
    try:
        answer = http_client().get(
            f"{s.api_base_url}/integrations/nodes",
            params={"iTwinId": itwin_id} if itwin_id else None,
            headers={"Authorization": f"Bearer {token}", "Accept": ACCEPT},
            timeout=timeout_s if timeout_s is not None else s.api_timeout_seconds,
        )
    except httpx.HTTPError as exc:
        return changing_nothing(transport_failure(exc, started))
    return ApiCall(_read(answer, listed), answer.status_code, ms_since(started), remaining_calls(answer))


def _read(answer: httpx.Response, listed: list[list[NodeInfo]]) -> Outcome | TokenRejected:
    if answer.status_code != 200:
        return read_answer_changing_nothing(answer)
    try:
        listed.append(NodeListing.model_validate_json(answer.content).nodes)
    except ValidationError:
        return Parked('the node listing answered 200 with a body that is not {"nodes": [...]}', 200)
    return Integrated()
