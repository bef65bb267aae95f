"""template.yaml as CloudFormation sees it: translated by aws-sam-translator (the library SAM CLI
and the CloudFormation transform use), then resolved for given parameter values and physical ids.

The tests use it to run the functions with exactly the roles and environments the template gives
them, instead of reading the YAML and trusting it.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from local.template_routes import TEMPLATE

REGION = "eu-west-1"
ACCOUNT_ID = "123456789012"  # moto's default account
STACK_NAME = "sensor-bridge"
ARTIFACTS_BUCKET = "sensor-bridge-artifacts"


def translate() -> dict[str, Any]:
    """template.yaml translated to plain CloudFormation. Local code folders are replaced with S3
    locations, as `sam package` does before the transform runs."""
    import boto3
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator
    from samtranslator.yaml_helper import yaml_parse

    sam: dict[str, Any] = yaml_parse(TEMPLATE.read_text(encoding="utf-8"))
    for name, resource in sam["Resources"].items():
        key = {"AWS::Serverless::Function": "CodeUri", "AWS::Serverless::LayerVersion": "ContentUri"}
        if resource["Type"] in key:
            resource["Properties"][key[resource["Type"]]] = f"s3://{ARTIFACTS_BUCKET}/{name}.zip"
    translator = Translator({}, Parser(), boto_session=boto3.session.Session(region_name=REGION))
    translated: dict[str, Any] = translator.translate(sam, parameter_values={})
    return translated


class _NoValue:
    """AWS::NoValue: the property or list item disappears."""


NO_VALUE = _NoValue()


@dataclass
class Resolver:
    """Resolves Ref, Fn::GetAtt, Fn::Sub and Fn::If (with the template's Conditions) as
    CloudFormation would, for the parameters' defaults plus `parameters`. `refs` and
    `attributes` are the physical ids: what Ref X and Fn::GetAtt X.Attr give."""

    template: dict[str, Any]
    refs: Mapping[str, str]
    attributes: Mapping[tuple[str, str], str]
    parameters: Mapping[str, str]

    def __post_init__(self) -> None:
        defaults = {n: p.get("Default") for n, p in self.template.get("Parameters", {}).items()}
        pseudo = {
            "AWS::Partition": "aws",
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::StackName": STACK_NAME,
            "AWS::URLSuffix": "amazonaws.com",
        }
        self._values: dict[str, Any] = {**pseudo, **defaults, **self.refs, **self.parameters}

    def condition(self, name: str) -> bool:
        return self._truth(self.template["Conditions"][name])

    def _truth(self, node: Any) -> bool:
        ((function, args),) = node.items()
        operations: dict[str, Callable[[], bool]] = {
            "Fn::Equals": lambda: str(self.resolve(args[0])) == str(self.resolve(args[1])),
            "Fn::Not": lambda: not self._truth(args[0]),
            "Fn::And": lambda: all(self._truth(a) for a in args),
            "Fn::Or": lambda: any(self._truth(a) for a in args),
            "Condition": lambda: self.condition(args),
        }
        return operations[function]()

    def resolve(self, node: Any) -> Any:
        if isinstance(node, list):
            items = [self.resolve(item) for item in node]
            return [item for item in items if item is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, args),) = node.items()
            if key == "Ref":
                return NO_VALUE if args == "AWS::NoValue" else self._lookup(args)
            if key == "Fn::GetAtt":
                name, attribute = args if isinstance(args, list) else args.split(".", 1)
                return self.attributes[(name, attribute)]
            if key == "Fn::Sub":
                return self._sub(args)
            if key == "Fn::If":
                name, when_true, when_false = args
                return self.resolve(when_true if self.condition(name) else when_false)
        resolved = {key: self.resolve(value) for key, value in node.items()}
        return {key: value for key, value in resolved.items() if value is not NO_VALUE}

    def _lookup(self, name: str) -> Any:
        if name not in self._values:
            raise KeyError(f"no value or physical id for Ref {name}")
        return self._values[name]

    def _sub(self, args: Any) -> str:
        text, local = (args, {}) if isinstance(args, str) else (args[0], args[1])

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in local:
                return str(self.resolve(local[name]))
            if "." in name:
                resource, attribute = name.split(".", 1)
                return str(self.attributes[(resource, attribute)])
            return str(self._lookup(name))

        return re.sub(r"\$\{([^}]*)\}", replace, text)


def functions(translated: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The Lambda functions (logical id -> properties)."""
    return {
        name: resource["Properties"]
        for name, resource in translated["Resources"].items()
        if resource["Type"] == "AWS::Lambda::Function"
    }


def role_of(translated: dict[str, Any], function: str) -> str:
    """The logical id of a function's execution role."""
    role = functions(translated)[function]["Role"]
    name: str = (
        role["Fn::GetAtt"][0] if isinstance(role["Fn::GetAtt"], list) else role["Fn::GetAtt"].split(".")[0]
    )
    return name


@dataclass(frozen=True)
class RolePolicies:
    inline: dict[str, dict[str, Any]]  # policy name -> resolved document
    managed: list[str]  # resolved managed policy ARNs


def role_policies(translated: dict[str, Any], resolver: Resolver, role: str) -> RolePolicies:
    """What the role may do: its own Policies and ManagedPolicyArns, and every AWS::IAM::Policy
    attached to it, resolved."""
    resources = translated["Resources"]
    props = resolver.resolve(copy.deepcopy(resources[role]["Properties"]))
    inline = {p["PolicyName"]: p["PolicyDocument"] for p in props.get("Policies", [])}
    for name, resource in resources.items():
        attached_to = (
            resource["Properties"].get("Roles", []) if resource["Type"] == "AWS::IAM::Policy" else []
        )
        if {"Ref": role} in attached_to:
            policy = resolver.resolve(copy.deepcopy(resource["Properties"]))
            inline[f"{policy['PolicyName']} ({name})"] = policy["PolicyDocument"]
    return RolePolicies(inline=inline, managed=list(props.get("ManagedPolicyArns", [])))


def function_environment(translated: dict[str, Any], resolver: Resolver, function: str) -> dict[str, str]:
    """A function's environment variables as Lambda would set them (values are strings)."""
    environment = functions(translated)[function].get("Environment", {}).get("Variables", {})
    return {name: str(value) for name, value in resolver.resolve(copy.deepcopy(environment)).items()}
