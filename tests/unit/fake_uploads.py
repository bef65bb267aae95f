"""The upload and raw-data query calls as the delivery core's ports see them, scripted: what was
uploaded and asked, and the answers given (tests/unit/test_upload_lookup*.py; their `registry`
and `calls` fixtures are in conftest.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sensor_bridge.model.outcomes import Integrated, Outcome
from sensor_bridge.runtime.budget import Budget
from sensor_bridge.sensor_data.query import StoredObservation

SOURCE = "chirpstack-demo"


@dataclass
class FakeUploads:
    """The upload and query calls: what was uploaded, what was asked, and scripted answers."""

    stored: list[dict[str, Any]] = field(default_factory=list)
    queries: list[tuple[list[str], str, str]] = field(default_factory=list)
    upload_answers: list[Outcome] = field(default_factory=list)
    query_answers: list[Outcome | Exception] = field(default_factory=list)
    uploads: int = 0

    def upload(self, observations: list[dict[str, Any]], source: str, *, budget: Budget | None) -> Outcome:
        self.uploads += 1
        answer = self.upload_answers.pop(0) if self.upload_answers else Integrated()
        if isinstance(answer, Integrated) or getattr(answer, "ambiguous", False):
            self.stored.extend(observations)  # stored, whether or not the answer comes back
        return answer

    def query(
        self, sensor_ids: list[str], start: str, end: str, source: str, *, budget: Budget | None
    ) -> list[StoredObservation] | Outcome:
        self.queries.append((sensor_ids, start, end))
        if self.query_answers:
            answer = self.query_answers.pop(0)
            if isinstance(answer, Exception):
                raise answer
            return answer
        return [
            StoredObservation.model_validate(o)
            for o in self.stored
            if o["sensorId"] in sensor_ids and start <= o["timestamp"] <= end
        ]
