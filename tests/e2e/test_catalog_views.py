"""The end user's and the admin's views through boto3: DescribeProduct and SearchProducts show
only what the caller may launch, UpdateProduct and UpdateProvisioningArtifact change what they
say (an inactive version cannot be provisioned), ListRecordHistory and SearchProvisionedProducts
find records and provisioned products."""

import botocore.exceptions
import pytest

from test_engine_workflow import World, code


@pytest.fixture
def world(server, tmp_path):
    return World(server, tmp_path)


def test_end_users_see_what_they_may_launch(world):
    described = world.dev.describe_product(Id=world.product)
    assert described["ProductViewSummary"]["ProductId"] == world.product
    assert [a["Id"] for a in described["ProvisioningArtifacts"]] == [world.artifact]
    assert described["LaunchPaths"] == [{"Id": "lpv3-" + world.portfolio[5:], "Name": "Platform"}]
    found = world.dev.search_products(Filters={"FullTextSearch": ["BUCK"]})["ProductViewSummaries"]
    assert [p["ProductId"] for p in found] == [world.product]
    assert world.dev.search_products(Filters={"FullTextSearch": ["nothing-like-it"]})["ProductViewSummaries"] == []
    # The admin's principal is not associated: no path, so no product in its end-user view.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        world.admin.describe_product(Id=world.product)
    assert code(e)[0] == "ResourceNotFoundException"
    assert world.admin.search_products()["ProductViewSummaries"] == []


def test_admins_update_products_and_versions(world):
    out = world.admin.update_product(Id=world.product, Name="bucket-v2", AddTags=[{"Key": "tier", "Value": "gold"}])
    assert out["ProductViewDetail"]["ProductViewSummary"]["Name"] == "bucket-v2"
    assert out["Tags"] == [{"Key": "tier", "Value": "gold"}]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        world.dev.update_product(Id=world.product, Name="mine")
    assert code(e)[0] == "AccessDeniedException"
    pa = world.admin.update_provisioning_artifact(ProductId=world.product, ProvisioningArtifactId=world.artifact,
                                                  Active=False, Guidance="DEPRECATED", Description="old")
    assert pa["ProvisioningArtifactDetail"]["Active"] is False
    assert pa["ProvisioningArtifactDetail"]["Guidance"] == "DEPRECATED"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        world.provision("inactive")
    assert code(e)[0] == "InvalidParametersException" and "not active" in code(e)[1]
    assert world.dev.describe_product(Id=world.product)["ProvisioningArtifacts"] == []


def test_record_history_and_search(world):
    r1 = world.provision("alpha")
    r2 = world.provision("beta")
    history = world.dev.list_record_history()["RecordDetails"]
    assert [r["RecordId"] for r in history][:2] == [r2["RecordId"], r1["RecordId"]]
    only = world.dev.list_record_history(SearchFilter={"Key": "provisionedproduct", "Value": r1["ProvisionedProductId"]})["RecordDetails"]
    assert [r["RecordId"] for r in only] == [r1["RecordId"]]
    page = world.dev.list_record_history(PageSize=1)
    assert len(page["RecordDetails"]) == 1 and page["NextPageToken"]
    found = world.dev.search_provisioned_products(Filters={"SearchQuery": ["name:alp"]})
    assert [p["Name"] for p in found["ProvisionedProducts"]] == ["alpha"]
    assert found["TotalResultsCount"] == 1
    attr = found["ProvisionedProducts"][0]
    assert attr["ProductName"] == "bucket" and attr["ProvisioningArtifactName"] == "v1"
    assert attr["UserArn"] == world.dev_principal and attr["Status"] == "UNDER_CHANGE"
    everything = world.dev.search_provisioned_products(SortBy="name", SortOrder="DESCENDING")["ProvisionedProducts"]
    assert [p["Name"] for p in everything] == ["beta", "alpha"]
    # Each provisioned product of a page shows its own version's name, however many share one.
    v2 = world.admin.create_provisioning_artifact(ProductId=world.product, Parameters={
        "Name": "v2", "Info": {"LoadTemplateFromURL": f"file://{world.archive}"}})["ProvisioningArtifactDetail"]["Id"]
    world.dev.provision_product(ProductId=world.product, ProvisioningArtifactId=v2, ProvisionedProductName="gamma",
                                ProvisioningParameters=[{"Key": "bucket_name", "Value": "b3"}])
    shown = world.dev.search_provisioned_products(SortBy="name")["ProvisionedProducts"]
    assert [(p["Name"], p["ProductName"], p["ProvisioningArtifactName"]) for p in shown] == [
        ("alpha", "bucket", "v1"), ("beta", "bucket", "v1"), ("gamma", "bucket", "v2")]
    assert world.admin.search_provisioned_products(AccessLevelFilter={"Key": "User", "Value": "Self"})["ProvisionedProducts"] == []


def test_update_provisioned_product_properties(world):
    record = world.provision("owned")
    task = world.receive("Provision")
    world.engine.notify_provision_product_engine_workflow_result(
        WorkflowToken=task["token"], RecordId=record["RecordId"], Status="SUCCEEDED", IdempotencyToken="p1")
    pp_id = record["ProvisionedProductId"]
    new_owner = f"arn:aws:iam::{world.account}:role/new-owner"
    new_role = f"arn:aws:iam::{world.account}:role/OtherLaunchRole"
    out = world.dev.update_provisioned_product_properties(
        ProvisionedProductId=pp_id, ProvisionedProductProperties={"OWNER": new_owner, "LAUNCH_ROLE": new_role}, IdempotencyToken="props")
    assert out["Status"] == "SUCCEEDED" and out["ProvisionedProductProperties"]["OWNER"] == new_owner
    detail = world.pp(pp_id)
    assert detail["LaunchRoleArn"] == new_role and detail["LastRecordId"] == out["RecordId"]
    assert world.dev.describe_record(Id=out["RecordId"])["RecordDetail"]["RecordType"] == "UPDATE_PROVISIONED_PRODUCT_PROPERTIES"
    # The developer no longer owns it; the admin still may change it.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        world.dev.update_provisioned_product_properties(ProvisionedProductId=pp_id, ProvisionedProductProperties={"OWNER": world.dev_principal})
    assert code(e)[0] == "AccessDeniedException"
    world.admin.update_provisioned_product_properties(ProvisionedProductId=pp_id, ProvisionedProductProperties={"OWNER": world.dev_principal})
    with pytest.raises(botocore.exceptions.ClientError) as e:
        world.admin.update_provisioned_product_properties(ProvisionedProductId=pp_id,
                                                          ProvisionedProductProperties={"LAUNCH_ROLE": "arn:aws:iam::210987654321:role/x"})
    assert code(e)[0] == "InvalidParametersException"
    # The next update task carries the new launch role.
    world.dev.update_provisioned_product(ProvisionedProductId=pp_id, ProvisioningParameters=[{"Key": "bucket_name", "UsePreviousValue": True}])
    assert world.receive("Update")["launchRoleArn"] == new_role


def test_an_inactive_version_cannot_be_updated_to(world):
    record = world.provision("kept")
    task = world.receive("Provision")
    world.engine.notify_provision_product_engine_workflow_result(
        WorkflowToken=task["token"], RecordId=record["RecordId"], Status="SUCCEEDED", IdempotencyToken="k")
    world.admin.update_provisioning_artifact(ProductId=world.product, ProvisioningArtifactId=world.artifact, Active=False)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        world.dev.update_provisioned_product(ProvisionedProductId=record["ProvisionedProductId"],
                                             ProvisioningParameters=[{"Key": "bucket_name", "UsePreviousValue": True}])
    assert code(e)[0] == "InvalidParametersException" and "not active" in code(e)[1]
    assert world.pp(record["ProvisionedProductId"])["Status"] == "AVAILABLE"


def test_access_level_filters(server, world):
    """Scan, ListRecordHistory and ListProvisionedProductPlans default to the caller's own
    (User); SearchProvisionedProducts defaults to the account; Account, Role and User narrow
    as asked; a Value other than self is refused."""
    a = world.account
    other_principal = f"arn:aws:iam::{a}:role/dev2"
    other = server.client("servicecatalog", server.create_key(a, other_principal))
    world.admin.associate_principal_with_portfolio(PortfolioId=world.portfolio, PrincipalARN=other_principal, PrincipalType="IAM")
    mine = world.provision("mine")["ProvisionedProductId"]
    theirs = other.provision_product(ProductId=world.product, ProvisioningArtifactId=world.artifact, ProvisionedProductName="theirs",
                                     ProvisioningParameters=[{"Key": "bucket_name", "Value": "b"}])["RecordDetail"]["ProvisionedProductId"]
    other.create_provisioned_product_plan(PlanName="p", PlanType="CLOUDFORMATION", ProductId=world.product, ProvisionedProductName="later",
                                          ProvisioningArtifactId=world.artifact, ProvisioningParameters=[{"Key": "bucket_name", "Value": "b"}])

    scan = lambda **kw: sorted(p["Name"] for p in world.dev.scan_provisioned_products(**kw)["ProvisionedProducts"])
    assert scan() == ["mine"]
    assert scan(AccessLevelFilter={"Key": "User", "Value": "self"}) == ["mine"]
    assert scan(AccessLevelFilter={"Key": "Role", "Value": "Self"}) == ["mine"]
    assert scan(AccessLevelFilter={"Key": "Account", "Value": "self"}) == ["later", "mine", "theirs"]
    history = lambda **kw: sorted(r["ProvisionedProductId"] for r in world.dev.list_record_history(**kw)["RecordDetails"])
    assert history() == [mine]
    assert history(AccessLevelFilter={"Key": "Account", "Value": "self"}) == sorted([mine, theirs])
    plans = lambda client, **kw: len(client.list_provisioned_product_plans(**kw)["ProvisionedProductPlans"])
    assert plans(world.dev) == 0 and plans(other) == 1
    assert plans(world.dev, AccessLevelFilter={"Key": "Account", "Value": "self"}) == 1
    search = lambda **kw: sorted(p["Name"] for p in world.dev.search_provisioned_products(**kw)["ProvisionedProducts"])
    assert search() == ["later", "mine", "theirs"]
    assert search(AccessLevelFilter={"Key": "User", "Value": "self"}) == ["mine"]
    first = world.dev.search_provisioned_products(PageSize=2)
    assert len(first["ProvisionedProducts"]) == 2 and first["TotalResultsCount"] == 3
    rest = world.dev.search_provisioned_products(PageSize=2, PageToken=first["NextPageToken"])
    assert len(rest["ProvisionedProducts"]) == 1 and "NextPageToken" not in rest
    assert sorted(p["Name"] for p in first["ProvisionedProducts"] + rest["ProvisionedProducts"]) == ["later", "mine", "theirs"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        world.dev.scan_provisioned_products(AccessLevelFilter={"Key": "User", "Value": other_principal})
    assert code(e)[0] == "InvalidParametersException" and "self" in code(e)[1]
