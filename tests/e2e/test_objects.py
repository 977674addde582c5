"""The S3-shaped object store through boto3's S3 client (path-style and virtual-hosted) and the
AWS SDK for JavaScript v3 as configured by default: buckets per account, objects in and out,
listing, S3's XML errors, the read-only artifact bucket that engines fetch template copies
from, and uploads checked against their checksums."""

import json
import os
import pathlib
import random
import shutil
import subprocess
import sys

import boto3
import botocore.config
import botocore.exceptions
import pytest

from test_products import tar_gz


def s3_client(server, key):
    return boto3.client("s3", endpoint_url=server.endpoint, region_name="us-east-1",
                        aws_access_key_id=key.access_key_id, aws_secret_access_key=key.secret,
                        config=botocore.config.Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))


@pytest.fixture
def tenant(server):
    account = "".join(random.choice("0123456789") for _ in range(12))
    return server.create_key(account, f"arn:aws:iam::{account}:role/platform", admin=True)


def code(excinfo):
    return excinfo.value.response["Error"]["Code"], excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"]


def test_buckets_and_objects(server, tenant):
    s3 = s3_client(server, tenant)
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["provisiond-artifacts", "provisiond-deployments"]
    s3.create_bucket(Bucket="templates")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.create_bucket(Bucket="templates")
    assert code(e) == ("BucketAlreadyOwnedByYou", 409)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.create_bucket(Bucket="Bad_Name")
    assert code(e) == ("InvalidBucketName", 400)
    put = s3.put_object(Bucket="templates", Key="env/v1 bundle.tar.gz", Body=b"bundle-bytes")
    got = s3.get_object(Bucket="templates", Key="env/v1 bundle.tar.gz")
    assert got["Body"].read() == b"bundle-bytes"
    assert got["ETag"] == put["ETag"] and got["ContentLength"] == 12
    assert s3.head_object(Bucket="templates", Key="env/v1 bundle.tar.gz")["ContentLength"] == 12
    for i in range(3):
        s3.put_object(Bucket="templates", Key=f"other/{i}", Body=b"x")
    listed = s3.list_objects_v2(Bucket="templates", Prefix="other/")
    assert [o["Key"] for o in listed["Contents"]] == ["other/0", "other/1", "other/2"]
    page = s3.list_objects_v2(Bucket="templates", MaxKeys=2)
    assert page["IsTruncated"] and len(page["Contents"]) == 2
    rest = s3.list_objects_v2(Bucket="templates", MaxKeys=10, ContinuationToken=page["NextContinuationToken"])
    assert [o["Key"] for o in page["Contents"] + rest["Contents"]] == ["env/v1 bundle.tar.gz", "other/0", "other/1", "other/2"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.get_object(Bucket="templates", Key="missing")
    assert code(e) == ("NoSuchKey", 404)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.get_object(Bucket="nobucket", Key="x")
    assert code(e) == ("NoSuchBucket", 404)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.delete_bucket(Bucket="templates")
    assert code(e) == ("BucketNotEmpty", 409)
    s3.delete_object(Bucket="templates", Key="env/v1 bundle.tar.gz")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.head_object(Bucket="templates", Key="env/v1 bundle.tar.gz")
    assert code(e)[1] == 404


def test_a_conditional_put_creates_a_key_once(server, tenant):
    """`If-None-Match: *` (what engines use to claim work): the first put creates the key, a
    second answers 412 and leaves the first body; ETag conditions are refused, not ignored."""
    s3 = s3_client(server, tenant)
    s3.create_bucket(Bucket="claims")
    s3.put_object(Bucket="claims", Key="job-1", Body=b"first", IfNoneMatch="*")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.put_object(Bucket="claims", Key="job-1", Body=b"second", IfNoneMatch="*")
    assert code(e) == ("PreconditionFailed", 412)
    assert s3.get_object(Bucket="claims", Key="job-1")["Body"].read() == b"first"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.put_object(Bucket="claims", Key="job-2", Body=b"x", IfMatch='"abc"')
    assert code(e) == ("NotImplemented", 501)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.put_object(Bucket="claims", Key="job-2", Body=b"x", IfNoneMatch='"abc"')
    assert code(e) == ("NotImplemented", 501)
    assert "Contents" not in s3.list_objects_v2(Bucket="claims", Prefix="job-2")
    # An unconditional put still replaces.
    s3.put_object(Bucket="claims", Key="job-1", Body=b"replaced")
    assert s3.get_object(Bucket="claims", Key="job-1")["Body"].read() == b"replaced"


def test_buckets_belong_to_their_account(server, tenant):
    s3 = s3_client(server, tenant)
    s3.create_bucket(Bucket="mine")
    s3.put_object(Bucket="mine", Key="k", Body=b"secret")
    account = "".join(random.choice("0123456789") for _ in range(12))
    other = s3_client(server, server.create_key(account, f"arn:aws:iam::{account}:role/x"))
    with pytest.raises(botocore.exceptions.ClientError) as e:
        other.get_object(Bucket="mine", Key="k")
    assert code(e) == ("NoSuchBucket", 404)


def test_signatures_are_verified(server, tenant):
    from conftest import Key
    bad = s3_client(server, Key(tenant.access_key_id, "w" * 40, tenant.account, tenant.principal))
    with pytest.raises(botocore.exceptions.ClientError) as e:
        bad.list_buckets()
    assert code(e) == ("SignatureDoesNotMatch", 403)
    ghost = s3_client(server, Key("AKIAGHOSTGHOSTGHOST0", "w" * 40, tenant.account, tenant.principal))
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ghost.list_buckets()
    assert code(e) == ("InvalidAccessKeyId", 403)


def test_checksums_are_verified(server, tenant):
    s3 = s3_client(server, tenant)
    s3.create_bucket(Bucket="sums")
    s3.put_object(Bucket="sums", Key="ok", Body=b"data", ChecksumAlgorithm="SHA256")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.put_object(Bucket="sums", Key="bad", Body=b"data", ChecksumCRC32="AAAAAA==")
    assert code(e) == ("BadDigest", 400)
    with pytest.raises(botocore.exceptions.ClientError):
        s3.head_object(Bucket="sums", Key="bad")


def test_artifact_copies_are_fetchable_and_read_only(server, tenant, tmp_path):
    sc = server.client("servicecatalog", tenant)
    archive = tar_gz(tmp_path / "m.tar.gz", {"main.tf": 'variable "a" { default = "x" }'})
    out = sc.create_product(Name="p", Owner="o", ProductType="TERRAFORM_OPEN_SOURCE",
                            ProvisioningArtifactParameters={"Info": {"LoadTemplateFromURL": f"file://{archive}"}})
    pid, pa = out["ProductViewDetail"]["ProductViewSummary"]["ProductId"], out["ProvisioningArtifactDetail"]["Id"]
    s3 = s3_client(server, tenant)
    body = s3.get_object(Bucket="provisiond-artifacts", Key=f"{pid}/{pa}.tar.gz")["Body"].read()
    assert body == archive.read_bytes()
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.put_object(Bucket="provisiond-artifacts", Key=f"{pid}/{pa}.tar.gz", Body=b"tampered")
    assert code(e) == ("AccessDenied", 403)
    assert s3.get_object(Bucket="provisiond-artifacts", Key=f"{pid}/{pa}.tar.gz")["Body"].read() == archive.read_bytes()
    # A product can load its template from the object store too.
    s3.create_bucket(Bucket="uploads")
    s3.put_object(Bucket="uploads", Key="v2.tar.gz", Body=archive.read_bytes())
    v2 = sc.create_provisioning_artifact(ProductId=pid, Parameters={"Name": "v2", "Info": {"LoadTemplateFromURL": "s3://uploads/v2.tar.gz"}})
    assert v2["Info"]["LoadTemplateFromURL"] == "s3://uploads/v2.tar.gz"


@pytest.fixture
def localhost_subdomains(monkeypatch):
    """Resolves `<name>.localhost` to 127.0.0.1 in this process, as systemd-resolved and
    browsers do; glibc here does not, and the SDKs' virtual-hosted addressing needs it."""
    import socket
    real = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        if isinstance(host, str) and host.endswith(".localhost"):
            host = "127.0.0.1"
        return real(host, *args, **kwargs)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def test_virtual_hosted_style_addressing(server, tenant, localhost_subdomains):
    endpoint = server.endpoint.replace("127.0.0.1", "localhost")
    virtual = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                           aws_access_key_id=tenant.access_key_id, aws_secret_access_key=tenant.secret,
                           config=botocore.config.Config(s3={"addressing_style": "virtual"}, retries={"max_attempts": 1}))
    sent = []
    virtual.meta.events.register("before-send.s3", lambda request, **_: sent.append(request.url))
    virtual.create_bucket(Bucket="vhost-bucket")
    virtual.put_object(Bucket="vhost-bucket", Key="dir/a b.txt", Body=b"hello")
    assert virtual.get_object(Bucket="vhost-bucket", Key="dir/a b.txt")["Body"].read() == b"hello"
    assert [o["Key"] for o in virtual.list_objects_v2(Bucket="vhost-bucket")["Contents"]] == ["dir/a b.txt"]
    assert all(url.startswith(f"http://vhost-bucket.localhost:{server.port}/") for url in sent), sent
    # The same objects, path-style.
    path = s3_client(server, tenant)
    assert path.get_object(Bucket="vhost-bucket", Key="dir/a b.txt")["Body"].read() == b"hello"
    virtual.delete_object(Bucket="vhost-bucket", Key="dir/a b.txt")
    virtual.delete_bucket(Bucket="vhost-bucket")
    assert "vhost-bucket" not in [b["Name"] for b in path.list_buckets()["Buckets"]]


JS = pathlib.Path(__file__).parent / "js"


def node_sdk_or_skip():
    """The JS SDK installed by scripts/test.sh; absent, the test is skipped loudly (an error
    under CI)."""
    if shutil.which("node") and (JS / "node_modules" / "@aws-sdk" / "client-s3").exists():
        return shutil.which("node")
    message = "the AWS SDK for JavaScript is not installed (cd tests/e2e/js && npm ci): JS tests SKIPPED"
    if os.environ.get("CI"):
        raise RuntimeError(message)
    print("\n" + "!" * 78 + "\n" + message + "\n" + "!" * 78, file=sys.stderr)
    pytest.skip(message)


def test_the_javascript_sdks_default_addressing_is_served(server, tenant):
    node = node_sdk_or_skip()
    endpoint = server.endpoint.replace("127.0.0.1", "localhost")
    out = subprocess.run([node, str(JS / "s3_default_addressing.mjs")], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "ENDPOINT": endpoint, "AKID": tenant.access_key_id,
                              "SECRET": tenant.secret, "BUCKET": "js-bucket"})
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["body"] == "hello from js" and result["keys"] == ["hello.txt"]
    assert all(u.startswith(f"js-bucket.localhost:{server.port}") for u in result["urls"]), result["urls"]
    assert s3_client(server, tenant).get_object(Bucket="js-bucket", Key="hello.txt")["Body"].read() == b"hello from js"
