"""Stuck work and its remedies (issue 18), as an operator meets them: records an engine never
settled are listed by `admin records --stuck-for`, failed by `admin record-fail` (then seen
through boto3 as a failed provision, a late Notify answered as for any settled record), or given
back by `admin record-retry` (the old workflow token refused, the new one settles); a server with
`--record-timeout` fails one by itself; a Proton deployment no pipeline reports on is failed the
same way; every action is in `admin audit`."""

import os
import time

import botocore.exceptions
import pytest

from conftest import Server
from test_engine_workflow import World, code


def ids(lines):
    return [line["Id"] for line in lines]


def test_stuck_records_are_listed_failed_retried_and_audited(server, tmp_path):
    w = World(server, tmp_path)
    a = w.account
    failing = w.provision(name="to-fail")
    first = w.sqs.receive_message(QueueUrl=w.queue("Provision"), MaxNumberOfMessages=10)["Messages"]
    assert len(first) == 1
    retried = w.provision(name="to-retry")
    stuck = server.admin_command("records", "--stuck-for", "0s", "--account", a)
    assert ids(stuck) == [failing["RecordId"], retried["RecordId"]], "oldest first"
    assert stuck[0]["Type"] == "RECORD" and stuck[0]["Status"] == "IN_PROGRESS"
    assert stuck[0]["RecordType"] == "PROVISION_PRODUCT" and stuck[0]["Account"] == a
    assert stuck[0]["Task"] == {"State": "RECEIVED", "ReceiveCount": 1,
                                "Queue": "ServiceCatalogTerraformOSProvisionOperationQueue"}
    assert stuck[1]["Task"]["State"] == "WAITING"
    assert server.admin_command("records", "--stuck-for", "1h", "--account", a) == []
    other = "".join(reversed(a))
    assert server.admin_command("records", "--stuck-for", "0s", "--account", other) == []

    # record-fail: the record FAILED with the reason, a first provision's product ERROR, the
    # task gone.
    out = server.admin_command("record-fail", failing["RecordId"], "--reason", "the engine host was lost")
    assert out == [{"Id": failing["RecordId"], "Type": "RECORD", "Status": "FAILED",
                    "ProvisionedProductId": failing["ProvisionedProductId"]}]
    detail = w.dev.describe_record(Id=failing["RecordId"])["RecordDetail"]
    assert detail["Status"] == "FAILED"
    assert {"Code": "ENGINE_WORKFLOW_FAILURE", "Description": "the engine host was lost"} in detail["RecordErrors"]
    assert w.pp(failing["ProvisionedProductId"])["Status"] == "ERROR"
    token = __import__("json").loads(first[0]["Body"])["token"]
    # A late Notify: FAILED again is a repeat, SUCCEEDED is refused (SPEC §5.3).
    w.engine.notify_provision_product_engine_workflow_result(
        WorkflowToken=token, RecordId=failing["RecordId"], Status="FAILED", FailureReason="late",
        IdempotencyToken="late-1")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        w.engine.notify_provision_product_engine_workflow_result(
            WorkflowToken=token, RecordId=failing["RecordId"], Status="SUCCEEDED", IdempotencyToken="late-2")
    assert code(e) == ("InvalidParametersException", f"Record {failing['RecordId']} is already FAILED.")
    assert ids(server.admin_command("records", "--stuck-for", "0s", "--account", a)) == [retried["RecordId"]]

    # record-retry: the waiting task is replaced; only the new token settles the record.
    old = w.receive("Provision")
    assert old["recordId"] == retried["RecordId"]
    out = server.admin_command("record-retry", retried["RecordId"])
    assert out[0]["Task"]["State"] == "WAITING"
    new = w.receive("Provision")
    assert new["recordId"] == retried["RecordId"] and new["token"] != old["token"]
    assert {k: v for k, v in new.items() if k != "token"} == {k: v for k, v in old.items() if k != "token"}
    with pytest.raises(botocore.exceptions.ClientError) as e:
        w.engine.notify_provision_product_engine_workflow_result(
            WorkflowToken=old["token"], RecordId=retried["RecordId"], Status="SUCCEEDED", IdempotencyToken="old")
    assert code(e) == ("InvalidParametersException", "The workflow token is not valid.")
    w.engine.notify_provision_product_engine_workflow_result(
        WorkflowToken=new["token"], RecordId=retried["RecordId"], Status="SUCCEEDED", IdempotencyToken="new")
    assert w.dev.describe_record(Id=retried["RecordId"])["RecordDetail"]["Status"] == "SUCCEEDED"
    assert w.pp(retried["ProvisionedProductId"])["Status"] == "AVAILABLE"

    # Settled work is not repaired.
    refused = server.admin_command("record-fail", retried["RecordId"], "--reason", "x", check=False)
    assert refused.returncode != 0 and "is in progress" in refused.stderr
    refused = server.admin_command("record-retry", failing["RecordId"], check=False)
    assert refused.returncode != 0

    audit = server.admin_command("audit", "--account", a, "--since", "1h")
    admin = [e for e in audit if e["Service"] == "admin"]
    assert [(e["Operation"], e["Resources"]) for e in admin] == [
        ("record-fail", [f"record/{failing['RecordId']}", f"provisioned-product/{failing['ProvisionedProductId']}"]),
        ("record-retry", [f"record/{retried['RecordId']}", f"provisioned-product/{retried['ProvisionedProductId']}"])]
    for e in admin:
        assert e["Principal"] == "operator" and e["OsUser"] and e["Outcome"] == "OK"
        assert e["Account"] == a and "AccessKeyId" not in e and e["Time"].endswith("Z")
    assert [e["Operation"] for e in server.admin_command("audit", "--account", a, "--operation", "record-fail")] \
        == ["record-fail"]

    # The API's write calls are there too, with the caller's key; reads are not.
    calls = [e for e in audit if e["Service"] != "admin"]
    operations = [e["Operation"] for e in calls]
    assert "DescribeRecord" not in operations and "ReceiveMessage" not in operations
    provisions = [e for e in calls if e["Operation"] == "ProvisionProduct"]
    assert len(provisions) == 2
    for e, r in zip(provisions, [failing, retried]):
        assert (e["Service"], e["Principal"], e["AccessKeyId"], e["Outcome"]) == \
            ("servicecatalog", w.dev_principal, w.dev_key.access_key_id, "OK")
        assert f"record/{r['RecordId']}" in e["Resources"]
        assert f"provisioned-product/{r['ProvisionedProductId']}" in e["Resources"]
        assert any(x.startswith("message/") for x in e["Resources"]), "the engine task it enqueued"
        assert "OsUser" not in e
    notifies = [(e["Outcome"], e["AccessKeyId"]) for e in calls
                if e["Operation"] == "NotifyProvisionProductEngineWorkflowResult"]
    engine = w.engine_key.access_key_id
    # The late FAILED (a repeat), the late SUCCEEDED (refused), the old token (refused), the new one.
    assert notifies == [("OK", engine), ("InvalidParametersException", engine),
                        ("InvalidParametersException", engine), ("OK", engine)]
    settled = [e for e in calls if e["Operation"] == "NotifyProvisionProductEngineWorkflowResult"][-1]
    assert f"record/{retried['RecordId']}" in settled["Resources"]
    assert [e["Operation"] for e in server.admin_command("audit", "--account", a, "--operation", "ProvisionProduct")] \
        == ["ProvisionProduct", "ProvisionProduct"]


def test_a_record_timeout_fails_stuck_work_by_itself(tmp_path):
    s = Server(tmp_path / "data", args=["--record-timeout", "2s"])
    try:
        w = World(s, tmp_path)
        record = w.provision(name="forgotten")
        deadline = time.time() + 20
        while time.time() < deadline:
            detail = w.dev.describe_record(Id=record["RecordId"])["RecordDetail"]
            if detail["Status"] != "IN_PROGRESS":
                break
            time.sleep(0.25)
        assert detail["Status"] == "FAILED"
        assert "timed this out" in detail["RecordErrors"][-1]["Description"]
        assert w.sqs.receive_message(QueueUrl=w.queue("Provision")).get("Messages", []) == [], "its task is gone"
        entries = s.admin_command("audit", "--operation", "record-timeout")
        assert [(e["Principal"], e["Resources"][0], e["Account"]) for e in entries] == \
            [("provisiond", f"record/{record['RecordId']}", w.account)]
        assert s.admin_command("records", "--stuck-for", "0s") == []
    finally:
        s.stop()


def test_a_stuck_proton_deployment_is_listed_and_failed(tmp_path):
    from test_proton import Platform
    p = Platform(tmp_path)
    try:
        env = p.create_env("stuck-env")
        deployment_id = env["lastAttemptedDeploymentId"] if "lastAttemptedDeploymentId" in env else \
            p.env("stuck-env")["lastAttemptedDeploymentId"]
        stuck = p.server.admin_command("records", "--stuck-for", "0s", "--account", p.account)
        assert ids(stuck) == [deployment_id]
        assert stuck[0]["Type"] == "DEPLOYMENT" and stuck[0]["Status"] == "IN_PROGRESS"
        assert stuck[0]["TargetArn"] == env["arn"] and stuck[0]["Delivery"] in ("DELIVERED", "PENDING_DELIVERY")
        refused = p.server.admin_command("record-retry", deployment_id, check=False)
        assert refused.returncode != 0 and "self-managed pipeline" in refused.stderr
        out = p.server.admin_command("record-fail", deployment_id, "--reason", "pipeline runner retired")
        assert out[0]["Status"] == "FAILED"
        got = p.proton.get_deployment(id=deployment_id)["deployment"]
        assert got["deploymentStatus"] == "FAILED" and got["deploymentStatusMessage"] == "pipeline runner retired"
        e = p.env("stuck-env")
        assert e["deploymentStatus"] == "FAILED" and e["deploymentStatusMessage"] == "pipeline runner retired"
        # The pipeline reporting late: its failure is a repeat, a success conflicts.
        p.pipeline.notify_resource_deployment_status_change(resourceArn=env["arn"], status="FAILED",
                                                             deploymentId=deployment_id)
        with pytest.raises(botocore.exceptions.ClientError) as err:
            p.pipeline.notify_resource_deployment_status_change(resourceArn=env["arn"], status="SUCCEEDED",
                                                                 deploymentId=deployment_id)
        assert code(err)[0] == "ConflictException"
        assert p.server.admin_command("records", "--stuck-for", "0s", "--account", p.account) == []
        entries = p.server.admin_command("audit", "--account", p.account, "--operation", "record-fail")
        assert [e["Resources"] for e in entries] == [[f"proton-deployment/{deployment_id}", env["arn"]]]
    finally:
        p.stop()


def test_engine_calls_refused_before_they_run_are_answered_and_audited(server, tmp_path):
    # A Notify's input is decoded and validated before its work goes to the store's writer; a
    # body refused there is still answered with the AWS error and leaves its audit entry.
    w = World(server, tmp_path)
    operation = "NotifyProvisionProductEngineWorkflowResult"
    wrong_type = {"WorkflowToken": 7, "RecordId": "rec-1", "Status": "SUCCEEDED", "IdempotencyToken": "t-1"}
    invalid = {"WorkflowToken": "dG9rZW4=", "RecordId": "rec-1", "Status": "SUCCEEDED"}
    not_json = b'{"WorkflowToken": '
    answers = [server.raw("servicecatalog", operation, body, key=w.engine_key)
               for body in (wrong_type, invalid, not_json)]
    assert [(status, answer["__type"]) for status, _, answer in answers] == [
        (400, "SerializationException"), (400, "ValidationException"), (400, "SerializationException")]
    audit = server.admin_command("audit", "--account", w.account, "--operation", operation)
    assert [(e["Outcome"], e["AccessKeyId"], e["Resources"]) for e in audit] == \
        [(t, w.engine_key.access_key_id, []) for t in
         ("SerializationException", "ValidationException", "SerializationException")]
    # A served read's input is refused the same way, before it runs, and leaves no entry.
    status, _, answer = server.raw("servicecatalog", "DescribeRecord", {"Id": 7}, key=w.engine_key)
    assert (status, answer["__type"]) == (400, "SerializationException")
