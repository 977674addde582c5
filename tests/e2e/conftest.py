"""Starts the real provisiond binary on a free loopback port with a fresh data directory and
hands tests boto3 clients and raw signed requests against it."""

import configparser
import json
import os
import pathlib
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

import boto3
import botocore.auth
import botocore.awsrequest
import botocore.config
import botocore.credentials
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = pathlib.Path(os.environ.get("PROVISIOND_BIN", ROOT / "target" / "debug" / "provisiond"))
REGION = "us-east-1"
TARGET_PREFIX = {
    "servicecatalog": "AWS242ServiceCatalogService",
    "proton": "AwsProton20200720",
    "sqs": "AmazonSQS",
}
CONTENT_TYPE = {
    "servicecatalog": "application/x-amz-json-1.1",
    "proton": "application/x-amz-json-1.0",
    "sqs": "application/x-amz-json-1.0",
}


class Postgres:
    """A throwaway PostgreSQL server (scripts/postgres.sh), or a loud skip when PostgreSQL is
    not installed (an error under CI=true)."""

    def __init__(self, directory):
        self.dir = pathlib.Path(directory)
        script = ROOT / "scripts" / "postgres.sh"
        self.script = str(script)
        out = subprocess.run(["bash", self.script, "start", str(self.dir)], capture_output=True, text=True)
        if out.returncode == 3:
            if os.environ.get("CI") == "true":
                pytest.fail(f"PostgreSQL is required under CI=true: {out.stderr}")
            pytest.skip(f"SKIPPED LOUDLY: PostgreSQL is not installed: {out.stderr}")
        assert out.returncode == 0, out.stderr
        self.url = out.stdout.strip()

    def run(self, what):
        subprocess.run(["bash", self.script, what, str(self.dir)], check=True, capture_output=True)

    def psql(self, sql):
        """`sql`'s rows, one per line, from the server's psql as the postgres user."""
        psql = sorted(pathlib.Path("/usr/lib/postgresql").glob("*/bin/psql"))[-1]
        runas = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        out = subprocess.run(runas + [str(psql), "-At", "-d", self.url, "-c", sql],
                             capture_output=True, text=True, check=True)
        return out.stdout


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Key:
    def __init__(self, access_key_id, secret, account, principal):
        self.access_key_id = access_key_id
        self.secret = secret
        self.account = account
        self.principal = principal


class Server:
    """One provisiond process with its own data directory and log file."""

    def __init__(self, data_dir, args=(), env=None, store_args=()):
        """`store_args` (`--database-url …`, `--server-key-file …`) go to `serve` and to every
        `admin` command run through this object."""
        if not BIN.exists():
            raise RuntimeError(f"{BIN} does not exist: build it with `cargo build -p provisiond`")
        self.data_dir = pathlib.Path(data_dir)
        self.store_args = list(store_args)
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}.log"
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [str(BIN), "serve", "--listen", f"127.0.0.1:{self.port}", "--data-dir", str(self.data_dir),
             *self.store_args, *args],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )
        self.wait_healthy()
        self.admin = self.read_credentials()

    def wait_healthy(self, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"provisiond exited with {self.proc.returncode}: {self.log_text()}")
            try:
                with urllib.request.urlopen(self.endpoint + "/health", timeout=1) as r:
                    if r.status == 200:
                        return json.loads(r.read())
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.05)
        raise RuntimeError("provisiond did not become healthy")

    def read_credentials(self):
        parser = configparser.ConfigParser()
        parser.read(self.data_dir / "credentials")
        section = parser["provisiond"]
        return Key(section["aws_access_key_id"], section["aws_secret_access_key"], "000000000000",
                   "arn:aws:iam::000000000000:role/provisiond-admin")

    def create_key(self, account, principal, admin=False):
        args = [str(BIN), "admin", "create-key", "--data-dir", str(self.data_dir), *self.store_args,
                "--account", account, "--principal", principal]
        if admin:
            args.append("--admin")
        out = subprocess.run(args, capture_output=True, text=True, check=True)
        doc = json.loads(out.stdout)
        return Key(doc["AccessKeyId"], doc["SecretAccessKey"], doc["Account"], doc["Principal"])

    def admin_command(self, *args, check=True):
        """Runs `provisiond admin ARGS` on this server's store; the JSON lines it printed (or,
        with `check=False`, the finished process)."""
        out = subprocess.run([str(BIN), "admin", args[0], "--data-dir", str(self.data_dir), *self.store_args,
                              *args[1:]], capture_output=True, text=True)
        if not check:
            return out
        assert out.returncode == 0, out.stderr
        return [json.loads(line) for line in out.stdout.splitlines()]

    def client(self, service, key=None, region=REGION, validate=True):
        key = key or self.admin
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=region,
            aws_access_key_id=key.access_key_id,
            aws_secret_access_key=key.secret,
            config=botocore.config.Config(
                parameter_validation=validate,
                retries={"max_attempts": 1, "mode": "standard"},
            ),
        )

    def raw(self, service, operation, body, key=None, region=REGION, sign_service=None,
            sign=True, target=None, headers=None, secret=None):
        """Sends a hand-made request, signed with botocore's SigV4 signer, and returns
        (status, headers, parsed JSON body or None)."""
        key = key or self.admin
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        hdrs = {
            "Content-Type": CONTENT_TYPE.get(service, "application/x-amz-json-1.1"),
            "X-Amz-Target": target if target is not None else f"{TARGET_PREFIX[service]}.{operation}",
        }
        hdrs.update(headers or {})
        request = botocore.awsrequest.AWSRequest(method="POST", url=self.endpoint + "/", data=body, headers=hdrs)
        if sign:
            creds = botocore.credentials.Credentials(key.access_key_id, secret or key.secret)
            botocore.auth.SigV4Auth(creds, sign_service or service, region).add_auth(request)
        prepared = request.prepare()
        req = urllib.request.Request(self.endpoint + "/", data=body, method="POST", headers=dict(prepared.headers))
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                status, rh, data = r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            status, rh, data = e.code, dict(e.headers), e.read()
        parsed = json.loads(data) if data else None
        return status, {k.lower(): v for k, v in rh.items()}, parsed

    def log_text(self):
        if not self.log.closed:
            self.log.flush()
        return self.log_path.read_text()

    def stop(self, sig=signal.SIGTERM, timeout=15):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if not self.log.closed:
            self.log.close()
        return self.proc.returncode


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("provisiond") / "data")
    yield s
    s.stop()


@pytest.fixture
def fresh_server(tmp_path):
    s = Server(tmp_path / "data")
    yield s
    s.stop()


@pytest.fixture
def sc(server):
    return server.client("servicecatalog")
