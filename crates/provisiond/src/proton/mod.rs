//! Proton (SPEC §7): the `proton::Handler` implementation that the server dispatches to, one
//! file per concern; what each operation is (served, who may call it, where it runs) is said
//! once, in `operations::TABLE`.
//!
//! - `operations.rs`: the per-operation table.
//! - `common.rs`: ARNs, errors, the admin check the table asks for, paging, tags.
//! - `repository.rs`, `template.rs`, `environment.rs`, `service.rs` (services and their
//!   instances), `component.rs`, `settings.rs`: the resources.
//! - `instance_list.rs`: `ListServiceInstances`, its filters, sort orders and pages.
//! - `schema.rs`: YAML, template schemas, spec validation with defaults.
//! - `bundle.rs`, `render.rs`: template bundles in, deployment bundles out.
//! - `deployment.rs`, `target.rs`, `notify.rs`: deployments, the resources they target, and
//!   `NotifyResourceDeploymentStatusChange`.
//! - `delivery.rs`: the outbox of rendered bundles and their git commits.

pub mod common;
pub mod component;
pub mod delivery;
pub mod dependents;
pub mod deployable;
pub mod deployment;
pub mod environment;
pub mod in_use;
pub mod instance_list;
pub mod notify;
pub mod operations;
pub mod render;
pub mod repair;
pub mod repository;
pub mod schema;
pub mod service;
pub mod settings;
pub mod snapshot;
pub mod status;
pub mod target;
pub mod template;

use crate::context::RequestContext;
use crate::served::Caller;
use provisiond_model::proton::{self as pr, Operation};
use provisiond_model::AwsError;
use std::sync::Arc;

/// The Proton API over the store, with the deliverer that commits deployments to git.
pub struct Proton {
    /// Commits rendered bundles to the configured git repositories.
    pub delivery: Arc<delivery::Deliverer>,
}

impl Proton {
    /// Runs a call that may schedule a delivery, then delivers at once (the commit is in git
    /// when the answer goes out; a failure is retried in the background).
    fn delivering<T>(
        &self,
        ctx: &RequestContext,
        result: Result<T, AwsError>,
    ) -> Result<T, AwsError> {
        if result.is_ok() {
            self.delivery.deliver_pending(ctx.store.as_ref());
        }
        result
    }
}

impl pr::Handler for Proton {
    type Context = RequestContext;

    fn implements(&self, operation: Operation) -> bool {
        operations::facts(operation).is_some()
    }

    fn authorize(&self, ctx: &RequestContext, operation: Operation) -> Result<(), AwsError> {
        match operations::facts(operation).map(|f| f.caller) {
            Some(Caller::Admin) => common::require_admin(ctx, operation),
            _ => Ok(()),
        }
    }

    fn create_repository(
        &self,
        ctx: &RequestContext,
        input: pr::CreateRepositoryInput,
    ) -> Result<pr::CreateRepositoryOutput, AwsError> {
        repository::create(ctx, input)
    }

    fn get_repository(
        &self,
        ctx: &RequestContext,
        input: pr::GetRepositoryInput,
    ) -> Result<pr::GetRepositoryOutput, AwsError> {
        repository::get(ctx, input)
    }

    fn list_repositories(
        &self,
        ctx: &RequestContext,
        input: pr::ListRepositoriesInput,
    ) -> Result<pr::ListRepositoriesOutput, AwsError> {
        repository::list(ctx, input)
    }

    fn delete_repository(
        &self,
        ctx: &RequestContext,
        input: pr::DeleteRepositoryInput,
    ) -> Result<pr::DeleteRepositoryOutput, AwsError> {
        repository::delete(ctx, input)
    }

    fn create_environment_template(
        &self,
        ctx: &RequestContext,
        input: pr::CreateEnvironmentTemplateInput,
    ) -> Result<pr::CreateEnvironmentTemplateOutput, AwsError> {
        template::ops::create_environment_template(ctx, input)
    }

    fn get_environment_template(
        &self,
        ctx: &RequestContext,
        input: pr::GetEnvironmentTemplateInput,
    ) -> Result<pr::GetEnvironmentTemplateOutput, AwsError> {
        template::ops::get_environment_template(ctx, input)
    }

    fn update_environment_template(
        &self,
        ctx: &RequestContext,
        input: pr::UpdateEnvironmentTemplateInput,
    ) -> Result<pr::UpdateEnvironmentTemplateOutput, AwsError> {
        template::ops::update_environment_template(ctx, input)
    }

    fn list_environment_templates(
        &self,
        ctx: &RequestContext,
        input: pr::ListEnvironmentTemplatesInput,
    ) -> Result<pr::ListEnvironmentTemplatesOutput, AwsError> {
        template::ops::list_environment_templates(ctx, input)
    }

    fn delete_environment_template(
        &self,
        ctx: &RequestContext,
        input: pr::DeleteEnvironmentTemplateInput,
    ) -> Result<pr::DeleteEnvironmentTemplateOutput, AwsError> {
        template::ops::delete_environment_template(ctx, input)
    }

    fn create_environment_template_version(
        &self,
        ctx: &RequestContext,
        input: pr::CreateEnvironmentTemplateVersionInput,
    ) -> Result<pr::CreateEnvironmentTemplateVersionOutput, AwsError> {
        template::ops::create_environment_template_version(ctx, input)
    }

    fn get_environment_template_version(
        &self,
        ctx: &RequestContext,
        input: pr::GetEnvironmentTemplateVersionInput,
    ) -> Result<pr::GetEnvironmentTemplateVersionOutput, AwsError> {
        template::ops::get_environment_template_version(ctx, input)
    }

    fn update_environment_template_version(
        &self,
        ctx: &RequestContext,
        input: pr::UpdateEnvironmentTemplateVersionInput,
    ) -> Result<pr::UpdateEnvironmentTemplateVersionOutput, AwsError> {
        template::ops::update_environment_template_version(ctx, input)
    }

    fn list_environment_template_versions(
        &self,
        ctx: &RequestContext,
        input: pr::ListEnvironmentTemplateVersionsInput,
    ) -> Result<pr::ListEnvironmentTemplateVersionsOutput, AwsError> {
        template::ops::list_environment_template_versions(ctx, input)
    }

    fn delete_environment_template_version(
        &self,
        ctx: &RequestContext,
        input: pr::DeleteEnvironmentTemplateVersionInput,
    ) -> Result<pr::DeleteEnvironmentTemplateVersionOutput, AwsError> {
        template::ops::delete_environment_template_version(ctx, input, &in_use::Links)
    }

    fn create_environment(
        &self,
        ctx: &RequestContext,
        input: pr::CreateEnvironmentInput,
    ) -> Result<pr::CreateEnvironmentOutput, AwsError> {
        self.delivering(ctx, environment::create(ctx, input))
    }

    fn get_environment(
        &self,
        ctx: &RequestContext,
        input: pr::GetEnvironmentInput,
    ) -> Result<pr::GetEnvironmentOutput, AwsError> {
        environment::get(ctx, input)
    }

    fn update_environment(
        &self,
        ctx: &RequestContext,
        input: pr::UpdateEnvironmentInput,
    ) -> Result<pr::UpdateEnvironmentOutput, AwsError> {
        self.delivering(ctx, environment::update(ctx, input))
    }

    fn list_environments(
        &self,
        ctx: &RequestContext,
        input: pr::ListEnvironmentsInput,
    ) -> Result<pr::ListEnvironmentsOutput, AwsError> {
        environment::list(ctx, input)
    }

    fn delete_environment(
        &self,
        ctx: &RequestContext,
        input: pr::DeleteEnvironmentInput,
    ) -> Result<pr::DeleteEnvironmentOutput, AwsError> {
        self.delivering(ctx, environment::delete(ctx, input, &in_use::Links))
    }

    fn list_environment_outputs(
        &self,
        ctx: &RequestContext,
        input: pr::ListEnvironmentOutputsInput,
    ) -> Result<pr::ListEnvironmentOutputsOutput, AwsError> {
        environment::outputs(ctx, input)
    }

    fn cancel_environment_deployment(
        &self,
        ctx: &RequestContext,
        input: pr::CancelEnvironmentDeploymentInput,
    ) -> Result<pr::CancelEnvironmentDeploymentOutput, AwsError> {
        environment::cancel(ctx, input)
    }

    fn get_deployment(
        &self,
        ctx: &RequestContext,
        input: pr::GetDeploymentInput,
    ) -> Result<pr::GetDeploymentOutput, AwsError> {
        deployment::get(ctx, input)
    }

    fn list_deployments(
        &self,
        ctx: &RequestContext,
        input: pr::ListDeploymentsInput,
    ) -> Result<pr::ListDeploymentsOutput, AwsError> {
        deployment::list(ctx, input)
    }

    fn delete_deployment(
        &self,
        ctx: &RequestContext,
        input: pr::DeleteDeploymentInput,
    ) -> Result<pr::DeleteDeploymentOutput, AwsError> {
        target::delete_deployment(ctx, input)
    }

    fn notify_resource_deployment_status_change(
        &self,
        ctx: &RequestContext,
        input: pr::NotifyResourceDeploymentStatusChangeInput,
    ) -> Result<pr::NotifyResourceDeploymentStatusChangeOutput, AwsError> {
        notify::notify(ctx, input)
    }

    fn tag_resource(
        &self,
        ctx: &RequestContext,
        input: pr::TagResourceInput,
    ) -> Result<pr::TagResourceOutput, AwsError> {
        common::tags::tag(ctx, input)
    }

    fn untag_resource(
        &self,
        ctx: &RequestContext,
        input: pr::UntagResourceInput,
    ) -> Result<pr::UntagResourceOutput, AwsError> {
        common::tags::untag(ctx, input)
    }

    fn list_tags_for_resource(
        &self,
        ctx: &RequestContext,
        input: pr::ListTagsForResourceInput,
    ) -> Result<pr::ListTagsForResourceOutput, AwsError> {
        common::tags::list(ctx, input)
    }

    fn create_service_template(
        &self,
        ctx: &RequestContext,
        input: pr::CreateServiceTemplateInput,
    ) -> Result<pr::CreateServiceTemplateOutput, AwsError> {
        template::ops::create_service_template(ctx, input)
    }

    fn get_service_template(
        &self,
        ctx: &RequestContext,
        input: pr::GetServiceTemplateInput,
    ) -> Result<pr::GetServiceTemplateOutput, AwsError> {
        template::ops::get_service_template(ctx, input)
    }

    fn update_service_template(
        &self,
        ctx: &RequestContext,
        input: pr::UpdateServiceTemplateInput,
    ) -> Result<pr::UpdateServiceTemplateOutput, AwsError> {
        template::ops::update_service_template(ctx, input)
    }

    fn list_service_templates(
        &self,
        ctx: &RequestContext,
        input: pr::ListServiceTemplatesInput,
    ) -> Result<pr::ListServiceTemplatesOutput, AwsError> {
        template::ops::list_service_templates(ctx, input)
    }

    fn delete_service_template(
        &self,
        ctx: &RequestContext,
        input: pr::DeleteServiceTemplateInput,
    ) -> Result<pr::DeleteServiceTemplateOutput, AwsError> {
        template::ops::delete_service_template(ctx, input)
    }

    fn create_service_template_version(
        &self,
        ctx: &RequestContext,
        input: pr::CreateServiceTemplateVersionInput,
    ) -> Result<pr::CreateServiceTemplateVersionOutput, AwsError> {
        template::ops::create_service_template_version(ctx, input)
    }

    fn get_service_template_version(
        &self,
        ctx: &RequestContext,
        input: pr::GetServiceTemplateVersionInput,
    ) -> Result<pr::GetServiceTemplateVersionOutput, AwsError> {
        template::ops::get_service_template_version(ctx, input)
    }

    fn update_service_template_version(
        &self,
        ctx: &RequestContext,
        input: pr::UpdateServiceTemplateVersionInput,
    ) -> Result<pr::UpdateServiceTemplateVersionOutput, AwsError> {
        template::ops::update_service_template_version(ctx, input)
    }

    fn list_service_template_versions(
        &self,
        ctx: &RequestContext,
        input: pr::ListServiceTemplateVersionsInput,
    ) -> Result<pr::ListServiceTemplateVersionsOutput, AwsError> {
        template::ops::list_service_template_versions(ctx, input)
    }

    fn delete_service_template_version(
        &self,
        ctx: &RequestContext,
        input: pr::DeleteServiceTemplateVersionInput,
    ) -> Result<pr::DeleteServiceTemplateVersionOutput, AwsError> {
        template::ops::delete_service_template_version(ctx, input, &in_use::Links)
    }

    fn create_service(
        &self,
        ctx: &RequestContext,
        input: pr::CreateServiceInput,
    ) -> Result<pr::CreateServiceOutput, AwsError> {
        self.delivering(ctx, service::create(ctx, input))
    }

    fn get_service(
        &self,
        ctx: &RequestContext,
        input: pr::GetServiceInput,
    ) -> Result<pr::GetServiceOutput, AwsError> {
        service::get(ctx, input)
    }

    fn update_service(
        &self,
        ctx: &RequestContext,
        input: pr::UpdateServiceInput,
    ) -> Result<pr::UpdateServiceOutput, AwsError> {
        self.delivering(ctx, service::update(ctx, input))
    }

    fn list_services(
        &self,
        ctx: &RequestContext,
        input: pr::ListServicesInput,
    ) -> Result<pr::ListServicesOutput, AwsError> {
        service::list(ctx, input)
    }

    fn delete_service(
        &self,
        ctx: &RequestContext,
        input: pr::DeleteServiceInput,
    ) -> Result<pr::DeleteServiceOutput, AwsError> {
        self.delivering(ctx, service::delete(ctx, input, &in_use::Links))
    }

    fn create_service_instance(
        &self,
        ctx: &RequestContext,
        input: pr::CreateServiceInstanceInput,
    ) -> Result<pr::CreateServiceInstanceOutput, AwsError> {
        self.delivering(ctx, service::create_instance(ctx, input))
    }

    fn get_service_instance(
        &self,
        ctx: &RequestContext,
        input: pr::GetServiceInstanceInput,
    ) -> Result<pr::GetServiceInstanceOutput, AwsError> {
        service::get_instance(ctx, input)
    }

    fn update_service_instance(
        &self,
        ctx: &RequestContext,
        input: pr::UpdateServiceInstanceInput,
    ) -> Result<pr::UpdateServiceInstanceOutput, AwsError> {
        self.delivering(ctx, service::update_instance(ctx, input, &in_use::Links))
    }

    fn list_service_instances(
        &self,
        ctx: &RequestContext,
        input: pr::ListServiceInstancesInput,
    ) -> Result<pr::ListServiceInstancesOutput, AwsError> {
        instance_list::list(ctx, input)
    }

    fn list_service_instance_outputs(
        &self,
        ctx: &RequestContext,
        input: pr::ListServiceInstanceOutputsInput,
    ) -> Result<pr::ListServiceInstanceOutputsOutput, AwsError> {
        service::instance_outputs(ctx, input)
    }

    fn cancel_service_instance_deployment(
        &self,
        ctx: &RequestContext,
        input: pr::CancelServiceInstanceDeploymentInput,
    ) -> Result<pr::CancelServiceInstanceDeploymentOutput, AwsError> {
        service::cancel_instance(ctx, input)
    }

    fn list_service_pipeline_outputs(
        &self,
        ctx: &RequestContext,
        input: pr::ListServicePipelineOutputsInput,
    ) -> Result<pr::ListServicePipelineOutputsOutput, AwsError> {
        service::pipeline_outputs(ctx, input)
    }

    fn create_component(
        &self,
        ctx: &RequestContext,
        input: pr::CreateComponentInput,
    ) -> Result<pr::CreateComponentOutput, AwsError> {
        self.delivering(ctx, component::create(ctx, input))
    }

    fn get_component(
        &self,
        ctx: &RequestContext,
        input: pr::GetComponentInput,
    ) -> Result<pr::GetComponentOutput, AwsError> {
        component::get(ctx, input)
    }

    fn update_component(
        &self,
        ctx: &RequestContext,
        input: pr::UpdateComponentInput,
    ) -> Result<pr::UpdateComponentOutput, AwsError> {
        self.delivering(ctx, component::update(ctx, input))
    }

    fn list_components(
        &self,
        ctx: &RequestContext,
        input: pr::ListComponentsInput,
    ) -> Result<pr::ListComponentsOutput, AwsError> {
        component::list(ctx, input)
    }

    fn delete_component(
        &self,
        ctx: &RequestContext,
        input: pr::DeleteComponentInput,
    ) -> Result<pr::DeleteComponentOutput, AwsError> {
        self.delivering(ctx, component::delete(ctx, input))
    }

    fn list_component_outputs(
        &self,
        ctx: &RequestContext,
        input: pr::ListComponentOutputsInput,
    ) -> Result<pr::ListComponentOutputsOutput, AwsError> {
        component::outputs(ctx, input)
    }

    fn cancel_component_deployment(
        &self,
        ctx: &RequestContext,
        input: pr::CancelComponentDeploymentInput,
    ) -> Result<pr::CancelComponentDeploymentOutput, AwsError> {
        component::cancel(ctx, input)
    }

    fn get_account_settings(
        &self,
        ctx: &RequestContext,
        input: pr::GetAccountSettingsInput,
    ) -> Result<pr::GetAccountSettingsOutput, AwsError> {
        settings::get(ctx, input)
    }

    fn update_account_settings(
        &self,
        ctx: &RequestContext,
        input: pr::UpdateAccountSettingsInput,
    ) -> Result<pr::UpdateAccountSettingsOutput, AwsError> {
        settings::update(ctx, input)
    }
}
