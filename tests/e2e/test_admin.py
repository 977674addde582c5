"""The command line: first start for a newcomer, admin create-key (also while the server runs),
clean shutdown, and logs that never hold a secret or a signature."""

import json
import os
import stat
import subprocess

import pytest

from conftest import BIN


def test_first_start_writes_private_credentials_and_key(fresh_server):
    d = fresh_server.data_dir
    for name in ("server.key", "credentials", "config"):
        mode = stat.S_IMODE(os.stat(d / name).st_mode)
        assert mode == 0o600, (name, oct(mode))
    assert (d / "provisiond.db").exists()
    assert "[profile provisiond]" in (d / "config").read_text()
    log = fresh_server.log_text()
    assert str(d / "credentials") in log
    assert fresh_server.admin.secret not in log
    assert fresh_server.client("servicecatalog").list_portfolios()["PortfolioDetails"] == []


def test_a_key_made_while_the_server_runs_works_at_once(fresh_server):
    key = fresh_server.create_key("123456789012", "arn:aws:iam::123456789012:role/platform", admin=True)
    assert key.account == "123456789012"
    assert key.principal == "arn:aws:iam::123456789012:role/platform"
    assert key.access_key_id.startswith("AKIA") and len(key.secret) == 40
    sc = fresh_server.client("servicecatalog", key)
    pid = sc.create_portfolio(DisplayName="d", ProviderName="p")["PortfolioDetail"]["Id"]
    assert sc.describe_portfolio(Id=pid)["PortfolioDetail"]["ARN"].split(":")[4] == "123456789012"


@pytest.mark.parametrize("account,principal,reason", [
    ("12345", "arn:aws:iam::12345:role/x", "not 12 digits"),
    ("123456789012", "arn:aws:iam::210987654321:role/x", "belongs to account 210987654321"),
    ("123456789012", "role/x", "not an ARN"),
    ("123456789012", "arn:aws:s3:::bucket/x", "not an IAM ARN"),
])
def test_create_key_refuses_bad_arguments(tmp_path, account, principal, reason):
    out = subprocess.run([str(BIN), "admin", "create-key", "--data-dir", str(tmp_path / "d"),
                          "--account", account, "--principal", principal], capture_output=True, text=True)
    assert out.returncode != 0
    assert out.stdout == ""
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and reason in lines[0], out.stderr


def test_create_key_prints_exactly_one_json_object(tmp_path):
    out = subprocess.run([str(BIN), "admin", "create-key", "--data-dir", str(tmp_path / "d"),
                          "--account", "111122223333", "--principal", "arn:aws:iam::111122223333:user/ci"],
                         capture_output=True, text=True, check=True)
    doc = json.loads(out.stdout)
    assert set(doc) == {"AccessKeyId", "SecretAccessKey", "Account", "Principal"}
    assert doc["SecretAccessKey"] not in out.stderr


def test_sigterm_stops_cleanly_and_logs_hold_no_secrets(fresh_server):
    sc = fresh_server.client("servicecatalog")
    sc.create_portfolio(DisplayName="d", ProviderName="p")
    status, headers, _ = fresh_server.raw("servicecatalog", "ListPortfolios", {})
    assert status == 200
    fresh_server.raw("servicecatalog", "ListPortfolios", {}, secret="z" * 40)
    assert fresh_server.stop() == 0
    log = fresh_server.log_text()
    assert "shutting down" in log and "stopped" in log
    assert fresh_server.admin.secret not in log
    assert "Signature=" not in log and "AWS4-HMAC-SHA256" not in log
    assert "z" * 40 not in log
