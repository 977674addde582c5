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


def test_create_key_prints_exactly_one_json_object(fresh_server):
    out = subprocess.run([str(BIN), "admin", "create-key", "--data-dir", str(fresh_server.data_dir),
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


def admin(*args):
    return subprocess.run([str(BIN), "admin", *args], capture_output=True, text=True)


@pytest.mark.parametrize("command", [["create-key", "--account", "111122223333", "--principal",
                                      "arn:aws:iam::111122223333:user/ci"], ["list-keys"], ["delete-key", "AKIAXXXXXXXXXXXXXXXX"]])
def test_admin_commands_refuse_a_directory_that_is_not_a_servers(tmp_path, command):
    (tmp_path / "empty").mkdir()
    for d in (tmp_path / "missing", tmp_path / "empty"):
        out = admin(command[0], "--data-dir", str(d), *command[1:])
        assert out.returncode != 0 and out.stdout == ""
        assert "not a provisiond data directory" in out.stderr and "--data-dir" in out.stderr, out.stderr
    assert not (tmp_path / "missing").exists(), "nothing was created"
    assert list((tmp_path / "empty").iterdir()) == []


def test_list_keys_and_delete_key_while_the_server_runs(fresh_server):
    s = fresh_server
    platform = s.create_key("123456789012", "arn:aws:iam::123456789012:role/platform", admin=True)
    engine = s.create_key("123456789012", "arn:aws:iam::123456789012:role/engine")
    other = s.create_key("210987654321", "arn:aws:iam::210987654321:user/ci")
    out = admin("list-keys", "--data-dir", str(s.data_dir))
    assert out.returncode == 0, out.stderr
    listed = [json.loads(line) for line in out.stdout.splitlines()]
    assert [k["AccessKeyId"] for k in listed] == [s.admin.access_key_id, platform.access_key_id,
                                                   engine.access_key_id, other.access_key_id]
    assert set(listed[1]) == {"AccessKeyId", "Account", "Principal", "Admin", "Created"}
    assert listed[1]["Admin"] is True and listed[2]["Admin"] is False and listed[2]["Principal"].endswith("role/engine")
    for key in (s.admin, platform, engine, other):
        assert key.secret not in out.stdout + out.stderr
    mine = [json.loads(line) for line in admin("list-keys", "--data-dir", str(s.data_dir), "--account", "123456789012").stdout.splitlines()]
    assert [k["AccessKeyId"] for k in mine] == [platform.access_key_id, engine.access_key_id]

    # The key is used (and so cached by the server), then deleted from another process.
    sc = s.client("servicecatalog", engine)
    sqs = s.client("sqs", engine)
    assert sc.list_portfolios()["PortfolioDetails"] == []
    status, _, _ = s.raw("servicecatalog", "NotifyProvisionProductEngineWorkflowResult", {}, key=engine)
    assert status == 400, "the cached key still works before the delete"
    out = admin("delete-key", "--data-dir", str(s.data_dir), engine.access_key_id)
    assert out.returncode == 0 and json.loads(out.stdout) == {"AccessKeyId": engine.access_key_id, "Deleted": True}
    for service, operation in [("servicecatalog", "ListPortfolios"), ("servicecatalog", "NotifyProvisionProductEngineWorkflowResult"),
                               ("sqs", "ListQueues"), ("proton", "ListEnvironments")]:
        status, headers, answer = s.raw(service, operation, {}, key=engine)
        assert status == 403 or status == 400, (operation, status, answer)
        assert answer["__type"].endswith("UnrecognizedClientException"), (operation, answer)
    from test_objects import s3_client
    import botocore.exceptions
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3_client(s, engine).list_buckets()
    assert e.value.response["Error"]["Code"] == "InvalidAccessKeyId"
    # The other keys are untouched; a second delete says there is no such key.
    assert s.client("servicecatalog", platform).list_portfolios()["PortfolioDetails"] == []
    again = admin("delete-key", "--data-dir", str(s.data_dir), engine.access_key_id)
    assert again.returncode != 0 and "no access key" in again.stderr
    assert engine.access_key_id not in admin("list-keys", "--data-dir", str(s.data_dir)).stdout
