"""What every part of the bridge runs on: settings from the environment, the one clock, time
budgets, Powertools observability (logger, tracer, metrics), the one HTTP client, and the
per-process state a new Lambda execution environment starts without.

May import: nothing else of sensor_bridge.
"""
