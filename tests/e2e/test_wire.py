"""The wire, as SPEC §1–§2 say: routing, error rendering, validation wording, body limit,
SigV4 verification and its failures."""

import datetime
import json
import re
from unittest import mock

import botocore.auth
import botocore.exceptions
import pytest


def assert_error(response, code, status):
    got_status, headers, body = response
    assert got_status == status, (got_status, body)
    assert body["__type"] == code, body
    assert headers["x-amzn-errortype"] == code
    assert re.fullmatch(r"[0-9a-f-]{36}", headers["x-amzn-requestid"])
    assert body["message"]
    return body["message"]


def test_health(server):
    assert server.wait_healthy() == {"status": "ok"}


def test_success_carries_request_id_and_content_type(server):
    status, headers, body = server.raw("servicecatalog", "ListPortfolios", {})
    assert status == 200
    assert "PortfolioDetails" in body
    assert headers["content-type"] == "application/x-amz-json-1.1"
    assert re.fullmatch(r"[0-9a-f-]{36}", headers["x-amzn-requestid"])


def test_unknown_targets_and_unserved_operations(server):
    assert_error(server.raw("servicecatalog", "NoSuchThing", {}), "UnknownOperationException", 400)
    assert_error(server.raw("servicecatalog", None, {}, target="DynamoDB_20120810.GetItem"), "UnknownOperationException", 400)
    assert_error(server.raw("servicecatalog", None, {}, target=""), "UnknownOperationException", 400)
    # Modeled but not served yet: never a fake success, even with invalid input.
    assert_error(server.raw("servicecatalog", "CopyProduct", {"SourceProductArn": "!"}), "UnknownOperationException", 400)
    proton = server.client("proton")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        proton.list_environment_account_connections(requestedBy="MANAGEMENT_ACCOUNT")
    assert e.value.response["Error"]["Code"] == "UnknownOperationException"


def test_bodies_that_are_not_the_shape_are_serialization_errors(server):
    assert_error(server.raw("servicecatalog", "ListPortfolios", b"{not json"), "SerializationException", 400)
    assert_error(server.raw("servicecatalog", "ListPortfolios", {"PageSize": "ten"}), "SerializationException", 400)
    assert_error(server.raw("servicecatalog", "ListPortfolios", b"[1,2]"), "SerializationException", 400)


def test_validation_counts_every_violation_with_aws_wording(server):
    message = assert_error(
        server.raw("servicecatalog", "CreatePortfolio",
                   {"DisplayName": "x" * 101, "IdempotencyToken": "-bad", "PageSize": 1}),
        "ValidationException", 400)
    assert message == (
        "3 validation errors detected: "
        f"Value '{'x' * 101}' at 'displayName' failed to satisfy constraint: Member must have length less than or equal to 100; "
        "Value null at 'providerName' failed to satisfy constraint: Member must not be null; "
        "Value '-bad' at 'idempotencyToken' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9][a-zA-Z0-9_-]*"
    )
    sc = server.client("servicecatalog", validate=False)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sc.list_portfolios(PageSize=101)
    assert e.value.response["Error"]["Code"] == "ValidationException"
    assert e.value.response["Error"]["Message"] == (
        "1 validation error detected: Value '101' at 'pageSize' failed to satisfy constraint: "
        "Member must have value less than or equal to 100")


def test_body_limit_is_one_mebibyte(server):
    big = json.dumps({"DisplayName": "x", "Description": "y" * (1 << 20)}).encode()
    assert_error(server.raw("servicecatalog", "CreatePortfolio", big), "RequestEntityTooLarge", 413)
    # Just under the limit is read (and then validated).
    fits = json.dumps({"Description": "y" * ((1 << 20) - 100)}).encode()
    assert_error(server.raw("servicecatalog", "CreatePortfolio", fits), "ValidationException", 400)


def test_missing_signature(server):
    message = assert_error(server.raw("servicecatalog", "ListPortfolios", {}, sign=False),
                           "MissingAuthenticationTokenException", 403)
    assert message == "Missing Authentication Token"


def test_unknown_key(server):
    from conftest import Key
    ghost = Key("AKIAGHOSTGHOSTGHOST0", "x" * 40, "000000000000", "")
    assert_error(server.raw("servicecatalog", "ListPortfolios", {}, key=ghost), "UnrecognizedClientException", 403)


def test_wrong_secret(server):
    message = assert_error(server.raw("servicecatalog", "ListPortfolios", {}, secret="y" * 40),
                           "InvalidSignatureException", 403)
    assert message.startswith("The request signature we calculated does not match the signature you provided")


def test_tampered_body_is_refused(server):
    from conftest import CONTENT_TYPE
    import botocore.awsrequest, botocore.credentials, urllib.request, urllib.error
    body = json.dumps({"PageSize": 1}).encode()
    request = botocore.awsrequest.AWSRequest(method="POST", url=server.endpoint + "/", data=body, headers={
        "Content-Type": CONTENT_TYPE["servicecatalog"],
        "X-Amz-Target": "AWS242ServiceCatalogService.ListPortfolios"})
    creds = botocore.credentials.Credentials(server.admin.access_key_id, server.admin.secret)
    botocore.auth.SigV4Auth(creds, "servicecatalog", "us-east-1").add_auth(request)
    headers = dict(request.prepare().headers)
    for extra in ({}, {"x-amz-content-sha256": __import__("hashlib").sha256(body).hexdigest()}):
        req = urllib.request.Request(server.endpoint + "/", data=b'{"PageSize": 2}', method="POST",
                                     headers={**headers, **extra})
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(req, timeout=10)
        assert e.value.code == 403
        assert json.loads(e.value.read())["__type"] == "InvalidSignatureException"


def test_credential_scope_must_name_the_service(server):
    message = assert_error(server.raw("servicecatalog", "ListPortfolios", {}, sign_service="proton"),
                           "InvalidSignatureException", 403)
    assert "Credential should be scoped to correct service: 'servicecatalog'" in message


@pytest.mark.parametrize("minutes", [-16, 16])
def test_clock_skew_over_fifteen_minutes(server, minutes):
    skewed = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None) + datetime.timedelta(minutes=minutes)
    with mock.patch.object(botocore.auth, "get_current_datetime", return_value=skewed):
        message = assert_error(server.raw("servicecatalog", "ListPortfolios", {}), "InvalidSignatureException", 403)
    assert message.startswith("Signature expired" if minutes < 0 else "Signature not yet current")


def test_small_skew_is_accepted(server):
    skewed = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None) - datetime.timedelta(minutes=10)
    with mock.patch.object(botocore.auth, "get_current_datetime", return_value=skewed):
        status, _, _ = server.raw("servicecatalog", "ListPortfolios", {})
    assert status == 200


def test_malformed_authorization_is_incomplete(server):
    assert_error(server.raw("servicecatalog", "ListPortfolios", {}, sign=False,
                            headers={"Authorization": "AWS4-HMAC-SHA256 Credential=AKIA/x"}),
                 "IncompleteSignatureException", 403)


@pytest.mark.parametrize("service,call,code", [
    ("sts", lambda c: c.get_caller_identity(), "InvalidAction"),
    ("iam", lambda c: c.list_users(), "InvalidAction"),
    ("ec2", lambda c: c.describe_instances(), "InvalidAction"),
    ("lambda", lambda c: c.invoke(FunctionName="f", Payload=b"{}"), "UnknownOperationException"),
    ("dynamodb", lambda c: c.list_tables(), "UnknownOperationException"),
])
def test_services_not_spoken_answer_in_their_own_protocol(server, service, call, code):
    """Each SDK raises a readable error naming provisiond, not a parser failure, and nothing
    reaches the object store."""
    client = server.client(service)
    before = server.client("s3").list_buckets()["Buckets"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        call(client)
    error = e.value.response["Error"]
    assert error["Code"] == code, e.value.response
    assert "provisiond does not serve" in error["Message"] and service in error["Message"]
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert server.client("s3").list_buckets()["Buckets"] == before
