"""Delivering device work to Sensor Data exactly once: the registry decides new, update, remove
or nothing; changes for one node share integrate calls; each device settles its own part of the
answer. Speaks to storage only through the registry port (`store.registry.DeviceRegistry`).

May import: sensor_data, store, model, runtime. Never retry or inbound: what to do with an
outcome (retry or park) is decided by the caller, in `retry.route`.
"""
