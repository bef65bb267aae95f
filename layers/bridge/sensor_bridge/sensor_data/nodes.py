"""The Sensor Data node listing, `GET {base}/integrations/nodes?iTwinId=<id>`: the nodes of the
asset, each with its props (`NAME` among them), so the bridge finds the node it created before it
would create another (a lost creation answer, a lost registry item, a second deployment).

Its answer is read as `sensor_data.lookups` reads a look-up's (429 rate-limited, 408/5xx/transport
errors retried as they were, 401 refreshed once, other 4xx parked), whole within the call's time
(`runtime.http.request_within`). The body's shape is not in the seed: the bridge reads
`{"nodes": [{"id", "props"}...]}` (sensor-data-api.md) and parks an answer it cannot read (or one
too large to read) rather than guess that its node is missing.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from sensor_bridge.model.contract import NodeInfo
from sensor_bridge.model.outcomes import Integrated, Outcome
from sensor_bridge.runtime.budget import Budget
from sensor_bridge.runtime.http import request_within
from sensor_bridge.runtime.observability import tracer
from sensor_bridge.runtime.settings import settings
from sensor_bridge.sensor_data.client import ACCEPT, ApiCall, with_token
from sensor_bridge.sensor_data.limiter import DIRECT, ONBOARDING, Kind
from sensor_bridge.sensor_data.lookups import Looked, look


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


LISTING = Looked("the node listing", '{"nodes": [...]}')


def get_nodes(
    token: str, listed: list[list[NodeInfo]], *, timeout_s: float | None, itwin_id: str | None
) -> ApiCall:
    """One GET; a readable 200 appends its nodes to `listed` and is answered `Integrated()`."""
    s = settings()
    itwin_id = itwin_id or s.itwin_id
    answers: list[NodeListing] = []
    call = look(
        lambda: request_within(
            "GET",
            f"{s.api_base_url}/integrations/nodes",
            timeout_s if timeout_s is not None else s.api_timeout_seconds,
            params={"iTwinId": itwin_id} if itwin_id else None,
            headers={"Authorization": f"Bearer {token}", "Accept": ACCEPT},
        ),
        NodeListing,
        answers,
        LISTING,
    )
    listed.extend(a.nodes for a in answers)
    return call
