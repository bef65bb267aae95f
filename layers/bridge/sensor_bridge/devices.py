"""The operator's view of the device registry: `python -m sensor_bridge.devices list [--source S] [--json]`.

A door only: the logic lives in `sensor_bridge.store.device_listing`, beside the registry it reads.
"""

from __future__ import annotations

from sensor_bridge.store.device_listing import main

if __name__ == "__main__":
    raise SystemExit(main())
