"""Pydantic models of the Sensor Data `integrations/integrate` contract (the seed API definition).

Field names and shapes follow the seed exactly; props stay open dictionaries because the API
documents a set of well-known keys but accepts others, and answers with keys we never send.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

ChangeState = Literal["new", "update", "remove"]

# Props the API accepts on input (sensor-data-api.md); the rest appear only in answers.
INTEGRATION_ID = "INTEGRATION_ID"
NAME = "NAME"
LOCATION = "LOCATION"
NOTES = "NOTES"


class _Model(BaseModel):
    # Unknown fields are kept, not dropped: the API may add fields and we echo what we are given.
    model_config = ConfigDict(extra="allow", frozen=True)


class SensorChange(_Model):
    changeState: ChangeState
    refId: str
    props: dict[str, Any] = Field(default_factory=dict)


class DeviceChange(_Model):
    changeState: ChangeState
    refId: str
    props: dict[str, Any] = Field(default_factory=dict)
    sensors: list[SensorChange] = Field(default_factory=list)


class Integration(_Model):
    nodeId: str | None = None
    # Not in the seed's table but documented: `"new"` without a nodeId creates a node.
    changeState: ChangeState | None = None
    # The node's own props (its NAME) on a creation: the node listing answers them, so the bridge
    # can find its node again (sensor-data-api.md, "Other operations").
    props: dict[str, Any] | None = None
    devices: list[DeviceChange] = Field(default_factory=list)


class IntegrationRequest(_Model):
    integration: Integration

    def to_json_body(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


class NodeInfo(_Model):
    id: str
    type: str | None = None
    props: dict[str, Any] = Field(default_factory=dict)


class DeviceInfo(_Model):
    id: str
    type: str | None = None
    props: dict[str, Any] = Field(default_factory=dict)


class SensorInfo(_Model):
    id: str
    type: str | None = None
    observationType: str | None = None
    device: str | None = None
    props: dict[str, Any] = Field(default_factory=dict)


class IntegratedDevice(_Model):
    device: DeviceInfo
    sensors: list[SensorInfo] = Field(default_factory=list)


class IntegrationResult(_Model):
    node: NodeInfo | None = None
    devices: list[IntegratedDevice] = Field(default_factory=list)


class IntegrationResponse(_Model):
    integration: IntegrationResult


class ErrorDetail(_Model):
    code: str
    message: str
    target: str | None = None


class ErrorResponse(_Model):
    error: ErrorDetail
