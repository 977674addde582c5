//! Service Catalog: the `servicecatalog::Handler` implementation that the server dispatches to,
//! one file per resource; what each operation is (served, who may call it, where it runs) is
//! said once, in `operations::TABLE`.

pub mod access_level;
pub mod artifact_source;
pub mod constraint;
pub mod engine_task;
pub mod launch_path;
pub mod membership;
pub mod notify;
pub mod operations;
pub mod plan;
pub mod portfolio;
pub mod principal;
pub mod product;
pub mod product_view;
pub mod provisioned_search;
pub mod provisioning;
pub mod repair;
pub mod status;
pub mod terraform;
pub mod workflow_token;

use crate::context::RequestContext;
use crate::served::Caller;
use provisiond_model::servicecatalog::{self as sc, Operation};
use provisiond_model::AwsError;

/// The Service Catalog API over the store.
pub struct ServiceCatalog;

/// Page size of the provisioning reads: 20 unless asked, at most 100.
pub fn paging_size(requested: Option<i32>) -> usize {
    crate::paging::page_size(requested, 20, 100)
}

/// Stored `(key, value)` tags as the wire's `Tag`s.
pub fn wire_tags(tags: &[(String, String)]) -> Vec<sc::Tag> {
    tags.iter()
        .map(|(k, v)| sc::Tag {
            key: Some(k.clone()),
            value: Some(v.clone()),
        })
        .collect()
}

/// The IAM-style action name of an operation, as named in access-denied messages.
pub fn action(operation: Operation) -> String {
    format!("servicecatalog:{}", operation.name())
}

impl sc::Handler for ServiceCatalog {
    type Context = RequestContext;

    fn implements(&self, operation: Operation) -> bool {
        operations::facts(operation).is_some()
    }

    fn authorize(&self, ctx: &RequestContext, operation: Operation) -> Result<(), AwsError> {
        match operations::facts(operation).map(|f| f.caller) {
            Some(Caller::Admin) => ctx.require_admin(&action(operation)),
            _ => Ok(()),
        }
    }

    fn create_portfolio(
        &self,
        ctx: &RequestContext,
        input: sc::CreatePortfolioInput,
    ) -> Result<sc::CreatePortfolioOutput, AwsError> {
        portfolio::create(ctx, input)
    }

    fn describe_portfolio(
        &self,
        ctx: &RequestContext,
        input: sc::DescribePortfolioInput,
    ) -> Result<sc::DescribePortfolioOutput, AwsError> {
        portfolio::describe(ctx, input)
    }

    fn update_portfolio(
        &self,
        ctx: &RequestContext,
        input: sc::UpdatePortfolioInput,
    ) -> Result<sc::UpdatePortfolioOutput, AwsError> {
        portfolio::update(ctx, input)
    }

    fn delete_portfolio(
        &self,
        ctx: &RequestContext,
        input: sc::DeletePortfolioInput,
    ) -> Result<sc::DeletePortfolioOutput, AwsError> {
        portfolio::delete(ctx, input)
    }

    fn list_portfolios(
        &self,
        ctx: &RequestContext,
        input: sc::ListPortfoliosInput,
    ) -> Result<sc::ListPortfoliosOutput, AwsError> {
        portfolio::list(ctx, input)
    }

    fn associate_principal_with_portfolio(
        &self,
        ctx: &RequestContext,
        input: sc::AssociatePrincipalWithPortfolioInput,
    ) -> Result<sc::AssociatePrincipalWithPortfolioOutput, AwsError> {
        principal::associate(ctx, input)
    }

    fn disassociate_principal_from_portfolio(
        &self,
        ctx: &RequestContext,
        input: sc::DisassociatePrincipalFromPortfolioInput,
    ) -> Result<sc::DisassociatePrincipalFromPortfolioOutput, AwsError> {
        principal::disassociate(ctx, input)
    }

    fn list_principals_for_portfolio(
        &self,
        ctx: &RequestContext,
        input: sc::ListPrincipalsForPortfolioInput,
    ) -> Result<sc::ListPrincipalsForPortfolioOutput, AwsError> {
        principal::list(ctx, input)
    }

    fn create_product(
        &self,
        ctx: &RequestContext,
        input: sc::CreateProductInput,
    ) -> Result<sc::CreateProductOutput, AwsError> {
        product::create(ctx, input)
    }

    fn describe_product_as_admin(
        &self,
        ctx: &RequestContext,
        input: sc::DescribeProductAsAdminInput,
    ) -> Result<sc::DescribeProductAsAdminOutput, AwsError> {
        product::describe_as_admin(ctx, input)
    }

    fn delete_product(
        &self,
        ctx: &RequestContext,
        input: sc::DeleteProductInput,
    ) -> Result<sc::DeleteProductOutput, AwsError> {
        product::delete(ctx, input)
    }

    fn search_products_as_admin(
        &self,
        ctx: &RequestContext,
        input: sc::SearchProductsAsAdminInput,
    ) -> Result<sc::SearchProductsAsAdminOutput, AwsError> {
        product::search_as_admin(ctx, input)
    }

    fn associate_product_with_portfolio(
        &self,
        ctx: &RequestContext,
        input: sc::AssociateProductWithPortfolioInput,
    ) -> Result<sc::AssociateProductWithPortfolioOutput, AwsError> {
        membership::associate(ctx, input)
    }

    fn disassociate_product_from_portfolio(
        &self,
        ctx: &RequestContext,
        input: sc::DisassociateProductFromPortfolioInput,
    ) -> Result<sc::DisassociateProductFromPortfolioOutput, AwsError> {
        membership::disassociate(ctx, input)
    }

    fn list_portfolios_for_product(
        &self,
        ctx: &RequestContext,
        input: sc::ListPortfoliosForProductInput,
    ) -> Result<sc::ListPortfoliosForProductOutput, AwsError> {
        membership::list_portfolios(ctx, input)
    }

    fn create_provisioning_artifact(
        &self,
        ctx: &RequestContext,
        input: sc::CreateProvisioningArtifactInput,
    ) -> Result<sc::CreateProvisioningArtifactOutput, AwsError> {
        product::create_artifact(ctx, input)
    }

    fn describe_provisioning_artifact(
        &self,
        ctx: &RequestContext,
        input: sc::DescribeProvisioningArtifactInput,
    ) -> Result<sc::DescribeProvisioningArtifactOutput, AwsError> {
        product::describe_artifact(ctx, input)
    }

    fn list_provisioning_artifacts(
        &self,
        ctx: &RequestContext,
        input: sc::ListProvisioningArtifactsInput,
    ) -> Result<sc::ListProvisioningArtifactsOutput, AwsError> {
        product::list_artifacts(ctx, input)
    }

    fn delete_provisioning_artifact(
        &self,
        ctx: &RequestContext,
        input: sc::DeleteProvisioningArtifactInput,
    ) -> Result<sc::DeleteProvisioningArtifactOutput, AwsError> {
        product::delete_artifact(ctx, input)
    }

    fn create_constraint(
        &self,
        ctx: &RequestContext,
        input: sc::CreateConstraintInput,
    ) -> Result<sc::CreateConstraintOutput, AwsError> {
        constraint::create(ctx, input)
    }

    fn describe_constraint(
        &self,
        ctx: &RequestContext,
        input: sc::DescribeConstraintInput,
    ) -> Result<sc::DescribeConstraintOutput, AwsError> {
        constraint::describe(ctx, input)
    }

    fn delete_constraint(
        &self,
        ctx: &RequestContext,
        input: sc::DeleteConstraintInput,
    ) -> Result<sc::DeleteConstraintOutput, AwsError> {
        constraint::delete(ctx, input)
    }

    fn list_constraints_for_portfolio(
        &self,
        ctx: &RequestContext,
        input: sc::ListConstraintsForPortfolioInput,
    ) -> Result<sc::ListConstraintsForPortfolioOutput, AwsError> {
        constraint::list_for_portfolio(ctx, input)
    }

    fn list_launch_paths(
        &self,
        ctx: &RequestContext,
        input: sc::ListLaunchPathsInput,
    ) -> Result<sc::ListLaunchPathsOutput, AwsError> {
        launch_path::list(ctx, input)
    }

    fn describe_provisioning_parameters(
        &self,
        ctx: &RequestContext,
        input: sc::DescribeProvisioningParametersInput,
    ) -> Result<sc::DescribeProvisioningParametersOutput, AwsError> {
        launch_path::describe_parameters(ctx, input)
    }

    fn provision_product(
        &self,
        ctx: &RequestContext,
        input: sc::ProvisionProductInput,
    ) -> Result<sc::ProvisionProductOutput, AwsError> {
        provisioning::provision(ctx, input)
    }

    fn update_provisioned_product(
        &self,
        ctx: &RequestContext,
        input: sc::UpdateProvisionedProductInput,
    ) -> Result<sc::UpdateProvisionedProductOutput, AwsError> {
        provisioning::update(ctx, input)
    }

    fn terminate_provisioned_product(
        &self,
        ctx: &RequestContext,
        input: sc::TerminateProvisionedProductInput,
    ) -> Result<sc::TerminateProvisionedProductOutput, AwsError> {
        provisioning::terminate(ctx, input)
    }

    fn describe_provisioned_product(
        &self,
        ctx: &RequestContext,
        input: sc::DescribeProvisionedProductInput,
    ) -> Result<sc::DescribeProvisionedProductOutput, AwsError> {
        provisioning::describe(ctx, input)
    }

    fn describe_record(
        &self,
        ctx: &RequestContext,
        input: sc::DescribeRecordInput,
    ) -> Result<sc::DescribeRecordOutput, AwsError> {
        provisioning::describe_record(ctx, input)
    }

    fn get_provisioned_product_outputs(
        &self,
        ctx: &RequestContext,
        input: sc::GetProvisionedProductOutputsInput,
    ) -> Result<sc::GetProvisionedProductOutputsOutput, AwsError> {
        provisioning::outputs(ctx, input)
    }

    fn scan_provisioned_products(
        &self,
        ctx: &RequestContext,
        input: sc::ScanProvisionedProductsInput,
    ) -> Result<sc::ScanProvisionedProductsOutput, AwsError> {
        provisioning::scan(ctx, input)
    }

    fn notify_provision_product_engine_workflow_result(
        &self,
        ctx: &RequestContext,
        input: sc::NotifyProvisionProductEngineWorkflowResultInput,
    ) -> Result<sc::NotifyProvisionProductEngineWorkflowResultOutput, AwsError> {
        notify::provision(ctx, input)
    }

    fn notify_update_provisioned_product_engine_workflow_result(
        &self,
        ctx: &RequestContext,
        input: sc::NotifyUpdateProvisionedProductEngineWorkflowResultInput,
    ) -> Result<sc::NotifyUpdateProvisionedProductEngineWorkflowResultOutput, AwsError> {
        notify::update(ctx, input)
    }

    fn notify_terminate_provisioned_product_engine_workflow_result(
        &self,
        ctx: &RequestContext,
        input: sc::NotifyTerminateProvisionedProductEngineWorkflowResultInput,
    ) -> Result<sc::NotifyTerminateProvisionedProductEngineWorkflowResultOutput, AwsError> {
        notify::terminate(ctx, input)
    }

    fn update_product(
        &self,
        ctx: &RequestContext,
        input: sc::UpdateProductInput,
    ) -> Result<sc::UpdateProductOutput, AwsError> {
        product::update(ctx, input)
    }

    fn update_provisioning_artifact(
        &self,
        ctx: &RequestContext,
        input: sc::UpdateProvisioningArtifactInput,
    ) -> Result<sc::UpdateProvisioningArtifactOutput, AwsError> {
        product::update_artifact(ctx, input)
    }

    fn describe_product(
        &self,
        ctx: &RequestContext,
        input: sc::DescribeProductInput,
    ) -> Result<sc::DescribeProductOutput, AwsError> {
        product_view::describe(ctx, input)
    }

    fn search_products(
        &self,
        ctx: &RequestContext,
        input: sc::SearchProductsInput,
    ) -> Result<sc::SearchProductsOutput, AwsError> {
        product_view::search(ctx, input)
    }

    fn list_record_history(
        &self,
        ctx: &RequestContext,
        input: sc::ListRecordHistoryInput,
    ) -> Result<sc::ListRecordHistoryOutput, AwsError> {
        provisioning::record_history(ctx, input)
    }

    fn search_provisioned_products(
        &self,
        ctx: &RequestContext,
        input: sc::SearchProvisionedProductsInput,
    ) -> Result<sc::SearchProvisionedProductsOutput, AwsError> {
        provisioned_search::search(ctx, input)
    }

    fn update_provisioned_product_properties(
        &self,
        ctx: &RequestContext,
        input: sc::UpdateProvisionedProductPropertiesInput,
    ) -> Result<sc::UpdateProvisionedProductPropertiesOutput, AwsError> {
        provisioning::update_properties(ctx, input)
    }

    fn create_provisioned_product_plan(
        &self,
        ctx: &RequestContext,
        input: sc::CreateProvisionedProductPlanInput,
    ) -> Result<sc::CreateProvisionedProductPlanOutput, AwsError> {
        plan::create(ctx, input)
    }

    fn describe_provisioned_product_plan(
        &self,
        ctx: &RequestContext,
        input: sc::DescribeProvisionedProductPlanInput,
    ) -> Result<sc::DescribeProvisionedProductPlanOutput, AwsError> {
        plan::describe(ctx, input)
    }

    fn list_provisioned_product_plans(
        &self,
        ctx: &RequestContext,
        input: sc::ListProvisionedProductPlansInput,
    ) -> Result<sc::ListProvisionedProductPlansOutput, AwsError> {
        plan::list(ctx, input)
    }

    fn delete_provisioned_product_plan(
        &self,
        ctx: &RequestContext,
        input: sc::DeleteProvisionedProductPlanInput,
    ) -> Result<sc::DeleteProvisionedProductPlanOutput, AwsError> {
        plan::delete(ctx, input)
    }

    fn execute_provisioned_product_plan(
        &self,
        ctx: &RequestContext,
        input: sc::ExecuteProvisionedProductPlanInput,
    ) -> Result<sc::ExecuteProvisionedProductPlanOutput, AwsError> {
        plan::execute(ctx, input)
    }
}
