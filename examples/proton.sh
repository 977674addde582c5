#!/usr/bin/env bash
# Proton self-managed provisioning from nothing to a deployed environment, with the AWS CLI, git
# and terraform. First a bare git repository for deployments and a server that commits to it:
#
#   git init --bare -b main provisiond-infra.git
#   cargo run --release -p provisiond -- serve --git-repository acme/infra=$PWD/provisiond-infra.git
#   bash examples/proton.sh
#
# The script plays both sides: the platform team (template, repository, environment) and the
# pipeline (find the commit, run terraform in its folder, notify). Set DATA_DIR, ENDPOINT and
# REPO (default provisiond-infra.git) to run it elsewhere; tests/e2e/test_examples.py runs it.
set -euo pipefail

DATA_DIR="${DATA_DIR:-provisiond-data}"
ENDPOINT="${ENDPOINT:-http://127.0.0.1:8787}"
REPO="${REPO:-provisiond-infra.git}"
export AWS_SHARED_CREDENTIALS_FILE="$DATA_DIR/credentials" AWS_CONFIG_FILE="$DATA_DIR/config"
export AWS_PROFILE=provisiond AWS_PAGER=""
aws() { command aws --endpoint-url "$ENDPOINT" --output json "$@"; }
field() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }

# 1. An environment template bundle: a manifest, Terraform, and the schema of its inputs.
work="$(mktemp -d)"
mkdir -p "$work/bundle/infrastructure" "$work/bundle/schema"
cat > "$work/bundle/infrastructure/manifest.yaml" <<'YAML'
infrastructure:
  templates:
    - file: "*"
      rendering_engine: hcl
      template_language: terraform
YAML
cat > "$work/bundle/infrastructure/main.tf" <<'TF'
output "vpc_name" { value = "vpc-${var.environment.inputs.name}" }
output "cidr" { value = var.environment.inputs.cidr }
TF
cat > "$work/bundle/schema/schema.yaml" <<'YAML'
schema:
  format:
    openapi: "3.0.0"
  environment_input_type: "VpcInput"
  types:
    VpcInput:
      type: object
      properties:
        name:
          type: string
        cidr:
          type: string
          default: "10.0.0.0/16"
      required: [name]
YAML
tar czf "$work/vpc.tar.gz" -C "$work/bundle" infrastructure schema
aws s3 mb s3://templates
aws s3 cp "$work/vpc.tar.gz" s3://templates/vpc/v1.tar.gz

# 2. Register and publish the template version.
aws proton create-environment-template --name vpc --display-name "A VPC"
aws proton create-environment-template-version --template-name vpc \
  --source s3="{bucket=templates,key=vpc/v1.tar.gz}"
aws proton update-environment-template-version --template-name vpc \
  --major-version 1 --minor-version 0 --status PUBLISHED

# 3. The repository deployments are committed to (the server maps its name to $REPO).
aws proton create-repository --provider GITHUB --name acme/infra \
  --connection-arn arn:aws:codestar-connections:us-east-1:000000000000:connection/example

# 4. The environment: its deployment is committed at once.
printf 'proton: EnvironmentSpec\nspec:\n  name: main\n' > "$work/spec.yaml"
env_arn=$(aws proton create-environment --name dev --template-name vpc --template-major-version 1 \
  --spec "file://$work/spec.yaml" --provisioning-repository provider=GITHUB,name=acme/infra,branch=main \
  | field '["environment"]["arn"]')
git -C "$REPO" log -1 --format='commit %h: %s' main

# 5. The pipeline: the one changed deployment-metadata.json names the resource and deployment;
#    terraform runs in that folder; the outputs go back with the notify call.
git clone -q "$REPO" "$work/checkout"
metadata=$(git -C "$work/checkout" diff-tree --root --no-commit-id --name-only -r HEAD | grep 'deployment-metadata.json')
folder=$(dirname "$(dirname "$metadata")")
deployment_id=$(field '["deploymentId"]' < "$work/checkout/$metadata")
(cd "$work/checkout/$folder" && terraform init -input=false >/dev/null && terraform apply -auto-approve -input=false >/dev/null)
outputs=$(cd "$work/checkout/$folder" && terraform output -json \
  | python3 -c 'import json,sys; print(json.dumps([{"key": k, "valueString": str(v["value"])} for k, v in json.load(sys.stdin).items()]))')
aws proton notify-resource-deployment-status-change --resource-arn "$env_arn" \
  --deployment-id "$deployment_id" --status SUCCEEDED --outputs "$outputs"

# 6. The environment is deployed, with the outputs terraform computed.
aws proton get-environment --name dev | field '["environment"]["deploymentStatus"]'
aws proton list-environment-outputs --environment-name dev | field '["outputs"]'
