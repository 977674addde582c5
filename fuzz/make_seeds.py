"""Writes the seed corpus of every fuzz target into fuzz/seeds/<target>/ (run from anywhere:
`python3 fuzz/make_seeds.py`). Seeds are valid inputs of each decoder, so the fuzzer
starts from the shapes real clients send; they are committed, and the fuzzer writes what it
finds into fuzz/corpus/ (not committed)."""

import gzip
import io
import json
import pathlib
import tarfile

ROOT = pathlib.Path(__file__).resolve().parent / "seeds"


def write(target, name, data):
    d = ROOT / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data if isinstance(data, bytes) else data.encode())


def tar_gz(files):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 0
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0)


TOKEN = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo="
json_seeds = {
    0: {"PlanId": "abcdefghijklm", "IdempotencyToken": "t1", "AcceptLanguage": "en"},
    1: {"WorkflowToken": TOKEN, "RecordId": "rec-abc", "Status": "SUCCEEDED", "IdempotencyToken": "n1",
        "Outputs": [{"OutputKey": "k", "OutputValue": "v", "Description": "d"}],
        "ResourceIdentifier": {"UniqueTag": {"Key": "k", "Value": "v"}}},
    2: {"WorkflowToken": TOKEN, "RecordId": "rec-abc", "Status": "FAILED", "FailureReason": "boom",
        "IdempotencyToken": "n2", "Outputs": []},
    3: {"WorkflowToken": TOKEN, "RecordId": "rec-abc", "Status": "SUCCEEDED", "IdempotencyToken": "n3"},
    4: {"resourceArn": "arn:aws:proton:us-east-1:123456789012:environment/dev",
        "deploymentId": "0f8e2a4c-1b3d-4e5f-8a9b-0c1d2e3f4a5b", "status": "SUCCEEDED",
        "statusMessage": "ok", "outputs": [{"key": "k", "valueString": "v"}]},
    5: {"ProductId": "prod-abc", "ProvisioningArtifactId": "pa-abc", "ProvisionedProductName": "pp",
        "ProvisioningParameters": [{"Key": "k", "Value": "v"}], "Tags": [{"Key": "t", "Value": "v"}],
        "ProvisionToken": "tok"},
    6: {"Name": "p", "Owner": "o", "ProductType": "TERRAFORM_OPEN_SOURCE", "IdempotencyToken": "i",
        "ProvisioningArtifactParameters": {"Name": "v1", "Info": {"LoadTemplateFromURL": "s3://b/k.tar.gz"}}},
    7: {"Filters": {"SearchQuery": ["status:AVAILABLE"]}, "SortBy": "createdTime", "SortOrder": "DESCENDING",
        "PageSize": 20, "AccessLevelFilter": {"Key": "Account", "Value": "self"}},
    8: {"name": "dev", "templateName": "vpc", "templateMajorVersion": "1", "spec": "spec:\n  size: 2\n",
        "provisioningRepository": {"provider": "GITHUB", "name": "acme/env", "branch": "main"},
        "tags": [{"key": "a", "value": "b"}]},
    9: {"QueueUrl": "http://localhost/123456789012/q", "MessageBody": "{}", "DelaySeconds": 0,
        "MessageAttributes": {"a": {"DataType": "String", "StringValue": "v"}}},
    10: {"QueueUrl": "http://localhost/123456789012/q", "MaxNumberOfMessages": 10, "WaitTimeSeconds": 20,
         "VisibilityTimeout": 30, "AttributeNames": ["All"]},
    11: {"ProvisionedProductId": "pp-abc", "ProvisioningArtifactId": "pa-abc", "UpdateToken": "u",
         "ProvisioningParameters": [{"Key": "k", "Value": "v", "UsePreviousValue": False}]},
}
for which, body in json_seeds.items():
    write("json_inputs", f"shape{which}.json", bytes([which]) + json.dumps(body).encode())

write("sigv4", "signed.txt", "\n".join([
    "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20260101/us-east-1/servicecatalog/aws4_request, "
    "SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=" + "ab" * 32,
    "POST", "/", "",
    "host: localhost:8787", "x-amz-date: 20260101T000000Z",
    "content-type: application/x-amz-json-1.1",
    "x-amz-target: AWS242ServiceCatalogService.ListPortfolios", "", "{}"]))
write("sigv4", "s3.txt", "\n".join([
    "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20260101/us-east-1/s3/aws4_request, "
    "SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=" + "cd" * 32,
    "GET", "/bucket/a%20key/x", "list-type=2&prefix=a%2Fb&max-keys=5",
    "host: localhost", "x-amz-date: 20260101T000000Z", "x-amz-content-sha256: UNSIGNED-PAYLOAD", ""]))

payload = b"hello world"
unsigned = f"{len(payload):x}\r\n".encode() + payload + b"\r\n0\r\nx-amz-checksum-crc32:DUoRhQ==\r\n\r\n"
write("aws_chunked", "unsigned_trailer.bin", b"\x00" + unsigned)
signed = (f"{len(payload):x};chunk-signature={'0' * 64}\r\n").encode() + payload + \
    f"\r\n0;chunk-signature={'1' * 64}\r\n\r\n".encode()
write("aws_chunked", "signed.bin", b"\x01" + signed)
write("aws_chunked", "signed_trailer.bin", b"\x02" + signed[:-2] +
      b"x-amz-checksum-crc32:DUoRhQ==\r\nx-amz-trailer-signature:" + b"2" * 64 + b"\r\n\r\n")

MAIN_TF = '''variable "name" {
  type        = string
  description = "The name"
}
variable "size" {
  type    = number
  default = 1
}
variable "tags" {
  type      = map(string)
  default   = { a = "b" }
  sensitive = true
}
variable "shape" {
  type    = object({ name = string, ports = list(number) })
  default = { name = "x", ports = [80, 443] }
}
output "greeting" { value = "hello ${var.name}" }
'''
write("terraform_artifact", "module.tar.gz", b"\x00" + tar_gz({"main.tf": MAIN_TF, "outputs.tf": 'output "x" { value = 1 }\n'}))
write("terraform_artifact", "main.tf", b"\x01" + MAIN_TF.encode())

MANIFEST = "infrastructure:\n  templates:\n    - file: \"*\"\n      rendering_engine: hcl\n      template_language: terraform\n"
SCHEMA = """schema:
  format:
    openapi: "3.0.0"
  environment_input_type: "EnvInput"
  service_input_type: "SvcInput"
  types:
    EnvInput:
      type: object
      properties:
        vpc_cidr: {type: string, default: "10.0.0.0/16", minLength: 1, maxLength: 20, pattern: "^[0-9./]+$"}
        size: {type: integer, minimum: 1, maximum: 10}
        names: {type: array, items: {type: string}, minItems: 1}
        on: {type: boolean, default: true}
        level: {type: string, enum: [low, high]}
      required: [size]
    SvcInput:
      type: object
      properties:
        port: {type: number, default: 8080}
"""
write("proton_bundle", "environment.tar.gz", b"\x00" + tar_gz({
    "infrastructure/manifest.yaml": MANIFEST, "infrastructure/main.tf": MAIN_TF, "schema/schema.yaml": SCHEMA}))
write("proton_bundle", "service.tar.gz", b"\x00" + tar_gz({
    "instance_infrastructure/manifest.yaml": MANIFEST, "instance_infrastructure/main.tf": MAIN_TF,
    "schema/schema.yaml": SCHEMA}))
write("proton_bundle", "schema_and_spec.yaml", b"\x01" + SCHEMA.encode() + b"\0" +
      b"size: 2\nnames: [a, b]\nlevel: low\n")
write("proton_bundle", "manifest.yaml", b"\x02" + MANIFEST.encode())

for i, (method, host, target) in enumerate([
        (0, "localhost:8787", "/"), (1, "", "/bucket"), (1, "127.0.0.1:8787", "/bucket/key/with%20space"),
        (0, "", "/bucket?list-type=2&prefix=a%2Fb&continuation-token=x+y"),
        (3, "bucket.localhost:8787", "/k"), (2, "my.bucket.localhost", "/dir/k"), (4, "", "/bucket/k?uploads"),
        (1, "b.localhost", "/")]):
    write("s3_router", f"route{i}.txt", bytes([method]) + f"{host}\n{target}".encode())
print("seeds written to", ROOT)
