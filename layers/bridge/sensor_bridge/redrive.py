"""The operator's command for parked work: `python -m sensor_bridge.retry.redrive list|move`.

A door only: the logic lives in `sensor_bridge.retry.redrive`, beside the queues it reads.
"""

from __future__ import annotations

from sensor_bridge.retry.redrive import main

if __name__ == "__main__":
    raise SystemExit(main())
