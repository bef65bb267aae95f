"""template.yaml holds the promises the code relies on: retry timing, partial batch failures,
least privilege, the routes the platforms call, and alarms an operator can act on."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"

DATA_SERVICES = ("sqs", "dynamodb", "secretsmanager", "ssm", "s3", "kms")
PLATFORM_WEBHOOK_TIMEOUT_S = 5  # The Things Stack and ChirpStack give up after 5 s


class _CfnLoader(yaml.SafeLoader):
    """SafeLoader that turns CloudFormation short tags (!Ref, !Sub, !If ...) into their long form."""


def _construct_intrinsic(loader: _CfnLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if tag_suffix == "Ref" else f"Fn::{tag_suffix}"
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if tag_suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


_CfnLoader.add_multi_constructor("!", _construct_intrinsic)


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return yaml.load(TEMPLATE.read_text(encoding="utf-8"), Loader=_CfnLoader)  # noqa: S506 (SafeLoader subclass)


def _resources(template: dict[str, Any], type_: str) -> dict[str, dict[str, Any]]:
    return {name: res for name, res in template["Resources"].items() if res["Type"] == type_}


def _function(template: dict[str, Any], name: str) -> dict[str, Any]:
    """A function's properties with the template's Globals applied (function values win)."""
    merged = dict(template.get("Globals", {}).get("Function", {}))
    props = template["Resources"][name]["Properties"]
    for key, value in props.items():
        if key == "Environment":
            variables = {**merged.get("Environment", {}).get("Variables", {}), **value["Variables"]}
            merged["Environment"] = {"Variables": variables}
        else:
            merged[key] = value
    return merged


def _branches(value: Any) -> Iterator[Any]:
    """Every value an Fn::If may resolve to (both branches, recursively); other values as they are."""
    if isinstance(value, dict) and set(value) == {"Fn::If"}:
        _, when_true, when_false = value["Fn::If"]
        yield from _branches(when_true)
        yield from _branches(when_false)
    else:
        yield value


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _statements(node: Any) -> Iterator[dict[str, Any]]:
    """Every IAM statement anywhere in the template (role policies, SAM policy statements, ...)."""
    for value in _branches(node):
        if isinstance(value, dict):
            if "Effect" in value and ("Action" in value or "NotAction" in value):
                yield value
            for child in value.values():
                yield from _statements(child)
        elif isinstance(value, list):
            for child in value:
                yield from _statements(child)


def _resolve_sub(body: Any) -> str:
    """Render an Fn::Sub string with a harmless stand-in for every ${...}; ${!x} stays literal."""
    text = body["Fn::Sub"] if isinstance(body, dict) else body
    if isinstance(text, list):
        text = text[0]

    def replace(match: re.Match[str]) -> str:
        return "${" + match.group(2) + "}" if match.group(1) else "1"

    return re.sub(r"\$\{(!?)([^}]*)\}", replace, text)


def test_retry_queue_hides_a_message_while_the_retry_function_may_still_work_on_it(template):
    queue = template["Resources"]["RetryQueue"]["Properties"]
    retry = _function(template, "RetryFunction")
    window = retry["Events"]["RetryQueueMessages"]["Properties"].get("MaximumBatchingWindowInSeconds", 0)

    assert queue["VisibilityTimeout"] >= 6 * retry["Timeout"] + window


def test_messages_that_keep_failing_end_in_the_dead_letter_queue(template):
    redrive = template["Resources"]["RetryQueue"]["Properties"]["RedrivePolicy"]

    assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}
    assert isinstance(redrive["maxReceiveCount"], int)
    assert redrive["maxReceiveCount"] >= 1


def test_queued_work_is_kept_for_14_days_and_parked_work_can_be_redriven(template):
    retry_queue = template["Resources"]["RetryQueue"]["Properties"]
    dead_letters = template["Resources"]["DeadLetterQueue"]["Properties"]

    assert retry_queue["MessageRetentionPeriod"] == 14 * 24 * 3600
    assert dead_letters["MessageRetentionPeriod"] == 14 * 24 * 3600


def test_dead_letter_queue_admits_the_retry_queue_only(template):
    allow = template["Resources"]["DeadLetterQueue"]["Properties"]["RedriveAllowPolicy"]
    retry_queue = template["Resources"]["RetryQueue"]["Properties"]
    # The ARN of the queue named QueueName, spelled as SQS builds it (not !GetAtt: that is a cycle).
    retry_arn = (
        "arn:${AWS::Partition}:sqs:${AWS::Region}:${AWS::AccountId}:" + retry_queue["QueueName"]["Fn::Sub"]
    )

    assert allow["redrivePermission"] == "byQueue"
    assert allow["sourceQueueArns"] == [{"Fn::Sub": retry_arn}]
    assert retry_queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}


SQS_MAXIMUM_MESSAGE_SIZE = 262144  # bytes; what the webhook's size check before a 2xx relies on


@pytest.mark.parametrize("name", ["RetryQueue", "DeadLetterQueue"])
def test_queues_state_the_sqs_message_size_limit(template, name):
    assert template["Resources"][name]["Properties"]["MaximumMessageSize"] == SQS_MAXIMUM_MESSAGE_SIZE


def test_local_queues_are_sized_like_the_templates(monkeypatch):
    """local/provision.py creates moto's queues with the template's limit (moto's default is 1 MiB),
    so local runs meet the real one."""
    import boto3
    from moto import mock_aws

    from local.provision import provision

    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    with mock_aws():
        resources = provision()
        sqs = boto3.client("sqs")
        for url in (resources.retry_queue_url, resources.dead_letter_queue_url):
            attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["MaximumMessageSize"])
            assert int(attributes["Attributes"]["MaximumMessageSize"]) == SQS_MAXIMUM_MESSAGE_SIZE
        with pytest.raises(sqs.exceptions.ClientError, match="shorter than"):
            sqs.send_message(
                QueueUrl=resources.retry_queue_url, MessageBody="x" * (SQS_MAXIMUM_MESSAGE_SIZE + 1)
            )


def test_retry_function_reports_partial_batch_failures_with_bounded_concurrency(template):
    event = _function(template, "RetryFunction")["Events"]["RetryQueueMessages"]
    props = event["Properties"]
    parameter = template["Parameters"]["RetryMaxConcurrency"]

    assert event["Type"] == "SQS"
    assert props["Queue"] == {"Fn::GetAtt": ["RetryQueue", "Arn"]}
    assert "ReportBatchItemFailures" in props["FunctionResponseTypes"]
    assert props["ScalingConfig"]["MaximumConcurrency"] == {"Ref": "RetryMaxConcurrency"}
    assert parameter["MinValue"] >= 2  # SQS event sources refuse less than 2
    assert parameter["MaxValue"] <= 1000


def test_webhook_function_answers_before_the_platforms_5_second_timeout(template):
    webhook = _function(template, "WebhookFunction")
    api_budget = float(webhook["Environment"]["Variables"]["API_TIMEOUT_SECONDS"])

    assert webhook["Timeout"] < PLATFORM_WEBHOOK_TIMEOUT_S
    assert api_budget < webhook["Timeout"]


@pytest.mark.parametrize("name", ["WebhookFunction", "RetryFunction"])
def test_functions_run_python313_on_arm64_with_tracing_and_the_bridge_layer(template, name):
    function = _function(template, name)

    assert function["Runtime"] == "python3.13"
    assert function["Architectures"] == ["arm64"]
    assert function["Tracing"] == "Active"
    assert {"Ref": "BridgeLayer"} in function["Layers"]


def test_bridge_layer_is_built_for_the_functions_runtime(template):
    layer = template["Resources"]["BridgeLayer"]

    assert layer["Properties"]["CompatibleRuntimes"] == ["python3.13"]
    assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]
    # Built by layers/bridge/Makefile, which ships bytecode: SAM's python3.13 builder ships none.
    assert layer["Metadata"] == {"BuildMethod": "makefile", "BuildArchitecture": "arm64"}


@pytest.mark.parametrize("name", ["RegistryTable", "IdempotencyTable"])
def test_tables_are_on_demand_with_point_in_time_recovery(template, name):
    table = template["Resources"][name]["Properties"]

    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert table["SSESpecification"]["SSEEnabled"] is True


def test_idempotency_table_has_the_powertools_key_and_ttl_attribute(template):
    table = template["Resources"]["IdempotencyTable"]["Properties"]

    assert table["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expiration", "Enabled": True}


def test_no_iam_statement_grants_a_data_action_on_every_resource(template):
    statements = list(_statements(template["Resources"]))
    offending = []
    for statement in statements:
        if statement["Effect"] != "Allow":
            continue
        actions = [str(a).lower() for a in _as_list(statement.get("Action", "*"))]
        touches_data = any(a == "*" or a.split(":", 1)[0] in DATA_SERVICES for a in actions)
        resources = [r for value in _as_list(statement.get("Resource", "*")) for r in _branches(value)]
        if touches_data and "*" in resources:
            offending.append(statement)

    assert len(statements) >= 8, "the walker found too few statements to mean anything"
    assert offending == []


def _role_grants(template: dict[str, Any], role: str) -> dict[str, set[str]]:
    """Per resource (as written, e.g. "RegistryTable"), the data actions a role allows on it,
    counting both branches of every Fn::If."""
    grants: dict[str, set[str]] = {}
    for statement in _statements(template["Resources"][role]["Properties"]["Policies"]):
        if statement["Effect"] != "Allow":
            continue
        for value in _as_list(statement["Resource"]):
            for resource in _branches(value):
                if isinstance(resource, dict) and "Fn::GetAtt" in resource:
                    key = resource["Fn::GetAtt"][0]
                elif isinstance(resource, dict) and "Ref" in resource:
                    key = resource["Ref"]
                else:
                    key = json.dumps(resource, sort_keys=True)
                grants.setdefault(key, set()).update(str(a) for a in _as_list(statement["Action"]))
    return grants


@pytest.mark.parametrize("role", ["WebhookFunctionRole", "RetryFunctionRole"])
def test_the_registry_table_is_only_read_and_updated(template, role):
    # registry.py calls get_item and update_item only: no device record is put whole or deleted.
    assert _role_grants(template, role)["RegistryTable"] == {"dynamodb:GetItem", "dynamodb:UpdateItem"}


def test_only_the_webhook_function_uses_the_idempotency_table(template):
    webhook = _role_grants(template, "WebhookFunctionRole")
    retry = _role_grants(template, "RetryFunctionRole")
    powertools = {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"}

    assert webhook["IdempotencyTable"] == powertools
    assert "IdempotencyTable" not in retry
    assert "IDEMPOTENCY_TABLE" in _function(template, "WebhookFunction")["Environment"]["Variables"]
    assert "IDEMPOTENCY_TABLE" not in _function(template, "RetryFunction")["Environment"]["Variables"]


def test_retry_role_consumes_its_queue_with_what_the_event_source_mapping_needs_only(template):
    grants = _role_grants(template, "RetryFunctionRole")

    assert grants["RetryQueue"] == {
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
        "sqs:SendMessage",  # queue work again (Retry-After hops, backoff)
    }
    assert grants["DeadLetterQueue"] == {"sqs:SendMessage"}
    assert set(grants) - {"RetryQueue", "DeadLetterQueue", "RegistryTable"} <= {
        "CredentialsSecret",
        "CredentialsSecretArn",
        "CredentialsKmsKeyArn",
        json.dumps(
            {
                "Fn::Sub": "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}"
                ":parameter${ConfigParameterName}"
            },
            sort_keys=True,
        ),
    }


def test_no_role_may_change_message_visibility(template):
    actions = {str(a) for s in _statements(template["Resources"]) for a in _as_list(s.get("Action", []))}
    assert not {a for a in actions if "changemessagevisibility" in a.lower()}


def test_functions_attach_only_the_tracing_managed_policy(template):
    # AWSLambdaBasicExecutionRole may create and write to every log group in the account.
    for name, role in _resources(template, "AWS::IAM::Role").items():
        attached = {_resolve_sub(arn).rsplit("/", 1)[-1] for arn in role["Properties"]["ManagedPolicyArns"]}
        assert attached == {"AWSXrayWriteOnlyAccess"}, name


@pytest.mark.parametrize("function", ["WebhookFunction", "RetryFunction"])
def test_each_function_writes_to_its_own_log_group_only(template, function):
    role = template["Resources"][function]["Properties"]["Role"]["Fn::GetAtt"][0]
    log_group = template["Resources"][f"{function}LogGroup"]["Properties"]
    log_statements = [
        (name, s)
        for name, policy in _resources(template, "AWS::IAM::Policy").items()
        if policy["Properties"]["Roles"] == [{"Ref": role}]
        for s in _statements(policy["Properties"]["PolicyDocument"])
    ]
    everywhere = [s for s in _statements(template["Resources"]) if _logs_actions(s)]

    assert log_group["LogGroupName"] == {"Fn::Sub": f"/aws/lambda/${{{function}}}"}
    assert [s for _, s in log_statements] == [
        {
            "Sid": "WriteOwnLogGroup",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": {"Fn::GetAtt": [f"{function}LogGroup", "Arn"]},
        }
    ]
    # Nowhere else does anyone get logs: actions (no CreateLogGroup, no other group).
    assert len(everywhere) == 2
    assert all(s["Resource"]["Fn::GetAtt"][0].endswith("FunctionLogGroup") for s in everywhere)


def _logs_actions(statement: dict[str, Any]) -> list[str]:
    return [str(a) for a in _as_list(statement.get("Action", [])) if str(a).lower().startswith("logs:")]


@pytest.mark.parametrize("role", ["WebhookFunctionRole", "RetryFunctionRole"])
def test_a_customer_managed_key_of_the_credentials_secret_decrypts_through_secrets_manager_only(
    template, role
):
    parameter = template["Parameters"]["CredentialsKmsKeyArn"]
    statements = template["Resources"][role]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    (conditional,) = [
        s["Fn::If"]
        for s in statements
        if isinstance(s, dict) and s.get("Fn::If", [""])[0] == "HasCredentialsKmsKey"
    ]
    condition, when_set, when_empty = conditional

    assert parameter["Default"] == ""  # empty = the AWS managed key, no grant
    assert re.fullmatch(parameter["AllowedPattern"], "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab")
    assert not re.fullmatch(parameter["AllowedPattern"], "arn:aws:kms:eu-west-1:123456789012:alias/bridge")
    assert template["Conditions"][condition] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "CredentialsKmsKeyArn"}, ""]}]
    }
    assert when_empty == {"Ref": "AWS::NoValue"}
    assert when_set["Effect"] == "Allow"
    assert when_set["Action"] == "kms:Decrypt"
    assert when_set["Resource"] == {"Ref": "CredentialsKmsKeyArn"}
    assert when_set["Condition"] == {
        "StringEquals": {
            "kms:ViaService": {"Fn::Sub": "secretsmanager.${AWS::Region}.amazonaws.com"},
            "kms:EncryptionContext:SecretARN": {"Ref": "CredentialsSecretArn"},
        }
    }


def test_the_kms_key_parameter_is_refused_without_the_secret_it_decrypts(template):
    rule = template["Rules"]["CredentialsKmsKeyNeedsTheSecretArn"]

    assert rule["RuleCondition"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "CredentialsKmsKeyArn"}, ""]}]}
    assert [a["Assert"] for a in rule["Assertions"]] == [
        {"Fn::Not": [{"Fn::Equals": [{"Ref": "CredentialsSecretArn"}, ""]}]}
    ]


def test_webhook_routes_accept_post_and_the_cloudevents_options_handshake(template):
    events = _function(template, "WebhookFunction")["Events"].values()
    routes = {
        (e["Properties"]["Method"].upper(), e["Properties"]["Path"])
        for e in events
        if e["Type"] == "HttpApi" and e["Properties"].get("ApiId") == {"Ref": "HttpApi"}
    }

    assert ("POST", "/webhooks/{source}") in routes
    assert ("OPTIONS", "/webhooks/{source}") in routes


def _route_key(method: str, path: str) -> str:
    """A route's key as API Gateway spells it (`$default` has no method)."""
    return "$default" if path in ("$default", "/$default") else f"{method.upper()} {path}"


def test_requests_no_route_declares_reach_the_webhook_function_through_the_default_route(template):
    events = _function(template, "WebhookFunction")["Events"].values()
    routes = {
        _route_key(e["Properties"]["Method"], e["Properties"]["Path"])
        for e in events
        if e["Type"] == "HttpApi" and e["Properties"].get("ApiId") == {"Ref": "HttpApi"}
    }

    # Without it API Gateway answers its own {"message":"Not Found"}, not the bridge's error shape.
    assert "$default" in routes


def test_every_route_has_its_own_throttle_and_handshakes_cannot_use_up_the_webhooks_share(template):
    api = template["Resources"]["HttpApi"]["Properties"]
    routes = {
        _route_key(e["Properties"]["Method"], e["Properties"]["Path"])
        for e in _function(template, "WebhookFunction")["Events"].values()
        if e["Type"] == "HttpApi"
    }
    settings = api["RouteSettings"]
    webhook, handshake = settings["POST /webhooks/{source}"], settings["OPTIONS /webhooks/{source}"]
    unrouted = settings["$default"]

    assert set(settings) == routes  # route keys as API Gateway spells them, one per route
    for limits in (*settings.values(), api["DefaultRouteSettings"]):
        assert limits["ThrottlingBurstLimit"] > 0
        assert limits["ThrottlingRateLimit"] > 0
    # Handshakes and unrouted requests (scanners) each have a bucket of their own, far smaller
    # than the webhooks': a flood of either cannot use up what the platforms need.
    for other in (handshake, unrouted):
        assert other["ThrottlingRateLimit"] * 10 <= webhook["ThrottlingRateLimit"]
        assert other["ThrottlingBurstLimit"] * 10 <= webhook["ThrottlingBurstLimit"]
    # Anything else (no route today) gets less than the webhook route, not the same bucket size.
    assert api["DefaultRouteSettings"]["ThrottlingRateLimit"] < webhook["ThrottlingRateLimit"]


def test_http_api_writes_json_access_logs(template):
    api = template["Resources"]["HttpApi"]["Properties"]
    log_format = json.loads(api["AccessLogSettings"]["Format"])

    fields = ("requestId", "ip", "routeKey", "status", "responseLength", "integrationErrorMessage", "path")
    assert set(fields) <= set(log_format)
    assert "querystring" not in api["AccessLogSettings"]["Format"].lower()  # Azure puts its secret there


def test_every_alarm_tells_the_operator_what_it_means(template):
    alarms = _resources(template, "AWS::CloudWatch::Alarm")

    assert len(alarms) >= 8
    for name, alarm in alarms.items():
        description = alarm["Properties"].get("AlarmDescription")
        text = _resolve_sub(description) if isinstance(description, dict) else description
        assert text, name
        assert len(text.split()) >= 15, f"{name}: say what it means and what to do"


def test_rate_limited_alarm_watches_the_service_wide_series_the_code_emits(template):
    alarm = template["Resources"]["RateLimitedAlarm"]["Properties"]

    assert alarm["Namespace"] == "SensorBridge"
    assert alarm["MetricName"] == "RateLimited"
    assert alarm["Dimensions"] == [{"Name": "service", "Value": "sensor-bridge"}]
    assert alarm["Threshold"] == {"Ref": "RateLimitAlarmThreshold"}
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"


def test_dashboard_body_is_json_once_substituted(template):
    body = json.loads(_resolve_sub(template["Resources"]["Dashboard"]["Properties"]["DashboardBody"]))
    rendered = json.dumps(body)

    assert body["widgets"]
    for metric in ("WebhooksReceived", "DevicesIntegrated", "RateLimited", "DeadLettered", "ApiLatency"):
        assert metric in rendered


def test_the_stages_route_settings_name_the_routes_the_translated_api_defines():
    """Route keys as API Gateway spells them: the SAM translation's stage and OpenAPI body agree."""
    from local.template_stack import translate

    resources = translate()["Resources"]
    (stage,) = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::ApiGatewayV2::Stage"]
    (body,) = [r["Properties"]["Body"] for r in resources.values() if r["Type"] == "AWS::ApiGatewayV2::Api"]
    routes = {_route_key(method, path) for path, methods in body["paths"].items() for method in methods}

    assert set(stage["RouteSettings"]) == routes
    assert stage["DefaultRouteSettings"]["ThrottlingRateLimit"] > 0


def test_dashboard_reads_only_metrics_the_code_emits_and_shows_every_answer_status(template):
    from sensor_bridge.runtime.observability import Metric

    rendered = _resolve_sub(template["Resources"]["Dashboard"]["Properties"]["DashboardBody"])
    read = set(re.findall(r'"SensorBridge", "(\w+)"', rendered))
    read |= set(re.findall(r'MetricName=\\"(\w+)\\"', rendered))

    assert read <= {m.value for m in Metric}, "the dashboard reads a metric nobody emits"
    assert read == {m.value for m in Metric}, "a metric the code emits is on no widget"
