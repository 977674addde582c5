"""Service Catalog portfolios through boto3: create, describe, update, delete, list with paging,
idempotency, admin-only writes and isolation between accounts and regions."""

import random
import re

import botocore.exceptions
import pytest


def new_account():
    return "".join(random.choice("0123456789") for _ in range(12))


@pytest.fixture
def tenant(server):
    """An admin key of a fresh account, so counts are exact."""
    account = new_account()
    return server.create_key(account, f"arn:aws:iam::{account}:role/platform", admin=True)


def error_of(excinfo):
    err = excinfo.value.response
    return err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"], err["Error"]["Message"]


def test_portfolio_lifecycle(server, tenant):
    sc = server.client("servicecatalog", tenant)
    created = sc.create_portfolio(
        DisplayName="Platform", ProviderName="Platform team", Description="Terraform modules",
        Tags=[{"Key": "team", "Value": "platform"}], IdempotencyToken="create-1",
    )
    detail = created["PortfolioDetail"]
    assert re.fullmatch(r"port-[a-z0-9]{13}", detail["Id"])
    assert detail["ARN"] == f"arn:aws:catalog:us-east-1:{tenant.account}:portfolio/{detail['Id']}"
    assert detail["DisplayName"] == "Platform"
    assert detail["ProviderName"] == "Platform team"
    assert created["Tags"] == [{"Key": "team", "Value": "platform"}]
    assert created["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]

    described = sc.describe_portfolio(Id=detail["Id"])
    assert described["PortfolioDetail"] == detail
    assert described["Tags"] == [{"Key": "team", "Value": "platform"}]

    updated = sc.update_portfolio(
        Id=detail["Id"], DisplayName="Platform v2", AddTags=[{"Key": "cost", "Value": "42"}],
        RemoveTags=["team"],
    )
    assert updated["PortfolioDetail"]["DisplayName"] == "Platform v2"
    assert updated["PortfolioDetail"]["Description"] == "Terraform modules"
    assert updated["Tags"] == [{"Key": "cost", "Value": "42"}]
    assert sc.describe_portfolio(Id=detail["Id"])["PortfolioDetail"]["DisplayName"] == "Platform v2"

    sc.delete_portfolio(Id=detail["Id"])
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sc.describe_portfolio(Id=detail["Id"])
    assert error_of(e)[:2] == ("ResourceNotFoundException", 400)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sc.delete_portfolio(Id=detail["Id"])
    assert error_of(e)[0] == "ResourceNotFoundException"


def test_create_is_idempotent_on_its_token(server, tenant):
    sc = server.client("servicecatalog", tenant)
    first = sc.create_portfolio(DisplayName="One", ProviderName="p", IdempotencyToken="same-token")
    again = sc.create_portfolio(DisplayName="One", ProviderName="p", IdempotencyToken="same-token")
    assert again["PortfolioDetail"] == first["PortfolioDetail"]
    other = sc.create_portfolio(DisplayName="One", ProviderName="p", IdempotencyToken="other-token")
    assert other["PortfolioDetail"]["Id"] != first["PortfolioDetail"]["Id"]
    ids = [p["Id"] for p in sc.list_portfolios()["PortfolioDetails"]]
    assert sorted(ids) == sorted([first["PortfolioDetail"]["Id"], other["PortfolioDetail"]["Id"]])


def test_list_pages_in_creation_order(server, tenant):
    sc = server.client("servicecatalog", tenant)
    assert sc.list_portfolios() ["PortfolioDetails"] == []
    ids = [sc.create_portfolio(DisplayName=f"p{i}", ProviderName="p")["PortfolioDetail"]["Id"] for i in range(7)]
    page = sc.list_portfolios(PageSize=3)
    assert [p["Id"] for p in page["PortfolioDetails"]] == ids[:3]
    page2 = sc.list_portfolios(PageSize=3, PageToken=page["NextPageToken"])
    assert [p["Id"] for p in page2["PortfolioDetails"]] == ids[3:6]
    page3 = sc.list_portfolios(PageSize=3, PageToken=page2["NextPageToken"])
    assert [p["Id"] for p in page3["PortfolioDetails"]] == ids[6:]
    assert "NextPageToken" not in page3
    paged = [p["Id"] for pg in sc.get_paginator("list_portfolios").paginate(PaginationConfig={"PageSize": 2})
             for p in pg["PortfolioDetails"]]
    assert paged == ids
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sc.list_portfolios(PageToken="not-a-token")
    assert error_of(e)[:2] == ("InvalidParametersException", 400)


def test_accounts_and_regions_are_isolated(server, tenant):
    sc = server.client("servicecatalog", tenant)
    mine = sc.create_portfolio(DisplayName="mine", ProviderName="p")["PortfolioDetail"]["Id"]
    stranger_account = new_account()
    stranger = server.create_key(stranger_account, f"arn:aws:iam::{stranger_account}:role/admin", admin=True)
    other = server.client("servicecatalog", stranger)
    assert other.list_portfolios()["PortfolioDetails"] == []
    for call in (lambda: other.describe_portfolio(Id=mine),
                 lambda: other.update_portfolio(Id=mine, DisplayName="stolen"),
                 lambda: other.delete_portfolio(Id=mine)):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            call()
        assert error_of(e)[0] == "ResourceNotFoundException"
    elsewhere = server.client("servicecatalog", tenant, region="eu-west-1")
    assert elsewhere.list_portfolios()["PortfolioDetails"] == []
    assert sc.describe_portfolio(Id=mine)["PortfolioDetail"]["DisplayName"] == "mine"


def test_writes_are_for_admins(server, tenant):
    dev = server.create_key(tenant.account, f"arn:aws:iam::{tenant.account}:user/dev")
    sc_admin = server.client("servicecatalog", tenant)
    pid = sc_admin.create_portfolio(DisplayName="kept", ProviderName="p")["PortfolioDetail"]["Id"]
    sc_dev = server.client("servicecatalog", dev)
    for call in (lambda: sc_dev.create_portfolio(DisplayName="x", ProviderName="p"),
                 lambda: sc_dev.update_portfolio(Id=pid, DisplayName="x"),
                 lambda: sc_dev.delete_portfolio(Id=pid)):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            call()
        code, status, message = error_of(e)
        assert (code, status) == ("AccessDeniedException", 400)
        assert dev.principal in message and "servicecatalog:" in message
    # Reads are open to every principal of the account; nothing was changed.
    assert sc_dev.describe_portfolio(Id=pid)["PortfolioDetail"]["DisplayName"] == "kept"
    assert [p["Id"] for p in sc_dev.list_portfolios()["PortfolioDetails"]] == [pid]
