"""The template's IAM, proved by running the functions under it (issue 9).

template.yaml is translated with aws-sam-translator and resolved for the parameters' defaults
(the API endpoints pointed at the simulator), and again for the other branch of every condition
on the roles (an existing credentials secret under a customer-managed key, config from SSM).
Each function's role is created in moto with exactly the resolved policies; the function runs
with that role's credentials and the template's environment for it; moto's IAM enforcement is
on (server mode: POST /moto-api/reset-auth, the server side of
`set_initial_no_auth_action_count`). Delivery scenarios then drive every AWS call the code makes.
A call the role does not allow fails the test; a permission no scenario used is printed
(`pytest -rP` shows it).

moto evaluates the action of every request, but the resource only for SQS (and IAM, STS): it
checks DynamoDB and Secrets Manager requests against "*", which no scoped statement matches.
`MotoEnforcement` supplies those requests' ARNs and maps SQS batch calls to the actions AWS
authorizes them by (DeleteMessageBatch -> sqs:DeleteMessage), so moto's own evaluator judges every
call against the real resource. The one statement with a Condition (kms:Decrypt through
Secrets Manager) is never evaluated: moto's Secrets Manager does not call KMS, so that grant is
listed as unused.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import httpx
import pytest
from moto.sqs.models import SQSBackend

from local.stack import LocalStack
from local.template_stack import (
    ACCOUNT_ID,
    REGION,
    Resolver,
    RolePolicies,
    function_environment,
    role_of,
    role_policies,
    translate,
)
from tests.scenario import ref, tts_event

FUNCTIONS = ("WebhookFunction", "RetryFunction")
# AWS authorizes a batch call by its single-message action.
BATCH_ACTIONS = {
    "sqs:SendMessageBatch": "sqs:SendMessage",
    "sqs:DeleteMessageBatch": "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibilityBatch": "sqs:ChangeMessageVisibility",
}


@dataclass(frozen=True)
class Evaluated:
    principal: str  # the assumed role's name
    action: str
    resource: str
    allowed: bool


@dataclass
class MotoEnforcement:
    """Records every request moto's IAM evaluates, after giving it its real resource."""

    calls: list[Evaluated] = field(default_factory=list)

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from moto.dynamodb.responses import DynamoHandler
        from moto.iam.access_control import IAMRequestBase
        from moto.secretsmanager.responses import SecretsManagerResponse
        from moto.ssm.responses import SimpleSystemManagerResponse

        monkeypatch.setattr(DynamoHandler, "_determine_resource", _table_arn, raising=False)
        monkeypatch.setattr(SecretsManagerResponse, "_determine_resource", _secret_arn, raising=False)
        monkeypatch.setattr(SimpleSystemManagerResponse, "_determine_resource", _parameter_arn, raising=False)
        check = IAMRequestBase.check_action_permitted
        calls = self.calls

        def recorded(request: Any, resource: str) -> None:
            request._action = BATCH_ACTIONS.get(request._action, request._action)
            principal = getattr(request._access_key, "_owner_role_name", "(not a role)")
            try:
                check(request, resource)
            except Exception:
                calls.append(Evaluated(principal, request._action, resource, allowed=False))
                raise
            calls.append(Evaluated(principal, request._action, resource, allowed=True))

        monkeypatch.setattr(IAMRequestBase, "check_action_permitted", recorded)

    def denied(self) -> list[Evaluated]:
        return [c for c in self.calls if not c.allowed]


def _table_arn(response: Any) -> str:
    name = (response.body or {}).get("TableName") if isinstance(response.body, dict) else None
    return f"arn:aws:dynamodb:{response.region}:{response.current_account}:table/{name}" if name else "*"


def _secret_arn(response: Any) -> str:
    secret = response.backend.secrets.get(response._get_param("SecretId") or "")
    return str(secret.arn) if secret is not None else "*"


def _parameter_arn(response: Any) -> str:
    name = str(response._get_param("Name") or "")
    path = name if name.startswith("/") else f"/{name}"
    return f"arn:aws:ssm:{response.region}:{response.current_account}:parameter{path}" if name else "*"


def _local_resolver(stack: LocalStack, translated: dict[str, Any], parameters: dict[str, str]) -> Resolver:
    """Physical ids: the local stack's queues, tables and secrets stand for the template's."""
    assert stack.resources is not None
    r = stack.resources
    secrets = boto3.client("secretsmanager")
    names = {"WebhookFunction": "sensor-bridge-webhook", "RetryFunction": "sensor-bridge-retry-function"}
    refs = {
        "RetryQueue": r.retry_queue_url,
        "DeadLetterQueue": r.dead_letter_queue_url,
        "RegistryTable": r.registry_table,
        "IdempotencyTable": r.idempotency_table,
        "CredentialsSecret": secrets.describe_secret(SecretId=r.credentials_secret_id)["ARN"],
        "WebhookSecretsSecret": secrets.describe_secret(SecretId=r.webhook_secrets_id)["ARN"],
        **names,
        **{role_of(translated, f): f"sensor-bridge-{role_of(translated, f)}" for f in FUNCTIONS},
    }
    prefix = f"arn:aws:dynamodb:{REGION}:{ACCOUNT_ID}:table/"
    attributes = {
        ("RetryQueue", "Arn"): r.retry_queue_arn,
        ("RetryQueue", "QueueName"): r.retry_queue_url.rsplit("/", 1)[1],
        ("DeadLetterQueue", "Arn"): r.dead_letter_queue_arn,
        ("DeadLetterQueue", "QueueName"): r.dead_letter_queue_url.rsplit("/", 1)[1],
        ("RegistryTable", "Arn"): prefix + r.registry_table,
        ("IdempotencyTable", "Arn"): prefix + r.idempotency_table,
        **{
            (f"{f}LogGroup", "Arn"): f"arn:aws:logs:{REGION}:{ACCOUNT_ID}:log-group:/aws/lambda/{n}:*"
            for f, n in names.items()
        },
    }
    endpoints = {"SensorDataApiUrl": stack.simulator.api_base_url, "ImsTokenUrl": stack.simulator.token_url}
    return Resolver(translated, refs=refs, attributes=attributes, parameters={**endpoints, **parameters})


def _assume(role_name: str, policies: RolePolicies, session: str) -> dict[str, str]:
    """The role in moto with exactly these inline policies; its temporary credentials, as
    Lambda puts them into a function's environment. (In AWS lambda.amazonaws.com assumes it.)"""
    iam, sts = boto3.client("iam"), boto3.client("sts")
    trust = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": ACCOUNT_ID}, "Action": "sts:AssumeRole"}],
    }
    arn = iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    for name, document in policies.inline.items():
        iam.put_role_policy(RoleName=role_name, PolicyName=name, PolicyDocument=json.dumps(document))
    credentials = sts.assume_role(RoleArn=arn, RoleSessionName=session)["Credentials"]
    return {
        "AWS_ACCESS_KEY_ID": credentials["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": credentials["SecretAccessKey"],
        "AWS_SESSION_TOKEN": credentials["SessionToken"],
    }


@dataclass
class Enforced:
    stack: LocalStack
    enforcement: MotoEnforcement
    grants: dict[str, RolePolicies]  # role name -> what the template grants it


def _switch_enforcement(on: bool) -> None:
    import os

    count = b"0" if on else b"inf"
    httpx.post(
        f"{os.environ['AWS_ENDPOINT_URL']}/moto-api/reset-auth", content=count, timeout=10
    ).raise_for_status()


def enforce_template_iam(
    stack: LocalStack,
    monkeypatch: pytest.MonkeyPatch,
    *,
    parameters: dict[str, str] | None = None,
    without: tuple[str, str] | None = None,
) -> Enforced:
    """Roles and environments from the translated template for its defaults plus `parameters`;
    moto's IAM enforcement switched on. `without` = (function, action): that action removed from
    the function's role, to show that the test notices a missing permission."""
    translated = translate()
    resolver = _local_resolver(stack, translated, parameters or {})
    grants: dict[str, RolePolicies] = {}
    environments: dict[str, dict[str, str]] = {}
    for function in FUNCTIONS:
        role_name = f"sensor-bridge-{role_of(translated, function)}"
        policies = role_policies(translated, resolver, role_of(translated, function))
        if without is not None and without[0] == function:
            policies = _remove_action(policies, without[1])
        grants[role_name] = policies
        credentials = _assume(role_name, policies, function)
        environments[function] = {**function_environment(translated, resolver, function), **credentials}
    stack.run_functions_with(environments)
    enforcement = MotoEnforcement()
    enforcement.install(monkeypatch)
    _switch_enforcement(True)
    return Enforced(stack, enforcement, grants)


def _remove_action(policies: RolePolicies, action: str) -> RolePolicies:
    documents = json.loads(json.dumps(policies.inline))
    for document in documents.values():
        for statement in document["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            statement["Action"] = [a for a in actions if a != action] or ["none:None"]
    return RolePolicies(inline=documents, managed=policies.managed)


@pytest.fixture
def enforcing(stack: LocalStack) -> Iterator[None]:
    """Switches moto's enforcement off again whatever happens (the next test provisions with
    the local stack's own credentials)."""
    try:
        yield
    finally:
        _switch_enforcement(False)
        stack.reset()


# -- granted but unused ----------------------------------------------------------------------
def unused_grants(enforced: Enforced) -> list[str]:
    """Every (action, resource) a role's statements allow that no evaluated call used."""
    used = [c for c in enforced.enforcement.calls if c.allowed]
    unused = []
    for role, policies in enforced.grants.items():
        mine = [c for c in used if c.principal == role]
        for document in policies.inline.values():
            for statement in document["Statement"]:
                for action in _as_list(statement["Action"]):
                    for resource in _as_list(statement.get("Resource", "*")):
                        if not any(
                            _matches(action, c.action) and _matches(resource, c.resource) for c in mine
                        ):
                            unused.append(f"{role}: {action} on {resource}")
        unused += [f"{role}: managed policy {arn} (not attached in moto)" for arn in policies.managed]
    return unused


def _as_list(value: Any) -> list[str]:
    return [str(v) for v in (value if isinstance(value, list) else [value])]


def _matches(pattern: str, value: str) -> bool:
    return fnmatch.fnmatchcase(value.lower(), pattern.lower())


# -- the scenarios ---------------------------------------------------------------------------
def run_scenarios(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every AWS call of both functions: a refused sender, integrate, duplicate, 429 queued then
    retried (a second 429 re-queued by the retry function), 422 parked by the webhook function,
    5xx until the retry function dead-letters, and an SQS outage (the idempotency record is
    deleted)."""
    refused_and_integrated(stack)
    queued_then_retried(stack)
    parked_by_either_function(stack)
    queue_outage(stack, monkeypatch)


def refused_and_integrated(stack: LocalStack) -> None:
    forged = tts_event()
    forged["headers"] = {**forged["headers"], "x-bridge-token": "forged"}
    status, _ = stack.post_event(forged)  # reads the webhook secrets, calls nothing else
    assert status == 401
    status, first = stack.post_event(tts_event())  # credentials, idempotency, registry
    assert (status, first["results"][0]["status"]) == (200, "integrated")
    repeat_status, repeat = stack.post_event(tts_event())  # the idempotency record answers
    assert (repeat_status, repeat["results"][0]["status"]) == (200, "duplicate")


def queued_then_retried(stack: LocalStack) -> None:
    stack.simulator.inject({"status": 429, "retry_after": "1", "count": 2})
    status, queued = stack.post_event(tts_event(device="queued-01"))
    assert (status, queued["results"][0]["status"]) == (202, "queued")
    stack.drain()  # receive, re-queue after the second 429, deliver, delete
    assert stack.simulator.state()["created"][ref("queued-01")] == 1

    stack.advance(60)  # the budget the 429s said was spent is back: the webhook calls directly


def parked_by_either_function(stack: LocalStack) -> None:
    warm_webhook_function(stack)
    stack.simulator.inject({"status": 422})
    status, refused = stack.post_event(tts_event(device="refused-01"))
    assert (status, refused["results"][0]["status"]) == (202, "parked")
    stack.simulator.inject({"status": 502, "count": 100})
    status, failing = stack.post_event(tts_event(device="failing-01"))
    assert (status, failing["results"][0]["status"]) == (202, "queued")
    stack.drain()
    stack.simulator.clear_faults()  # the 502s the dead-lettered device left over
    parked = {m["event"]["device_id"]: m for m in stack.queue_messages("dead-letter")}
    assert parked["bridge-monitoring/failing-01"]["parked_reason"].startswith("gave up after")
    assert "bridge-monitoring/refused-01" in parked
    assert stack.queue_messages("retry") == []


def queue_outage(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> None:
    """SQS fails after IAM allowed the call: the webhook answers 503 and deletes its idempotency
    record, so the platform's resend runs afresh."""
    warm_webhook_function(stack)
    stack.simulator.inject({"status": 503})
    with monkeypatch.context() as outage:
        outage.setattr(SQSBackend, "send_message", _unavailable)
        status, _ = stack.post_event(tts_event(device="outage-01"))
    assert status == 503
    status, _ = stack.post_event(tts_event(device="outage-01"))
    assert status in (200, 202)  # taken this time (the record of the failed one is gone)
    stack.drain()
    assert stack.simulator.state()["created"][ref("outage-01")] == 1


def warm_webhook_function(stack: LocalStack) -> None:
    """After the retry function ran, the next webhook starts a fresh environment here (one
    process plays both functions). A repeat pays that start, so the scenario after it meets the
    4 s budget on a loaded machine as it would in a warm Lambda."""
    status, _ = stack.post_event(tts_event())
    assert status == 200


def _unavailable(*_: Any, **__: Any) -> None:
    from moto.sqs.exceptions import OverLimit

    raise OverLimit(0)  # any SQS error: the code treats them alike (NotPersisted)


def default_parameters(stack: LocalStack) -> dict[str, str]:
    return {}


CONFIG_PARAMETER = "/sensor-bridge/config"


def existing_secret_with_its_key_and_config_in_ssm(stack: LocalStack) -> dict[str, str]:
    """The other branch of every condition on the roles: CredentialsSecretArn (the local
    secret), a customer-managed key for it, ConfigParameterName (holding the bundled config).
    moto's Secrets Manager does not call KMS, so the key's grant can only show up as unused."""
    from sensor_bridge.model.config import DEFAULT_CONFIG_FILE

    assert stack.resources is not None
    secret = boto3.client("secretsmanager").describe_secret(SecretId=stack.resources.credentials_secret_id)
    config = DEFAULT_CONFIG_FILE.read_text(encoding="utf-8")
    boto3.client("ssm").put_parameter(Name=CONFIG_PARAMETER, Value=config, Type="String")
    key = boto3.client("kms").create_key(Description="credentials secret key")["KeyMetadata"]["Arn"]
    return {
        "CredentialsSecretArn": secret["ARN"],
        "CredentialsKmsKeyArn": key,
        "ConfigParameterName": CONFIG_PARAMETER,
    }


@pytest.mark.parametrize("parameters", [default_parameters, existing_secret_with_its_key_and_config_in_ssm])
def test_every_aws_call_of_both_functions_is_allowed_by_the_templates_roles(
    stack: LocalStack, enforcing: None, monkeypatch: pytest.MonkeyPatch, parameters: Any
) -> None:
    enforced = enforce_template_iam(stack, monkeypatch, parameters=parameters(stack))

    run_scenarios(stack, monkeypatch)

    calls = enforced.enforcement.calls
    assert {c.principal for c in calls} == set(enforced.grants)  # both roles made calls
    assert {c.action for c in calls} >= {
        "secretsmanager:GetSecretValue",
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "sqs:SendMessage",
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "dynamodb:DeleteItem",
    }
    if parameters is existing_secret_with_its_key_and_config_in_ssm:
        assert {(c.principal, c.action) for c in calls} >= {
            (role, "ssm:GetParameter") for role in enforced.grants
        }
    missing = sorted({f"{c.principal}: {c.action} on {c.resource}" for c in enforced.enforcement.denied()})
    print("\nneeded but not granted:", *missing or ["none"], sep="\n  ")
    print("granted but unused by any scenario:", *unused_grants(enforced) or ["none"], sep="\n  ")
    assert missing == []


def test_a_permission_the_code_needs_and_the_template_lacks_fails(
    stack: LocalStack, enforcing: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same enforcement with UpdateItem taken from the webhook role: moto refuses the
    registry write, the invocation fails (a Lambda error: API Gateway answers 500), and the test
    sees which call was refused."""
    assert stack.resources is not None
    enforced = enforce_template_iam(stack, monkeypatch, without=("WebhookFunction", "dynamodb:UpdateItem"))

    status, answer = stack.post_event(tts_event())

    assert (status, answer) == (500, {"message": "Internal Server Error"})

    denied = {(c.principal, c.action, c.resource.rsplit("/", 1)[1]) for c in enforced.enforcement.denied()}
    assert (
        "sensor-bridge-WebhookFunctionRole",
        "dynamodb:UpdateItem",
        stack.resources.registry_table,
    ) in denied
