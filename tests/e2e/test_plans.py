"""Plans for engine products through boto3 (SPEC §6): a plan for a new name creates the
provisioned product PLAN_IN_PROGRESS and its execution provisions it; a plan for an existing
product executes as an update with the plan's parameters; the engine's Notify settles the
plan; every error answers with its __type and changes nothing; racing executions make one record."""

import threading

import botocore.exceptions
import pytest

from test_engine_workflow import World, code


@pytest.fixture
def world(server, tmp_path):
    return World(server, tmp_path)


def plan(world, name, plan_name="p1", token=None, **params):
    params = params or {"bucket_name": "b1"}
    kwargs = dict(PlanName=plan_name, PlanType="CLOUDFORMATION", ProductId=world.product, ProvisionedProductName=name,
                  ProvisioningArtifactId=world.artifact,
                  ProvisioningParameters=[{"Key": k, "Value": v} for k, v in params.items()])
    if token:
        kwargs["IdempotencyToken"] = token
    return world.dev.create_provisioned_product_plan(**kwargs)


def test_plan_for_a_new_product_then_for_an_update(world):
    created = plan(world, "planned", bucket_name="b1", size="7")
    plan_id, pp_id = created["PlanId"], created["ProvisionProductId"]
    assert len(plan_id) == 13 and plan_id.isalnum()
    assert world.pp(pp_id)["Status"] == "PLAN_IN_PROGRESS"
    details = world.dev.describe_provisioned_product_plan(PlanId=plan_id)
    assert details["ProvisionedProductPlanDetails"]["Status"] == "CREATE_SUCCESS"
    assert details["ResourceChanges"] == []
    assert [p["PlanId"] for p in world.dev.list_provisioned_product_plans(ProvisionProductId=pp_id)["ProvisionedProductPlans"]] == [plan_id]
    assert world.sqs.receive_message(QueueUrl=world.queue("Provision")).get("Messages", []) == [], "planning enqueues nothing"

    executed = world.dev.execute_provisioned_product_plan(PlanId=plan_id, IdempotencyToken="x1")["RecordDetail"]
    assert executed["RecordType"] == "PROVISION_PRODUCT" and executed["Status"] == "IN_PROGRESS"
    assert executed["ProvisionedProductType"] == "TERRAFORM_OPEN_SOURCE"
    again = world.dev.execute_provisioned_product_plan(PlanId=plan_id, IdempotencyToken="x1")["RecordDetail"]
    assert again == executed
    with pytest.raises(botocore.exceptions.ClientError) as e:
        world.dev.execute_provisioned_product_plan(PlanId=plan_id, IdempotencyToken="x2")
    assert code(e)[0] == "InvalidStateException"
    assert world.pp(pp_id)["Status"] == "UNDER_CHANGE"
    task = world.receive("Provision")
    assert task["recordId"] == executed["RecordId"]
    assert {p["key"]: p["value"] for p in task["parameters"]}["size"] == "7"
    world.engine.notify_provision_product_engine_workflow_result(
        WorkflowToken=task["token"], RecordId=task["recordId"], Status="SUCCEEDED", IdempotencyToken="n")
    assert world.dev.describe_provisioned_product_plan(PlanId=plan_id)["ProvisionedProductPlanDetails"]["Status"] == "EXECUTE_SUCCESS"
    assert world.pp(pp_id)["Status"] == "AVAILABLE"

    # A plan for the existing product executes as an update carrying the plan's parameters.
    upd = plan(world, "planned", plan_name="p2", bucket_name="b2")
    assert upd["ProvisionProductId"] == pp_id
    with pytest.raises(botocore.exceptions.ClientError) as e:
        plan(world, "planned", plan_name="p3")
    assert code(e)[0] == "InvalidStateException", "one open plan per provisioned product"
    rec = world.dev.execute_provisioned_product_plan(PlanId=upd["PlanId"])["RecordDetail"]
    assert rec["RecordType"] == "UPDATE_PROVISIONED_PRODUCT"
    task = world.receive("Update")
    assert {p["key"]: p["value"] for p in task["parameters"]}["bucket_name"] == "b2"
    world.engine.notify_update_provisioned_product_engine_workflow_result(
        WorkflowToken=task["token"], RecordId=task["recordId"], Status="FAILED", FailureReason="plan went wrong", IdempotencyToken="n")
    details = world.dev.describe_provisioned_product_plan(PlanId=upd["PlanId"])["ProvisionedProductPlanDetails"]
    assert details["Status"] == "EXECUTE_FAILED" and details["StatusMessage"] == "plan went wrong"
    assert world.pp(pp_id)["Status"] == "TAINTED"


def test_errors_change_nothing(world):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        world.dev.execute_provisioned_product_plan(PlanId="doesnotexist1")
    assert code(e)[0] == "ResourceNotFoundException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        world.dev.execute_provisioned_product_plan(PlanId="bad id!")
    assert code(e)[0] == "ValidationException"
    # A stale plan: the product changed after the plan was made.
    r = world.provision("stale")
    task = world.receive("Provision")
    world.engine.notify_provision_product_engine_workflow_result(
        WorkflowToken=task["token"], RecordId=r["RecordId"], Status="SUCCEEDED", IdempotencyToken="n")
    stale = plan(world, "stale", plan_name="old")
    world.dev.update_provisioned_product(ProvisionedProductId=r["ProvisionedProductId"],
                                         ProvisioningParameters=[{"Key": "bucket_name", "UsePreviousValue": True}])
    task = world.receive("Update")
    world.engine.notify_update_provisioned_product_engine_workflow_result(
        WorkflowToken=task["token"], RecordId=task["recordId"], Status="SUCCEEDED", IdempotencyToken="n")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        world.dev.execute_provisioned_product_plan(PlanId=stale["PlanId"])
    assert code(e)[0] == "InvalidStateException" and "changed" in code(e)[1]
    assert world.dev.describe_provisioned_product_plan(PlanId=stale["PlanId"])["ProvisionedProductPlanDetails"]["Status"] == "CREATE_SUCCESS"
    # Deleting the plan of a never-provisioned product removes that product and frees its name.
    fresh = plan(world, "never")
    world.dev.delete_provisioned_product_plan(PlanId=fresh["PlanId"])
    with pytest.raises(botocore.exceptions.ClientError) as e:
        world.dev.describe_provisioned_product(Id=fresh["ProvisionProductId"])
    assert code(e)[0] == "ResourceNotFoundException"
    assert plan(world, "never")["ProvisionProductId"] != fresh["ProvisionProductId"]


def test_another_accounts_plan_is_not_found(server, world, tmp_path):
    mine = plan(world, "mine")
    other = World(server, tmp_path)
    for call in (lambda: other.dev.execute_provisioned_product_plan(PlanId=mine["PlanId"], IdempotencyToken="steal"),
                 lambda: other.dev.describe_provisioned_product_plan(PlanId=mine["PlanId"]),
                 lambda: other.dev.delete_provisioned_product_plan(PlanId=mine["PlanId"])):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            call()
        assert code(e)[0] == "ResourceNotFoundException"
    assert other.dev.list_provisioned_product_plans(AccessLevelFilter={"Key": "Account", "Value": "self"})["ProvisionedProductPlans"] == []
    assert world.dev.describe_provisioned_product_plan(PlanId=mine["PlanId"])["ProvisionedProductPlanDetails"]["Status"] == "CREATE_SUCCESS"
    assert world.pp(mine["ProvisionProductId"])["Status"] == "PLAN_IN_PROGRESS"
    assert world.sqs.receive_message(QueueUrl=world.queue("Provision")).get("Messages", []) == []


def test_racing_executions_make_one_record(world):
    p = plan(world, "raced")
    results = []

    def run(token):
        try:
            results.append(("ok", world.dev.execute_provisioned_product_plan(PlanId=p["PlanId"], IdempotencyToken=token)["RecordDetail"]["RecordId"]))
        except botocore.exceptions.ClientError as e:
            results.append(("err", e.response["Error"]["Code"]))

    threads = [threading.Thread(target=run, args=(f"t{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    oks = [r for kind, r in results if kind == "ok"]
    assert len(oks) == 1, results
    assert sorted(r for kind, r in results if kind == "err") == ["InvalidStateException"] * 3
    records = world.dev.list_record_history(SearchFilter={"Key": "provisionedproduct", "Value": p["ProvisionProductId"]})["RecordDetails"]
    assert [r["RecordId"] for r in records] == oks
