"""Creates the bridge's AWS resources (queues, tables, secrets) on an AWS endpoint (moto here).

The names and settings mirror template.yaml, so the local stack behaves as the deployed one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import boto3

from local.simulator import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET

# The demo secrets the local stack's sources authenticate with (the README's curl examples use them).
LOCAL_WEBHOOK_SECRETS: dict[str, str] = {
    "ttn-demo": "local-ttn-webhook-token",
    "chirpstack-demo": "local-chirpstack-token",
    "particle-demo": "local-particle-password",
    "azure-demo": "local-azure-code",
    "aws-iot-demo": "local-aws-iot-token",
    # Standard Webhooks secrets are "whsec_" + base64 of the key bytes.
    "generic-demo": "whsec_bG9jYWwtZ2VuZXJpYy1zaWduaW5nLWtleS0zMmJ5dGVz",
}
MAX_RECEIVE_COUNT = 5
RETRY_VISIBILITY_TIMEOUT = 360
MAX_MESSAGE_SIZE = 262144  # bytes, as template.yaml's MaximumMessageSize


@dataclass(frozen=True)
class Resources:
    retry_queue_url: str
    dead_letter_queue_url: str
    retry_queue_arn: str
    dead_letter_queue_arn: str
    registry_table: str
    idempotency_table: str
    credentials_secret_id: str
    webhook_secrets_id: str


def provision(
    prefix: str = "sensor-bridge",
    *,
    credentials: dict[str, str] | None = None,
    webhook_secrets: dict[str, str] | None = None,
) -> Resources:
    sqs: Any = boto3.client("sqs")
    dynamodb: Any = boto3.client("dynamodb")
    secrets: Any = boto3.client("secretsmanager")

    # template.yaml states SQS's limit on both queues; moto's default is larger, and local runs
    # must meet the real one.
    dlq_url = sqs.create_queue(
        QueueName=f"{prefix}-dead-letter", Attributes={"MaximumMessageSize": str(MAX_MESSAGE_SIZE)}
    )["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    retry_url = sqs.create_queue(
        QueueName=f"{prefix}-retry",
        Attributes={
            "VisibilityTimeout": str(RETRY_VISIBILITY_TIMEOUT),
            "MaximumMessageSize": str(MAX_MESSAGE_SIZE),
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": MAX_RECEIVE_COUNT}
            ),
        },
    )["QueueUrl"]
    retry_arn = sqs.get_queue_attributes(QueueUrl=retry_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]

    registry_table = f"{prefix}-registry"
    idempotency_table = f"{prefix}-idempotency"
    for table, key in ((registry_table, "pk"), (idempotency_table, "id")):
        dynamodb.create_table(
            TableName=table,
            KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )

    credentials_id = f"{prefix}/credentials"
    webhook_secrets_id = f"{prefix}/webhook-secrets"
    secrets.create_secret(
        Name=credentials_id,
        SecretString=json.dumps(
            credentials or {"client_id": DEMO_CLIENT_ID, "client_secret": DEMO_CLIENT_SECRET}
        ),
    )
    secrets.create_secret(
        Name=webhook_secrets_id, SecretString=json.dumps(webhook_secrets or LOCAL_WEBHOOK_SECRETS)
    )
    return Resources(
        retry_queue_url=retry_url,
        dead_letter_queue_url=dlq_url,
        retry_queue_arn=retry_arn,
        dead_letter_queue_arn=dlq_arn,
        registry_table=registry_table,
        idempotency_table=idempotency_table,
        credentials_secret_id=credentials_id,
        webhook_secrets_id=webhook_secrets_id,
    )


@dataclass(frozen=True)
class ApiEndpoints:
    """The Sensor Data API and IMS token endpoint the functions call: the simulator's or yours."""

    api_base_url: str
    token_url: str
    itwin_id: str | None = None
    config_file: str | None = None  # None: the bundled file (or whatever the environment says)


def bridge_environment(resources: Resources, api: ApiEndpoints) -> dict[str, str]:
    """The environment template.yaml gives the functions, pointed at the local resources and `api`."""
    optional = {"ITWIN_ID": api.itwin_id, "BRIDGE_CONFIG_FILE": api.config_file}
    return {
        "SENSOR_DATA_API_URL": api.api_base_url,
        "IMS_TOKEN_URL": api.token_url,
        "CREDENTIALS_SECRET_ID": resources.credentials_secret_id,
        "WEBHOOK_SECRETS_ID": resources.webhook_secrets_id,
        "RETRY_QUEUE_URL": resources.retry_queue_url,
        "DEAD_LETTER_QUEUE_URL": resources.dead_letter_queue_url,
        "REGISTRY_TABLE": resources.registry_table,
        "IDEMPOTENCY_TABLE": resources.idempotency_table,
        "POWERTOOLS_SERVICE_NAME": "sensor-bridge",
        "POWERTOOLS_METRICS_NAMESPACE": "SensorBridge",
        **{name: value for name, value in optional.items() if value},
    }
