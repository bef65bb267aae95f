"""sensor_bridge: onboards IoT devices announced by platform webhooks into iTwin Sensor Data.

Rooms by role; each subpackage's docstring says what lives there. Imports run one way, from the
doors down (a test reads every import, lazy ones included, and fails on a wrong-way one):

    inbound      the receive pipeline, auth/, idempotency        may import everything below
    retry        route (retry or park), plan, queue, worker      delivery and below
    platforms    one module per platform: handshake, parse       model, runtime
    delivery     prepare, probe, coalesce and send, settle       sensor_data, store, model, runtime
    sensor_data  the API client, tokens, rate limiter            store, model, runtime
    store        registry port + adapters, AWS clients, secrets  model, runtime
    model        events, work, outcomes, config, profiles,       runtime
                 the API contract, request and reply shapes
    runtime      settings, clock, budget, observability, http    nothing of ours

The modules at the top (`redrive`, and the other `python -m sensor_bridge.<command>` doors) are
operator commands: they may import any room.
"""

# Which rooms a room may import from (besides itself). tests/unit/test_import_direction.py
# enforces it; change it here and in the table above together.
ALLOWED_IMPORTS: dict[str, frozenset[str]] = {
    "runtime": frozenset(),
    "model": frozenset({"runtime"}),
    "store": frozenset({"model", "runtime"}),
    "sensor_data": frozenset({"store", "model", "runtime"}),
    "delivery": frozenset({"sensor_data", "store", "model", "runtime"}),
    "platforms": frozenset({"model", "runtime"}),
    "retry": frozenset({"delivery", "sensor_data", "store", "model", "runtime"}),
    "inbound": frozenset({"retry", "delivery", "platforms", "sensor_data", "store", "model", "runtime"}),
}
