"""The shapes the bridge works with, and the pure functions that build them: device events and
work items, delivery outcomes, the YAML configuration and device profiles, the Sensor Data API's
contract (pydantic models of the seed), and the webhook request and reply as the bridge sees them.

No I/O here. May import: runtime.
"""
