"""The README's walkthroughs are scripts in examples/; these tests run them as a newcomer would,
against a fresh server, so the README cannot rot. They need the AWS CLI (in the test venv),
git and terraform (skipped loudly without it, an error under CI)."""

import os
import pathlib
import subprocess
import sys

import pytest

from conftest import Server
from test_engine_terraform import TERRAFORM

EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "examples"

pytestmark = pytest.mark.skipif(TERRAFORM is None, reason="terraform is not installed (see test_engine_terraform.py)")


def run_example(script, server, **env):
    venv_bin = str(pathlib.Path(sys.executable).parent)
    path = os.pathsep.join([venv_bin, str(pathlib.Path(TERRAFORM).parent), os.environ.get("PATH", "")])
    out = subprocess.run(["bash", str(EXAMPLES / script)], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PATH": path, "DATA_DIR": str(server.data_dir),
                              "ENDPOINT": server.endpoint, **env})
    assert out.returncode == 0, f"{script} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out.stdout


def test_the_service_catalog_walkthrough(tmp_path):
    server = Server(tmp_path / "data", args=["--engine", "terraform", "--terraform", TERRAFORM])
    try:
        out = run_example("service-catalog.sh", server)
        assert "'OutputValue': 'hello world'" in out and "'OutputValue': '4'" in out, out
        assert "outputs after update:" in out and "'OutputValue': '10'" in out, out
        assert "terminated pp-" in out
    finally:
        server.stop()


def test_the_proton_walkthrough(tmp_path):
    repo = tmp_path / "provisiond-infra.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(repo)], check=True)
    server = Server(tmp_path / "data", args=["--git-repository", f"acme/infra={repo}"])
    try:
        out = run_example("proton.sh", server, REPO=str(repo))
        assert "Update requested for Proton - dev" in out
        assert out.strip().splitlines()[-2] == "SUCCEEDED", out[-500:]
        assert "'valueString': 'vpc-main'" in out.strip().splitlines()[-1]
    finally:
        server.stop()
