"""Logs an operator can collect (issue 18, first slice): `--log-format json` writes one JSON
object per line; every request has one line with its request id, account, service, operation,
status and latency; no secret, token or sensitive member ever appears."""

import json

from conftest import Server


def test_json_logs_have_one_line_per_request_and_no_secrets(tmp_path):
    server = Server(tmp_path / "data", args=["--log-format", "json"])
    try:
        sc = server.client("servicecatalog")
        sc.create_portfolio(DisplayName="d", ProviderName="p")
        status, headers, _ = server.raw("proton", "NotifyResourceDeploymentStatusChange",
                                        {"resourceArn": "arn:aws:proton:us-east-1:000000000000:environment/x",
                                         "statusMessage": "s3cr3t-message", "outputs": "s3cr3t-outputs"})
        assert status == 400
        server.raw("servicecatalog", "ListPortfolios", {}, secret="z" * 40)
        request_id = headers["x-amzn-requestid"]
    finally:
        server.stop()
    text = server.log_text()
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    assert lines and all({"timestamp", "level", "fields"} <= set(line) for line in lines)
    requests = [line["fields"] for line in lines if line["fields"].get("message") == "request"]
    created = next(r for r in requests if r["operation"] == "CreatePortfolio")
    assert created["account"] == "000000000000" and created["service"] == "servicecatalog"
    assert created["status"] == 200 and created["micros"] > 0 and created["request_id"]
    notify = next(r for r in requests if r["request_id"] == request_id)
    assert notify["operation"] == "NotifyResourceDeploymentStatusChange" and notify["status"] == 400
    forged = [r for r in requests if r["operation"] == "ListPortfolios"]
    assert forged and forged[-1]["status"] == 403 and forged[-1]["account"] == "", "no account for a bad signature"
    for secret in ("s3cr3t", "z" * 40, server.admin.secret, "Signature="):
        assert secret not in text
