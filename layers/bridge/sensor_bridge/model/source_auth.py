"""How a source proves it is the caller: one model per `auth: {type: ...}` of the configuration."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


class Strict(BaseModel):
    """A configuration object: unknown keys are refused, values never change after parsing."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class NoAuth(Strict):
    """No authentication at all: for tests. The source must also say `allow_unauthenticated: true`."""

    type: Literal["none"]


class HeaderAuth(Strict):
    """A static header whose value must equal the secret (TTS, ChirpStack, Particle, AWS IoT rules)."""

    type: Literal["header"]
    header: str = "Authorization"
    secret: str  # name of the value in the webhook secrets
    prefix: str = ""  # e.g. "Bearer " when the header carries a bearer token


class BasicAuth(Strict):
    type: Literal["basic"]
    username: str
    secret: str  # the password's name in the webhook secrets


class QueryAuth(Strict):
    """A secret query parameter in the endpoint URL (Azure Event Grid's documented way)."""

    type: Literal["query"]
    parameter: str = "code"
    secret: str


class StandardWebhooksAuth(Strict):
    type: Literal["standard-webhooks"]
    secret: str  # the signing secret's name in the webhook secrets (value "whsec_...")
    # The standardwebhooks package rejects timestamps more than 5 minutes off on its own, so a
    # source may tighten the window but never widen it.
    tolerance_seconds: int = Field(default=300, gt=0, le=300)


Auth = Annotated[
    NoAuth | HeaderAuth | BasicAuth | QueryAuth | StandardWebhooksAuth, Field(discriminator="type")
]
