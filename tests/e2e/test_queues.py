"""The SQS-shaped engine queues through boto3's SQS client, as an engine uses them: queue names,
send/receive/delete, visibility timeout and redelivery, the dead-letter queue after 5 receives,
long polling that wakes on a new message, batch deletes and account isolation."""

import hashlib
import random
import threading
import time

import botocore.exceptions
import pytest

PROVISION = "ServiceCatalogTerraformOSProvisionOperationQueue"


@pytest.fixture
def engine(server):
    account = "".join(random.choice("0123456789") for _ in range(12))
    key = server.create_key(account, f"arn:aws:iam::{account}:role/engine")
    return server.client("sqs", key), key


def url_of(sqs, name=PROVISION):
    return sqs.get_queue_url(QueueName=name)["QueueUrl"]


def code_of(excinfo):
    return excinfo.value.response["Error"]["Code"]


def test_every_engine_queue_exists(server, engine):
    sqs, key = engine
    urls = sqs.list_queues()["QueueUrls"]
    assert len(urls) == 18
    for kind in ("TerraformOS", "TerraformCloud", "External"):
        for op in ("Provision", "Update", "Terminate"):
            name = f"ServiceCatalog{kind}{op}OperationQueue"
            url = url_of(sqs, name)
            assert url == f"{server.endpoint}/{key.account}/{name}"
            assert url in urls and url + "-dlq" in urls
    only_tf = sqs.list_queues(QueueNamePrefix="ServiceCatalogTerraformOS")["QueueUrls"]
    assert len(only_tf) == 6
    page = sqs.list_queues(MaxResults=5)
    assert len(page["QueueUrls"]) == 5 and page["NextToken"]
    rest = sqs.list_queues(MaxResults=50, NextToken=page["NextToken"])["QueueUrls"]
    assert page["QueueUrls"] + rest == urls
    attrs = sqs.get_queue_attributes(QueueUrl=url_of(sqs), AttributeNames=["All"])["Attributes"]
    assert attrs["VisibilityTimeout"] == "180"
    assert attrs["QueueArn"] == f"arn:aws:sqs:us-east-1:{key.account}:{PROVISION}"
    assert '"maxReceiveCount":5' in attrs["RedrivePolicy"]


def test_unknown_queues_do_not_exist(server, engine):
    sqs, _ = engine
    with pytest.raises(sqs.exceptions.QueueDoesNotExist) as e:
        sqs.get_queue_url(QueueName="NoSuchQueue")
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    status, headers, body = server.raw("sqs", "GetQueueUrl", {"QueueName": "NoSuchQueue"})
    assert status == 400
    assert body["__type"] == "com.amazonaws.sqs#QueueDoesNotExist"
    assert headers["x-amzn-query-error"] == "AWS.SimpleQueueService.NonExistentQueue;Sender"


def test_send_receive_delete(engine):
    sqs, _ = engine
    url = url_of(sqs)
    sent = sqs.send_message(QueueUrl=url, MessageBody='{"operation":"PROVISION_PRODUCT"}')
    assert sent["MD5OfMessageBody"] == hashlib.md5(b'{"operation":"PROVISION_PRODUCT"}').hexdigest()
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"])["Messages"]
    assert len(got) == 1
    m = got[0]
    assert m["MessageId"] == sent["MessageId"]
    assert m["Body"] == '{"operation":"PROVISION_PRODUCT"}'
    assert m["MD5OfBody"] == sent["MD5OfMessageBody"]
    assert m["Attributes"]["ApproximateReceiveCount"] == "1"
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    assert attrs == {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "1"}
    sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])  # repeated deletes succeed
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attrs["ApproximateNumberOfMessages"] == "0" and attrs["ApproximateNumberOfMessagesNotVisible"] == "0"
    assert sqs.receive_message(QueueUrl=url).get("Messages", []) == []


def test_redelivery_after_the_visibility_timeout(engine):
    sqs, _ = engine
    url = url_of(sqs)
    sqs.send_message(QueueUrl=url, MessageBody="task")
    first = sqs.receive_message(QueueUrl=url, VisibilityTimeout=1)["Messages"][0]
    assert sqs.receive_message(QueueUrl=url).get("Messages", []) == [], "invisible while in flight"
    again = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=5, MessageSystemAttributeNames=["ApproximateReceiveCount"])["Messages"][0]
    assert again["MessageId"] == first["MessageId"]
    assert again["Attributes"]["ApproximateReceiveCount"] == "2"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sqs.delete_message(QueueUrl=url, ReceiptHandle=first["ReceiptHandle"])
    assert code_of(e) == "ReceiptHandleIsInvalid"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sqs.delete_message(QueueUrl=url, ReceiptHandle="not-a-handle")
    assert code_of(e) == "ReceiptHandleIsInvalid"
    sqs.delete_message(QueueUrl=url, ReceiptHandle=again["ReceiptHandle"])
    assert sqs.receive_message(QueueUrl=url).get("Messages", []) == []


def test_change_visibility_releases_a_message(engine):
    sqs, _ = engine
    url = url_of(sqs)
    sqs.send_message(QueueUrl=url, MessageBody="task")
    m = sqs.receive_message(QueueUrl=url)["Messages"][0]
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0)
    again = sqs.receive_message(QueueUrl=url)["Messages"][0]
    assert again["MessageId"] == m["MessageId"]
    with pytest.raises(botocore.exceptions.ClientError):
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=5)
    sqs.delete_message(QueueUrl=url, ReceiptHandle=again["ReceiptHandle"])


def test_dead_letter_queue_after_five_receives(engine):
    sqs, _ = engine
    url = url_of(sqs)
    sqs.send_message(QueueUrl=url, MessageBody="poison")
    for count in range(1, 6):
        m = sqs.receive_message(QueueUrl=url, VisibilityTimeout=0, MessageSystemAttributeNames=["All"])["Messages"][0]
        assert m["Attributes"]["ApproximateReceiveCount"] == str(count)
    assert sqs.receive_message(QueueUrl=url).get("Messages", []) == []
    dead = sqs.receive_message(QueueUrl=url + "-dlq")["Messages"]
    assert [d["Body"] for d in dead] == ["poison"]


def test_long_polling_wakes_when_a_message_arrives(engine):
    sqs, _ = engine
    url = url_of(sqs, "ServiceCatalogExternalUpdateOperationQueue")
    result = {}

    def poll():
        result["r"] = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=20)

    t = threading.Thread(target=poll)
    t.start()
    time.sleep(0.5)
    sqs.send_message(QueueUrl=url, MessageBody="late arrival")
    t.join(timeout=30)
    assert not t.is_alive()
    assert [m["Body"] for m in result["r"]["Messages"]] == ["late arrival"]


def test_batch_delete_reports_each_entry(engine):
    sqs, _ = engine
    url = url_of(sqs)
    for i in range(3):
        sqs.send_message(QueueUrl=url, MessageBody=f"m{i}")
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert sorted(m["Body"] for m in got) == ["m0", "m1", "m2"]
    out = sqs.delete_message_batch(QueueUrl=url, Entries=[
        {"Id": "a", "ReceiptHandle": got[0]["ReceiptHandle"]},
        {"Id": "b", "ReceiptHandle": got[1]["ReceiptHandle"]},
        {"Id": "c", "ReceiptHandle": "bogus"},
    ])
    assert sorted(e["Id"] for e in out["Successful"]) == ["a", "b"]
    assert [(f["Id"], f["Code"], f["SenderFault"]) for f in out["Failed"]] == [("c", "ReceiptHandleIsInvalid", True)]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sqs.delete_message_batch(QueueUrl=url, Entries=[{"Id": "x", "ReceiptHandle": "h"}, {"Id": "x", "ReceiptHandle": "h"}])
    assert "BatchEntryIdsNotDistinct" in code_of(e)


def test_bad_parameters_are_refused(engine):
    sqs, _ = engine
    url = url_of(sqs)
    for kwargs in ({"MaxNumberOfMessages": 11}, {"WaitTimeSeconds": 21}, {"VisibilityTimeout": -1}):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            sqs.receive_message(QueueUrl=url, **kwargs)
        assert code_of(e) == "InvalidParameterValue"


def test_queues_belong_to_their_account(server, engine):
    sqs, _ = engine
    url = url_of(sqs)
    sqs.send_message(QueueUrl=url, MessageBody="mine")
    account = "".join(random.choice("0123456789") for _ in range(12))
    other = server.client("sqs", server.create_key(account, f"arn:aws:iam::{account}:role/engine"))
    with pytest.raises(other.exceptions.QueueDoesNotExist):
        other.receive_message(QueueUrl=url)
    with pytest.raises(other.exceptions.QueueDoesNotExist):
        other.get_queue_url(QueueName=PROVISION, QueueOwnerAWSAccountId=sqs.get_queue_url(QueueName=PROVISION)["QueueUrl"].split("/")[-2])
    assert other.receive_message(QueueUrl=url_of(other)).get("Messages", []) == []
    assert [m["Body"] for m in sqs.receive_message(QueueUrl=url)["Messages"]] == ["mine"]


def test_one_receive_hands_out_each_message_once_even_with_no_visibility_timeout(engine):
    sqs, _ = engine
    url = url_of(sqs)
    sqs.send_message(QueueUrl=url, MessageBody="only")
    for receive in range(1, 4):
        got = sqs.receive_message(QueueUrl=url, VisibilityTimeout=0, MaxNumberOfMessages=10,
                                  MessageSystemAttributeNames=["ApproximateReceiveCount"]).get("Messages", [])
        assert [m["Body"] for m in got] == ["only"], got
        assert got[0]["Attributes"]["ApproximateReceiveCount"] == str(receive)
    assert sqs.receive_message(QueueUrl=url + "-dlq").get("Messages", []) == [], "nothing dead-lettered"
    for body in ("a", "b"):
        sqs.send_message(QueueUrl=url, MessageBody=body)
    got = sqs.receive_message(QueueUrl=url, VisibilityTimeout=0, MaxNumberOfMessages=10).get("Messages", [])
    assert sorted(m["Body"] for m in got) == ["a", "b", "only"]


def sqs_attributes_md5(attributes):
    """MD5OfMessageAttributes as SQS documents it, computed here independently of the server."""
    import struct
    digest = hashlib.md5()
    for name in sorted(attributes):
        value = attributes[name]
        binary = value["DataType"].startswith("Binary")
        raw = value["BinaryValue"] if binary else value["StringValue"].encode()
        for field in (name.encode(), value["DataType"].encode()):
            digest.update(struct.pack(">I", len(field)) + field)
        digest.update(b"\x02" if binary else b"\x01")
        digest.update(struct.pack(">I", len(raw)) + raw)
    return digest.hexdigest()


def test_message_attributes_are_kept_and_digested_as_sqs_does(engine):
    sqs, _ = engine
    url = url_of(sqs)
    attributes = {"team": {"DataType": "String", "StringValue": "platform"},
                  "retries": {"DataType": "Number", "StringValue": "3"},
                  "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01\xff"},
                  "trace.id": {"DataType": "String.uuid", "StringValue": "abc"}}
    sent = sqs.send_message(QueueUrl=url, MessageBody="with attributes", MessageAttributes=attributes)
    assert sent["MD5OfMessageAttributes"] == sqs_attributes_md5(attributes)
    assert sent["MD5OfMessageBody"] == hashlib.md5(b"with attributes").hexdigest()
    got = sqs.receive_message(QueueUrl=url, MessageAttributeNames=["All"], VisibilityTimeout=0)["Messages"][0]
    assert got["MessageAttributes"] == attributes
    assert got["MD5OfMessageAttributes"] == sent["MD5OfMessageAttributes"]
    # Only the attributes asked for come back, and the digest covers those.
    got = sqs.receive_message(QueueUrl=url, MessageAttributeNames=["team", "trace.*"], VisibilityTimeout=0)["Messages"][0]
    chosen = {k: attributes[k] for k in ("team", "trace.id")}
    assert got["MessageAttributes"] == chosen and got["MD5OfMessageAttributes"] == sqs_attributes_md5(chosen)
    got = sqs.receive_message(QueueUrl=url, VisibilityTimeout=0)["Messages"][0]
    assert "MessageAttributes" not in got and "MD5OfMessageAttributes" not in got
    for bad in ({"n": {"DataType": "Number", "StringValue": "many"}}, {"AWS.x": {"DataType": "String", "StringValue": "v"}},
                {f"a{i}": {"DataType": "String", "StringValue": "v"} for i in range(11)}):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            sqs.send_message(QueueUrl=url, MessageBody="x", MessageAttributes=bad)
        assert code_of(e) == "InvalidParameterValue"


def test_send_batch_change_visibility_batch_and_purge(engine):
    sqs, _ = engine
    url = url_of(sqs)
    entries = [{"Id": "a", "MessageBody": "one", "MessageAttributes": {"k": {"DataType": "String", "StringValue": "v"}}},
               {"Id": "b", "MessageBody": "two"},
               {"Id": "c", "MessageBody": "", "DelaySeconds": 0}]
    out = sqs.send_message_batch(QueueUrl=url, Entries=entries)
    assert sorted(s["Id"] for s in out["Successful"]) == ["a", "b"]
    by_id = {s["Id"]: s for s in out["Successful"]}
    assert by_id["a"]["MD5OfMessageAttributes"] == sqs_attributes_md5(entries[0]["MessageAttributes"])
    assert by_id["b"]["MD5OfMessageBody"] == hashlib.md5(b"two").hexdigest()
    assert [(f["Id"], f["Code"], f["SenderFault"]) for f in out["Failed"]] == [("c", "InvalidParameterValue", True)]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": "x", "MessageBody": "1"}, {"Id": "x", "MessageBody": "2"}])
    assert code_of(e).endswith("BatchEntryIdsNotDistinct")

    received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=600)["Messages"]
    assert sorted(m["Body"] for m in received) == ["one", "two"]
    changes = [{"Id": f"m{i}", "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0} for i, m in enumerate(received)]
    changes.append({"Id": "stale", "ReceiptHandle": "bm90LWEtaGFuZGxl", "VisibilityTimeout": 0})
    out = sqs.change_message_visibility_batch(QueueUrl=url, Entries=changes)
    assert sorted(s["Id"] for s in out["Successful"]) == ["m0", "m1"]
    assert [f["Id"] for f in out["Failed"]] == ["stale"]
    again = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert sorted(m["Body"] for m in again) == ["one", "two"], "released at once"

    sqs.send_message(QueueUrl=url, MessageBody="three")
    sqs.purge_queue(QueueUrl=url)
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attrs["ApproximateNumberOfMessages"] == "0" and attrs["ApproximateNumberOfMessagesNotVisible"] == "0"
    assert sqs.receive_message(QueueUrl=url).get("Messages", []) == []


def test_the_javascript_sdk_sends_and_receives_attributes(server, engine):
    import json
    import os
    import subprocess
    from test_objects import JS, node_sdk_or_skip
    node = node_sdk_or_skip()
    _, key = engine
    out = subprocess.run([node, str(JS / "sqs_attributes.mjs")], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "ENDPOINT": server.endpoint, "AKID": key.access_key_id,
                              "SECRET": key.secret, "QUEUE": PROVISION})
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout.strip().splitlines()[-1])
    attributes = {"team": {"DataType": "String", "StringValue": "platform"},
                  "retries": {"DataType": "Number", "StringValue": "3"}}
    assert got["sentMd5"] == sqs_attributes_md5(attributes)
    assert got["batch"] == [["one", sqs_attributes_md5({"k": {"DataType": "String", "StringValue": "v"}})], ["two", None]]
    by_body = {m["body"]: m for m in got["received"]}
    assert set(by_body) == {"from js", "batch one", "batch two"}
    assert by_body["from js"]["attributes"] == attributes and by_body["from js"]["md5"] == got["sentMd5"]
    assert by_body["batch two"]["attributes"] is None
    assert got["afterPurge"] == 0
