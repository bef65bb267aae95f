"""Simulator fixtures for the integration tests."""

from collections.abc import Iterator

import pytest

from local.simulator import SensorDataSimulator


@pytest.fixture
def simulator() -> Iterator[SensorDataSimulator]:
    """A started Sensor Data simulator on a free loopback port (unlimited rate, one-hour tokens)."""
    with SensorDataSimulator(port=0) as sim:
        yield sim
