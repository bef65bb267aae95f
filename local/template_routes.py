"""Reads template.yaml's HTTP API routes and handlers, so the local gateway serves exactly what
the deployed stack would."""

from __future__ import annotations

import importlib
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from local.instance_state import router_state_per_thread

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"

Handler = Callable[[dict[str, Any], Any], Any]


class _CfnLoader(yaml.SafeLoader):
    """Accepts CloudFormation's short tags (!Ref, !Sub, ...) as plain values."""


def _any_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node)
    return loader.construct_mapping(node)  # type: ignore[arg-type]


_CfnLoader.add_multi_constructor("!", _any_tag)


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    data: dict[str, Any] = yaml.load(path.read_text(encoding="utf-8"), Loader=_CfnLoader)  # noqa: S506
    return data


DEFAULT_ROUTE = "$default"  # HTTP API's catch-all: whatever no other route matches


@dataclass(frozen=True)
class Route:
    method: str  # or ANY
    path: str  # with {name} placeholders, as in the template, or $default
    function: str  # the template's logical id
    handler: str  # module.function

    @property
    def is_default(self) -> bool:
        return self.path == DEFAULT_ROUTE

    @property
    def route_key(self) -> str:
        return DEFAULT_ROUTE if self.is_default else f"{self.method} {self.path}"

    def match(self, method: str, path: str) -> dict[str, str] | None:
        if self.is_default:
            return {}
        if self.method != "ANY" and method.upper() != self.method:
            return None
        pattern = "^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(self.path)) + "$"
        found = re.match(pattern, path)
        return found.groupdict() if found else None


def functions(template: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    template = template or load_template()
    return {
        name: resource.get("Properties", {})
        for name, resource in template.get("Resources", {}).items()
        if resource.get("Type") == "AWS::Serverless::Function"
    }


def http_routes(template: dict[str, Any] | None = None) -> list[Route]:
    routes = []
    for name, props in functions(template).items():
        for event in (props.get("Events") or {}).values():
            if event.get("Type") == "HttpApi":
                spec = event.get("Properties", {})
                routes.append(Route(spec["Method"].upper(), spec["Path"], name, props["Handler"]))
    # API Gateway tries $default only when no other route matches.
    return sorted(routes, key=lambda route: route.is_default)


def sqs_consumer(template: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
    """The function fed by an SQS event, and that event's properties (batch size and so on)."""
    for props in functions(template).values():
        for event in (props.get("Events") or {}).values():
            if event.get("Type") == "SQS":
                return props["Handler"], event.get("Properties", {})
    raise LookupError("template.yaml declares no SQS-triggered function")


def import_handler(handler: str, code_uri: str | None = None) -> Handler:
    router_state_per_thread()  # the local stack runs concurrent invocations as threads
    if code_uri:
        folder = str(ROOT / code_uri)
        if folder not in sys.path:
            sys.path.insert(0, folder)
    module_name, _, function_name = handler.rpartition(".")
    function: Handler = getattr(importlib.import_module(module_name), function_name)
    return function
