//! Proton (SPEC §7): the `proton::Handler` implementation that the server dispatches to, one
//! file per concern. Operations not listed in `implements` answer `UnknownOperationException`.
//!
//! - `common.rs`: ARNs, errors, admin checks, paging, tags.
//! - `repository.rs`, `template.rs`, `environment.rs`: the resources.
//! - `schema.rs`: YAML, template schemas, spec validation with defaults.
//! - `bundle.rs`, `render.rs`: template bundles in, deployment bundles out.
//! - `deployment.rs`, `target.rs`, `notify.rs`: deployments, the resources they target, and
//!   `NotifyResourceDeploymentStatusChange`.
//! - `delivery.rs`: the outbox of rendered bundles and their git commits.

pub mod bundle;
pub mod common;
pub mod delivery;
pub mod deployment;
pub mod environment;
pub mod notify;
pub mod render;
pub mod repository;
pub mod schema;
pub mod target;
pub mod template;

use crate::context::RequestContext;
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
        use Operation::*;
        matches!(
            operation,
            CreateRepository
                | GetRepository
                | ListRepositories
                | DeleteRepository
                | CreateEnvironmentTemplate
                | GetEnvironmentTemplate
                | UpdateEnvironmentTemplate
                | ListEnvironmentTemplates
                | DeleteEnvironmentTemplate
                | CreateEnvironmentTemplateVersion
                | GetEnvironmentTemplateVersion
                | UpdateEnvironmentTemplateVersion
                | ListEnvironmentTemplateVersions
                | DeleteEnvironmentTemplateVersion
                | CreateEnvironment
                | GetEnvironment
                | UpdateEnvironment
                | ListEnvironments
                | DeleteEnvironment
                | ListEnvironmentOutputs
                | CancelEnvironmentDeployment
                | GetDeployment
                | ListDeployments
                | DeleteDeployment
                | NotifyResourceDeploymentStatusChange
                | TagResource
                | UntagResource
                | ListTagsForResource
        )
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
        template::create(ctx, input)
    }

    fn get_environment_template(
        &self,
        ctx: &RequestContext,
        input: pr::GetEnvironmentTemplateInput,
    ) -> Result<pr::GetEnvironmentTemplateOutput, AwsError> {
        template::get(ctx, input)
    }

    fn update_environment_template(
        &self,
        ctx: &RequestContext,
        input: pr::UpdateEnvironmentTemplateInput,
    ) -> Result<pr::UpdateEnvironmentTemplateOutput, AwsError> {
        template::update(ctx, input)
    }

    fn list_environment_templates(
        &self,
        ctx: &RequestContext,
        input: pr::ListEnvironmentTemplatesInput,
    ) -> Result<pr::ListEnvironmentTemplatesOutput, AwsError> {
        template::list(ctx, input)
    }

    fn delete_environment_template(
        &self,
        ctx: &RequestContext,
        input: pr::DeleteEnvironmentTemplateInput,
    ) -> Result<pr::DeleteEnvironmentTemplateOutput, AwsError> {
        template::delete(ctx, input)
    }

    fn create_environment_template_version(
        &self,
        ctx: &RequestContext,
        input: pr::CreateEnvironmentTemplateVersionInput,
    ) -> Result<pr::CreateEnvironmentTemplateVersionOutput, AwsError> {
        template::create_version(ctx, input)
    }

    fn get_environment_template_version(
        &self,
        ctx: &RequestContext,
        input: pr::GetEnvironmentTemplateVersionInput,
    ) -> Result<pr::GetEnvironmentTemplateVersionOutput, AwsError> {
        template::get_version_op(ctx, input)
    }

    fn update_environment_template_version(
        &self,
        ctx: &RequestContext,
        input: pr::UpdateEnvironmentTemplateVersionInput,
    ) -> Result<pr::UpdateEnvironmentTemplateVersionOutput, AwsError> {
        template::update_version(ctx, input)
    }

    fn list_environment_template_versions(
        &self,
        ctx: &RequestContext,
        input: pr::ListEnvironmentTemplateVersionsInput,
    ) -> Result<pr::ListEnvironmentTemplateVersionsOutput, AwsError> {
        template::list_versions(ctx, input)
    }

    fn delete_environment_template_version(
        &self,
        ctx: &RequestContext,
        input: pr::DeleteEnvironmentTemplateVersionInput,
    ) -> Result<pr::DeleteEnvironmentTemplateVersionOutput, AwsError> {
        template::delete_version(ctx, input)
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
        self.delivering(ctx, environment::delete(ctx, input))
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
        deployment::delete(ctx, input)
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
}
