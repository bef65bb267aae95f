"""The source's node in Sensor Data: configured, recorded in the registry, found by its name in
the API's node listing, or created once (named for the source, so it is found next time)."""

from __future__ import annotations

import time

from sensor_bridge.delivery.context import Delivery, itwin_for
from sensor_bridge.model.config import Source
from sensor_bridge.model.contract import NAME, Integration, IntegrationRequest, NodeInfo
from sensor_bridge.model.outcomes import Deferred, Integrated, Outcome, Parked
from sensor_bridge.runtime import clock
from sensor_bridge.runtime.observability import logger
from sensor_bridge.runtime.process import on_reset

# Waiting for a node another delivery creates: while it holds the node's claim, as long as the
# invocation's time allows, and at most five seconds (a node call takes far less).
NODE_WAIT_POLLS = 50
NODE_WAIT_POLL_SECONDS = 0.1
NODE_NAME_PREFIX = "sensor-bridge: "
# Sources whose listing (in this instance) found no node, and whose creation was then held back
# unsent: the next try creates without listing again, for up to LISTED_ABSENT_SECONDS. Else at
# one call a minute every turn went to the listing and the node was never created.
_listed_absent: dict[str, float] = {}
LISTED_ABSENT_SECONDS = 3600.0
# The listing's own refusals that say the API has no such operation (the reference lists it
# among the operations the bridge "may use", not in the contract): the node is created without
# looking, as before the listing existed. An iTwin the API does not know is refused again by the
# creation, with its own reason.
NO_LISTING = frozenset({404, 405})


def node_for(delivery: Delivery, source_name: str, source: Source, claimant: str) -> str | Outcome:
    """The source's node id, looked up (or created) once per delivery run."""
    if source_name not in delivery.nodes:
        delivery.nodes[source_name] = _ensure_node(delivery, source_name, source, claimant)
    return delivery.nodes[source_name]


def _node_created_elsewhere(delivery: Delivery, source_name: str) -> str | Outcome:
    """Another delivery is creating the node (the first devices of a source join together): its
    call takes a fraction of a second, so wait for it briefly rather than queue the device; stop
    waiting when it gives up (its call was held back or refused: it released the claim)."""
    for _ in range(NODE_WAIT_POLLS):
        if delivery.budget is not None and delivery.budget.call_timeout() is None:
            break
        time.sleep(NODE_WAIT_POLL_SECONDS)
        node = delivery.registry.get_node(source_name)
        if node is not None and node.node_id:
            return node.node_id
        if node is None or node.claimed_by is None:
            break
    return Deferred("the source's node is being created by another delivery")


def node_name(source_name: str) -> str:
    """The NAME the bridge gives the node it creates for a source: what it looks for before
    creating one, so every deployment for the iTwin finds the same node."""
    return f"{NODE_NAME_PREFIX}{source_name}"


def _ensure_node(delivery: Delivery, source_name: str, source: Source, claimant: str) -> str | Outcome:
    if source.node_id:
        return source.node_id
    registry = delivery.registry
    node = registry.get_node(source_name)
    if node is not None and node.node_id:
        return node.node_id
    if not registry.claim_node(source_name, claimant):
        return _node_created_elsewhere(delivery, source_name)
    listed_at = _listed_absent.get(source_name)
    if listed_at is not None and clock.now() - listed_at < LISTED_ABSENT_SECONDS:
        return _create_node(delivery, source_name, source, claimant)
    found = _named_node(delivery, source_name, source)
    if found is None:
        _listed_absent[source_name] = clock.now()
    if isinstance(found, str):
        node_id = registry.record_node(source_name, claimant, found)
        logger.info("node found by name", extra={"node_id": node_id})
        return node_id
    if found is not None:
        registry.release_node(source_name, claimant)
        return found
    return _create_node(delivery, source_name, source, claimant)


def _named_node(delivery: Delivery, source_name: str, source: Source) -> str | Outcome | None:
    """The id of the node already named for the source (an earlier creation whose answer or
    registry item was lost, another deployment's), None if there is none, or why it is unknown."""
    listed = delivery.list_nodes(source_name, budget=delivery.budget, itwin_id=itwin_for(source))
    if isinstance(listed, Parked) and listed.status in NO_LISTING:
        logger.warning(
            "the API has no node listing: creating the node without looking", extra={"why": listed.reason}
        )
        return None
    if not isinstance(listed, list):
        return listed
    name = node_name(source_name)
    named = sorted((n for n in listed if n.props.get(NAME) == name), key=_age)
    if len(named) > 1:
        # Two creations raced (two deployments): every deployment settles on the oldest.
        logger.warning("several nodes carry the source's name", extra={"node_ids": [n.id for n in named]})
    return named[0].id if named else None


def _age(node: NodeInfo) -> tuple[str, str]:
    return (str(node.props.get("CREATION_DATE") or ""), node.id)


def _create_node(delivery: Delivery, source_name: str, source: Source, claimant: str) -> str | Outcome:
    registry = delivery.registry
    integration = Integration(changeState="new", props={NAME: node_name(source_name)}, devices=[])
    outcome = delivery.api(
        IntegrationRequest(integration=integration),
        source_name,
        budget=delivery.budget,
        itwin_id=itwin_for(source),
    )
    if not isinstance(outcome, Deferred):  # sent: what the API now has is unknown until listed again
        _listed_absent.pop(source_name, None)
    if isinstance(outcome, Integrated) and outcome.response and outcome.response.integration.node:
        node_id = registry.record_node(source_name, claimant, outcome.response.integration.node.id)
        logger.info("node created", extra={"node_id": node_id})
        return node_id
    registry.release_node(source_name, claimant)
    if isinstance(outcome, Integrated):
        return Parked("the API answered 200 to a node creation without a node")
    return outcome


on_reset(_listed_absent.clear)
