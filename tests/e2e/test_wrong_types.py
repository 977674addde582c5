"""Wrong JSON types on the five core calls against the real server (issue 13): for every member
of each input, at every depth the model has, a table of values of the wrong JSON type is built
from botocore's own service model and sent in an otherwise valid request with a live workflow
token, record or deployment. Each answers 400 SerializationException, never echoes the value,
and leaves the record, plan or deployment exactly as it was; the valid request then succeeds."""

import botocore.session
import pytest

from test_engine_workflow import World
from test_plans import plan
from test_proton import Platform

MARK = "s3cr3t-marker"
MODELS = botocore.session.get_session()


def wrong(shape):
    """Values of every JSON type but `shape`'s, carrying the marker where they can."""
    t = shape.type_name
    if t == "structure":
        return [[], [{}], [MARK], MARK, 12345, True]
    if t == "list":
        return [{}, {"a": MARK}, MARK, 12345, False]
    if t == "map":
        return [[], [["k", MARK]], MARK, 12345]
    if t in ("string", "blob"):
        return [12345, 1.5, True, [MARK], {"a": MARK}]
    if t in ("integer", "long"):
        return [MARK, "1", 1.5, True, [1], {"a": 1}]
    if t == "boolean":
        return ["true", MARK, 1, [True], {}]
    if t == "timestamp":
        return ["2026-01-01T00:00:00Z", MARK, True, [1]]
    raise AssertionError(t)


def right(shape, depth=0):
    t = shape.type_name
    if t == "structure":
        return {} if depth > 3 else {n: right(m, depth + 1) for n, m in shape.members.items()}
    if t == "list":
        return [right(shape.member, depth + 1)]
    if t == "map":
        return {"k": right(shape.value, depth + 1)}
    return {"string": "x", "blob": "eA==", "integer": 1, "long": 1, "boolean": True, "timestamp": 1.5}[t]


def nested(shape, depth=0):
    """Containers of `shape` holding one wrong-typed value somewhere inside: (where, value)."""
    t = shape.type_name
    out = []
    if t == "structure" and depth <= 3:
        for name, member in shape.members.items():
            for bad in wrong(member):
                out.append((name, {**right(shape, depth), name: bad}))
            for where, bad in nested(member, depth + 1):
                out.append((f"{name}/{where}", {**right(shape, depth), name: bad}))
    elif t == "list":
        out += [("[0]", [bad]) for bad in wrong(shape.member)]
        out += [(f"[0]/{w}", [bad]) for w, bad in nested(shape.member, depth + 1)]
    elif t == "map":
        out += [("{k}", {"k": bad}) for bad in wrong(shape.value)]
    return out


def table(service, operation, base):
    """Every body: `base` with one member replaced by a wrong-typed value, at any depth."""
    shape = MODELS.get_service_model(service).operation_model(operation).input_shape
    cases = []
    for name, member in shape.members.items():
        cases += [(name, {**base, name: bad}) for bad in wrong(member)]
        cases += [(f"{name}/{w}", {**base, name: bad}) for w, bad in nested(member)]
    assert cases
    return cases


def refuse_all(server, service, operation, base, key, unchanged):
    before = unchanged()
    cases = table(service, operation, base)
    for where, body in cases:
        status, _, answer = server.raw(service, operation, body, key=key)
        assert status == 400 and answer["__type"] == "SerializationException", (where, body, answer)
        message = answer.get("message") or answer.get("Message")
        assert MARK not in message and "12345" not in message, (where, message)
        assert where.split("/")[0] in message, (where, message)
    assert unchanged() == before, f"{operation}: a refused body changed what is stored"
    return len(cases)


@pytest.fixture
def world(server, tmp_path):
    return World(server, tmp_path)


def test_engine_callbacks_refuse_every_wrong_type_and_change_nothing(server, world):
    key = world.engine_key
    record = world.provision()
    task = world.receive("Provision")
    describe = lambda: world.dev.describe_record(Id=record["RecordId"])["RecordDetail"]
    good = {"WorkflowToken": task["token"], "RecordId": task["recordId"], "Status": "SUCCEEDED",
            "IdempotencyToken": "n1", "Outputs": [{"OutputKey": "k", "OutputValue": "v"}],
            "ResourceIdentifier": {"UniqueTag": {"Key": "k", "Value": "v"}}}
    count = refuse_all(server, "servicecatalog", "NotifyProvisionProductEngineWorkflowResult", good, key, describe)
    status, _, _ = server.raw("servicecatalog", "NotifyProvisionProductEngineWorkflowResult", good, key=key)
    assert status == 200 and describe()["Status"] == "SUCCEEDED"

    pp_id = record["ProvisionedProductId"]
    update = world.dev.update_provisioned_product(ProvisionedProductId=pp_id, ProvisioningArtifactId=world.artifact,
                                                  ProvisioningParameters=[{"Key": "bucket_name", "Value": "b2"}])["RecordDetail"]
    task = world.receive("Update")
    describe = lambda: (world.dev.describe_record(Id=update["RecordId"])["RecordDetail"], world.pp(pp_id))
    good = {"WorkflowToken": task["token"], "RecordId": task["recordId"], "Status": "SUCCEEDED", "IdempotencyToken": "n2",
            "Outputs": [{"OutputKey": "k", "OutputValue": "v"}]}
    count += refuse_all(server, "servicecatalog", "NotifyUpdateProvisionedProductEngineWorkflowResult", good, key, describe)
    assert server.raw("servicecatalog", "NotifyUpdateProvisionedProductEngineWorkflowResult", good, key=key)[0] == 200

    terminate = world.dev.terminate_provisioned_product(ProvisionedProductId=pp_id)["RecordDetail"]
    task = world.receive("Terminate")
    describe = lambda: (world.dev.describe_record(Id=terminate["RecordId"])["RecordDetail"], world.pp(pp_id))
    good = {"WorkflowToken": task["token"], "RecordId": task["recordId"], "Status": "SUCCEEDED", "IdempotencyToken": "n3"}
    count += refuse_all(server, "servicecatalog", "NotifyTerminateProvisionedProductEngineWorkflowResult", good, key, describe)
    assert server.raw("servicecatalog", "NotifyTerminateProvisionedProductEngineWorkflowResult", good, key=key)[0] == 200
    assert count > 100


def test_execute_provisioned_product_plan_refuses_every_wrong_type_and_changes_nothing(server, world):
    created = plan(world, "typed")
    plan_id = created["PlanId"]
    state = lambda: (world.dev.describe_provisioned_product_plan(PlanId=plan_id)["ProvisionedProductPlanDetails"],
                     world.pp(created["ProvisionProductId"]),
                     world.sqs.get_queue_attributes(QueueUrl=world.queue("Provision"),
                                                    AttributeNames=["ApproximateNumberOfMessages"])["Attributes"])
    good = {"PlanId": plan_id, "IdempotencyToken": "x1", "AcceptLanguage": "en"}
    refuse_all(server, "servicecatalog", "ExecuteProvisionedProductPlan", good, world.dev_key, state)
    status, _, answer = server.raw("servicecatalog", "ExecuteProvisionedProductPlan", good, key=world.dev_key)
    assert status == 200 and answer["RecordDetail"]["Status"] == "IN_PROGRESS"


def test_proton_notify_refuses_every_wrong_type_and_changes_nothing(tmp_path):
    p = Platform(tmp_path)
    try:
        env = p.create_env("typed")
        deployment = env["lastAttemptedDeploymentId"]
        state = lambda: (p.env("typed"), p.proton.get_deployment(id=deployment)["deployment"])
        good = {"resourceArn": env["arn"], "deploymentId": deployment, "status": "SUCCEEDED",
                "statusMessage": "done", "outputs": [{"key": "k", "valueString": "v"}]}
        refuse_all(p.server, "proton", "NotifyResourceDeploymentStatusChange", good, p.pipeline_key, state)
        assert p.server.raw("proton", "NotifyResourceDeploymentStatusChange", good, key=p.pipeline_key)[0] == 200
        assert p.env("typed")["deploymentStatus"] == "SUCCEEDED"
    finally:
        p.stop()
