"""The bridge's YAML configuration: sources (who may call us and how) and device profiles.

Parsed once, at the edge, into typed objects. A wrong file fails with every problem, each naming
the key and saying how to fix it (`config_problems`); `store.config_check` is the operator's command.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from sensor_bridge.model.config_problems import Invalid, Problem, api_problems, shape_problems
from sensor_bridge.model.readings import MetricSource
from sensor_bridge.model.source_auth import (
    Auth,
    NoAuth,
    StandardWebhooksAuth,
)
from sensor_bridge.model.source_auth import Strict as _Strict

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
# libyaml's safe loader where PyYAML was built with it (its wheels are): ten times faster than the
# pure-Python one on the bundled file, which every cold start parses (1 ms against 10 ms here).
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
DEFAULT_CONFIG_FILE = Path(__file__).with_name("default_config.yaml")


class ConfigError(ValueError):
    """The configuration file is wrong; the message lists every problem, where and how to fix it."""

    def __init__(self, origin: str, problems: list[Problem]) -> None:
        self.origin = origin
        self.problems = problems
        if len(problems) == 1:
            message = f"{origin}: {problems[0]}"
        else:
            message = f"{origin}: {len(problems)} problems\n" + "\n".join(f"  {p}" for p in problems)
        super().__init__(message)


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
    reading: str | None = None  # path to the object of values in a reading event
    reading_types: list[str] = Field(default_factory=list)  # event types that carry a reading

    @model_validator(mode="after")
    def _types_need_event_type(self) -> FieldMapping:
        if self.reading_types and not (self.event_type and self.reading):
            raise Invalid("`reading_types` is set", "add `event_type` and `reading` (the path to the values)")
        if (self.appeared_types or self.changed_types or self.removed_types) and not self.event_type:
            raise Invalid(
                "the *_types lists need `event_type`", "add `event_type`: the dotted path to the event's type"
            )
        lists = (self.appeared_types, self.changed_types, self.removed_types, self.reading_types)
        if self.event_type and not any(lists):
            raise Invalid(
                "`event_type` is set but no *_types list is",
                "add at least one of appeared_types, changed_types, removed_types, reading_types",
            )
        if (self.latitude is None) != (self.longitude is None):
            raise Invalid("only one of `latitude` and `longitude` is set", "give both, or neither")
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
    readings: bool = True  # false: the platform's readings are not forwarded, only its devices

    @field_validator("platform")
    @classmethod
    def _known_platform(cls, value: str) -> str:
        if value not in PLATFORM_MODULES:
            raise ValueError(f"unknown platform {value!r}: use one of {', '.join(PLATFORMS)}")
        return value

    @model_validator(mode="after")
    def _platform_specific_keys(self) -> Source:
        if isinstance(self.auth, NoAuth) and not self.allow_unauthenticated:
            raise Invalid(
                "`auth: {type: none}` accepts webhooks from anyone",
                "add `allow_unauthenticated: true` next to `auth` if that is meant (tests only), "
                "or configure a real auth type",
            )
        if self.allow_unauthenticated and not isinstance(self.auth, NoAuth):
            raise Invalid(
                f"`allow_unauthenticated` only goes with `auth: {{type: none}}`, not type {self.auth.type}",
                "remove it",
            )
        if self.platform == "standard-webhooks":
            if self.mapping is None:
                raise Invalid(
                    "platform standard-webhooks needs a `mapping` with at least `device_id`",
                    "add `mapping: {device_id: <dotted path into the body>}`",
                )
            if not isinstance(self.auth, StandardWebhooksAuth):
                raise Invalid(
                    "platform standard-webhooks needs signed webhooks",
                    "use `auth: {type: standard-webhooks, secret: ...}`",
                )
        elif self.mapping is not None:
            raise Invalid(
                f"`mapping` is only read for platform standard-webhooks, not {self.platform}", "remove it"
            )
        if "confirm_destinations" in self.model_fields_set and self.platform != "aws-iot-core":
            raise Invalid(
                f"`confirm_destinations` is only read for platform aws-iot-core, not {self.platform}",
                "remove it",
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
    readings: dict[str, MetricSource] = Field(default_factory=dict)  # metric -> where its value is

    @model_validator(mode="after")
    def _readings_use_declared_metrics(self) -> SensorSpec:
        declared = [*self.metrics, *self.unknown_metrics]
        units = [*self.units, *self.unknown_units]
        for metric, source in self.readings.items():
            if metric not in declared:
                raise Invalid(
                    f"reading for metric {metric!r}, which the sensor does not declare",
                    f"add it to metrics or unknown_metrics, or map one of: {', '.join(declared) or 'none'}",
                )
            if source.unit is not None and source.unit not in units:
                raise Invalid(f"unit {source.unit!r} of metric {metric!r} is not declared", "add it to units")
            unknown = sorted(set(source.paths) - set(PLATFORM_MODULES))
            if unknown:
                raise Invalid(f"`paths` for unknown platforms {unknown}", f"use {', '.join(PLATFORMS)}")
        return self


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
    # Unique keys and names: `config_problems.api_problems` checks them with the API's rules.
    sensors: list[SensorSpec] = Field(min_length=1)


class BridgeConfig(_Strict):
    sources: dict[str, Source]
    profiles: list[Profile] = Field(default_factory=list)
    default_profile: Profile

    @field_validator("sources")
    @classmethod
    def _source_names(cls, sources: dict[str, Source]) -> dict[str, Source]:
        for name in sources:
            if not SOURCE_NAME.match(name):
                raise Invalid(
                    f"source name {name!r} is not a URL segment", "use lower-case letters, digits and '-'"
                )
        return sources


def _problem(message: str, fix: str) -> Problem:
    return Problem("", message, fix)  # about the whole file


@dataclass(frozen=True)
class Checked:
    """A configuration text examined: the typed config when nothing is wrong, and the raw mapping
    (what the secrets check reads, problems or not)."""

    config: BridgeConfig | None
    data: dict[str, Any]
    problems: list[Problem]


def examine_config(text: str) -> Checked:
    """Every problem of a configuration text: its YAML, its shape, and what the API would refuse."""
    try:
        data = yaml.load(text, Loader=SAFE_LOADER)  # noqa: S506 (a safe loader)
    except yaml.YAMLError as exc:
        return Checked(None, {}, [_problem(f"not valid YAML ({exc})", "correct the syntax where it says")])
    if not isinstance(data, dict):
        return Checked(
            None,
            {},
            [_problem("expected a mapping", "write `sources:` and `default_profile:` at the top level")],
        )
    problems = api_problems(data)
    try:
        config = BridgeConfig.model_validate(data)
    except ValidationError as exc:
        return Checked(None, data, shape_problems(exc) + problems)
    return Checked(None if problems else config, data, problems)


def parse_config(text: str, origin: str = "config") -> BridgeConfig:
    checked = examine_config(text)
    if checked.config is None:
        raise ConfigError(origin, checked.problems)
    return checked.config


def read_config_text(path: str | Path) -> str:
    path = Path(path)
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        problem = _problem(f"cannot read the configuration file ({exc.strerror})", "check the path")
        raise ConfigError(str(path), [problem]) from None


def load_config_file(path: str | Path) -> BridgeConfig:
    return parse_config(read_config_text(path), origin=str(path))
