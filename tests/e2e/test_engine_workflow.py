"""The engine workflow end to end with boto3, as a developer and an engine act: provision a
Terraform product, receive the task from the reference engine's queue, notify the result, then
update (failing) and terminate; the EXTERNAL product type on its own queues; every check of the
three Notify calls; and constraint violations that change nothing."""

import json
import random
import re
import threading
import time
import uuid

import botocore.exceptions
import pytest

from test_products import MAIN_TF, tar_gz


def code(excinfo):
    return excinfo.value.response["Error"]["Code"], excinfo.value.response["Error"]["Message"]


class World:
    """An account with a published product, a developer who may launch it and an engine."""

    def __init__(self, server, tmp_path, product_type="TERRAFORM_OPEN_SOURCE", constraint=True):
        self.account = "".join(random.choice("0123456789") for _ in range(12))
        a = self.account
        self.admin = server.client("servicecatalog", server.create_key(a, f"arn:aws:iam::{a}:role/platform", admin=True))
        self.dev_principal = f"arn:aws:iam::{a}:role/dev"
        self.dev_key = server.create_key(a, self.dev_principal)
        self.dev = server.client("servicecatalog", self.dev_key)
        self.engine_key = engine_key = server.create_key(a, f"arn:aws:iam::{a}:role/engine")
        self.engine = server.client("servicecatalog", engine_key)
        self.sqs = server.client("sqs", engine_key)
        from test_objects import s3_client
        self.s3 = s3_client(server, engine_key)
        self.archive = archive = tar_gz(tmp_path / f"{uuid.uuid4().hex}.tar.gz", {"main.tf": MAIN_TF})
        out = self.admin.create_product(Name="bucket", Owner="platform", ProductType=product_type,
                                        ProvisioningArtifactParameters={"Name": "v1", "Info": {"LoadTemplateFromURL": f"file://{archive}"}})
        self.product = out["ProductViewDetail"]["ProductViewSummary"]["ProductId"]
        self.artifact = out["ProvisioningArtifactDetail"]["Id"]
        self.portfolio = self.admin.create_portfolio(DisplayName="Platform", ProviderName="p")["PortfolioDetail"]["Id"]
        self.admin.associate_product_with_portfolio(ProductId=self.product, PortfolioId=self.portfolio)
        self.admin.associate_principal_with_portfolio(PortfolioId=self.portfolio, PrincipalARN=self.dev_principal, PrincipalType="IAM")
        self.role = f"arn:aws:iam::{a}:role/LaunchRole"
        if constraint:
            self.admin.create_constraint(PortfolioId=self.portfolio, ProductId=self.product, Type="LAUNCH",
                                         Parameters=json.dumps({"RoleArn": self.role}))
        kind = {"TERRAFORM_OPEN_SOURCE": "TerraformOS", "EXTERNAL": "External", "TERRAFORM_CLOUD": "TerraformCloud"}[product_type]
        self.queue = lambda op: self.sqs.get_queue_url(QueueName=f"ServiceCatalog{kind}{op}OperationQueue")["QueueUrl"]

    def provision(self, name="my-bucket", **params):
        params = params or {"bucket_name": "b1"}
        return self.dev.provision_product(
            ProductId=self.product, ProvisioningArtifactId=self.artifact, ProvisionedProductName=name,
            ProvisioningParameters=[{"Key": k, "Value": v} for k, v in params.items()],
            Tags=[{"Key": "team", "Value": "dev"}])["RecordDetail"]

    def receive(self, op):
        messages = self.sqs.receive_message(QueueUrl=self.queue(op), WaitTimeSeconds=5, MaxNumberOfMessages=10).get("Messages", [])
        assert len(messages) == 1, messages
        return json.loads(messages[0]["Body"])

    def pp(self, pp_id):
        return self.dev.describe_provisioned_product(Id=pp_id)["ProvisionedProductDetail"]


@pytest.fixture
def world(server, tmp_path):
    return World(server, tmp_path)


def test_provision_update_terminate(world):
    record = world.provision(bucket_name="b1", size="5")
    assert record["Status"] == "IN_PROGRESS" and record["RecordType"] == "PROVISION_PRODUCT"
    assert record["ProvisionedProductType"] == "TERRAFORM_OPEN_SOURCE"
    assert record["LaunchRoleArn"] == world.role
    pp_id = record["ProvisionedProductId"]
    assert pp_id.startswith("pp-") and record["RecordId"].startswith("rec-")
    detail = world.pp(pp_id)
    assert detail["Status"] == "UNDER_CHANGE" and detail["LastRecordId"] == record["RecordId"]
    assert detail["Arn"] == f"arn:aws:servicecatalog:us-east-1:{world.account}:stack/my-bucket/{pp_id}"

    task = world.receive("Provision")
    assert task["operation"] == "PROVISION_PRODUCT"
    assert task["recordId"] == record["RecordId"] and task["provisionedProductId"] == pp_id
    assert task["provisionedProductName"] == "my-bucket"
    assert task["productId"] == world.product and task["provisioningArtifactId"] == world.artifact
    assert task["launchRoleArn"] == world.role
    assert task["artifact"] == {"path": f"s3://provisiond-artifacts/{world.product}/{world.artifact}.tar.gz", "type": "AWS_S3"}
    assert task["identity"] == {"principal": world.dev_principal, "awsAccountId": world.account, "organizationId": ""}
    assert task["parameters"] == [{"key": "bucket_name", "value": "b1"}, {"key": "password", "value": "hunter2"},
                                  {"key": "size", "value": "5"}, {"key": "tags", "value": '{"team":"platform"}'}]
    assert task["tags"] == [{"key": "team", "value": "dev"}]
    # The engine fetches the template copy with its S3 client, as from AWS.
    bucket, key = task["artifact"]["path"][len("s3://"):].split("/", 1)
    assert world.s3.get_object(Bucket=bucket, Key=key)["Body"].read() == world.archive.read_bytes()

    world.engine.notify_provision_product_engine_workflow_result(
        WorkflowToken=task["token"], RecordId=task["recordId"], Status="SUCCEEDED",
        Outputs=[{"OutputKey": "name", "OutputValue": "b1", "Description": "bucket"}],
        ResourceIdentifier={"UniqueTag": {"Key": "SERVICE_CATALOG_TERRAFORM_INTEGRATION-DO_NOT_DELETE", "Value": pp_id}},
        IdempotencyToken="n1")
    rec = world.dev.describe_record(Id=record["RecordId"])
    assert rec["RecordDetail"]["Status"] == "SUCCEEDED"
    assert rec["RecordOutputs"] == [{"OutputKey": "name", "OutputValue": "b1", "Description": "bucket"}]
    detail = world.pp(pp_id)
    assert detail["Status"] == "AVAILABLE" and detail["LastSuccessfulProvisioningRecordId"] == record["RecordId"]
    assert world.dev.get_provisioned_product_outputs(ProvisionedProductId=pp_id)["Outputs"] == rec["RecordOutputs"]
    assert world.dev.get_provisioned_product_outputs(ProvisionedProductName="my-bucket", OutputKeys=["nope"])["Outputs"] == []
    # The result settled the task: nothing comes back after the visibility timeout.
    attrs = world.sqs.get_queue_attributes(QueueUrl=world.queue("Provision"), AttributeNames=["All"])["Attributes"]
    assert attrs["ApproximateNumberOfMessages"] == "0" and attrs["ApproximateNumberOfMessagesNotVisible"] == "0"
    # Retries: same idempotency token, or a fresh one with the same status, change nothing.
    for token in ("n1", "n2"):
        world.engine.notify_provision_product_engine_workflow_result(
            WorkflowToken=task["token"], RecordId=task["recordId"], Status="SUCCEEDED", IdempotencyToken=token)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        world.engine.notify_provision_product_engine_workflow_result(
            WorkflowToken=task["token"], RecordId=task["recordId"], Status="FAILED", FailureReason="late", IdempotencyToken="n3")
    assert code(e) == ("InvalidParametersException", f"Record {record['RecordId']} is already SUCCEEDED.")
    assert world.pp(pp_id)["Status"] == "AVAILABLE"

    # Update, reusing one value and changing another; the engine fails.
    upd = world.dev.update_provisioned_product(
        ProvisionedProductId=pp_id, ProvisioningParameters=[{"Key": "bucket_name", "UsePreviousValue": True}, {"Key": "size", "Value": "9"}],
        UpdateToken="u1")["RecordDetail"]
    assert upd["RecordType"] == "UPDATE_PROVISIONED_PRODUCT" and upd["Status"] == "IN_PROGRESS"
    assert world.pp(pp_id)["Status"] == "UNDER_CHANGE"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        world.dev.update_provisioned_product(ProvisionedProductId=pp_id, UpdateToken="u2")
    assert code(e)[0] == "InvalidParametersException" and "UNDER_CHANGE" in code(e)[1]
    task = world.receive("Update")
    assert task["operation"] == "UPDATE_PROVISIONED_PRODUCT"
    assert {p["key"]: p["value"] for p in task["parameters"]} == {"bucket_name": "b1", "password": "hunter2", "size": "9", "tags": '{"team":"platform"}'}
    world.engine.notify_update_provisioned_product_engine_workflow_result(
        WorkflowToken=task["token"], RecordId=task["recordId"], Status="FAILED",
        FailureReason="Error: apply failed", IdempotencyToken="u-n1")
    rec = world.dev.describe_record(Id=upd["RecordId"])["RecordDetail"]
    assert rec["Status"] == "FAILED"
    assert rec["RecordErrors"] == [{"Code": "ENGINE_WORKFLOW_FAILURE", "Description": "Error: apply failed"}]
    detail = world.pp(pp_id)
    assert detail["Status"] == "TAINTED" and detail["StatusMessage"] == "Error: apply failed"
    assert detail["LastSuccessfulProvisioningRecordId"] == record["RecordId"]
    assert world.dev.get_provisioned_product_outputs(ProvisionedProductId=pp_id)["Outputs"][0]["OutputValue"] == "b1"

    # Terminate.
    term = world.dev.terminate_provisioned_product(ProvisionedProductName="my-bucket", TerminateToken="t1")["RecordDetail"]
    assert term["RecordType"] == "TERMINATE_PROVISIONED_PRODUCT"
    task = world.receive("Terminate")
    assert sorted(task) == ["identity", "launchRoleArn", "operation", "provisionedProductId", "provisionedProductName", "recordId", "token"]
    world.engine.notify_terminate_provisioned_product_engine_workflow_result(
        WorkflowToken=task["token"], RecordId=task["recordId"], Status="SUCCEEDED", IdempotencyToken="t-n1")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        world.dev.describe_provisioned_product(Id=pp_id)
    assert code(e)[0] == "ResourceNotFoundException"
    assert world.dev.describe_record(Id=term["RecordId"])["RecordDetail"]["Status"] == "SUCCEEDED"
    assert world.dev.describe_record(Id=record["RecordId"])["RecordDetail"]["Status"] == "SUCCEEDED"
    # The name is free again.
    again = world.provision()
    assert again["ProvisionedProductId"] != pp_id


def test_provision_failures_leave_error_or_tainted(world):
    r1 = world.provision("no-resources")
    t1 = world.receive("Provision")
    world.engine.notify_provision_product_engine_workflow_result(
        WorkflowToken=t1["token"], RecordId=r1["RecordId"], Status="FAILED", FailureReason="init failed", IdempotencyToken="a")
    assert world.pp(r1["ProvisionedProductId"])["Status"] == "ERROR"
    r2 = world.provision("some-resources")
    t2 = world.receive("Provision")
    world.engine.notify_provision_product_engine_workflow_result(
        WorkflowToken=t2["token"], RecordId=r2["RecordId"], Status="FAILED", FailureReason="apply failed", IdempotencyToken="a",
        ResourceIdentifier={"UniqueTag": {"Key": "k", "Value": r2["ProvisionedProductId"]}})
    assert world.pp(r2["ProvisionedProductId"])["Status"] == "TAINTED"
    # A stuck product can be let go with IgnoreErrors even when the engine then fails.
    r3 = world.provision("stuck")
    world.receive("Provision")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        world.dev.terminate_provisioned_product(ProvisionedProductId=r3["ProvisionedProductId"], TerminateToken="x")
    assert code(e)[0] == "InvalidParametersException"
    term = world.dev.terminate_provisioned_product(ProvisionedProductId=r3["ProvisionedProductId"], TerminateToken="y", IgnoreErrors=True)["RecordDetail"]
    t3 = world.receive("Terminate")
    world.engine.notify_terminate_provisioned_product_engine_workflow_result(
        WorkflowToken=t3["token"], RecordId=term["RecordId"], Status="FAILED", FailureReason="destroy failed", IdempotencyToken="z")
    assert world.dev.describe_record(Id=term["RecordId"])["RecordDetail"]["Status"] == "FAILED"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        world.dev.describe_provisioned_product(Id=r3["ProvisionedProductId"])
    assert code(e)[0] == "ResourceNotFoundException"


def test_tokens_cannot_be_forged_or_moved(server, world):
    r1, r2 = world.provision("one"), world.provision("two")
    msgs = world.sqs.receive_message(QueueUrl=world.queue("Provision"), MaxNumberOfMessages=10, WaitTimeSeconds=2)["Messages"]
    tasks = {json.loads(m["Body"])["recordId"]: json.loads(m["Body"]) for m in msgs}
    tok1 = tasks[r1["RecordId"]]["token"]
    notify = world.engine.notify_provision_product_engine_workflow_result

    def refused(call, expected_message=None):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            call()
        assert code(e)[0] == "InvalidParametersException", code(e)
        if expected_message:
            assert code(e)[1] == expected_message
        return code(e)[1]

    forged = "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB"
    refused(lambda: notify(WorkflowToken=forged, RecordId=r1["RecordId"], Status="SUCCEEDED", IdempotencyToken="f"),
            "The workflow token is not valid.")
    tampered = tok1[:-6] + ("A" if tok1[-6] != "A" else "B") + tok1[-5:]
    refused(lambda: notify(WorkflowToken=tampered, RecordId=r1["RecordId"], Status="SUCCEEDED", IdempotencyToken="f"),
            "The workflow token is not valid.")
    refused(lambda: notify(WorkflowToken=tok1, RecordId=r2["RecordId"], Status="SUCCEEDED", IdempotencyToken="f"))
    refused(lambda: world.engine.notify_update_provisioned_product_engine_workflow_result(
        WorkflowToken=tok1, RecordId=r1["RecordId"], Status="SUCCEEDED", IdempotencyToken="f"))
    stranger_account = "".join(random.choice("0123456789") for _ in range(12))
    stranger = server.client("servicecatalog", server.create_key(stranger_account, f"arn:aws:iam::{stranger_account}:role/engine"))
    refused(lambda: stranger.notify_provision_product_engine_workflow_result(
        WorkflowToken=tok1, RecordId=r1["RecordId"], Status="SUCCEEDED", IdempotencyToken="f"), "The workflow token is not valid.")
    elsewhere = server.client("servicecatalog", server.create_key(world.account, f"arn:aws:iam::{world.account}:role/e2"), region="eu-west-1")
    refused(lambda: elsewhere.notify_provision_product_engine_workflow_result(
        WorkflowToken=tok1, RecordId=r1["RecordId"], Status="SUCCEEDED", IdempotencyToken="f"), "The workflow token is not valid.")
    for r in (r1, r2):
        assert world.dev.describe_record(Id=r["RecordId"])["RecordDetail"]["Status"] == "IN_PROGRESS"


NOTIFY_VIOLATIONS = [
    ("WorkflowToken", None, "Value null at 'workflowToken'"),
    ("WorkflowToken", "", "Member must have length greater than or equal to 1"),
    ("WorkflowToken", "A" * 20001, "Member must have length less than or equal to 20000"),
    ("WorkflowToken", "not base64!", "Member must satisfy regular expression pattern: [0-9A-Za-z+\\/=]+"),
    ("RecordId", None, "Value null at 'recordId'"),
    ("RecordId", "", "Member must have length greater than or equal to 1"),
    ("RecordId", "r" * 101, "Member must have length less than or equal to 100"),
    ("RecordId", "rec x", "Member must satisfy regular expression pattern: ^[a-zA-Z0-9_\\-]*"),
    ("Status", None, "Value null at 'status'"),
    ("Status", "DONE", "Member must satisfy enum value set: [SUCCEEDED, FAILED]"),
    ("FailureReason", "", "Member must have length greater than or equal to 1"),
    ("FailureReason", "x" * 2049, "Member must have length less than or equal to 2048"),
    ("FailureReason", "bell \u0007", "Member must satisfy regular expression pattern"),
    ("IdempotencyToken", None, "Value null at 'idempotencyToken'"),
    ("IdempotencyToken", "", "Member must have length greater than or equal to 1"),
    ("IdempotencyToken", "t" * 129, "Member must have length less than or equal to 128"),
    ("IdempotencyToken", "-starts-with-dash", "Member must satisfy regular expression pattern: [a-zA-Z0-9][a-zA-Z0-9_-]*"),
]


@pytest.mark.parametrize("operation", ["NotifyProvisionProductEngineWorkflowResult",
                                       "NotifyUpdateProvisionedProductEngineWorkflowResult",
                                       "NotifyTerminateProvisionedProductEngineWorkflowResult"])
def test_every_notify_constraint_violation_is_a_validation_error(server, world, operation):
    record = world.provision("validated")
    task = world.receive("Provision")
    valid = {"WorkflowToken": task["token"], "RecordId": record["RecordId"], "Status": "SUCCEEDED", "IdempotencyToken": "ok"}
    engine_key = server.create_key(world.account, f"arn:aws:iam::{world.account}:role/raw-engine")
    for member, value, expected in NOTIFY_VIOLATIONS:
        body = dict(valid)
        if value is None:
            body.pop(member)
        else:
            body[member] = value
        status, headers, answer = server.raw("servicecatalog", operation, body, key=engine_key)
        assert status == 400, (member, value, answer)
        assert answer["__type"] == "ValidationException" and headers["x-amzn-errortype"] == "ValidationException"
        assert re.match(r"\d+ validation errors? detected: ", answer["message"]), answer["message"]
        assert expected in answer["message"], (member, answer["message"])
    assert world.dev.describe_record(Id=record["RecordId"])["RecordDetail"]["Status"] == "IN_PROGRESS"
    assert world.pp(record["ProvisionedProductId"])["Status"] == "UNDER_CHANGE"


def test_provisioning_input_is_checked(world):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        world.provision("x", bucket_name="b", nope="1")
    assert code(e)[0] == "InvalidParametersException" and "nope" in code(e)[1]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        world.provision("x", size="1")
    assert code(e)[0] == "InvalidParametersException" and "bucket_name" in code(e)[1]
    world.provision("taken")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        world.provision("taken")
    assert code(e)[0] == "DuplicateResourceException"
    # Idempotent on ProvisionToken.
    kwargs = dict(ProductId=world.product, ProvisioningArtifactId=world.artifact, ProvisionedProductName="idem",
                  ProvisioningParameters=[{"Key": "bucket_name", "Value": "b"}], ProvisionToken="same")
    first = world.dev.provision_product(**kwargs)["RecordDetail"]
    assert world.dev.provision_product(**kwargs)["RecordDetail"] == first
    # Only through a launch path.
    stranger = world.admin  # the admin's principal is not associated with the portfolio
    with pytest.raises(botocore.exceptions.ClientError) as e:
        stranger.provision_product(ProductId=world.product, ProvisioningArtifactId=world.artifact, ProvisionedProductName="nopath",
                                   ProvisioningParameters=[{"Key": "bucket_name", "Value": "b"}])
    assert code(e)[0] == "ResourceNotFoundException"
    scanned = [p["Name"] for p in world.dev.scan_provisioned_products()["ProvisionedProducts"]]
    assert scanned == ["taken", "idem"]


def test_external_products_use_the_external_queues(server, tmp_path):
    w = World(server, tmp_path, product_type="EXTERNAL")
    record = w.provision("ext")
    task = w.receive("Provision")
    assert task["recordId"] == record["RecordId"] and task["launchRoleArn"] == w.role
    w.engine.notify_provision_product_engine_workflow_result(
        WorkflowToken=task["token"], RecordId=record["RecordId"], Status="SUCCEEDED", IdempotencyToken="e1")
    assert w.pp(record["ProvisionedProductId"])["Status"] == "AVAILABLE"
    bare = World(server, tmp_path, product_type="EXTERNAL", constraint=False)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        bare.provision("no-constraint")
    assert code(e)[0] == "InvalidParametersException" and "LAUNCH constraint" in code(e)[1]


def test_an_engine_long_polling_is_woken_by_the_provision(world):
    """ProvisionProduct is answered from the store's writer, its wake-up of long pollers deferred
    to its commit (store::after_commit): an engine already waiting gets the task in that poll."""
    got = {}

    def poll():
        got["r"] = world.sqs.receive_message(QueueUrl=world.queue("Provision"), WaitTimeSeconds=20)

    poller = threading.Thread(target=poll)
    poller.start()
    time.sleep(0.5)
    record = world.provision("woken")
    poller.join(timeout=30)
    assert not poller.is_alive()
    messages = got["r"].get("Messages", [])
    assert [json.loads(m["Body"])["recordId"] for m in messages] == [record["RecordId"]]


def test_a_dead_lettered_task_is_redriven_with_sqs_calls_and_settled(world):
    record = world.provision(name="redriven")
    url = world.queue("Provision")
    for _ in range(5):
        got = world.sqs.receive_message(QueueUrl=url, VisibilityTimeout=0).get("Messages", [])
        assert len(got) == 1
    assert world.sqs.receive_message(QueueUrl=url).get("Messages", []) == [], "dead-lettered on this receive"
    dlq_url = url + "-dlq"
    dlq_arn = world.sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    source_arn = world.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    assert world.sqs.list_dead_letter_source_queues(QueueUrl=dlq_url)["queueUrls"] == [url]
    assert world.sqs.list_dead_letter_source_queues(QueueUrl=url)["queueUrls"] == []

    handle = world.sqs.start_message_move_task(SourceArn=dlq_arn)["TaskHandle"]
    tasks = world.sqs.list_message_move_tasks(SourceArn=dlq_arn)["Results"]
    assert [(t["Status"], t["ApproximateNumberOfMessagesMoved"], t["DestinationArn"]) for t in tasks] == \
        [("COMPLETED", 1, source_arn)]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        world.sqs.cancel_message_move_task(TaskHandle=handle)
    assert code(e)[0].endswith("ResourceNotFoundException")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        world.sqs.start_message_move_task(SourceArn=source_arn)
    assert code(e)[0].endswith("InvalidParameterValue"), "only a dead-letter queue is redriven"

    # The engine receives it again, as a fresh delivery, and its token still settles the record.
    got = world.sqs.receive_message(QueueUrl=url, MessageSystemAttributeNames=["ApproximateReceiveCount"])["Messages"]
    assert got[0]["Attributes"]["ApproximateReceiveCount"] == "1"
    task = json.loads(got[0]["Body"])
    assert task["recordId"] == record["RecordId"]
    world.engine.notify_provision_product_engine_workflow_result(
        WorkflowToken=task["token"], RecordId=task["recordId"], Status="SUCCEEDED", IdempotencyToken="redriven")
    assert world.dev.describe_record(Id=record["RecordId"])["RecordDetail"]["Status"] == "SUCCEEDED"
