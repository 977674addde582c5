"""Portfolio access through boto3: associating principals (IAM and IAM_PATTERN), listing and
disassociating them, and portfolios that cannot be deleted while principals use them."""

import random

import botocore.exceptions
import pytest


@pytest.fixture
def admin(server):
    account = "".join(random.choice("0123456789") for _ in range(12))
    key = server.create_key(account, f"arn:aws:iam::{account}:role/platform", admin=True)
    return server.client("servicecatalog", key), key


def code(excinfo):
    return excinfo.value.response["Error"]["Code"]


def test_associate_list_disassociate(admin):
    sc, key = admin
    pid = sc.create_portfolio(DisplayName="p", ProviderName="p")["PortfolioDetail"]["Id"]
    dev = f"arn:aws:iam::{key.account}:role/dev"
    sc.associate_principal_with_portfolio(PortfolioId=pid, PrincipalARN=dev, PrincipalType="IAM")
    sc.associate_principal_with_portfolio(PortfolioId=pid, PrincipalARN=dev, PrincipalType="IAM")  # idempotent
    sc.associate_principal_with_portfolio(PortfolioId=pid, PrincipalARN="arn:aws:iam:::role/ci-*", PrincipalType="IAM_PATTERN")
    listed = sc.list_principals_for_portfolio(PortfolioId=pid)["Principals"]
    assert listed == [
        {"PrincipalARN": dev, "PrincipalType": "IAM"},
        {"PrincipalARN": "arn:aws:iam:::role/ci-*", "PrincipalType": "IAM_PATTERN"},
    ]
    page = sc.list_principals_for_portfolio(PortfolioId=pid, PageSize=1)
    assert len(page["Principals"]) == 1 and page["NextPageToken"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sc.delete_portfolio(Id=pid)
    assert code(e) == "ResourceInUseException"
    sc.disassociate_principal_from_portfolio(PortfolioId=pid, PrincipalARN=dev)
    sc.disassociate_principal_from_portfolio(PortfolioId=pid, PrincipalARN="arn:aws:iam:::role/ci-*", PrincipalType="IAM_PATTERN")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sc.disassociate_principal_from_portfolio(PortfolioId=pid, PrincipalARN=dev)
    assert code(e) == "ResourceNotFoundException"
    assert sc.list_principals_for_portfolio(PortfolioId=pid)["Principals"] == []
    sc.delete_portfolio(Id=pid)


@pytest.mark.parametrize("arn,kind", [
    ("arn:aws:iam::210987654321:role/dev", "IAM"),      # another account
    ("arn:aws:iam::{account}:role/dev-*", "IAM"),       # wildcard needs IAM_PATTERN
    ("arn:aws:iam::{account}:role/dev-*", "IAM_PATTERN"),  # a pattern has no account
    ("arn:aws:s3:::bucket", "IAM"),
])
def test_bad_principals_are_refused(admin, arn, kind):
    sc, key = admin
    pid = sc.create_portfolio(DisplayName="p", ProviderName="p")["PortfolioDetail"]["Id"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sc.associate_principal_with_portfolio(PortfolioId=pid, PrincipalARN=arn.format(account=key.account), PrincipalType=kind)
    assert code(e) == "InvalidParametersException"
    assert sc.list_principals_for_portfolio(PortfolioId=pid)["Principals"] == []


def test_unknown_portfolio_and_type(admin):
    sc, key = admin
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sc.associate_principal_with_portfolio(PortfolioId="port-doesnotexist1",
                                              PrincipalARN=f"arn:aws:iam::{key.account}:role/dev", PrincipalType="IAM")
    assert code(e) == "ResourceNotFoundException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sc.list_principals_for_portfolio(PortfolioId="port-doesnotexist1")
    assert code(e) == "ResourceNotFoundException"
    pid = sc.create_portfolio(DisplayName="p", ProviderName="p")["PortfolioDetail"]["Id"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sc.associate_principal_with_portfolio(PortfolioId=pid, PrincipalARN=f"arn:aws:iam::{key.account}:role/dev", PrincipalType="GROUP")
    assert code(e) == "ValidationException"
    assert "Member must satisfy enum value set: [IAM, IAM_PATTERN]" in e.value.response["Error"]["Message"]


def test_only_admins_associate(server, admin):
    sc, key = admin
    pid = sc.create_portfolio(DisplayName="p", ProviderName="p")["PortfolioDetail"]["Id"]
    dev = server.client("servicecatalog", server.create_key(key.account, f"arn:aws:iam::{key.account}:role/dev"))
    with pytest.raises(botocore.exceptions.ClientError) as e:
        dev.associate_principal_with_portfolio(PortfolioId=pid, PrincipalARN=f"arn:aws:iam::{key.account}:role/dev", PrincipalType="IAM")
    assert code(e) == "AccessDeniedException"
    assert sc.list_principals_for_portfolio(PortfolioId=pid)["Principals"] == []
