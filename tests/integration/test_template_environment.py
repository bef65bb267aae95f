"""Every environment variable the functions' code reads is set by template.yaml or documented
with a default, and the README's table says which (issue 9).

template.yaml is translated with aws-sam-translator, as for deploying, and created in moto's
CloudFormation; moto creates every resource type it supports (queues, tables, roles, policies,
log groups, the functions and their event source mapping, the dashboard) and the functions'
environments are read back from moto's Lambda. A Ref to a resource moto cannot create (Secrets
Manager secrets, the HTTP API, alarms) resolves to nothing there, so a variable that is missing
only for that reason is taken from the translated template and named in the output.
"""

from __future__ import annotations

import ast
import io
import json
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from local.template_stack import ARTIFACTS_BUCKET, REGION, STACK_NAME, Resolver, functions, translate

ROOT = Path(__file__).resolve().parents[2]
CODE = [ROOT / "layers" / "bridge" / "sensor_bridge", ROOT / "functions"]
README = ROOT / "README.md"
READERS = {"os.environ.get", "os.getenv", "_env"}  # _env: runtime/settings.py's reader
# moto warns once per resource it cannot create; the first test names those types.
pytestmark = pytest.mark.filterwarnings("ignore:Tried to parse:UserWarning")


def variables_the_code_reads() -> set[str]:
    """Names passed as string constants to os.environ.get / os.getenv / os.environ[...] or to
    the settings module's _env(), in the layer and the handlers."""
    found: set[str] = set()
    for folder in CODE:
        for path in folder.rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Call) and ast.unparse(node.func) in READERS and node.args:
                    argument: ast.expr = node.args[0]
                elif isinstance(node, ast.Subscript) and ast.unparse(node.value) == "os.environ":
                    argument = node.slice
                else:
                    continue
                if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
                    found.add(argument.value)
    return found


def readme_environment_table() -> dict[str, tuple[set[str], str]]:
    """README's environment table: variable -> (functions it says template.yaml sets it for,
    the default it documents)."""
    text = README.read_text(encoding="utf-8")
    after = text.split("### Environment variables", 1)[1].splitlines()
    start = next(i for i, line in enumerate(after) if line.startswith("| variable"))
    table = [line for line in after[start:] if line.startswith("|")]
    table = table[: next((i for i, line in enumerate(after[start:]) if not line.startswith("|")), len(table))]
    who = {"both functions": {"WebhookFunction", "RetryFunction"}, "webhook function": {"WebhookFunction"}}
    rows: dict[str, tuple[set[str], str]] = {}
    for line in table[2:]:
        names, _meaning, set_by, default = (cell.strip() for cell in line.strip("|").split("|"))
        for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", names):
            rows[name] = (who.get(set_by.split(" (")[0], set()), default)
    return rows


@pytest.fixture(scope="module")
def deployed() -> Iterator[dict[str, Any]]:
    """The translated template created in moto's CloudFormation (with the code as S3 objects,
    as `sam deploy` uploads it): the stack's resources and each function's environment."""
    translated = translate()
    with pytest.MonkeyPatch.context() as env, mock_aws():
        env.delenv("AWS_ENDPOINT_URL", raising=False)  # moto in-process, not the local stack's server
        env.setenv("AWS_DEFAULT_REGION", REGION)
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=ARTIFACTS_BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w") as z:
            z.writestr("placeholder.py", "")
        for name in translated["Resources"]:
            s3.put_object(Bucket=ARTIFACTS_BUCKET, Key=f"{name}.zip", Body=archive.getvalue())
        cfn, lam = boto3.client("cloudformation"), boto3.client("lambda")
        cfn.create_stack(
            StackName=STACK_NAME, TemplateBody=json.dumps(translated), Capabilities=["CAPABILITY_IAM"]
        )
        resources = cfn.list_stack_resources(StackName=STACK_NAME)["StackResourceSummaries"]
        physical = {r["LogicalResourceId"]: r.get("PhysicalResourceId") for r in resources}
        environments = {
            name: lam.get_function_configuration(FunctionName=physical[name])["Environment"]["Variables"]
            for name in functions(translated)
        }
        status = cfn.describe_stacks(StackName=STACK_NAME)["Stacks"][0]["StackStatus"]
        sqs = boto3.client("sqs")
        queues = {
            name: sqs.get_queue_attributes(QueueUrl=physical[name], AttributeNames=["All"])["Attributes"]
            for name in ("RetryQueue", "DeadLetterQueue")
        }
        yield {
            "queues": queues,
            "translated": translated,
            "resources": resources,
            "environments": environments,
            "status": status,
        }


def _supported_types() -> set[str]:
    from moto.cloudformation.parsing import get_model_map

    return set(get_model_map())


def test_the_translated_template_deploys_with_every_resource_moto_supports(deployed: dict[str, Any]) -> None:
    translated = deployed["translated"]
    defaults = Resolver(translated, refs={}, attributes={}, parameters={})  # conditions by default
    expected = {
        name
        for name, r in translated["Resources"].items()
        if r["Type"] in _supported_types() and ("Condition" not in r or defaults.condition(r["Condition"]))
    }
    created = {
        r["LogicalResourceId"] for r in deployed["resources"] if r["ResourceStatus"] == "CREATE_COMPLETE"
    }
    unsupported = sorted({r["Type"] for r in translated["Resources"].values()} - _supported_types())
    print("\nresource types moto's CloudFormation does not create:", ", ".join(unsupported))

    assert deployed["status"] == "CREATE_COMPLETE"
    assert expected <= created
    assert {"RetryQueue", "DeadLetterQueue", "RegistryTable", "WebhookFunction", "RetryFunction"} <= expected
    assert "AlarmTopic" not in expected  # created only with AlarmEmail


def test_every_variable_the_code_reads_is_set_by_the_template_or_has_a_documented_default(
    deployed: dict[str, Any],
) -> None:
    read = variables_the_code_reads()
    table = readme_environment_table()
    translated_env = {
        name: props.get("Environment", {}).get("Variables", {})
        for name, props in functions(deployed["translated"]).items()
    }
    gaps, via_unsupported = [], []
    for function, environment in deployed["environments"].items():
        for variable in sorted(read):
            if variable in environment:
                continue
            if variable in translated_env[function]:
                via_unsupported.append(f"{function}: {variable}")  # a Ref to a secret, say
                continue
            default = table.get(variable, (set(), "—"))[1]
            if default in ("", "—"):
                gaps.append(f"{function}: {variable}")
    print("\nset by the template from resources moto does not create:", *via_unsupported, sep="\n  ")

    assert len(read) >= 10, "the scan found too few variables to mean anything"
    assert read <= set(table), "every variable the code reads is in the README's table"
    assert gaps == []


def test_the_readme_table_says_truly_which_function_the_template_sets_each_variable_for(
    deployed: dict[str, Any],
) -> None:
    table = readme_environment_table()
    set_for = {
        variable: {
            f
            for f, props in functions(deployed["translated"]).items()
            if variable in props["Environment"]["Variables"]
        }
        for variable in table
    }
    template_sets = {
        v for props in functions(deployed["translated"]).values() for v in props["Environment"]["Variables"]
    }

    assert {variable: table[variable][0] for variable in table} == set_for
    assert template_sets <= set(table), "every variable the template sets is in the README's table"
    assert set(deployed["environments"]["WebhookFunction"]) <= template_sets


def test_the_dead_letter_queue_admits_exactly_the_retry_queue_the_stack_created(
    deployed: dict[str, Any],
) -> None:
    """The ARN template.yaml spells out for the redrive-allow policy (resolved as CloudFormation
    would; moto's SQS ignores the policy itself) is the ARN of the queue the stack created."""
    retry, dead_letters = deployed["queues"]["RetryQueue"], deployed["queues"]["DeadLetterQueue"]
    properties = deployed["translated"]["Resources"]["DeadLetterQueue"]["Properties"]
    allow = Resolver(deployed["translated"], refs={}, attributes={}, parameters={}).resolve(
        properties["RedriveAllowPolicy"]
    )

    assert allow == {"redrivePermission": "byQueue", "sourceQueueArns": [retry["QueueArn"]]}
    assert json.loads(retry["RedrivePolicy"])["deadLetterTargetArn"] == dead_letters["QueueArn"]
    assert retry["MaximumMessageSize"] == dead_letters["MaximumMessageSize"] == "262144"
