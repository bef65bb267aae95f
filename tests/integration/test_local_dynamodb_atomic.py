"""The local stack's DynamoDB keeps DynamoDB's promise that a conditional write is atomic: of
concurrent first claims of a device, exactly one wins (on moto alone, several could)."""

from __future__ import annotations

import threading

from local.stack import LocalStack
from sensor_bridge.store.dynamodb_registry import DynamoDBRegistry

THREADS = 8
DEVICES = 25


def test_of_concurrent_first_claims_of_a_device_exactly_one_wins(stack: LocalStack) -> None:
    registry = DynamoDBRegistry()
    won: list[tuple[int, str]] = []
    start = threading.Barrier(THREADS)

    def claim(thread: int) -> None:
        start.wait()
        for device in range(DEVICES):
            if registry.claim_new_device("s", f"d{device}", f"claimant-{thread}", "ref", "node", {}):
                won.append((device, f"claimant-{thread}"))

    threads = [threading.Thread(target=claim, args=(n,)) for n in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert sorted(device for device, _ in won) == list(range(DEVICES))
    for device, claimant in won:
        record = registry.get_device("s", f"d{device}")
        assert record is not None
        assert record.claimed_by == claimant
