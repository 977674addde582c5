"""Two replicas on one PostgreSQL database, with calls spread across them: keys, the engine
workflow, racing Notify calls, receives that never hand one task out twice, long polls on
one replica woken by commits on the other, plans, and Proton deployments committed once to a
repository both replicas map."""

import json
import random
import re
import shutil
import subprocess
import threading
import time
import uuid

import botocore.exceptions
import pytest

from conftest import Postgres, Server
from test_engine_workflow import World
from test_objects import s3_client
from test_proton import MAIN_TF, MANIFEST, SCHEMA, git, tar_gz

REPOSITORY = "acme/shared-envs"


@pytest.fixture(scope="module")
def replicas(tmp_path_factory):
    base = tmp_path_factory.mktemp("replicas")
    pg = Postgres(base / "pg")
    repo = base / "envs.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(repo)], check=True)
    mapped = ["--git-repository", f"{REPOSITORY}={repo}"]
    a = Server(base / "a", args=mapped, store_args=["--database-url", pg.url])
    # The second replica shares the first one's server key, and the first admin key it wrote.
    (base / "b").mkdir()
    for name in ("credentials", "config"):
        shutil.copy(base / "a" / name, base / "b" / name)
    # With one connection, a call that held a connection while it waited for another would
    # stall for the pool's checkout timeout and fail: every flow below proves none does.
    b = Server(base / "b", args=mapped,
               store_args=["--database-url", pg.url, "--server-key-file", str(base / "a" / "server.key"),
                           "--database-connections", "1"])
    a.repo = b.repo = repo
    yield a, b
    b.stop()
    a.stop()
    pg.run("kill")


class Spread:
    """One account's clients on both replicas."""

    def __init__(self, replicas, tmp_path):
        self.a, self.b = replicas
        # Keys made through replica A's admin command (against the database).
        self.world = World(self.a, tmp_path)
        w = self.world
        self.dev = [r.client("servicecatalog", w.dev_key) for r in replicas]
        self.engine = [r.client("servicecatalog", w.engine_key) for r in replicas]
        self.sqs = [r.client("sqs", w.engine_key) for r in replicas]

    def provision(self, on, name):
        w = self.world
        return self.dev[on].provision_product(
            ProductId=w.product, ProvisioningArtifactId=w.artifact, ProvisionedProductName=name,
            ProvisioningParameters=[{"Key": "bucket_name", "Value": name}])["RecordDetail"]

    def queue(self, on):
        return self.sqs[on].get_queue_url(QueueName="ServiceCatalogTerraformOSProvisionOperationQueue")["QueueUrl"]


def test_a_key_made_on_one_replica_works_on_both_at_once(replicas):
    a, b = replicas
    key = b.create_key("111122223333", "arn:aws:iam::111122223333:role/platform", admin=True)
    for r in (a, b):
        assert r.client("servicecatalog", key).list_portfolios()["PortfolioDetails"] == []


def test_a_key_deleted_against_the_database_is_refused_by_both_replicas_and_leaves_nothing(replicas):
    """Both replicas have the key cached when it is deleted: its calls are refused at once on
    either, a write changes nothing and leaves no audit entry. (On PostgreSQL the key is asked
    for with the call's first statement, not before it.)"""
    a, b = replicas
    account = "444455556666"
    doomed = a.create_key(account, f"arn:aws:iam::{account}:role/doomed", admin=True)
    keeper = b.create_key(account, f"arn:aws:iam::{account}:role/keeper", admin=True)
    for r in (a, b):
        assert r.client("servicecatalog", doomed).list_portfolios()["PortfolioDetails"] == []
    out = a.admin_command("delete-key", doomed.access_key_id)
    assert out == [{"AccessKeyId": doomed.access_key_id, "Deleted": True}]
    for n, r in enumerate((a, b)):
        calls = [lambda: r.client("servicecatalog", doomed).create_portfolio(
                     DisplayName=f"never-{n}", ProviderName="p", IdempotencyToken=f"never-{n}"),
                 lambda: r.client("servicecatalog", doomed).list_portfolios(),
                 lambda: r.client("proton", doomed).create_environment_template(name=f"never-{n}")]
        for call in calls:
            with pytest.raises(botocore.exceptions.ClientError) as e:
                call()
            assert e.value.response["Error"]["Code"] == "UnrecognizedClientException"
    for r in (a, b):
        assert r.client("servicecatalog", keeper).list_portfolios()["PortfolioDetails"] == []
        assert r.client("proton", keeper).list_environment_templates()["templates"] == []
    audit = a.admin_command("audit", "--account", account)
    assert [e for e in audit if e.get("AccessKeyId") == doomed.access_key_id] == []
    for r in (a, b):
        assert "writing the audit entry" not in r.log_text(), "a refused call is not an audit failure"


def test_the_engine_workflow_with_calls_spread_across_replicas(replicas, tmp_path):
    s = Spread(replicas, tmp_path)
    record = s.provision(0, "spread")
    messages = s.sqs[1].receive_message(QueueUrl=s.queue(1), WaitTimeSeconds=5).get("Messages", [])
    assert len(messages) == 1
    task = json.loads(messages[0]["Body"])
    assert task["recordId"] == record["RecordId"]
    s.engine[0].notify_provision_product_engine_workflow_result(
        WorkflowToken=task["token"], RecordId=task["recordId"], Status="SUCCEEDED",
        Outputs=[{"OutputKey": "name", "OutputValue": "spread"}], IdempotencyToken="once")
    for dev in s.dev:
        detail = dev.describe_record(Id=record["RecordId"])["RecordDetail"]
        assert detail["Status"] == "SUCCEEDED"
    assert s.dev[1].describe_provisioned_product(Id=record["ProvisionedProductId"])["ProvisionedProductDetail"]["Status"] == "AVAILABLE"


def test_racing_notify_calls_on_both_replicas_settle_the_record_once(replicas, tmp_path):
    s = Spread(replicas, tmp_path)
    record = s.provision(1, "raced")
    task = json.loads(s.sqs[0].receive_message(QueueUrl=s.queue(0), WaitTimeSeconds=5)["Messages"][0]["Body"])
    outcomes = []
    lock = threading.Lock()
    start = threading.Barrier(32)

    def notify(i):
        # Half report success, half failure, each with its own idempotency token.
        status = "SUCCEEDED" if i % 2 == 0 else "FAILED"
        start.wait()
        try:
            s.engine[i % 2].notify_provision_product_engine_workflow_result(
                WorkflowToken=task["token"], RecordId=task["recordId"], Status=status,
                FailureReason="raced", IdempotencyToken=f"t{i}")
            result = ("ok", status)
        except botocore.exceptions.ClientError as e:
            result = (e.response["Error"]["Code"], status)
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=notify, args=(i,)) for i in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    final = s.dev[0].describe_record(Id=record["RecordId"])["RecordDetail"]["Status"]
    assert final in ("SUCCEEDED", "FAILED")
    # Every call that reported the outcome the record has was accepted; every other one was
    # refused as AWS refuses a settled record; nothing else happened.
    assert sorted(set(outcomes)) == sorted({("ok", final), ("InvalidParametersException", "FAILED" if final == "SUCCEEDED" else "SUCCEEDED")})
    assert len(outcomes) == 32
    errors = s.dev[1].describe_record(Id=record["RecordId"])["RecordDetail"].get("RecordErrors", [])
    assert len(errors) == (1 if final == "FAILED" else 0), "the failure was recorded once"


def test_receives_on_both_replicas_never_hand_out_one_task_twice(replicas, tmp_path):
    s = Spread(replicas, tmp_path)
    records = {s.provision(i % 2, f"many-{i}")["RecordId"] for i in range(24)}
    got = []
    lock = threading.Lock()

    def receive(on):
        while True:
            messages = s.sqs[on].receive_message(QueueUrl=s.queue(on), MaxNumberOfMessages=3,
                                                 VisibilityTimeout=600).get("Messages", [])
            if not messages:
                return
            with lock:
                got.extend(json.loads(m["Body"])["recordId"] for m in messages)

    threads = [threading.Thread(target=receive, args=(i % 2,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == sorted(records), "each task once, and every one"


def test_a_long_poll_on_one_replica_is_woken_by_a_provision_on_the_other(replicas, tmp_path):
    s = Spread(replicas, tmp_path)
    got = {}

    def poll():
        got["r"] = s.sqs[1].receive_message(QueueUrl=s.queue(1), WaitTimeSeconds=20)

    poller = threading.Thread(target=poll)
    poller.start()
    threading.Event().wait(0.5)
    record = s.provision(0, f"woken-{uuid.uuid4().hex[:6]}")
    poller.join(timeout=30)
    assert not poller.is_alive()
    assert [json.loads(m["Body"])["recordId"] for m in got["r"].get("Messages", [])] == [record["RecordId"]]


def test_plans_with_calls_spread_across_replicas(replicas, tmp_path):
    s = Spread(replicas, tmp_path)
    w = s.world
    plan = s.dev[0].create_provisioned_product_plan(
        PlanName="p", PlanType="CLOUDFORMATION", ProductId=w.product, ProvisionedProductName="planned",
        ProvisioningArtifactId=w.artifact, ProvisioningParameters=[{"Key": "bucket_name", "Value": "p"}],
        IdempotencyToken="plan-once")
    # The same idempotency token on the other replica is the same plan.
    again = s.dev[1].create_provisioned_product_plan(
        PlanName="p", PlanType="CLOUDFORMATION", ProductId=w.product, ProvisionedProductName="planned",
        ProvisioningArtifactId=w.artifact, ProvisioningParameters=[{"Key": "bucket_name", "Value": "p"}],
        IdempotencyToken="plan-once")
    assert again["PlanId"] == plan["PlanId"]
    results = []
    lock = threading.Lock()

    def execute(i):
        try:
            rid = s.dev[i % 2].execute_provisioned_product_plan(PlanId=plan["PlanId"], IdempotencyToken=f"x{i}")["RecordDetail"]["RecordId"]
            result = ("ok", rid)
        except botocore.exceptions.ClientError as e:
            result = ("err", e.response["Error"]["Code"])
        with lock:
            results.append(result)

    threads = [threading.Thread(target=execute, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    oks = [r for kind, r in results if kind == "ok"]
    assert len(oks) == 1, results
    assert sorted(r for kind, r in results if kind == "err") == ["InvalidStateException"] * 7
    task = json.loads(s.sqs[1].receive_message(QueueUrl=s.queue(1), WaitTimeSeconds=5)["Messages"][0]["Body"])
    assert task["recordId"] == oks[0]
    s.engine[0].notify_provision_product_engine_workflow_result(
        WorkflowToken=task["token"], RecordId=task["recordId"], Status="SUCCEEDED", IdempotencyToken="done")
    assert s.dev[1].describe_record(Id=oks[0])["RecordDetail"]["Status"] == "SUCCEEDED"
    status = s.dev[1].describe_provisioned_product_plan(PlanId=plan["PlanId"])["ProvisionedProductPlanDetails"]["Status"]
    assert status == "EXECUTE_SUCCESS"


def test_proton_deployments_are_committed_once_by_replicas_mapping_one_repository(replicas):
    a, b = replicas
    account = "".join(random.choice("0123456789") for _ in range(12))
    admin_key = a.create_key(account, f"arn:aws:iam::{account}:role/platform", admin=True)
    proton = [r.client("proton", admin_key) for r in replicas]
    s3 = s3_client(a, admin_key)
    s3.create_bucket(Bucket="templates")
    s3.put_object(Bucket="templates", Key="vpc.tar.gz", Body=tar_gz({
        "infrastructure/manifest.yaml": MANIFEST, "infrastructure/main.tf": MAIN_TF, "schema/schema.yaml": SCHEMA}))
    proton[0].create_environment_template(name="vpc")
    proton[1].create_environment_template_version(templateName="vpc", source={"s3": {"bucket": "templates", "key": "vpc.tar.gz"}})
    proton[0].update_environment_template_version(templateName="vpc", majorVersion="1", minorVersion="0", status="PUBLISHED")
    proton[1].create_repository(provider="GITHUB", name=REPOSITORY,
                                connectionArn=f"arn:aws:codestar-connections:us-east-1:{account}:connection/c")
    deployments = []
    lock = threading.Lock()

    def create(i):
        env = proton[i % 2].create_environment(
            name=f"env-{account}-{i}", templateName="vpc", templateMajorVersion="1",
            spec="proton: EnvironmentSpec\nspec:\n  size: 2\n",
            provisioningRepository={"provider": "GITHUB", "name": REPOSITORY, "branch": "main"})["environment"]
        with lock:
            deployments.append(env["lastAttemptedDeploymentId"])

    threads = [threading.Thread(target=create, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Each answer went out once its commit was on the branch: every deployment is there, once.
    trailers = re.findall(r"Proton-Deployment-Id: (\S+)", git(a.repo, "log", "--format=%b", "main"))
    mine = [t for t in trailers if t in deployments]
    assert sorted(mine) == sorted(deployments), (trailers, deployments)


def test_stuck_records_are_repaired_against_postgresql_from_either_replica(replicas, tmp_path):
    """`admin records/record-fail/record-retry` against the database: what one replica's
    operator does, the other replica's callers see at once."""
    s = Spread(replicas, tmp_path)
    a, b = replicas
    account = s.world.account
    failing = s.provision(0, "pg-to-fail")
    retried = s.provision(1, "pg-to-retry")
    stuck = b.admin_command("records", "--stuck-for", "0s", "--account", account)
    assert [line["Id"] for line in stuck] == [failing["RecordId"], retried["RecordId"]]
    assert {line["Task"]["State"] for line in stuck} == {"WAITING"}

    out = a.admin_command("record-fail", failing["RecordId"], "--reason", "lost with its host")
    assert out[0]["Status"] == "FAILED"
    assert s.dev[1].describe_record(Id=failing["RecordId"])["RecordDetail"]["Status"] == "FAILED"

    tasks = []
    while True:
        got = s.sqs[0].receive_message(QueueUrl=s.queue(0), MaxNumberOfMessages=10).get("Messages", [])
        if not got:
            break
        tasks.extend(json.loads(m["Body"]) for m in got)
    assert [t["recordId"] for t in tasks] == [retried["RecordId"]], "the failed record's task is gone"
    old = tasks[0]
    b.admin_command("record-retry", retried["RecordId"])
    new = json.loads(s.sqs[1].receive_message(QueueUrl=s.queue(1), WaitTimeSeconds=5)["Messages"][0]["Body"])
    assert new["recordId"] == retried["RecordId"] and new["token"] != old["token"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s.engine[0].notify_provision_product_engine_workflow_result(
            WorkflowToken=old["token"], RecordId=retried["RecordId"], Status="SUCCEEDED", IdempotencyToken="old")
    assert e.value.response["Error"]["Code"] == "InvalidParametersException"
    s.engine[0].notify_provision_product_engine_workflow_result(
        WorkflowToken=new["token"], RecordId=retried["RecordId"], Status="SUCCEEDED", IdempotencyToken="new")
    assert s.dev[1].describe_record(Id=retried["RecordId"])["RecordDetail"]["Status"] == "SUCCEEDED"
    assert a.admin_command("records", "--stuck-for", "0s", "--account", account) == []
    audit = b.admin_command("audit", "--account", account)
    assert [e["Operation"] for e in audit if e["Service"] == "admin"] == ["record-fail", "record-retry"]


def test_a_record_timeout_on_two_replicas_fails_each_record_once(tmp_path):
    """Both replicas run `--record-timeout`; one acts on each stuck record, never two."""
    pg = Postgres(tmp_path / "pg")
    a = b = None
    try:
        a = Server(tmp_path / "a", args=["--record-timeout", "2s"], store_args=["--database-url", pg.url])
        (tmp_path / "b").mkdir()
        for name in ("credentials", "config"):
            shutil.copy(tmp_path / "a" / name, tmp_path / "b" / name)
        b = Server(tmp_path / "b", args=["--record-timeout", "2s"],
                   store_args=["--database-url", pg.url, "--server-key-file", str(tmp_path / "a" / "server.key")])
        s = Spread((a, b), tmp_path)
        records = [s.provision(i % 2, f"forgotten-{i}")["RecordId"] for i in range(6)]
        deadline = time.time() + 30
        while time.time() < deadline:
            statuses = {s.dev[1].describe_record(Id=r)["RecordDetail"]["Status"] for r in records}
            if statuses == {"FAILED"}:
                break
            time.sleep(0.25)
        assert statuses == {"FAILED"}
        for r in records:
            errors = s.dev[0].describe_record(Id=r)["RecordDetail"]["RecordErrors"]
            assert len(errors) == 1 and "timed this out" in errors[0]["Description"]
        timed_out = a.admin_command("audit", "--operation", "record-timeout")
        assert sorted(e["Resources"][0] for e in timed_out) == sorted(f"record/{r}" for r in records), \
            "each record timed out once, by one replica"
        assert s.sqs[0].receive_message(QueueUrl=s.queue(0)).get("Messages", []) == []
    finally:
        for server in (b, a):
            if server:
                server.stop()
        pg.run("kill")
