"""Faults with two replicas on one PostgreSQL database: a replica killed with SIGKILL under
load loses no acknowledged write and no engine task while the other keeps serving; the
database stopped and started under load makes calls answer a retryable 503 (never a hang,
never a wrong success), and both replicas recover by themselves."""

import shutil
import signal
import threading
import time

import boto3
import botocore.config
import botocore.exceptions
import pytest

from conftest import Postgres, Server
from test_engine_workflow import World


@pytest.fixture
def cluster(tmp_path):
    pg = Postgres(tmp_path / "pg")
    a = Server(tmp_path / "a", store_args=["--database-url", pg.url])
    (tmp_path / "b").mkdir()
    for name in ("credentials", "config"):
        shutil.copy(tmp_path / "a" / name, tmp_path / "b" / name)
    b = Server(tmp_path / "b", store_args=["--database-url", pg.url, "--server-key-file", str(tmp_path / "a" / "server.key")])
    yield pg, a, b
    b.stop()
    a.stop()
    pg.run("kill")


def client(server, service, key, read_timeout=15):
    """A client that never retries and gives up on an answer after `read_timeout` seconds."""
    return boto3.client(
        service, endpoint_url=server.endpoint, region_name="us-east-1",
        aws_access_key_id=key.access_key_id, aws_secret_access_key=key.secret,
        config=botocore.config.Config(retries={"max_attempts": 1, "mode": "standard"},
                                      read_timeout=read_timeout, connect_timeout=5))


class Load:
    """Writers on both replicas (SendMessage and ProvisionProduct), each remembering what was
    acknowledged, when, and every error it got."""

    def __init__(self, world, servers, url):
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.acked = {"messages": set(), "records": set()}
        self.acked_at = []  # (time, replica index)
        self.errors = []  # (replica index, exception)
        self.threads = []
        for n in range(8):
            on = n % 2
            sqs = client(servers[on], "sqs", world.engine_key)
            sc = client(servers[on], "servicecatalog", world.dev_key)
            self.threads.append(threading.Thread(target=self.send, args=(sqs, url, on, n)))
            self.threads.append(threading.Thread(target=self.provision, args=(sc, world, on, n)))

    def start(self):
        for t in self.threads:
            t.start()

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=60)
        assert not any(t.is_alive() for t in self.threads), "a call hung"

    def _run(self, on, call, remember):
        i = 0
        while not self.stop.is_set():
            try:
                value = call(i)
            except Exception as e:  # noqa: BLE001: every failure is looked at by the test
                with self.lock:
                    self.errors.append((on, e))
                time.sleep(0.05)
            else:
                with self.lock:
                    remember(value)
                    self.acked_at.append((time.monotonic(), on))
            i += 1

    def send(self, sqs, url, on, n):
        def call(i):
            body = f"m-{n}-{i}"
            sqs.send_message(QueueUrl=url, MessageBody=body)
            return body
        self._run(on, call, self.acked["messages"].add)

    def provision(self, sc, world, on, n):
        def call(i):
            return sc.provision_product(
                ProductId=world.product, ProvisioningArtifactId=world.artifact,
                ProvisionedProductName=f"f-{n}-{i}",
                ProvisioningParameters=[{"Key": "bucket_name", "Value": "b"}])["RecordDetail"]["RecordId"]
        self._run(on, call, self.acked["records"].add)


def everything_received(sqs, url):
    bodies = []
    while True:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=900).get("Messages", [])
        if not got:
            return bodies
        bodies += [m["Body"] for m in got]


def check_nothing_lost(world, survivor, url, load):
    import json
    sqs = client(survivor, "sqs", world.engine_key)
    kept = set(everything_received(sqs, url))
    assert load.acked["messages"] <= kept, sorted(load.acked["messages"] - kept)[:5]
    provision_queue = sqs.get_queue_url(QueueName="ServiceCatalogTerraformOSProvisionOperationQueue")["QueueUrl"]
    tasks = {json.loads(b)["recordId"] for b in everything_received(sqs, provision_queue)}
    assert load.acked["records"] <= tasks, "every acknowledged provision kept its engine task"
    dev = client(survivor, "servicecatalog", world.dev_key)
    for record_id in sorted(load.acked["records"])[:50]:
        assert dev.describe_record(Id=record_id)["RecordDetail"]["Status"] == "IN_PROGRESS"


def test_a_replica_killed_under_load_loses_nothing_and_the_other_serves_on(cluster, tmp_path):
    _, a, b = cluster
    world = World(a, tmp_path)
    url = client(b, "sqs", world.engine_key).get_queue_url(QueueName="ServiceCatalogExternalProvisionOperationQueue")["QueueUrl"]
    load = Load(world, [a, b], url)
    load.start()
    time.sleep(1.5)
    a.proc.send_signal(signal.SIGKILL)
    a.proc.wait()
    killed = time.monotonic()
    time.sleep(1.5)
    load.finish()
    assert len(load.acked["messages"]) > 20 and len(load.acked["records"]) > 20
    assert any(t > killed and on == 1 for t, on in load.acked_at), "replica B kept acknowledging"
    for on, e in load.errors:
        assert on == 0, f"only calls to the killed replica failed: {e!r}"
    check_nothing_lost(world, b, url, load)


def test_the_database_stopped_and_started_under_load(cluster, tmp_path):
    pg, a, b = cluster
    world = World(a, tmp_path)
    url = client(a, "sqs", world.engine_key).get_queue_url(QueueName="ServiceCatalogExternalProvisionOperationQueue")["QueueUrl"]
    load = Load(world, [a, b], url)
    load.start()
    time.sleep(1)
    pg.run("stop")
    time.sleep(3)
    pg.run("start")
    back = time.monotonic()
    time.sleep(3)
    load.finish()
    assert load.errors, "the outage was noticed"
    for _, e in load.errors:
        # A retryable answer with a clear message; never a timeout (a hang) or a dropped call.
        assert isinstance(e, botocore.exceptions.ClientError), repr(e)
        status = e.response["ResponseMetadata"]["HTTPStatusCode"]
        assert (status, e.response["Error"]["Code"]) == (503, "ServiceUnavailable"), e.response
        assert "database is unavailable" in e.response["Error"]["Message"]
    for replica in (0, 1):
        assert any(t > back and on == replica for t, on in load.acked_at), f"replica {replica} recovered by itself"
    check_nothing_lost(world, b, url, load)
