"""The operator's configuration check: `python -m sensor_bridge.config check FILE [--secrets FILE]`.

A door only: the logic lives in `sensor_bridge.model.config_check`, beside the configuration's model.
"""

from __future__ import annotations

from sensor_bridge.model.config_check import main

if __name__ == "__main__":
    raise SystemExit(main())
