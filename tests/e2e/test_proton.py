"""Proton self-managed provisioning through boto3, the AWS CLI and real git repositories
(SPEC §7): a template bundle uploaded with S3, registered and published; an environment whose
deployments are committed to a bare repository and to one with a working tree; the pipeline's
NotifyResourceDeploymentStatusChange through `aws proton`; updates, failures, cancel, delete;
and a bundle kept in the object store when no repository is mapped."""

import io
import json
import os
import random
import re
import subprocess
import tarfile

import botocore.exceptions
import pytest

from conftest import Server
from test_objects import s3_client

MANIFEST = """infrastructure:
  templates:
    - file: "*"
      rendering_engine: hcl
      template_language: terraform
"""

SCHEMA = """schema:
  format:
    openapi: "3.0.0"
  environment_input_type: "EnvInput"
  types:
    EnvInput:
      type: object
      properties:
        vpc_cidr:
          type: string
          default: "10.0.0.0/16"
        size:
          type: integer
          minimum: 1
      required:
        - size
"""

MAIN_TF = """output "cidr" { value = var.environment.inputs.vpc_cidr }
"""


def tar_gz(files):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def git(repo, *args):
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout.strip()


def code(excinfo):
    return excinfo.value.response["Error"]["Code"], excinfo.value.response["Error"]["Message"]


class Platform:
    """A provisiond with two git repositories mapped, an admin, a pipeline key and a
    published environment template."""

    def __init__(self, tmp_path):
        self.bare = tmp_path / "env-bare.git"
        subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(self.bare)], check=True)
        self.work = tmp_path / "env-work"
        subprocess.run(["git", "init", "-q", "-b", "main", str(self.work)], check=True)
        (self.work / "environments").mkdir()
        (self.work / "environments" / "README.md").write_text("environments live here\n")
        git(self.work, "add", ".")
        git(self.work, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "init")
        self.server = Server(tmp_path / "data", args=[
            "--git-repository", f"acme/env-bare={self.bare}",
            "--git-repository", f"acme/env-work={self.work}"])
        self.account = "".join(random.choice("0123456789") for _ in range(12))
        a = self.account
        self.admin_key = self.server.create_key(a, f"arn:aws:iam::{a}:role/platform", admin=True)
        self.pipeline_key = self.server.create_key(a, f"arn:aws:iam::{a}:role/pipeline")
        self.proton = self.server.client("proton", self.admin_key)
        self.pipeline = self.server.client("proton", self.pipeline_key)
        self.s3 = s3_client(self.server, self.admin_key)
        self.s3.create_bucket(Bucket="templates")
        self.s3.put_object(Bucket="templates", Key="vpc/v1.tar.gz", Body=tar_gz({
            "infrastructure/manifest.yaml": MANIFEST, "infrastructure/main.tf": MAIN_TF,
            "schema/schema.yaml": SCHEMA}))
        self.proton.create_environment_template(name="vpc", displayName="VPC")
        v = self.proton.create_environment_template_version(
            templateName="vpc", source={"s3": {"bucket": "templates", "key": "vpc/v1.tar.gz"}})["environmentTemplateVersion"]
        assert (v["majorVersion"], v["minorVersion"], v["status"]) == ("1", "0", "DRAFT")
        self.proton.update_environment_template_version(templateName="vpc", majorVersion="1", minorVersion="0", status="PUBLISHED")
        for name in ("acme/env-bare", "acme/env-work", "acme/unmapped"):
            self.proton.create_repository(provider="GITHUB", name=name,
                                          connectionArn=f"arn:aws:codestar-connections:us-east-1:{a}:connection/c1")

    def create_env(self, name, repo="acme/env-bare", spec="proton: EnvironmentSpec\nspec:\n  size: 2\n"):
        return self.proton.create_environment(
            name=name, templateName="vpc", templateMajorVersion="1", spec=spec,
            provisioningRepository={"provider": "GITHUB", "name": repo, "branch": "main"})["environment"]

    def env(self, name):
        return self.proton.get_environment(name=name)["environment"]

    def aws(self, *args, key=None):
        key = key or self.pipeline_key
        env = {**os.environ, "AWS_ACCESS_KEY_ID": key.access_key_id, "AWS_SECRET_ACCESS_KEY": key.secret,
               "AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"}
        aws = os.path.join(os.path.dirname(os.path.realpath(__import__("sys").executable)), "aws")
        return subprocess.run([aws, "--endpoint-url", self.server.endpoint, *args], env=env, capture_output=True, text=True)

    def stop(self):
        self.server.stop()


@pytest.fixture
def platform(tmp_path):
    p = Platform(tmp_path)
    yield p
    p.stop()


def test_environment_lifecycle_through_a_bare_repository(platform):
    p = platform
    env = p.create_env("dev")
    assert env["deploymentStatus"] == "IN_PROGRESS"
    assert env["arn"] == f"arn:aws:proton:us-east-1:{p.account}:environment/dev"
    assert env["provisioningRepository"]["arn"] == f"arn:aws:proton:us-east-1:{p.account}:repository/github:acme/env-bare"
    first = env["lastAttemptedDeploymentId"]

    # The commit the pipeline sees.
    assert git(p.bare, "log", "-1", "--format=%s", "main") == "Update requested for Proton - dev"
    assert f"Proton-Deployment-Id: {first}" in git(p.bare, "log", "-1", "--format=%b", "main")
    assert sorted(git(p.bare, "ls-tree", "-r", "--name-only", "main").splitlines()) == [
        "dev/.proton/deployment-metadata.json", "dev/main.tf", "dev/proton.auto.tfvars.json",
        "dev/proton.environment.variables.tf"]
    tfvars = json.loads(git(p.bare, "show", "main:dev/proton.auto.tfvars.json"))
    assert tfvars["environment"] == {"name": "dev", "inputs": {"size": 2, "vpc_cidr": "10.0.0.0/16"}}
    assert tfvars["proton_tags"]["proton:environment"] == env["arn"]
    metadata = json.loads(git(p.bare, "show", "main:dev/.proton/deployment-metadata.json"))
    assert metadata["deploymentId"] == first and metadata["isResourceDeleted"] is False
    assert metadata["resourceMetadata"]["arn"] == env["arn"]
    assert metadata["resourceMetadata"]["templateArn"] == f"arn:aws:proton:us-east-1:{p.account}:environment-template/vpc"

    # The pipeline reports with the AWS CLI, as the public sample workflow does.
    out = p.aws("proton", "notify-resource-deployment-status-change", "--resource-arn", metadata["resourceMetadata"]["arn"],
                "--deployment-id", metadata["deploymentId"], "--status", "IN_PROGRESS")
    assert out.returncode == 0, out.stderr
    out = p.aws("proton", "notify-resource-deployment-status-change", "--resource-arn", env["arn"],
                "--deployment-id", first, "--status", "SUCCEEDED",
                "--outputs", json.dumps([{"key": "cidr", "valueString": "10.0.0.0/16"}]))
    assert out.returncode == 0, out.stderr
    got = p.env("dev")
    assert got["deploymentStatus"] == "SUCCEEDED" and got["lastSucceededDeploymentId"] == first
    assert p.proton.list_environment_outputs(environmentName="dev")["outputs"] == [{"key": "cidr", "valueString": "10.0.0.0/16"}]
    deployment = p.proton.get_deployment(id=first)["deployment"]
    assert deployment["deploymentStatus"] == "SUCCEEDED" and deployment["targetResourceType"] == "ENVIRONMENT"
    assert deployment["targetState"]["environment"]["templateName"] == "vpc"
    assert "initialState" not in deployment or not deployment["initialState"]
    # A retried success is harmless; the opposite status is not.
    p.pipeline.notify_resource_deployment_status_change(resourceArn=env["arn"], deploymentId=first, status="SUCCEEDED")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        p.pipeline.notify_resource_deployment_status_change(resourceArn=env["arn"], deploymentId=first, status="FAILED")
    assert code(e)[0] == "ConflictException"

    # An update that fails: the environment keeps its last succeeded spec; a second update waits.
    updated = p.proton.update_environment(name="dev", deploymentType="CURRENT_VERSION",
                                          spec="proton: EnvironmentSpec\nspec:\n  size: 5\n")["environment"]
    second = updated["lastAttemptedDeploymentId"]
    assert second != first and updated["deploymentStatus"] == "IN_PROGRESS"
    assert json.loads(git(p.bare, "show", "main:dev/proton.auto.tfvars.json"))["environment"]["inputs"]["size"] == 5
    with pytest.raises(botocore.exceptions.ClientError) as e:
        p.proton.update_environment(name="dev", deploymentType="CURRENT_VERSION", spec="spec:\n  size: 6\n")
    assert code(e)[0] == "ConflictException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        p.pipeline.notify_resource_deployment_status_change(resourceArn=env["arn"], deploymentId=first, status="SUCCEEDED")
    assert code(e)[0] == "ConflictException" and "not the current deployment" in code(e)[1]
    p.pipeline.notify_resource_deployment_status_change(resourceArn=env["arn"], status="FAILED", statusMessage="apply failed")
    got = p.env("dev")
    assert got["deploymentStatus"] == "FAILED" and got["deploymentStatusMessage"] == "apply failed"
    assert "size: 2" in got["spec"] and got["lastSucceededDeploymentId"] == first
    assert p.proton.get_deployment(id=second)["deployment"]["initialState"]["environment"]["spec"] == got["spec"]

    # A cancel.
    third = p.proton.update_environment(name="dev", deploymentType="CURRENT_VERSION",
                                        spec="proton: EnvironmentSpec\nspec:\n  size: 7\n")["environment"]["lastAttemptedDeploymentId"]
    cancelled = p.proton.cancel_environment_deployment(environmentName="dev")["environment"]
    assert cancelled["deploymentStatus"] == "CANCELLED"
    d = p.proton.get_deployment(id=third)["deployment"]
    assert d["deploymentStatus"] == "CANCELLED" and d["deploymentStatusMessage"] == "User initiated cancellation."
    with pytest.raises(botocore.exceptions.ClientError) as e:
        p.pipeline.notify_resource_deployment_status_change(resourceArn=env["arn"], status="SUCCEEDED")
    assert code(e)[0] == "ConflictException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        p.proton.cancel_environment_deployment(environmentName="dev")
    assert code(e)[0] == "ConflictException"
    ids = [d["id"] for d in p.proton.list_deployments(environmentName="dev")["deployments"]]
    assert ids == [third, second, first]

    # A delete through a DELETE_IN_PROGRESS deployment.
    deleting = p.proton.delete_environment(name="dev")["environment"]
    assert deleting["deploymentStatus"] == "DELETE_IN_PROGRESS"
    delete_id = deleting["lastAttemptedDeploymentId"]
    assert json.loads(git(p.bare, "show", "main:dev/.proton/deployment-metadata.json"))["isResourceDeleted"] is True
    p.pipeline.notify_resource_deployment_status_change(resourceArn=env["arn"], deploymentId=delete_id, status="SUCCEEDED")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        p.proton.get_environment(name="dev")
    assert code(e)[0] == "ResourceNotFoundException"
    assert p.proton.get_deployment(id=delete_id)["deployment"]["deploymentStatus"] == "DELETE_COMPLETE"
    p.pipeline.notify_resource_deployment_status_change(resourceArn=env["arn"], deploymentId=delete_id, status="SUCCEEDED")
    assert len(git(p.bare, "log", "--format=%H", "main").splitlines()) == 4, "create, update, delete (the cancelled one was committed before its cancel)"


def test_working_tree_repository_and_unmapped_repository(platform):
    p = platform
    env = p.create_env("staging", repo="acme/env-work")
    assert git(p.work, "log", "-1", "--format=%s") == "Update requested for Proton - environments/staging"
    tfvars = json.loads((p.work / "environments" / "staging" / "proton.auto.tfvars.json").read_text())
    assert tfvars["environment"]["name"] == "staging"
    assert git(p.work, "status", "--porcelain") == "", "the working tree follows the branch"
    assert (p.work / "environments" / "README.md").exists()

    other = p.create_env("qa", repo="acme/unmapped")
    body = p.s3.get_object(Bucket="provisiond-deployments", Key=f"{other['lastAttemptedDeploymentId']}.tar.gz")["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        assert "proton.auto.tfvars.json" in tar.getnames()
    assert env["deploymentStatus"] == "IN_PROGRESS"


def test_specs_and_references_are_checked(platform):
    p = platform
    for spec, needle in [("spec:\n  size: 2\n  colour: red\n", "colour"),
                         ("spec:\n  size: two\n", "size must be of type integer"),
                         ("spec:\n  vpc_cidr: x\n", "size is required"),
                         ("proton: ServiceSpec\n", "EnvironmentSpec")]:
        with pytest.raises(botocore.exceptions.ClientError) as e:
            p.create_env("bad", spec=spec)
        assert code(e)[0] == "ValidationException" and needle in code(e)[1], code(e)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        p.create_env("bad", repo="acme/never-registered")
    assert code(e)[0] == "ResourceNotFoundException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        p.pipeline.create_environment(name="x", templateName="vpc", templateMajorVersion="1", spec="spec: {size: 1}",
                                      provisioningRepository={"provider": "GITHUB", "name": "acme/env-bare", "branch": "main"})
    assert code(e)[0] == "AccessDeniedException"
    assert p.proton.list_environments()["environments"] == []
    assert subprocess.run(["git", "-C", str(p.bare), "rev-parse", "--verify", "-q", "main"]).returncode != 0, "refused environments commit nothing"
    p.create_env("ok")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        p.create_env("ok")
    assert code(e)[0] == "ConflictException"
    # A draft version cannot be used; publishing makes it recommended.
    p.proton.create_environment_template_version(templateName="vpc", majorVersion="1",
                                                 source={"s3": {"bucket": "templates", "key": "vpc/v1.tar.gz"}})
    assert p.proton.get_environment_template(name="vpc")["environmentTemplate"]["recommendedVersion"] == "1.0"
    p.proton.update_environment_template_version(templateName="vpc", majorVersion="1", minorVersion="1", status="PUBLISHED")
    assert p.proton.get_environment_template(name="vpc")["environmentTemplate"]["recommendedVersion"] == "1.1"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        p.proton.delete_environment_template_version(templateName="vpc", majorVersion="1", minorVersion="0")
    assert code(e)[0] == "ConflictException"
    p.s3.put_object(Bucket="templates", Key="broken.tar.gz", Body=tar_gz({"infrastructure/main.tf": ""}))
    with pytest.raises(botocore.exceptions.ClientError) as e:
        p.proton.create_environment_template_version(templateName="vpc", source={"s3": {"bucket": "templates", "key": "broken.tar.gz"}})
    assert code(e)[0] == "ValidationException" and "manifest.yaml" in code(e)[1]
    p.s3.put_object(Bucket="templates", Key="cfn.tar.gz", Body=tar_gz({
        "infrastructure/manifest.yaml": MANIFEST.replace("terraform", "cloudformation"),
        "infrastructure/main.tf": "", "schema/schema.yaml": SCHEMA}))
    with pytest.raises(botocore.exceptions.ClientError) as e:
        p.proton.create_environment_template_version(templateName="vpc", source={"s3": {"bucket": "templates", "key": "cfn.tar.gz"}})
    assert code(e)[0] == "ValidationException" and "the accepted value is terraform" in code(e)[1], code(e)


def test_notify_finds_only_this_accounts_resources(platform):
    p = platform
    env = p.create_env("prod")
    other_account = "".join(random.choice("0123456789") for _ in range(12))
    stranger = p.server.client("proton", p.server.create_key(other_account, f"arn:aws:iam::{other_account}:role/x"))
    for client, arn, deployment in [
        (stranger, env["arn"], None),
        (p.pipeline, env["arn"].replace("environment/prod", "environment/nope"), None),
        (p.pipeline, env["arn"].replace("environment/prod", "service/s/pipeline"), None),
        (p.pipeline, env["arn"], "00000000-0000-4000-8000-000000000000"),
    ]:
        kwargs = {"resourceArn": arn, "status": "SUCCEEDED"}
        if deployment:
            kwargs["deploymentId"] = deployment
        with pytest.raises(botocore.exceptions.ClientError) as e:
            client.notify_resource_deployment_status_change(**kwargs)
        assert code(e)[0] == "ResourceNotFoundException", arn
    assert p.env("prod")["deploymentStatus"] == "IN_PROGRESS"


SERVICE_MANIFEST = MANIFEST.replace("infrastructure:", "infrastructure:", 1)

SERVICE_SCHEMA = """schema:
  format:
    openapi: "3.0.0"
  service_input_type: "SvcInput"
  types:
    SvcInput:
      type: object
      properties:
        port:
          type: number
          default: 8080
        image:
          type: string
      required: [image]
"""


def publish_service_template(p):
    p.s3.put_object(Bucket="templates", Key="api/v1.tar.gz", Body=tar_gz({
        "instance_infrastructure/manifest.yaml": SERVICE_MANIFEST,
        "instance_infrastructure/main.tf": 'output "url" { value = "http://${var.service_instance.name}" }\n',
        "schema/schema.yaml": SERVICE_SCHEMA}))
    p.proton.create_service_template(name="api")
    v = p.proton.create_service_template_version(
        templateName="api", source={"s3": {"bucket": "templates", "key": "api/v1.tar.gz"}},
        compatibleEnvironmentTemplates=[{"templateName": "vpc", "majorVersion": "1"}],
        supportedComponentSources=["DIRECTLY_DEFINED"])["serviceTemplateVersion"]
    assert v["compatibleEnvironmentTemplates"] == [{"templateName": "vpc", "majorVersion": "1"}]
    p.proton.update_service_template_version(templateName="api", majorVersion="1", minorVersion="0", status="PUBLISHED")


def succeed(p, arn, outputs=()):
    p.pipeline.notify_resource_deployment_status_change(
        resourceArn=arn, status="SUCCEEDED", outputs=[{"key": k, "valueString": v} for k, v in outputs])


def test_service_instances_see_environment_outputs_and_components_deploy(platform):
    p = platform
    env = p.proton.create_environment(
        name="dev", templateName="vpc", templateMajorVersion="1", spec="spec:\n  size: 2\n",
        componentRoleArn=f"arn:aws:iam::{p.account}:role/components",
        provisioningRepository={"provider": "GITHUB", "name": "acme/env-bare", "branch": "main"})["environment"]
    succeed(p, env["arn"], [("vpc_id", "vpc-123")])
    publish_service_template(p)

    spec = "proton: ServiceSpec\ninstances:\n  - name: one\n    environment: dev\n    spec:\n      image: nginx\n"
    service = p.proton.create_service(name="web", templateName="api", templateMajorVersion="1", spec=spec)["service"]
    assert service["status"] == "ACTIVE" and service["arn"] == f"arn:aws:proton:us-east-1:{p.account}:service/web"
    instance = p.proton.get_service_instance(serviceName="web", name="one")["serviceInstance"]
    assert instance["deploymentStatus"] == "IN_PROGRESS" and instance["environmentName"] == "dev"
    assert git(p.bare, "log", "-1", "--format=%s", "main") == "Update requested for Proton - dev/web-one"
    tfvars = json.loads(git(p.bare, "show", "main:dev/web-one/proton.auto.tfvars.json"))
    assert tfvars["environment"] == {"account_id": p.account, "name": "dev", "outputs": {"vpc_id": "vpc-123"}}
    assert tfvars["service"] == {"name": "web"}
    assert tfvars["service_instance"] == {"name": "one", "inputs": {"image": "nginx", "port": 8080}}
    assert "variable \"service_instance\"" in git(p.bare, "show", "main:dev/web-one/proton.service_instance.variables.tf")
    metadata = json.loads(git(p.bare, "show", "main:dev/web-one/.proton/deployment-metadata.json"))
    assert metadata["resourceMetadata"]["environmentArn"] == env["arn"]
    assert metadata["resourceMetadata"]["arn"] == instance["arn"] == f"arn:aws:proton:us-east-1:{p.account}:service/web/service-instance/one"
    out = p.aws("proton", "notify-resource-deployment-status-change", "--resource-arn", instance["arn"],
                "--deployment-id", metadata["deploymentId"], "--status", "SUCCEEDED",
                "--outputs", json.dumps([{"key": "url", "valueString": "http://one"}]))
    assert out.returncode == 0, out.stderr
    assert p.proton.list_service_instance_outputs(serviceName="web", serviceInstanceName="one")["outputs"] == [
        {"key": "url", "valueString": "http://one"}]

    # A second instance through CreateServiceInstance; an incompatible or unknown environment is refused.
    p.proton.create_service_instance(serviceName="web", name="two", spec="environment: dev\nspec:\n  image: redis\n")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        p.proton.create_service_instance(serviceName="web", name="three", spec="environment: nowhere\nspec:\n  image: x\n")
    assert code(e)[0] == "ResourceNotFoundException"
    names = [i["name"] for i in p.proton.list_service_instances(serviceName="web", sortBy="name", sortOrder="DESCENDING")["serviceInstances"]]
    assert names == ["two", "one"]
    # AWS's default order is by service, then instance name; filters of one key are alternatives.
    listed = p.proton.list_service_instances()["serviceInstances"]
    assert [(i["serviceName"], i["name"]) for i in listed] == [("web", "one"), ("web", "two")]
    page = p.proton.list_service_instances(maxResults=1, sortBy="createdAt", sortOrder="DESCENDING")
    assert [i["name"] for i in page["serviceInstances"]] == ["two"]
    rest = p.proton.list_service_instances(maxResults=1, sortBy="createdAt", sortOrder="DESCENDING",
                                           nextToken=page["nextToken"])
    assert [i["name"] for i in rest["serviceInstances"]] == ["one"] and "nextToken" not in rest
    filtered = p.proton.list_service_instances(filters=[
        {"key": "deploymentStatus", "value": "IN_PROGRESS"}, {"key": "deploymentStatus", "value": "FAILED"},
        {"key": "createdAtAfter", "value": "2020-01-01T00:00:00.000Z"},
        {"key": "deployedTemplateVersionStatus", "value": "PUBLISHED"}])["serviceInstances"]
    assert [i["name"] for i in filtered] == ["two"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        p.proton.list_service_instances(filters=[{"key": "createdAtBefore", "value": "last week"}])
    assert code(e)[0] == "ValidationException"
    succeed(p, f"arn:aws:proton:us-east-1:{p.account}:service/web/service-instance/two")

    # A component attached to instance one.
    component = p.proton.create_component(
        name="cache", serviceName="web", serviceInstanceName="one",
        manifest=MANIFEST, templateFile='output "endpoint" { value = "cache.${var.environment.name}" }\n')["component"]
    assert component["environmentName"] == "dev" and component["deploymentStatus"] == "IN_PROGRESS"
    assert sorted(git(p.bare, "ls-tree", "-r", "--name-only", "main", "dev/cache").splitlines()) == [
        "dev/cache/.proton/deployment-metadata.json", "dev/cache/main.tf", "dev/cache/proton.auto.tfvars.json",
        "dev/cache/proton.component.variables.tf"]
    ctfvars = json.loads(git(p.bare, "show", "main:dev/cache/proton.auto.tfvars.json"))
    assert ctfvars["service_instance"]["inputs"]["image"] == "nginx" and ctfvars["component"] == {"name": "cache"}
    with pytest.raises(botocore.exceptions.ClientError) as e:
        p.proton.update_service_instance(serviceName="web", name="one", deploymentType="CURRENT_VERSION",
                                         spec="environment: dev\nspec:\n  image: httpd\n")
    assert code(e)[0] == "ConflictException", "an attached component is deploying"
    succeed(p, component["arn"], [("endpoint", "cache.dev")])
    assert p.proton.list_component_outputs(componentName="cache")["outputs"] == [{"key": "endpoint", "valueString": "cache.dev"}]

    # An instance update that fails keeps the instance's last succeeded spec.
    updated = p.proton.update_service_instance(serviceName="web", name="one", deploymentType="CURRENT_VERSION",
                                               spec="environment: dev\nspec:\n  image: httpd\n")["serviceInstance"]
    assert updated["deploymentStatus"] == "IN_PROGRESS"
    p.pipeline.notify_resource_deployment_status_change(resourceArn=instance["arn"], status="FAILED", statusMessage="boom")
    failed = p.proton.get_service_instance(serviceName="web", name="one")["serviceInstance"]
    assert failed["deploymentStatus"] == "FAILED" and "nginx" in failed["spec"]

    # Cancel a component deployment; delete the component, then the service.
    p.proton.update_component(name="cache", deploymentType="CURRENT_VERSION", templateFile="# v2\n")
    assert p.proton.cancel_component_deployment(componentName="cache")["component"]["deploymentStatus"] == "CANCELLED"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        p.proton.delete_service(name="web")
    assert code(e)[0] == "ConflictException", "a component is attached"
    deleting = p.proton.delete_component(name="cache")["component"]
    assert deleting["deploymentStatus"] == "DELETE_IN_PROGRESS"
    succeed(p, component["arn"])
    assert p.proton.list_components()["components"] == []
    assert p.proton.delete_service(name="web")["service"]["status"] == "DELETE_IN_PROGRESS"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        p.proton.delete_environment(name="dev")
    assert code(e)[0] == "ConflictException", "instances still run in dev"
    for name in ("one", "two"):
        meta = json.loads(git(p.bare, "show", f"main:dev/web-{name}/.proton/deployment-metadata.json"))
        assert meta["isResourceDeleted"] is True
        succeed(p, f"arn:aws:proton:us-east-1:{p.account}:service/web/service-instance/{name}")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        p.proton.get_service(name="web")
    assert code(e)[0] == "ResourceNotFoundException"
    assert p.proton.delete_environment(name="dev")["environment"]["deploymentStatus"] == "DELETE_IN_PROGRESS"


UUID = "0f8e2a4c-1b3d-4e5f-8a9b-0c1d2e3f4a5b"


@pytest.mark.parametrize("body,path,rule", [
    ({}, "resourceArn", "Member must not be null"),
    ({"resourceArn": ""}, "resourceArn", "length greater than or equal to 1"),
    ({"resourceArn": "arn:aws:proton:us-east-1:123456789012:environment/" + "e" * 160}, "resourceArn", "length less than or equal to 200"),
    ({"resourceArn": "not-an-arn"}, "resourceArn", "regular expression pattern"),
    ({"resourceArn": "arn:aws:proton:us-east-1:12345:environment/dev"}, "resourceArn", "regular expression pattern"),
    ({"deploymentId": UUID.upper()}, "deploymentId", "regular expression pattern"),
    ({"deploymentId": "not-a-uuid"}, "deploymentId", "regular expression pattern"),
    ({"status": "DONE"}, "status", "enum value set: [IN_PROGRESS, FAILED, SUCCEEDED]"),
    ({"status": "DELETE_COMPLETE"}, "status", "enum value set"),
    ({"outputs": [{"key": f"k{i}", "valueString": "v"} for i in range(51)]}, "outputs", "length less than or equal to 50"),
    ({"outputs": [{"key": "", "valueString": "v"}]}, "outputs.1.member.key", "length greater than or equal to 1"),
    ({"outputs": [{"key": "k" * 1025, "valueString": "v"}]}, "outputs.1.member.key", "length less than or equal to 1024"),
    ({"outputs": [{"key": "k", "valueString": ""}]}, "outputs.1.member.valueString", "length greater than or equal to 1"),
    ({"outputs": [{"key": "k", "valueString": "s" * 1025}]}, "outputs.1.member.valueString", "length less than or equal to 1024"),
    ({"statusMessage": "m" * 5001}, "statusMessage", "length less than or equal to 5000"),
])
def test_notify_constraint_violations_change_nothing(platform, body, path, rule):
    p = platform
    env = p.create_env("val")
    before = (p.env("val"), p.proton.get_deployment(id=env["lastAttemptedDeploymentId"])["deployment"])
    request = {"resourceArn": env["arn"], "status": "SUCCEEDED", **body}
    if body == {}:
        del request["resourceArn"]
    status, headers, answer = p.server.raw("proton", "NotifyResourceDeploymentStatusChange", request, key=p.pipeline_key)
    assert status == 400 and answer["__type"] == "ValidationException", answer
    assert headers["x-amzn-errortype"] == "ValidationException"
    assert f"at '{path}'" in answer["message"] and rule in answer["message"], answer["message"]
    assert re.match(r"\d validation errors? detected: ", answer["message"]), answer["message"]
    for secret in ("s" * 1025, "m" * 5001):
        assert secret not in answer["message"], "sensitive values are never echoed"
    assert (p.env("val"), p.proton.get_deployment(id=env["lastAttemptedDeploymentId"])["deployment"]) == before


def test_status_messages_and_outputs_never_reach_the_log(platform):
    p = platform
    env = p.create_env("quiet")
    p.pipeline.notify_resource_deployment_status_change(
        resourceArn=env["arn"], status="IN_PROGRESS", statusMessage="s3cr3t-message",
        outputs=[{"key": "password", "valueString": "s3cr3t-value"}])
    status, _, _ = p.server.raw("proton", "NotifyResourceDeploymentStatusChange",
                                {"resourceArn": env["arn"], "statusMessage": "s3cr3t-long" * 500}, key=p.pipeline_key)
    assert status == 400
    p.pipeline.notify_resource_deployment_status_change(resourceArn=env["arn"], status="SUCCEEDED")
    assert p.proton.list_environment_outputs(environmentName="quiet")["outputs"] == [{"key": "password", "valueString": "s3cr3t-value"}]
    log = p.server.log_text()
    assert "s3cr3t" not in log and "NotifyResourceDeploymentStatusChange" in log


def test_tags_and_account_settings(platform):
    p = platform
    env = p.create_env("tagged")
    arn = env["arn"]
    assert p.proton.list_tags_for_resource(resourceArn=arn)["tags"] == []
    p.proton.tag_resource(resourceArn=arn, tags=[{"key": "team", "value": "net"}, {"key": "tier", "value": "1"}])
    p.proton.tag_resource(resourceArn=arn, tags=[{"key": "tier", "value": "2"}])
    assert p.proton.list_tags_for_resource(resourceArn=arn)["tags"] == [{"key": "team", "value": "net"}, {"key": "tier", "value": "2"}]
    p.proton.untag_resource(resourceArn=arn, tagKeys=["team"])
    assert p.proton.list_tags_for_resource(resourceArn=arn)["tags"] == [{"key": "tier", "value": "2"}]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        p.proton.tag_resource(resourceArn=arn.replace("tagged", "nope"), tags=[{"key": "a", "value": "b"}])
    assert code(e)[0] == "ResourceNotFoundException"

    assert p.proton.get_account_settings()["accountSettings"] == {}
    settings = p.proton.update_account_settings(
        pipelineProvisioningRepository={"provider": "GITHUB", "name": "acme/env-bare", "branch": "pipelines"},
        pipelineServiceRoleArn=f"arn:aws:iam::{p.account}:role/pipeline")["accountSettings"]
    assert settings["pipelineProvisioningRepository"]["arn"].endswith(":repository/github:acme/env-bare")
    assert p.proton.get_account_settings()["accountSettings"]["pipelineServiceRoleArn"].endswith(":role/pipeline")
    p.proton.update_account_settings(deletePipelineProvisioningRepository=True, pipelineServiceRoleArn="")
    assert p.proton.get_account_settings()["accountSettings"] == {}
    with pytest.raises(botocore.exceptions.ClientError) as e:
        p.pipeline.update_account_settings(pipelineServiceRoleArn="")
    assert code(e)[0] == "AccessDeniedException"
