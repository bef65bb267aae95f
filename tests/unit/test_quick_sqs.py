"""The local stack's attribute map for moto's queues answers what moto's own does, for every kind
of queue the template and the tests make, and sends no longer slow down as a queue fills."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.sqs.models import Queue

from local import quick_sqs

# moto's own map, also when the local stack has already replaced it in this process
MOTOS_OWN = Queue.__dict__.get("motos_own_attributes", Queue.__dict__["attributes"]).fget


def queues(client: Any) -> list[str]:
    dlq = client.create_queue(QueueName="dlq")["QueueUrl"]
    arn = client.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": "5"})
    policy = json.dumps({"Version": "2012-10-17", "Statement": []})
    return [
        dlq,
        client.create_queue(QueueName="retry", Attributes={"RedrivePolicy": redrive, "DelaySeconds": "3"})[
            "QueueUrl"
        ],
        client.create_queue(
            QueueName="work.fifo", Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"}
        )["QueueUrl"],
        client.create_queue(QueueName="kms", Attributes={"KmsMasterKeyId": "alias/x", "Policy": policy})[
            "QueueUrl"
        ],
    ]


@pytest.fixture
def sqs() -> Any:
    with mock_aws():
        yield boto3.client("sqs", region_name="us-east-1")


def test_every_queues_attributes_are_the_ones_moto_computes(sqs: Any) -> None:
    from moto.core.models import DEFAULT_ACCOUNT_ID
    from moto.sqs.models import sqs_backends

    urls = queues(sqs)
    sqs.send_message(QueueUrl=urls[1], MessageBody="{}", DelaySeconds=0)
    sqs.send_message(QueueUrl=urls[2], MessageBody="{}", MessageGroupId="g")
    backend = sqs_backends[DEFAULT_ACCOUNT_ID]["us-east-1"]

    for url in urls:
        queue = backend.get_queue(url.rsplit("/", 1)[1])
        assert dict(quick_sqs._Attributes(queue)) == MOTOS_OWN(queue)
        assert quick_sqs._Attributes(queue).get("ContentBasedDeduplication") == MOTOS_OWN(queue).get(
            "ContentBasedDeduplication"
        )


def test_with_it_installed_a_content_deduplicated_fifo_queue_still_deduplicates(sqs: Any) -> None:
    quick_sqs.install()
    url = queues(sqs)[2]

    for _ in range(2):
        sqs.send_message(QueueUrl=url, MessageBody='{"same": 1}', MessageGroupId="g")

    count = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
    assert count["Attributes"]["ApproximateNumberOfMessages"] == "1"
