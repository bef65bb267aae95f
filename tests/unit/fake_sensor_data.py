"""A scripted stand-in for the integrate call, for unit tests of the delivery core: it records
every request and answers like the API (ids per NAME, no refIds, its own order) unless told
otherwise. The real API is the simulator, over HTTP, in the integration and e2e tests."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sensor_bridge.model.contract import NAME, IntegrationRequest, IntegrationResponse
from sensor_bridge.model.outcomes import Integrated, Outcome
from sensor_bridge.runtime.budget import Budget

Answer = Outcome | Callable[[IntegrationRequest], Outcome]


@dataclass
class FakeSensorData:
    requests: list[IntegrationRequest] = field(default_factory=list)
    script: list[Answer] = field(default_factory=list)  # next answers, in order; then 200s
    _ids: itertools.count[int] = field(default_factory=itertools.count)

    def __call__(
        self, request: IntegrationRequest, source: str, *, budget: Budget | None, itwin_id: str | None
    ) -> Outcome:
        self.requests.append(request)
        if self.script:
            answer = self.script.pop(0)
            return answer(request) if callable(answer) else answer
        return self.ok(request)

    def ok(self, request: IntegrationRequest, *, reverse: bool = True) -> Integrated:
        """200 as the API answers: new ids for the devices and sensors sent, matched only by NAME."""
        devices: list[dict[str, Any]] = [
            {
                "device": {"id": f"dev-{next(self._ids)}", "props": {NAME: d.props.get(NAME)}},
                "sensors": [
                    {"id": f"sen-{next(self._ids)}", "props": {NAME: s.props.get(NAME)}}
                    for s in d.sensors
                    if s.changeState != "remove"
                ],
            }
            for d in request.integration.devices
        ]
        body = {"integration": {"node": {"id": "node-1"}, "devices": devices[::-1] if reverse else devices}}
        return Integrated(IntegrationResponse.model_validate(body))

    def devices_per_call(self) -> list[int]:
        return [len(r.integration.devices) for r in self.requests]

    def changes(self) -> list[tuple[str, str]]:
        """(changeState, device NAME or refId) of every device change sent, in order."""
        return [
            (d.changeState, str(d.props.get(NAME, d.refId)))
            for r in self.requests
            for d in r.integration.devices
        ]
