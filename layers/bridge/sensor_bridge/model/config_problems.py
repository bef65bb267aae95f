"""What is wrong with a configuration, as `path: problem: fix` lines, all of them at once.

Two kinds: the file's shape (pydantic's errors, given readable paths and a fix each) and what the
Sensor Data API will refuse although the shape is right (sensor-data-api.md: new devices and
sensors need an INTEGRATION_ID, generic sensors declare their metrics and units, answers are
matched to requests by NAME). The API rules read the raw mapping, so they report every profile's
problems even where another part of the file does not parse.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

# Upper-case words joined by "_", as every id in the API's public material (TEMPERATURE_SDE).
INTEGRATION_ID_FORM = re.compile(r"^[A-Z][A-Z0-9]*(_[A-Z0-9]+)*$")
# Sensors the API creates only with declared metrics and units.
GENERIC_SENSOR_IDS = frozenset({"GENERIC_SENSOR_SDE"})
AUTH_TYPES = ("none", "header", "basic", "query", "standard-webhooks")


@dataclass(frozen=True)
class Problem:
    path: str  # dotted, as written in the file: sources.my-farm.auth.secret ("": the whole file)
    problem: str
    fix: str

    def __str__(self) -> str:
        where = f"{self.path}: " if self.path else ""
        return f"{where}{self.problem}: {self.fix}"


class Invalid(ValueError):
    """Raised by the configuration's validators: what is wrong and how to fix it."""

    def __init__(self, problem: str, fix: str) -> None:
        super().__init__(f"{problem}: {fix}")
        self.problem = problem
        self.fix = fix


# Per pydantic error type: the fix to suggest when the message alone does not say it.
_FIXES = {
    "string_type": "write it as text (quote it if YAML reads it as a number, a date or yes/no)",
    "int_type": "write a whole number",
    "int_parsing": "write a whole number",
    "bool_type": "write true or false",
    "bool_parsing": "write true or false",
    "list_type": "write a list, e.g. [a, b]",
    "dict_type": "write a mapping of key: value",
    "model_type": "write a mapping of key: value",
    "model_attributes_type": "write a mapping of key: value",
    "too_short": "add at least one",
    "greater_than": "use a larger number",
    "less_than_equal": "use a smaller number",
}


def _path(loc: tuple[int | str, ...]) -> str:
    """Dotted, without the discriminated union's tag pydantic inserts (`auth.header.secret`)."""
    parts = [
        str(part) for i, part in enumerate(loc) if not (i > 0 and loc[i - 1] == "auth" and part in AUTH_TYPES)
    ]
    return ".".join(parts) or "(top level)"


def shape_problems(exc: ValidationError) -> list[Problem]:
    return [_shape_problem(error) for error in exc.errors()]


def _shape_problem(error: Any) -> Problem:
    where = _path(error["loc"])
    kind = error["type"]
    cause = error.get("ctx", {}).get("error")
    if isinstance(cause, Invalid):
        return Problem(where, cause.problem, cause.fix)
    if kind == "extra_forbidden":
        return Problem(where, "unknown key", "remove it or check its spelling")
    if kind == "missing":
        return Problem(where, "required key is missing", "add it")
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        return Problem(where, "unknown or missing `type`", "use one of " + ", ".join(AUTH_TYPES))
    if kind == "literal_error":
        return Problem(where, f"{error['input']!r} is not allowed", f"use one of {error['ctx']['expected']}")
    return Problem(where, error["msg"], _FIXES.get(kind, "correct the value"))


def _profiles(data: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    profiles = data.get("profiles")
    if isinstance(profiles, list):
        for i, profile in enumerate(profiles):
            if isinstance(profile, Mapping):
                yield f"profiles.{i}", profile
    default = data.get("default_profile")
    if isinstance(default, Mapping):
        yield "default_profile", default


def api_problems(data: Mapping[str, Any]) -> list[Problem]:
    """Profiles the Sensor Data API would refuse (or whose answers could not be read back)."""
    problems: list[Problem] = []
    for where, profile in _profiles(data):
        problems += _integration_id(f"{where}.integration_id", profile.get("integration_id"))
        sensors = profile.get("sensors")
        if not isinstance(sensors, list):
            continue
        problems += _repeated(where, sensors, "name", "the API's answer is matched to what was sent by NAME")
        problems += _repeated(where, sensors, "key", "the key is part of the sensor's refId")
        for i, sensor in enumerate(sensors):
            if isinstance(sensor, Mapping):
                problems += _sensor_problems(f"{where}.sensors.{i}", sensor)
    return problems


def _integration_id(where: str, value: Any, *, in_props: bool = False) -> list[Problem]:
    """Present and well formed. Outside `props`, an absent or non-text id is the shape check's
    to report (or a default applies); `props` go to the API as they are, over the bridge's own."""
    if not isinstance(value, str):
        if not in_props:
            return []
        return [Problem(where, "the integration id is not text", "write the catalogue's id, e.g. LIGHT_SDE")]
    if not value.strip():
        return [Problem(where, "the integration id is empty", "set the catalogue's id, e.g. TEMPERATURE_SDE")]
    if not INTEGRATION_ID_FORM.match(value):
        return [
            Problem(
                where,
                f"integration id {value!r} is not well formed",
                "use the catalogue's id: upper-case words joined by '_', e.g. TEMPERATURE_SDE",
            )
        ]
    return []


def _repeated(where: str, sensors: list[Any], attr: str, why: str) -> list[Problem]:
    values: list[str] = [s[attr] for s in sensors if isinstance(s, Mapping) and isinstance(s.get(attr), str)]
    repeated = sorted({v for v in values if values.count(v) > 1})
    return [
        Problem(
            f"{where}.sensors",
            f"sensor {attr} {value!r} is used by more than one sensor of the device",
            f"give each sensor its own {attr} ({why})",
        )
        for value in repeated
    ]


def _sensor_problems(where: str, sensor: Mapping[str, Any]) -> list[Problem]:
    integration_id = sensor.get("integration_id")
    problems = _integration_id(f"{where}.integration_id", integration_id)
    props = sensor.get("props")
    if isinstance(props, Mapping) and "INTEGRATION_ID" in props:
        integration_id = props["INTEGRATION_ID"]
        problems += _integration_id(f"{where}.props.INTEGRATION_ID", integration_id, in_props=True)
    if integration_id in GENERIC_SENSOR_IDS:
        problems += _generic_declarations(where, sensor, str(integration_id))
    return problems


def _generic_declarations(where: str, sensor: Mapping[str, Any], integration_id: str) -> list[Problem]:
    missing = [
        what
        for what, keys in (("metrics", ("metrics", "unknown_metrics")), ("units", ("units", "unknown_units")))
        if not any(sensor.get(key) for key in keys)
    ]
    if not missing:
        return []
    return [
        Problem(
            where,
            f"a generic sensor ({integration_id}) declares no {' and no '.join(missing)}, "
            "which the API refuses",
            "add " + " and ".join(f"`unknown_{what}: [...]` (or `{what}: [...]`)" for what in missing),
        )
    ]
