"""Matching a device back in the API's answer when the answer names no device."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from sensor_bridge.delivery.changes import answered_device, match_ids
from sensor_bridge.delivery.send import Prepared, send
from sensor_bridge.model.contract import DeviceChange
from sensor_bridge.model.outcomes import Integrated, Outcome
from sensor_bridge.model.profiles import DeviceSpec

NAMELESS = {"devices": [{"device": {"id": "dev-1", "props": {}}, "sensors": []}]}


def _spec(name: str) -> DeviceSpec:
    return DeviceSpec(ref_id=f"ref-{name}", props={"NAME": name}, sensors={}, profile="p")


def test_a_lone_nameless_answer_is_the_lone_device_sent() -> None:
    assert answered_device(_spec("a"), NAMELESS, sent=1) == NAMELESS["devices"][0]
    assert match_ids(_spec("a"), NAMELESS, sent=1) == ("dev-1", {})


def test_in_a_coalesced_call_a_nameless_answer_belongs_to_no_device() -> None:
    # Two devices sent, one nameless device answered: giving it to both would merge them.
    assert answered_device(_spec("a"), NAMELESS, sent=2) is None
    assert match_ids(_spec("b"), NAMELESS, sent=2) is None


def test_send_tells_each_device_how_many_devices_its_call_carried() -> None:
    seen: list[int] = []

    def settle(outcome: Outcome, sent: int) -> Outcome:
        seen.append(sent)
        return outcome

    class OneCall:
        def integrate(self, *args: Any) -> Outcome:
            return Integrated()

    def prepared(name: str) -> Prepared:
        change = DeviceChange(changeState="new", refId=f"ref-{name}", props={"NAME": name})
        work = SimpleNamespace(event=SimpleNamespace(source="ttn"))
        return Prepared(work, None, "node-1", change, settle)  # type: ignore[arg-type]

    send([(0, prepared("a")), (1, prepared("b"))], OneCall())  # type: ignore[arg-type]
    assert seen == [2, 2]
