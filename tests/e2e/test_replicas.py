"""Two replicas on one PostgreSQL database, with calls spread across them: keys, the engine
workflow, racing Notify calls, receives that never hand one task out twice, and long polls on
one replica woken by commits on the other."""

import json
import shutil
import threading
import uuid

import botocore.exceptions
import pytest

from conftest import Postgres, Server
from test_engine_workflow import World


@pytest.fixture(scope="module")
def replicas(tmp_path_factory):
    base = tmp_path_factory.mktemp("replicas")
    pg = Postgres(base / "pg")
    a = Server(base / "a", store_args=["--database-url", pg.url])
    # The second replica shares the first one's server key, and the first admin key it wrote.
    (base / "b").mkdir()
    for name in ("credentials", "config"):
        shutil.copy(base / "a" / name, base / "b" / name)
    b = Server(base / "b", store_args=["--database-url", pg.url, "--server-key-file", str(base / "a" / "server.key")])
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
