//! Account settings (`GetAccountSettings`, `UpdateAccountSettings`): the pipeline roles and the
//! pipeline provisioning repository, stored per account and region. provisiond serves no service
//! pipelines yet, so nothing reads them besides these two calls.

use super::repository;
use crate::context::RequestContext;
use crate::store::{self, transact, Kind, Mode};
use provisiond_model::proton as pr;
use provisiond_model::AwsError;

const ID: &str = "account-settings";

/// `GetAccountSettings`.
pub fn get(
    ctx: &RequestContext,
    _input: pr::GetAccountSettingsInput,
) -> Result<pr::GetAccountSettingsOutput, AwsError> {
    let settings = transact(ctx.store.as_ref(), Mode::Read, |tx| {
        store::get::<pr::AccountSettings>(tx, Kind::ProtonSettings, &ctx.scope(), ID)
    })?;
    Ok(pr::GetAccountSettingsOutput {
        account_settings: Some(settings.unwrap_or_default()),
    })
}

/// `UpdateAccountSettings`: the repository must be registered; `deletePipelineProvisioningRepository`
/// removes it; an empty role ARN clears a role.
pub fn update(
    ctx: &RequestContext,
    input: pr::UpdateAccountSettingsInput,
) -> Result<pr::UpdateAccountSettingsOutput, AwsError> {
    let scope = ctx.scope();
    transact(ctx.store.as_ref(), Mode::Write, |tx| {
        let mut settings = store::get::<pr::AccountSettings>(tx, Kind::ProtonSettings, &scope, ID)?
            .unwrap_or_default();
        if let Some(branch) = &input.pipeline_provisioning_repository {
            let repo = repository::get_stored(
                tx,
                &scope,
                branch.provider.as_deref().unwrap_or_default(),
                branch.name.as_deref().unwrap_or_default(),
            )?;
            settings.pipeline_provisioning_repository = Some(pr::RepositoryBranch {
                arn: Some(repo.arn),
                branch: branch.branch.clone(),
                name: Some(repo.name),
                provider: Some(repo.provider),
            });
        }
        if input.delete_pipeline_provisioning_repository == Some(true) {
            settings.pipeline_provisioning_repository = None;
        }
        let role = |given: &Option<String>, current: Option<String>| match given.as_deref() {
            Some("") => None,
            Some(arn) => Some(arn.to_string()),
            None => current,
        };
        settings.pipeline_service_role_arn = role(
            &input.pipeline_service_role_arn,
            settings.pipeline_service_role_arn.take(),
        );
        settings.pipeline_codebuild_role_arn = role(
            &input.pipeline_codebuild_role_arn,
            settings.pipeline_codebuild_role_arn.take(),
        );
        store::put(tx, Kind::ProtonSettings, &scope, ID, "", &settings)?;
        Ok(pr::UpdateAccountSettingsOutput {
            account_settings: Some(settings),
        })
    })
}
