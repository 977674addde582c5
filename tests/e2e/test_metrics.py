"""Metrics (issue 18): `serve --metrics-listen ADDR` serves Prometheus text at `/metrics`,
parsed here with the `prometheus_client` package's own parser. The named series exist and move
as boto3 calls are made: requests by service, operation, status and account with their latency;
work in progress by status and age; engine tasks per queue (visible, in flight, dead-lettered);
store commits; connections; and, with `serve --engine terraform`, the engine's runs."""

import json
import time
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import Server, free_port
from test_engine_workflow import World


class Scraper:
    def __init__(self, port):
        self.url = f"http://127.0.0.1:{port}/metrics"

    def scrape(self):
        """Every sample as {(name, frozenset(labels)): value}, and the raw text."""
        with urllib.request.urlopen(self.url, timeout=10) as r:
            assert r.status == 200
            assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            text = r.read().decode()
        samples = {}
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                samples[(s.name, frozenset(s.labels.items()))] = s.value
        return samples, text


def value(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())), 0)


def matching(samples, name, **labels):
    """Samples of `name` whose labels include `labels`."""
    return {dict(k[1]).get("le", ""): v for k, v in samples.items()
            if k[0] == name and set(labels.items()) <= k[1]}


@pytest.fixture
def metered(tmp_path):
    port = free_port()
    s = Server(tmp_path / "data", args=["--metrics-listen", f"127.0.0.1:{port}"])
    yield s, Scraper(port)
    s.stop()


def test_metrics_series_exist_and_move_with_calls(metered, tmp_path):
    server, metrics = metered
    w = World(server, tmp_path)
    a = w.account
    queue = "ServiceCatalogTerraformOSProvisionOperationQueue"
    before, _ = metrics.scrape()

    record = w.provision(name="metered")
    after, text = metrics.scrape()
    requests = "provisiond_requests_total"
    assert value(after, requests, service="servicecatalog", operation="ProvisionProduct", status="200", account=a) == \
        value(before, requests, service="servicecatalog", operation="ProvisionProduct", status="200", account=a) + 1
    latency = "provisiond_request_duration_seconds_count"
    assert value(after, latency, service="servicecatalog", operation="ProvisionProduct") >= 1
    assert matching(after, "provisiond_request_duration_seconds_bucket", operation="ProvisionProduct")["+Inf"] >= 1
    # Work in progress, by status, with its age; the task waiting in its queue.
    assert value(after, "provisiond_work_in_progress", account=a, type="record", status="IN_PROGRESS") == 1
    assert value(after, "provisiond_work_in_progress_oldest_age_seconds", account=a, type="record") >= 0
    assert (("provisiond_work_in_progress_oldest_age_seconds",
             frozenset({"account": a, "type": "record"}.items())) in after)
    assert value(after, "provisiond_engine_tasks", account=a, queue=queue, state="visible") == 1
    assert value(after, "provisiond_engine_tasks", account=a, queue=queue, state="in_flight") == 0
    assert (("provisiond_engine_task_oldest_age_seconds", frozenset({"account": a, "queue": queue}.items())) in after)
    # Commits and connections.
    assert value(after, "provisiond_store_commit_duration_seconds_count") > \
        value(before, "provisiond_store_commit_duration_seconds_count")
    assert value(after, "provisiond_store_commit_transactions_count") >= \
        value(after, "provisiond_store_commit_duration_seconds_count")
    assert value(after, "provisiond_connections_open") >= 1
    assert ("provisiond_connections_closed_total", frozenset({"reason": "shed"}.items())) in after

    # Received: in flight. Dead-lettered after its receives run out.
    got = w.sqs.receive_message(QueueUrl=w.queue("Provision"), VisibilityTimeout=30)["Messages"]
    samples, _ = metrics.scrape()
    assert value(samples, "provisiond_engine_tasks", account=a, queue=queue, state="visible") == 0
    assert value(samples, "provisiond_engine_tasks", account=a, queue=queue, state="in_flight") == 1
    w.sqs.change_message_visibility(QueueUrl=w.queue("Provision"), ReceiptHandle=got[0]["ReceiptHandle"],
                                    VisibilityTimeout=0)
    for _ in range(4):
        assert len(w.sqs.receive_message(QueueUrl=w.queue("Provision"), VisibilityTimeout=0)["Messages"]) == 1
    assert w.sqs.receive_message(QueueUrl=w.queue("Provision")).get("Messages", []) == []
    samples, _ = metrics.scrape()
    assert value(samples, "provisiond_engine_tasks", account=a, queue=queue, state="dead_lettered") == 1
    assert value(samples, "provisiond_engine_tasks", account=a, queue=queue, state="visible") == 0

    # Settled: no longer in progress; the Notify counted.
    token = json.loads(got[0]["Body"])["token"]
    w.engine.notify_provision_product_engine_workflow_result(
        WorkflowToken=token, RecordId=record["RecordId"], Status="SUCCEEDED", IdempotencyToken="m-1")
    samples, _ = metrics.scrape()
    assert value(samples, "provisiond_work_in_progress", account=a, type="record", status="IN_PROGRESS") == 0
    assert value(samples, requests, service="servicecatalog",
                 operation="NotifyProvisionProductEngineWorkflowResult", status="200", account=a) == 1
    assert value(samples, requests, service="sqs", operation="ReceiveMessage", status="200", account=a) >= 6

    # A refused call is counted with its status; an operation no model has is `unknown`, so a
    # caller cannot mint series.
    with pytest.raises(Exception):
        w.dev.describe_record(Id="rec-doesnotexist1")
    bogus = urllib.request.Request(server.endpoint + "/", data=b"{}", method="POST", headers={
        "X-Amz-Target": "AWS242ServiceCatalogService.MintASeriesPlease",
        "Content-Type": "application/x-amz-json-1.1"})
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(bogus, timeout=5)
    samples, text = metrics.scrape()
    assert value(samples, requests, service="servicecatalog", operation="DescribeRecord", status="400", account=a) == 1
    assert "MintASeriesPlease" not in text
    assert any(dict(k[1]).get("operation") == "unknown" for k in samples if k[0] == requests)


def test_the_metrics_listener_answers_only_metrics(metered):
    _, metrics = metered
    base = metrics.url.rsplit("/", 1)[0]
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(base + "/other", timeout=5)
    assert e.value.code == 404
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(urllib.request.Request(metrics.url, data=b"x", method="POST"), timeout=5)
    assert e.value.code == 405


def test_the_in_process_engine_runs_are_counted(tmp_path):
    from test_engine_terraform import TERRAFORM, publish_in, wait_record
    if TERRAFORM is None:
        pytest.skip("terraform is not installed (see test_engine_terraform's message)")
    port = free_port()
    s = Server(tmp_path / "data", args=["--metrics-listen", f"127.0.0.1:{port}",
                                        "--engine", "terraform", "--terraform", TERRAFORM])
    try:
        metrics = Scraper(port)
        sc, pid, pa = publish_in(s, s.admin, tmp_path)
        record = sc.provision_product(ProductId=pid, ProvisioningArtifactId=pa, ProvisionedProductName="counted",
                                      ProvisioningParameters=[{"Key": "name", "Value": "m"}])["RecordDetail"]
        assert wait_record(sc, record["RecordId"])["RecordDetail"]["Status"] == "SUCCEEDED"
        failing = sc.update_provisioned_product(ProvisionedProductId=record["ProvisionedProductId"],
                                                ProvisioningParameters=[{"Key": "name", "UsePreviousValue": True},
                                                                        {"Key": "size", "Value": "500"}])["RecordDetail"]
        assert wait_record(sc, failing["RecordId"])["RecordDetail"]["Status"] == "FAILED"
        # The run is counted once its outcome is reported, a moment after the record settles.
        deadline = time.time() + 10
        while True:
            samples, _ = metrics.scrape()
            if value(samples, "provisiond_engine_runs_total", of="record", outcome="failed") == 1 or time.time() > deadline:
                break
            time.sleep(0.2)
        assert value(samples, "provisiond_engine_runs_total", of="record", outcome="succeeded") == 1
        assert value(samples, "provisiond_engine_runs_total", of="record", outcome="failed") == 1
        assert value(samples, "provisiond_engine_run_duration_seconds_count", of="record") == 2
        assert value(samples, "provisiond_engine_run_duration_seconds_sum", of="record") > 0
        assert ("provisiond_engine_running", frozenset()) in samples
    finally:
        s.stop()
