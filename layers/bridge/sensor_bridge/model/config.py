"""The bridge's YAML configuration: sources (who may call us and how) and device profiles.

Parsed once, at the edge, into typed objects. A wrong file fails with a message that names the
key and says how to fix it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

# The one list of platforms: the name a source's `platform` says -> its module in
# sensor_bridge/platforms/. Adding a platform is adding that module and one line here.
PLATFORM_MODULES = {
    "the-things-stack": "things_stack",
    "chirpstack": "chirpstack",
    "particle": "particle",
    "azure-iot-hub": "azure_event_grid",
    "aws-iot-core": "aws_iot_core",
    "standard-webhooks": "standard_webhooks",
}
PLATFORMS = tuple(PLATFORM_MODULES)
SOURCE_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
DEFAULT_CONFIG_FILE = Path(__file__).with_name("default_config.yaml")


class ConfigError(ValueError):
    """The configuration file is wrong; the message says where and how to fix it."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NoAuth(_Strict):
    """No authentication at all: for tests. The source must also say `allow_unauthenticated: true`."""

    type: Literal["none"]


class HeaderAuth(_Strict):
    """A static header whose value must equal the secret (TTS, ChirpStack, Particle, AWS IoT rules)."""

    type: Literal["header"]
    header: str = "Authorization"
    secret: str  # name of the value in the webhook secrets
    prefix: str = ""  # e.g. "Bearer " when the header carries a bearer token


class BasicAuth(_Strict):
    type: Literal["basic"]
    username: str
    secret: str  # the password's name in the webhook secrets


class QueryAuth(_Strict):
    """A secret query parameter in the endpoint URL (Azure Event Grid's documented way)."""

    type: Literal["query"]
    parameter: str = "code"
    secret: str


class StandardWebhooksAuth(_Strict):
    type: Literal["standard-webhooks"]
    secret: str  # the signing secret's name in the webhook secrets (value "whsec_...")
    # The standardwebhooks package rejects timestamps more than 5 minutes off on its own, so a
    # source may tighten the window but never widen it.
    tolerance_seconds: int = Field(default=300, gt=0, le=300)


Auth = Annotated[
    NoAuth | HeaderAuth | BasicAuth | QueryAuth | StandardWebhooksAuth, Field(discriminator="type")
]


class FieldMapping(_Strict):
    """Dotted paths into a Standard Webhooks sender's JSON body."""

    device_id: str
    name: str | None = None
    model: str | None = None
    profile_name: str | None = None
    tags: str | None = None  # path to an object of strings
    latitude: str | None = None
    longitude: str | None = None
    altitude: str | None = None
    # When the event happened: an ISO 8601 date-time with a zone, or epoch seconds (milliseconds
    # when the number is too large to be seconds). Not read from webhook-timestamp: the send time.
    occurred_at: str | None = None
    event_type: str | None = None  # where the event's type is; with the lists below
    appeared_types: list[str] = Field(default_factory=list)
    changed_types: list[str] = Field(default_factory=list)
    removed_types: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _types_need_event_type(self) -> FieldMapping:
        if (self.appeared_types or self.changed_types or self.removed_types) and not self.event_type:
            raise ValueError("the *_types lists need `event_type`: the dotted path to the event's type")
        if self.event_type and not (self.appeared_types or self.changed_types or self.removed_types):
            raise ValueError(
                "`event_type` needs at least one of appeared_types, changed_types, removed_types"
            )
        if (self.latitude is None) != (self.longitude is None):
            raise ValueError("give both `latitude` and `longitude`, or neither")
        return self


class Source(_Strict):
    platform: str  # one of PLATFORMS
    auth: Auth
    node_id: str | None = None  # absent: the bridge creates one node for this source
    itwin_id: str | None = None
    mapping: FieldMapping | None = None
    # aws-iot-core only: GET the destination's enableUrl (on an AWS host) when AWS IoT asks for
    # confirmation. false: log it for an operator to open instead (the local stack's demo does).
    confirm_destinations: bool = True
    max_body_bytes: int = Field(default=256 * 1024, gt=0)
    # `auth: {type: none}` lets anyone who finds the URL create and delete devices: a source must
    # say so twice, so that a leftover test setting or a half-edited auth block never ships.
    allow_unauthenticated: bool = False

    @field_validator("platform")
    @classmethod
    def _known_platform(cls, value: str) -> str:
        if value not in PLATFORM_MODULES:
            raise ValueError(f"unknown platform {value!r}: use one of {', '.join(PLATFORMS)}")
        return value

    @model_validator(mode="after")
    def _platform_specific_keys(self) -> Source:
        if isinstance(self.auth, NoAuth) and not self.allow_unauthenticated:
            raise ValueError(
                "`auth: {type: none}` accepts webhooks from anyone: add `allow_unauthenticated: true` "
                "next to `auth` if that is meant (tests only), or configure a real auth type"
            )
        if self.allow_unauthenticated and not isinstance(self.auth, NoAuth):
            raise ValueError(
                f"`allow_unauthenticated` only goes with `auth: {{type: none}}`, not type {self.auth.type}: "
                "remove it"
            )
        if self.platform == "standard-webhooks":
            if self.mapping is None:
                raise ValueError("platform standard-webhooks needs a `mapping` with at least `device_id`")
            if not isinstance(self.auth, StandardWebhooksAuth):
                raise ValueError(
                    "platform standard-webhooks needs `auth: {type: standard-webhooks, secret: ...}`"
                )
        elif self.mapping is not None:
            raise ValueError(f"`mapping` is only read for platform standard-webhooks, not {self.platform}")
        if "confirm_destinations" in self.model_fields_set and self.platform != "aws-iot-core":
            raise ValueError(
                f"`confirm_destinations` is only read for platform aws-iot-core, not {self.platform}"
            )
        return self


class SensorSpec(_Strict):
    key: str  # stable within the profile: part of the sensor's refId
    integration_id: str
    name: str
    metrics: list[str] = Field(default_factory=list)
    units: list[str] = Field(default_factory=list)
    unknown_metrics: list[str] = Field(default_factory=list)
    unknown_units: list[str] = Field(default_factory=list)
    props: dict[str, Any] = Field(default_factory=dict)


class ProfileMatch(_Strict):
    platforms: list[str] = Field(default_factory=list)
    models: list[str] = Field(default_factory=list)
    profile_names: list[str] = Field(default_factory=list)
    tags: dict[str, str] = Field(default_factory=dict)
    attributes: dict[str, str] = Field(default_factory=dict)


class Profile(_Strict):
    name: str
    match: ProfileMatch = Field(default_factory=ProfileMatch)
    integration_id: str = "IMPORT_DEVICE_SDE"
    notes: str | None = None
    sensors: list[SensorSpec] = Field(min_length=1)

    @field_validator("sensors")
    @classmethod
    def _unique_sensors(cls, sensors: list[SensorSpec]) -> list[SensorSpec]:
        # The API's answer is matched back to what was sent by NAME, so names must be unique.
        for attr in ("key", "name"):
            values = [getattr(s, attr) for s in sensors]
            duplicates = sorted({v for v in values if values.count(v) > 1})
            if duplicates:
                raise ValueError(f"sensor {attr}s must be unique within a profile, repeated: {duplicates}")
        return sensors


class BridgeConfig(_Strict):
    sources: dict[str, Source]
    profiles: list[Profile] = Field(default_factory=list)
    default_profile: Profile

    @field_validator("sources")
    @classmethod
    def _source_names(cls, sources: dict[str, Source]) -> dict[str, Source]:
        for name in sources:
            if not SOURCE_NAME.match(name):
                raise ValueError(
                    f"source name {name!r} must be lower-case letters, digits and '-' (it is a URL segment)"
                )
        return sources


def _location(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(top level)"


def parse_config(text: str, origin: str = "config") -> BridgeConfig:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{origin}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{origin}: expected a mapping with `sources` and `default_profile` at the top")
    try:
        return BridgeConfig.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            where = _location(error["loc"])
            message = error["msg"]
            if error["type"] == "extra_forbidden":
                message = "unknown key: remove it or check its spelling"
            elif error["type"] == "missing":
                message = "required key is missing: add it"
            elif error["type"] in ("union_tag_invalid", "union_tag_not_found"):
                message = (
                    "unknown or missing `type`: use one of none, header, basic, query, standard-webhooks"
                )
            elif error["type"] == "value_error":
                message = str(error.get("ctx", {}).get("error", message))
            problems.append(f"{where}: {message}")
        raise ConfigError(f"{origin}: " + "; ".join(problems)) from None


def load_config_file(path: str | Path) -> BridgeConfig:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the configuration file: {exc.strerror}") from None
    return parse_config(text, origin=str(path))
