#!/usr/bin/env bash
# From nothing to a provisioned product with outputs, with the AWS CLI only. Run it against a
# server started with the built-in engine, in another shell:
#
#   cargo run --release -p provisiond -- serve --engine terraform
#   bash examples/service-catalog.sh
#
# It uses the newcomer's credentials the server wrote (provisiond-data/credentials; set
# DATA_DIR for another data directory) and ENDPOINT (default http://127.0.0.1:8787).
# tests/e2e/test_examples.py runs it, so it stays true.
set -euo pipefail

DATA_DIR="${DATA_DIR:-provisiond-data}"
ENDPOINT="${ENDPOINT:-http://127.0.0.1:8787}"
export AWS_SHARED_CREDENTIALS_FILE="$DATA_DIR/credentials" AWS_CONFIG_FILE="$DATA_DIR/config"
export AWS_PROFILE=provisiond AWS_PAGER=""
aws() { command aws --endpoint-url "$ENDPOINT" --output json "$@"; }
field() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }

# 1. A Terraform module (built-in features only: no provider to download), packed as engines
#    expect it.
work="$(mktemp -d)"
cat > "$work/main.tf" <<'TF'
variable "name" {
  type        = string
  description = "Who to greet"
}
variable "size" {
  type    = number
  default = 1
}
output "greeting" { value = "hello ${var.name}" }
output "double" { value = var.size * 2 }
TF
tar czf "$work/greeter.tar.gz" -C "$work" main.tf

# 2. Into the built-in object store.
aws s3 mb s3://modules
aws s3 cp "$work/greeter.tar.gz" s3://modules/greeter/v1.tar.gz

# 3. Publish it: a product, a portfolio, and who may launch it (the newcomer's admin principal).
product=$(aws servicecatalog create-product --name greeter --owner "Platform team" \
  --product-type TERRAFORM_OPEN_SOURCE \
  --provisioning-artifact-parameters Name=v1,Type=TERRAFORM_OPEN_SOURCE,Info={LoadTemplateFromURL=s3://modules/greeter/v1.tar.gz})
product_id=$(echo "$product" | field '["ProductViewDetail"]["ProductViewSummary"]["ProductId"]')
artifact_id=$(echo "$product" | field '["ProvisioningArtifactDetail"]["Id"]')
portfolio_id=$(aws servicecatalog create-portfolio --display-name Platform --provider-name "Platform team" \
  | field '["PortfolioDetail"]["Id"]')
aws servicecatalog associate-product-with-portfolio --product-id "$product_id" --portfolio-id "$portfolio_id"
aws servicecatalog associate-principal-with-portfolio --portfolio-id "$portfolio_id" \
  --principal-arn arn:aws:iam::000000000000:role/provisiond-admin --principal-type IAM
aws servicecatalog describe-provisioning-parameters --product-id "$product_id" \
  --provisioning-artifact-id "$artifact_id" | field '["ProvisioningArtifactParameters"]'

# 4. Provision it and wait for the engine's answer.
wait_record() {
  for _ in $(seq 1 120); do
    status=$(aws servicecatalog describe-record --id "$1" | field '["RecordDetail"]["Status"]')
    case "$status" in
      SUCCEEDED) return 0 ;;
      FAILED) echo "record $1 FAILED" >&2; aws servicecatalog describe-record --id "$1" >&2; return 1 ;;
    esac
    sleep 0.5
  done
  echo "record $1 did not finish" >&2
  return 1
}
record=$(aws servicecatalog provision-product --product-id "$product_id" --provisioning-artifact-id "$artifact_id" \
  --provisioned-product-name hello --provisioning-parameters Key=name,Value=world Key=size,Value=2)
record_id=$(echo "$record" | field '["RecordDetail"]["RecordId"]')
pp_id=$(echo "$record" | field '["RecordDetail"]["ProvisionedProductId"]')
wait_record "$record_id"
echo "outputs after provision:"
aws servicecatalog get-provisioned-product-outputs --provisioned-product-id "$pp_id" | field '["Outputs"]'

# 5. Update, then terminate.
record_id=$(aws servicecatalog update-provisioned-product --provisioned-product-id "$pp_id" \
  --provisioning-parameters Key=name,UsePreviousValue=true Key=size,Value=5 | field '["RecordDetail"]["RecordId"]')
wait_record "$record_id"
echo "outputs after update:"
aws servicecatalog get-provisioned-product-outputs --provisioned-product-id "$pp_id" | field '["Outputs"]'
record_id=$(aws servicecatalog terminate-provisioned-product --provisioned-product-id "$pp_id" \
  | field '["RecordDetail"]["RecordId"]')
wait_record "$record_id"
echo "terminated $pp_id"
