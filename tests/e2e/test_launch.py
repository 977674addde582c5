"""Launch constraints, launch paths and provisioning parameters through boto3, as a platform
team publishes a product and a developer looks at what they may launch."""

import random

import botocore.exceptions
import pytest

from test_products import MAIN_TF, tar_gz


@pytest.fixture
def catalog(server, tmp_path):
    """An account with a product in a portfolio, an admin client and a developer client."""
    account = "".join(random.choice("0123456789") for _ in range(12))
    admin_key = server.create_key(account, f"arn:aws:iam::{account}:role/platform", admin=True)
    dev_key = server.create_key(account, f"arn:aws:iam::{account}:role/dev-alice")
    sc = server.client("servicecatalog", admin_key)
    archive = tar_gz(tmp_path / "bucket.tar.gz", {"main.tf": MAIN_TF})
    out = sc.create_product(Name="bucket", Owner="platform", ProductType="TERRAFORM_OPEN_SOURCE",
                            ProvisioningArtifactParameters={"Name": "v1", "Info": {"LoadTemplateFromURL": f"file://{archive}"}})
    pid = out["ProductViewDetail"]["ProductViewSummary"]["ProductId"]
    port = sc.create_portfolio(DisplayName="Platform", ProviderName="platform")["PortfolioDetail"]["Id"]
    sc.associate_product_with_portfolio(ProductId=pid, PortfolioId=port)
    return {
        "account": account, "sc": sc, "dev": server.client("servicecatalog", dev_key), "product": pid,
        "artifact": out["ProvisioningArtifactDetail"]["Id"], "portfolio": port, "url": f"file://{archive}",
    }


def code(excinfo):
    return excinfo.value.response["Error"]["Code"], excinfo.value.response["Error"]["Message"]


def test_launch_constraint_lifecycle(catalog):
    sc, account = catalog["sc"], catalog["account"]
    role = f"arn:aws:iam::{account}:role/LaunchRole"
    out = sc.create_constraint(PortfolioId=catalog["portfolio"], ProductId=catalog["product"], Type="LAUNCH",
                               Parameters=f'{{"RoleArn": "{role}"}}', Description="launch as LaunchRole", IdempotencyToken="c1")
    detail = out["ConstraintDetail"]
    assert detail["ConstraintId"].startswith("cons-") and detail["Type"] == "LAUNCH" and detail["Owner"] == account
    assert out["Status"] == "AVAILABLE"
    assert sc.create_constraint(PortfolioId=catalog["portfolio"], ProductId=catalog["product"], Type="LAUNCH",
                                Parameters=f'{{"RoleArn": "{role}"}}', IdempotencyToken="c1")["ConstraintDetail"] == detail
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sc.create_constraint(PortfolioId=catalog["portfolio"], ProductId=catalog["product"], Type="LAUNCH",
                             Parameters=f'{{"RoleArn": "{role}"}}', IdempotencyToken="c2")
    assert code(e)[0] == "DuplicateResourceException"
    described = sc.describe_constraint(Id=detail["ConstraintId"])
    assert described["ConstraintParameters"] == f'{{"RoleArn":"{role}"}}'
    assert [c["ConstraintId"] for c in sc.list_constraints_for_portfolio(PortfolioId=catalog["portfolio"])["ConstraintDetails"]] == [detail["ConstraintId"]]
    # A second product's constraint: pages of one, and the list narrowed to one product.
    other = sc.create_product(Name="other", Owner="platform", ProductType="TERRAFORM_OPEN_SOURCE",
                              ProvisioningArtifactParameters={"Name": "v1", "Info": {"LoadTemplateFromURL": catalog["url"]}})
    other_id = other["ProductViewDetail"]["ProductViewSummary"]["ProductId"]
    sc.associate_product_with_portfolio(ProductId=other_id, PortfolioId=catalog["portfolio"])
    second = sc.create_constraint(PortfolioId=catalog["portfolio"], ProductId=other_id, Type="LAUNCH",
                                  Parameters=f'{{"RoleArn": "{role}"}}')["ConstraintDetail"]["ConstraintId"]
    first_page = sc.list_constraints_for_portfolio(PortfolioId=catalog["portfolio"], PageSize=1)
    rest = sc.list_constraints_for_portfolio(PortfolioId=catalog["portfolio"], PageSize=1, PageToken=first_page["NextPageToken"])
    assert [c["ConstraintId"] for c in first_page["ConstraintDetails"] + rest["ConstraintDetails"]] == [detail["ConstraintId"], second]
    assert "NextPageToken" not in rest
    narrowed = sc.list_constraints_for_portfolio(PortfolioId=catalog["portfolio"], ProductId=other_id)["ConstraintDetails"]
    assert [c["ConstraintId"] for c in narrowed] == [second]
    sc.delete_constraint(Id=second)
    sc.disassociate_product_from_portfolio(ProductId=other_id, PortfolioId=catalog["portfolio"])
    for call in (lambda: sc.disassociate_product_from_portfolio(ProductId=catalog["product"], PortfolioId=catalog["portfolio"]),
                 lambda: sc.delete_portfolio(Id=catalog["portfolio"])):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            call()
        assert code(e)[0] == "ResourceInUseException"
    sc.delete_constraint(Id=detail["ConstraintId"])
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sc.describe_constraint(Id=detail["ConstraintId"])
    assert code(e)[0] == "ResourceNotFoundException"


@pytest.mark.parametrize("ctype,params,message", [
    ("NOTIFICATION", '{"NotificationArns": []}', "not supported"),
    ("LAUNCH", "not json", "JSON object"),
    ("LAUNCH", '{"RoleArn": "arn:aws:iam::210987654321:role/X"}', "must be an IAM role of account"),
    ("LAUNCH", '{}', "RoleArn or a LocalRoleName"),
])
def test_bad_constraints(catalog, ctype, params, message):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        catalog["sc"].create_constraint(PortfolioId=catalog["portfolio"], ProductId=catalog["product"], Type=ctype, Parameters=params)
    assert code(e)[0] == "InvalidParametersException" and message in code(e)[1]
    assert catalog["sc"].list_constraints_for_portfolio(PortfolioId=catalog["portfolio"])["ConstraintDetails"] == []


def test_launch_paths_follow_principal_associations(catalog):
    sc, dev, pid, account = catalog["sc"], catalog["dev"], catalog["product"], catalog["account"]
    assert dev.list_launch_paths(ProductId=pid)["LaunchPathSummaries"] == []
    with pytest.raises(botocore.exceptions.ClientError) as e:
        dev.describe_provisioning_parameters(ProductId=pid, ProvisioningArtifactId=catalog["artifact"])
    assert code(e)[0] == "ResourceNotFoundException"
    sc.associate_principal_with_portfolio(PortfolioId=catalog["portfolio"], PrincipalARN="arn:aws:iam:::role/dev-*", PrincipalType="IAM_PATTERN")
    sc.create_constraint(PortfolioId=catalog["portfolio"], ProductId=pid, Type="LAUNCH",
                         Parameters='{"LocalRoleName": "LaunchRole"}', Description="as LaunchRole")
    paths = dev.list_launch_paths(ProductId=pid)["LaunchPathSummaries"]
    assert paths == [{"Id": "lpv3-" + catalog["portfolio"][5:], "Name": "Platform", "Tags": [],
                      "ConstraintSummaries": [{"Type": "LAUNCH", "Description": "as LaunchRole"}]}]
    params = dev.describe_provisioning_parameters(ProductId=pid, ProvisioningArtifactId=catalog["artifact"])
    assert [p["ParameterKey"] for p in params["ProvisioningArtifactParameters"]] == ["bucket_name", "password", "size", "tags"]
    assert params["ConstraintSummaries"] == [{"Type": "LAUNCH", "Description": "as LaunchRole"}]
    by_path = dev.describe_provisioning_parameters(ProductId=pid, ProvisioningArtifactId=catalog["artifact"], PathId=paths[0]["Id"])
    assert by_path["ProvisioningArtifactParameters"] == params["ProvisioningArtifactParameters"]
    # A second portfolio with the product: PathId is then needed.
    port2 = sc.create_portfolio(DisplayName="Other", ProviderName="p")["PortfolioDetail"]["Id"]
    sc.associate_product_with_portfolio(ProductId=pid, PortfolioId=port2)
    sc.associate_principal_with_portfolio(PortfolioId=port2, PrincipalARN=f"arn:aws:iam::{account}:role/dev-alice", PrincipalType="IAM")
    assert len(dev.list_launch_paths(ProductId=pid)["LaunchPathSummaries"]) == 2
    with pytest.raises(botocore.exceptions.ClientError) as e:
        dev.describe_provisioning_parameters(ProductId=pid, ProvisioningArtifactId=catalog["artifact"])
    assert code(e)[0] == "InvalidParametersException" and "PathId" in code(e)[1]
    assert dev.describe_provisioning_parameters(ProductId=pid, ProvisioningArtifactId=catalog["artifact"], PathName="Other")["ConstraintSummaries"] == []
