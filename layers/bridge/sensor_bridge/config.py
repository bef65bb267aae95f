"""The operator's configuration check: `python -m sensor_bridge.config check FILE [--secrets FILE]`.

A door only: the logic lives in `sensor_bridge.store.config_check`, beside `config_source`, where
the functions read their configuration.
"""

from __future__ import annotations

from sensor_bridge.store.config_check import main

if __name__ == "__main__":
    raise SystemExit(main())
