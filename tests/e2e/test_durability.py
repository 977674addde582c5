"""Acknowledged writes survive kill -9. Clients write concurrently through the calls that the
store's writer thread commits in groups and answers after the commit (SendMessage,
ProvisionProduct); the server is killed with SIGKILL while they are still writing; a new
server on the same data directory must have every write that was acknowledged. A server that
answered before its commit reached the database file would lose the writes of its last group;
the kill lands at a random moment, so this is done three times (a store that answered 2 ms
before committing was caught in two runs of three; a correct one never loses a write)."""

import signal
import threading
import time

from conftest import Server
from test_engine_workflow import World


ROUNDS = 3


def write_until_killed(server, world, url, acknowledged, round_):
    """Writes from 16 threads until the server is killed with SIGKILL after a second."""
    lock = threading.Lock()
    stop = threading.Event()

    def send(client, n):
        i = 0
        while not stop.is_set():
            body = f"message-{round_}-{n}-{i}"
            try:
                client.send_message(QueueUrl=url, MessageBody=body)
            except Exception:
                return  # the server died during the call: nothing was acknowledged
            with lock:
                acknowledged["messages"].add(body)
            i += 1

    def provision(client, n):
        i = 0
        while not stop.is_set():
            try:
                record = client.provision_product(
                    ProductId=world.product, ProvisioningArtifactId=world.artifact,
                    ProvisionedProductName=f"durable-{round_}-{n}-{i}",
                    ProvisioningParameters=[{"Key": "bucket_name", "Value": "b"}])["RecordDetail"]
            except Exception:
                return
            with lock:
                acknowledged["records"].add(record["RecordId"])
            i += 1

    # boto3 clients are made before the threads start: making them is not thread-safe.
    workers = [threading.Thread(target=send, args=(server.client("sqs"), n)) for n in range(8)]
    workers += [threading.Thread(target=provision, args=(server.client("servicecatalog", world.dev_key), n))
                for n in range(8)]
    for w in workers:
        w.start()
    time.sleep(1)
    server.proc.send_signal(signal.SIGKILL)
    server.proc.wait()
    stop.set()
    for w in workers:
        w.join(timeout=30)
    server.stop()


def test_acknowledged_writes_survive_kill_9(tmp_path):
    data = tmp_path / "data"
    server = Server(data)
    world = World(server, tmp_path)
    url = server.client("sqs").get_queue_url(QueueName="ServiceCatalogExternalProvisionOperationQueue")["QueueUrl"]
    acknowledged = {"messages": set(), "records": set()}
    for round_ in range(ROUNDS):
        if round_ > 0:
            server = Server(data)
        write_until_killed(server, world, url, acknowledged, round_)
    assert len(acknowledged["messages"]) > 30 and len(acknowledged["records"]) > 30, acknowledged

    restarted = Server(data)
    try:
        sqs = restarted.client("sqs")
        kept = set()
        while True:
            got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=600).get("Messages", [])
            if not got:
                break
            kept |= {m["Body"] for m in got}
        assert acknowledged["messages"] <= kept, sorted(acknowledged["messages"] - kept)[:10]
        dev = restarted.client("servicecatalog", world.dev_key)
        for record_id in acknowledged["records"]:
            assert dev.describe_record(Id=record_id)["RecordDetail"]["Status"] == "IN_PROGRESS"
    finally:
        restarted.stop()
