"""The source's node in Sensor Data: configured, recorded in the registry, or created once."""

from __future__ import annotations

import time

from sensor_bridge.delivery.context import Delivery, itwin_for
from sensor_bridge.model.config import Source
from sensor_bridge.model.contract import Integration, IntegrationRequest
from sensor_bridge.model.outcomes import Deferred, Integrated, Outcome, Parked
from sensor_bridge.runtime.observability import logger

# Waiting for a node another delivery creates: at most two seconds (a node call takes far less).
NODE_WAIT_POLLS = 20
NODE_WAIT_POLL_SECONDS = 0.1


def node_for(delivery: Delivery, source_name: str, source: Source, claimant: str) -> str | Outcome:
    """The source's node id, looked up (or created) once per delivery run."""
    if source_name not in delivery.nodes:
        delivery.nodes[source_name] = _ensure_node(delivery, source_name, source, claimant)
    return delivery.nodes[source_name]


def _node_created_elsewhere(delivery: Delivery, source_name: str) -> str | Outcome:
    """Another delivery is creating the node (the first devices of a source join together): its
    call takes a fraction of a second, so wait for it briefly rather than queue the device."""
    for _ in range(NODE_WAIT_POLLS):
        if delivery.budget is not None and delivery.budget.call_timeout() is None:
            break
        time.sleep(NODE_WAIT_POLL_SECONDS)
        node = delivery.registry.get_node(source_name)
        if node is not None and node.node_id:
            return node.node_id
    return Deferred("the source's node is being created by another delivery")


def _ensure_node(delivery: Delivery, source_name: str, source: Source, claimant: str) -> str | Outcome:
    if source.node_id:
        return source.node_id
    registry = delivery.registry
    node = registry.get_node(source_name)
    if node is not None and node.node_id:
        return node.node_id
    if not registry.claim_node(source_name, claimant):
        return _node_created_elsewhere(delivery, source_name)
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
