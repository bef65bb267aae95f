"""The source's node in Sensor Data: configured, recorded in the registry, or created once."""

from __future__ import annotations

from sensor_bridge.delivery.context import Delivery, itwin_for
from sensor_bridge.model.config import Source
from sensor_bridge.model.contract import Integration, IntegrationRequest
from sensor_bridge.model.outcomes import Deferred, Integrated, Outcome, Parked
from sensor_bridge.runtime.observability import logger


def node_for(delivery: Delivery, source_name: str, source: Source, claimant: str) -> str | Outcome:
    """The source's node id, looked up (or created) once per delivery run."""
    if source_name not in delivery.nodes:
        delivery.nodes[source_name] = _ensure_node(delivery, source_name, source, claimant)
    return delivery.nodes[source_name]


def _ensure_node(delivery: Delivery, source_name: str, source: Source, claimant: str) -> str | Outcome:
    if source.node_id:
        return source.node_id
    registry = delivery.registry
    node = registry.get_node(source_name)
    if node is not None and node.node_id:
        return node.node_id
    if not registry.claim_node(source_name, claimant):
        return Deferred("the source's node is being created by another delivery")
    request = IntegrationRequest(integration=Integration(changeState="new", devices=[]))
    outcome = delivery.api(request, source_name, budget=delivery.budget, itwin_id=itwin_for(source))
    if isinstance(outcome, Integrated) and outcome.response and outcome.response.integration.node:
        node_id = registry.record_node(source_name, claimant, outcome.response.integration.node.id)
        logger.info("node created", extra={"node_id": node_id})
        return node_id
    registry.release_node(source_name, claimant)
    if isinstance(outcome, Integrated):
        return Parked("the API answered 200 to a node creation without a node")
    return outcome
