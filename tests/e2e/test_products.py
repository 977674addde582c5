"""Products and their versions through boto3: Terraform artifacts loaded from file:// and
http:// URLs into provisiond's immutable copy, their variables as parameters, validation of
archives and HCL, portfolio membership, and what may not be deleted."""

import functools
import http.server
import io
import random
import tarfile
import threading

import botocore.exceptions
import pytest

MAIN_TF = '''
variable "bucket_name" {
  type        = string
  description = "Name of the bucket"
}
variable "size" {
  type    = number
  default = 3
}
variable "tags" {
  type    = map(string)
  default = { team = "platform" }
}
variable "password" {
  type      = string
  sensitive = true
  default   = "hunter2"
}
output "name" { value = var.bucket_name }
'''


def tar_gz(path, files):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    path.write_bytes(buf.getvalue())
    return path


@pytest.fixture
def admin(server):
    account = "".join(random.choice("0123456789") for _ in range(12))
    key = server.create_key(account, f"arn:aws:iam::{account}:role/platform", admin=True)
    return server.client("servicecatalog", key), key


def code(excinfo):
    return excinfo.value.response["Error"]["Code"], excinfo.value.response["Error"]["Message"]


def create(sc, url, product_type="TERRAFORM_OPEN_SOURCE", product=None, **artifact):
    return sc.create_product(
        Name="bucket", Owner="platform", ProductType=product_type, **(product or {}),
        ProvisioningArtifactParameters={"Name": "v1", "Info": {"LoadTemplateFromURL": url}, **artifact},
    )


def test_terraform_product_with_parameters(admin, tmp_path):
    sc, key = admin
    archive = tar_gz(tmp_path / "v1.tar.gz", {"main.tf": MAIN_TF, "README.md": "docs"})
    out = create(sc, f"file://{archive}", product={"Description": "S3 bucket", "Tags": [{"Key": "team", "Value": "platform"}]})
    view = out["ProductViewDetail"]
    pid = view["ProductViewSummary"]["ProductId"]
    assert pid.startswith("prod-") and view["ProductViewSummary"]["Id"].startswith("prodview-")
    assert view["ProductARN"] == f"arn:aws:catalog:us-east-1:{key.account}:product/{pid}"
    assert view["ProductViewSummary"]["Type"] == "TERRAFORM_OPEN_SOURCE"
    assert view["Status"] == "AVAILABLE"
    pa = out["ProvisioningArtifactDetail"]
    assert pa["Id"].startswith("pa-") and pa["Type"] == "TERRAFORM_OPEN_SOURCE" and pa["Active"] is True

    described = sc.describe_provisioning_artifact(ProductId=pid, ProvisioningArtifactId=pa["Id"],
                                                  IncludeProvisioningArtifactParameters=True)
    assert described["Info"]["LoadTemplateFromURL"] == f"file://{archive}"
    assert described["Info"]["TemplateUrl"] == f"s3://provisiond-artifacts/{pid}/{pa['Id']}.tar.gz"
    params = {p["ParameterKey"]: p for p in described["ProvisioningArtifactParameters"]}
    assert list(params) == ["bucket_name", "password", "size", "tags"]
    assert params["bucket_name"]["DefaultValue"] == "", "no default reads as empty, as the reference parser answers"
    assert params["bucket_name"]["ParameterType"] == "string"
    assert params["bucket_name"]["Description"] == "Name of the bucket"
    assert params["size"]["DefaultValue"] == "3"
    assert params["tags"]["DefaultValue"] == '{"team":"platform"}'
    assert params["tags"]["ParameterType"] == "map(string)"
    assert params["password"]["IsNoEcho"] is True and params["size"]["IsNoEcho"] is False
    assert "ProvisioningArtifactParameters" not in sc.describe_provisioning_artifact(ProductId=pid, ProvisioningArtifactId=pa["Id"])
    by_name = sc.describe_provisioning_artifact(ProductName="bucket", ProvisioningArtifactName="v1")
    assert by_name["ProvisioningArtifactDetail"]["Id"] == pa["Id"]

    admin_view = sc.describe_product_as_admin(Id=pid)
    assert [s["Id"] for s in admin_view["ProvisioningArtifactSummaries"]] == [pa["Id"]]
    assert admin_view["Tags"] == [{"Key": "team", "Value": "platform"}]
    assert [p["ProductViewSummary"]["ProductId"] for p in sc.search_products_as_admin()["ProductViewDetails"]] == [pid]


def test_search_products_as_admin_filters_and_sorts(admin, tmp_path):
    sc, _ = admin
    archive = tar_gz(tmp_path / "m.tar.gz", {"main.tf": 'variable "a" {}'})
    url = f"file://{archive}"
    made = {}
    for name, owner, ptype, desc in [("zeta", "platform", "TERRAFORM_OPEN_SOURCE", "Network stack"),
                                     ("alpha", "data", "EXTERNAL", "Warehouse"),
                                     ("mid", "platform", "TERRAFORM_CLOUD", None)]:
        product = {"Name": name, "Owner": owner, "ProductType": ptype}
        if desc:
            product["Description"] = desc
        made[name] = sc.create_product(**product, ProvisioningArtifactParameters={
            "Name": "v1", "Info": {"LoadTemplateFromURL": url}})["ProductViewDetail"]["ProductViewSummary"]["ProductId"]
    sc.create_provisioning_artifact(ProductId=made["mid"], IdempotencyToken="t2",
                                    Parameters={"Name": "v2", "Info": {"LoadTemplateFromURL": url}})
    names = lambda **kw: [d["ProductViewSummary"]["Name"] for d in sc.search_products_as_admin(**kw)["ProductViewDetails"]]
    assert names() == ["zeta", "alpha", "mid"]
    assert names(Filters={"Owner": ["platform"]}) == ["zeta", "mid"]
    assert names(Filters={"ProductType": ["EXTERNAL", "TERRAFORM_CLOUD"]}) == ["alpha", "mid"]
    assert names(Filters={"FullTextSearch": ["NETWORK"]}) == ["zeta"]
    assert names(Filters={"FullTextSearch": ["a"], "Owner": ["data"]}) == ["alpha"]
    assert names(Filters={"SourceProductId": [made["mid"]]}) == ["mid"]
    assert names(SortBy="Title") == ["alpha", "mid", "zeta"]
    assert names(SortBy="Title", SortOrder="DESCENDING") == ["zeta", "mid", "alpha"]
    assert names(SortBy="VersionCount", SortOrder="DESCENDING")[0] == "mid"
    assert names(SortBy="CreationDate", SortOrder="DESCENDING") == ["mid", "alpha", "zeta"]
    first = sc.search_products_as_admin(SortBy="Title", PageSize=2)
    assert [d["ProductViewSummary"]["Name"] for d in first["ProductViewDetails"]] == ["alpha", "mid"]
    rest = sc.search_products_as_admin(SortBy="Title", PageSize=2, PageToken=first["NextPageToken"])
    assert [d["ProductViewSummary"]["Name"] for d in rest["ProductViewDetails"]] == ["zeta"]
    assert "NextPageToken" not in rest


def test_the_copy_is_immutable(admin, tmp_path):
    sc, _ = admin
    archive = tar_gz(tmp_path / "module.tar.gz", {"main.tf": 'variable "a" { default = "one" }'})
    out = create(sc, f"file://{archive}")
    pid, v1 = out["ProductViewDetail"]["ProductViewSummary"]["ProductId"], out["ProvisioningArtifactDetail"]["Id"]
    tar_gz(archive, {"main.tf": 'variable "a" { default = "two" }\nvariable "b" {}'})
    v2 = sc.create_provisioning_artifact(ProductId=pid, Parameters={"Name": "v2", "Info": {"LoadTemplateFromURL": f"file://{archive}"}},
                                         IdempotencyToken="v2")["ProvisioningArtifactDetail"]["Id"]
    again = sc.create_provisioning_artifact(ProductId=pid, Parameters={"Name": "v2", "Info": {"LoadTemplateFromURL": f"file://{archive}"}},
                                            IdempotencyToken="v2")["ProvisioningArtifactDetail"]["Id"]
    assert again == v2
    params = lambda pa: [(p["ParameterKey"], p.get("DefaultValue")) for p in sc.describe_provisioning_artifact(
        ProductId=pid, ProvisioningArtifactId=pa, IncludeProvisioningArtifactParameters=True)["ProvisioningArtifactParameters"]]
    assert params(v1) == [("a", "one")]
    assert params(v2) == [("a", "two"), ("b", "")]
    assert [d["Id"] for d in sc.list_provisioning_artifacts(ProductId=pid)["ProvisioningArtifactDetails"]] == [v1, v2]
    sc.delete_provisioning_artifact(ProductId=pid, ProvisioningArtifactId=v1)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sc.delete_provisioning_artifact(ProductId=pid, ProvisioningArtifactId=v2)
    assert code(e)[0] == "InvalidParametersException" and "last provisioning artifact" in code(e)[1]


def test_http_sources(admin, tmp_path):
    sc, _ = admin
    tar_gz(tmp_path / "served.tar.gz", {"main.tf": 'variable "region" { default = "eu-west-1" }'})
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{httpd.server_address[1]}"
        out = create(sc, f"{base}/served.tar.gz")
        pid = out["ProductViewDetail"]["ProductViewSummary"]["ProductId"]
        got = sc.describe_provisioning_artifact(ProductId=pid, ProvisioningArtifactId=out["ProvisioningArtifactDetail"]["Id"],
                                                IncludeProvisioningArtifactParameters=True)
        assert [(p["ParameterKey"], p["DefaultValue"]) for p in got["ProvisioningArtifactParameters"]] == [("region", "eu-west-1")]
        with pytest.raises(botocore.exceptions.ClientError) as e:
            create(sc, f"{base}/missing.tar.gz")
        assert code(e)[0] == "InvalidParametersException" and "404" in code(e)[1]
    finally:
        httpd.shutdown()


def test_https_sources_are_verified_against_the_trust_store(tmp_path):
    """A template served over TLS by a certificate authority that SSL_CERT_FILE names loads;
    the same server is refused by a provisiond that does not trust that authority."""
    import ssl
    import trustme
    from conftest import Server

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    ca_pem = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_pem))
    served = tmp_path / "served"
    served.mkdir()
    tar_gz(served / "tls.tar.gz", {"main.tf": 'variable "zone" { default = "a" }'})
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cert.configure_cert(context)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    trusting = Server(tmp_path / "trusting", env={"SSL_CERT_FILE": str(ca_pem)})
    stranger_ca = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(stranger_ca))
    distrusting = Server(tmp_path / "distrusting", env={"SSL_CERT_FILE": str(stranger_ca)})
    try:
        url = f"https://localhost:{httpd.server_address[1]}/tls.tar.gz"
        sc = trusting.client("servicecatalog")
        out = create(sc, url)
        got = sc.describe_provisioning_artifact(ProductId=out["ProductViewDetail"]["ProductViewSummary"]["ProductId"],
                                                ProvisioningArtifactId=out["ProvisioningArtifactDetail"]["Id"],
                                                IncludeProvisioningArtifactParameters=True)
        assert [(p["ParameterKey"], p["DefaultValue"]) for p in got["ProvisioningArtifactParameters"]] == [("zone", "a")]
        with pytest.raises(botocore.exceptions.ClientError) as e:
            create(distrusting.client("servicecatalog"), url)
        assert code(e)[0] == "InvalidParametersException" and "TLS" in code(e)[1]
        assert distrusting.client("servicecatalog").search_products_as_admin()["ProductViewDetails"] == []
    finally:
        httpd.shutdown()
        trusting.stop()
        distrusting.stop()


@pytest.mark.parametrize("files,raw,message", [
    (None, b"not an archive", "is not valid"),
    ({"README.md": "no terraform here"}, None, "no .tf or .tf.json file"),
    ({"main.tf": 'variable "x" {'}, None, "Error occurred during parameter parsing: main.tf:"),
])
def test_invalid_templates_are_refused_and_nothing_is_stored(admin, tmp_path, files, raw, message):
    sc, _ = admin
    path = tmp_path / "bad.tar.gz"
    if raw is not None:
        path.write_bytes(raw)
    else:
        tar_gz(path, files)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        create(sc, f"file://{path}")
    assert code(e)[0] == "InvalidParametersException"
    assert message in code(e)[1]
    assert sc.search_products_as_admin()["ProductViewDetails"] == []
    # DisableTemplateValidation stores it anyway, without parameters.
    out = create(sc, f"file://{path}", DisableTemplateValidation=True)
    pid = out["ProductViewDetail"]["ProductViewSummary"]["ProductId"]
    got = sc.describe_provisioning_artifact(ProductId=pid, ProvisioningArtifactId=out["ProvisioningArtifactDetail"]["Id"],
                                            IncludeProvisioningArtifactParameters=True)
    assert got["ProvisioningArtifactParameters"] == []


@pytest.mark.parametrize("url,artifact,expected", [
    ("ftp://example.com/x.tar.gz", {}, "must start with"),
    ("file:///does/not/exist.tar.gz", {}, "cannot be read"),
    ("file:///tmp/x.tar.gz", {"Type": "CLOUD_FORMATION_TEMPLATE"}, "must be of type TERRAFORM_OPEN_SOURCE"),
])
def test_bad_sources_are_refused(admin, url, artifact, expected):
    sc, _ = admin
    with pytest.raises(botocore.exceptions.ClientError) as e:
        create(sc, url, **artifact)
    assert code(e)[0] == "InvalidParametersException"
    assert expected in code(e)[1]


def test_products_in_portfolios(admin, tmp_path):
    sc, _ = admin
    archive = tar_gz(tmp_path / "m.tar.gz", {"main.tf": 'variable "a" {}'})
    pid = create(sc, f"file://{archive}", product_type="EXTERNAL")["ProductViewDetail"]["ProductViewSummary"]["ProductId"]
    port = sc.create_portfolio(DisplayName="p", ProviderName="p")["PortfolioDetail"]["Id"]
    sc.associate_product_with_portfolio(ProductId=pid, PortfolioId=port)
    sc.associate_product_with_portfolio(ProductId=pid, PortfolioId=port)
    assert [p["Id"] for p in sc.list_portfolios_for_product(ProductId=pid)["PortfolioDetails"]] == [port]
    assert [p["ProductViewSummary"]["ProductId"] for p in sc.search_products_as_admin(PortfolioId=port)["ProductViewDetails"]] == [pid]
    for call in (lambda: sc.delete_product(Id=pid), lambda: sc.delete_portfolio(Id=port)):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            call()
        assert code(e)[0] == "ResourceInUseException"
    sc.disassociate_product_from_portfolio(ProductId=pid, PortfolioId=port)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sc.disassociate_product_from_portfolio(ProductId=pid, PortfolioId=port)
    assert code(e)[0] == "ResourceNotFoundException"
    sc.delete_product(Id=pid)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sc.describe_product_as_admin(Id=pid)
    assert code(e)[0] == "ResourceNotFoundException"
    sc.delete_portfolio(Id=port)


def test_only_admins_publish(server, admin, tmp_path):
    sc, key = admin
    dev = server.client("servicecatalog", server.create_key(key.account, f"arn:aws:iam::{key.account}:role/dev"))
    archive = tar_gz(tmp_path / "m.tar.gz", {"main.tf": 'variable "a" {}'})
    with pytest.raises(botocore.exceptions.ClientError) as e:
        create(dev, f"file://{archive}")
    assert code(e)[0] == "AccessDeniedException"
    assert sc.search_products_as_admin()["ProductViewDetails"] == []
