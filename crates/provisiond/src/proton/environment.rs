//! Environments (SPEC §7.3–7.4) with self-managed provisioning: create, update and delete each
//! make a deployment whose rendered bundle is scheduled for delivery in the same transaction.
//! The environment shows its last succeeded state (template version, spec); a deployment's
//! target becomes current only when the pipeline reports success (`notify.rs`).

use super::common::{
    arn, conflict, create_tags, invalid, not_found, page, page_size, parse_next_token,
};
use super::dependents::Dependents;
use super::deployable::{self, deploy, Deployable, Prepared, Rendered};
use super::deployment::{self, ResourceStatus};
use super::snapshot::{Snapshot, Templated};
use super::status::TargetType;
use super::template;
use super::{render, repository, schema};
use crate::context::RequestContext;
use crate::paging;
use crate::store::index::Index;
use crate::store::{self, transact, Kind, Mode, Tx};
use provisiond_model::proton as pr;
use provisiond_model::{AwsError, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The branch of a registered repository that receives an environment's deployments.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RepositoryBranch {
    /// Provider.
    pub provider: String,
    /// `owner/repo`.
    pub name: String,
    /// Branch.
    pub branch: String,
    /// The repository's ARN.
    pub arn: String,
}

/// What an environment deploys: a template version and a spec.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EnvironmentState {
    /// Template name.
    pub template_name: String,
    /// Major version.
    pub major: u32,
    /// Minor version.
    pub minor: u32,
    /// The spec as given (YAML).
    pub spec: String,
    /// The validated inputs with defaults.
    pub inputs: Value,
}

impl EnvironmentState {
    /// The state as a deployment records it.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot::Environment(Templated {
            template_name: self.template_name.clone(),
            major: self.major,
            minor: self.minor,
            spec: self.spec.clone(),
        })
    }
}

/// A stored environment.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Environment {
    /// Name.
    pub name: String,
    /// `…:environment/<name>`.
    pub arn: String,
    /// Description.
    pub description: Option<String>,
    /// Created, epoch ms.
    pub created_ms: i64,
    /// The current state: the last succeeded deployment's target (the first target until one
    /// succeeds).
    pub state: EnvironmentState,
    /// The state each deployment deploys, by deployment id, until it ends.
    pub pending: Option<(String, EnvironmentState)>,
    /// Where deployments go.
    pub repository: RepositoryBranch,
    /// `codebuildRoleArn`.
    pub codebuild_role_arn: Option<String>,
    /// `componentRoleArn`.
    pub component_role_arn: Option<String>,
    /// Deployment bookkeeping.
    pub status: ResourceStatus,
}

impl Environment {
    /// The environment on the wire.
    pub fn wire(&self) -> pr::Environment {
        pr::Environment {
            arn: Some(self.arn.clone()),
            codebuild_role_arn: self.codebuild_role_arn.clone(),
            component_role_arn: self.component_role_arn.clone(),
            created_at: Some(Timestamp::from_millis(self.created_ms)),
            deployment_status: Some(self.status.status.into()),
            deployment_status_message: self.status.message.clone(),
            description: self.description.clone(),
            environment_account_connection_id: None,
            environment_account_id: None,
            last_attempted_deployment_id: self.status.last_attempted_id.clone(),
            last_deployment_attempted_at: Some(Timestamp::from_millis(
                self.status.last_attempted_ms,
            )),
            last_deployment_succeeded_at: Some(Timestamp::from_millis(
                self.status.last_succeeded_ms,
            )),
            last_succeeded_deployment_id: self.status.last_succeeded_id.clone(),
            name: Some(self.name.clone()),
            proton_service_role_arn: None,
            provisioning: None,
            provisioning_repository: Some(pr::RepositoryBranch {
                arn: Some(self.repository.arn.clone()),
                branch: Some(self.repository.branch.clone()),
                name: Some(self.repository.name.clone()),
                provider: Some(self.repository.provider.clone()),
            }),
            spec: Some(self.state.spec.clone()),
            template_major_version: Some(self.state.major.to_string()),
            template_minor_version: Some(self.state.minor.to_string()),
            template_name: Some(self.state.template_name.clone()),
        }
    }

    fn summary(&self) -> pr::EnvironmentSummary {
        let w = self.wire();
        pr::EnvironmentSummary {
            arn: w.arn,
            component_role_arn: w.component_role_arn,
            created_at: w.created_at,
            deployment_status: w.deployment_status,
            deployment_status_message: w.deployment_status_message,
            description: w.description,
            environment_account_connection_id: None,
            environment_account_id: None,
            last_attempted_deployment_id: w.last_attempted_deployment_id,
            last_deployment_attempted_at: w.last_deployment_attempted_at,
            last_deployment_succeeded_at: w.last_deployment_succeeded_at,
            last_succeeded_deployment_id: w.last_succeeded_deployment_id,
            name: w.name,
            proton_service_role_arn: None,
            provisioning: None,
            template_major_version: w.template_major_version,
            template_minor_version: w.template_minor_version,
            template_name: w.template_name,
        }
    }

    /// Stores the environment, noting the template version it uses (or is deployed to).
    pub fn save(&self, tx: &mut dyn Tx, scope: &str) -> Result<(), AwsError> {
        store::put(tx, Kind::ProtonEnvironment, scope, &self.name, "", self)?;
        store::index::note(tx, scope, &self.name, self)?;
        Ok(())
    }

    /// Removes the environment (its delete succeeded).
    pub fn remove(&self, tx: &mut dyn Tx, scope: &str) -> Result<(), AwsError> {
        tx.delete(Kind::ProtonEnvironment, scope, &self.name)?;
        store::index::forget(tx, scope, &self.name, self)?;
        super::common::delete_tags(tx, scope, &self.arn)
    }

    fn uses_template(&self, name: &str, major: u32) -> bool {
        self.state.template_name == name && self.state.major == major
    }
}

/// Environments by the template major version (`<template>/<major>`) they use or are being
/// deployed to.
const BY_TEMPLATE: Index = Index::new(Kind::ProtonEnvironment, "template");

fn template_key(template: &str, major: u32) -> String {
    format!("{template}/{major}")
}

impl store::index::Indexed for Environment {
    const KIND: Kind = Kind::ProtonEnvironment;
    const INDEXES: &'static [Index] = &[BY_TEMPLATE];
    fn index_values(&self) -> Vec<(Index, String)> {
        let mut out = vec![(
            BY_TEMPLATE,
            template_key(&self.state.template_name, self.state.major),
        )];
        if let Some((_, pending)) = &self.pending {
            out.push((
                BY_TEMPLATE,
                template_key(&pending.template_name, pending.major),
            ));
        }
        out
    }
}

/// The environment `name`, if any.
pub fn find(tx: &mut dyn Tx, scope: &str, name: &str) -> Result<Option<Environment>, AwsError> {
    Ok(store::get(tx, Kind::ProtonEnvironment, scope, name)?)
}

/// The environment `name`, or `ResourceNotFoundException`.
pub fn load(tx: &mut dyn Tx, scope: &str, name: &str) -> Result<Environment, AwsError> {
    find(tx, scope, name)?.ok_or_else(|| not_found("environment", name))
}

/// Whether an environment uses (or is deploying) the template version.
pub fn uses_template_version(
    tx: &mut dyn Tx,
    scope: &str,
    name: &str,
    major: u32,
    minor: u32,
) -> Result<bool, AwsError> {
    let uses =
        |s: &EnvironmentState| s.template_name == name && s.major == major && s.minor == minor;
    Ok(!BY_TEMPLATE
        .all(tx, scope, &template_key(name, major), |e: &Environment| {
            uses(&e.state) || e.pending.as_ref().is_some_and(|(_, s)| uses(s))
        })?
        .is_empty())
}

/// Parses a spec (`proton: EnvironmentSpec`, `spec: {…}`) and validates its inputs against the
/// version's schema, defaults filled in.
fn validated_inputs(version: &template::Version, spec: &str) -> Result<Value, AwsError> {
    let doc =
        schema::yaml_to_json(spec).map_err(|e| invalid(format!("The spec is not YAML: {e}")))?;
    if let Some(kind) = doc.get("proton").and_then(Value::as_str) {
        if kind != "EnvironmentSpec" {
            return Err(invalid(format!(
                "The spec says proton: {kind}; an environment spec says proton: EnvironmentSpec."
            )));
        }
    }
    let inputs = doc.get("spec").cloned().unwrap_or(Value::Null);
    let schema = version.parsed_schema()?;
    let input_type = schema
        .environment_input_type
        .clone()
        .ok_or_else(|| invalid("The template version's schema names no environment_input_type."))?;
    schema
        .validate(&input_type, &inputs, "environment spec")
        .map_err(|e| invalid(format!("The spec does not fit the template's schema: {e}")))
}

/// Refuses a change while a deployment of the environment is under way.
fn ensure_idle(env: &Environment) -> Result<(), AwsError> {
    deployable::ensure_idle(env, "environment", &env.name)
}

impl Deployable for Environment {
    type State = EnvironmentState;
    const TARGET_TYPE: TargetType = TargetType::Environment;

    fn arn(&self) -> &str {
        &self.arn
    }

    fn created_ms(&self) -> i64 {
        self.created_ms
    }

    fn environment_name(&self) -> &str {
        &self.name
    }

    fn status(&self) -> &ResourceStatus {
        &self.status
    }

    fn status_mut(&mut self) -> &mut ResourceStatus {
        &mut self.status
    }

    fn state_mut(&mut self) -> &mut EnvironmentState {
        &mut self.state
    }

    fn pending_mut(&mut self) -> &mut Option<(String, EnvironmentState)> {
        &mut self.pending
    }

    fn prepare(
        &self,
        tx: &mut dyn Tx,
        ctx: &RequestContext,
        state: &EnvironmentState,
        deployment_id: &str,
        is_delete: bool,
    ) -> Result<Prepared, AwsError> {
        let version = template::get_version(
            tx,
            &ctx.scope(),
            template::TemplateKind::Environment,
            &state.template_name,
            state.major,
            state.minor,
        )?;
        let template_files = version.files(tx, &ctx.identity.account)?;
        let files = render::environment(&render::EnvironmentBundle {
            account: &ctx.identity.account,
            environment_name: &self.name,
            environment_arn: &self.arn,
            template_arn: &arn(
                ctx,
                &format!("environment-template/{}", state.template_name),
            ),
            major: state.major,
            minor: state.minor,
            inputs: &state.inputs,
            deployment_id,
            is_delete,
            template_files: &template_files,
        });
        Ok(Prepared {
            target_state: state.snapshot(),
            service_name: None,
            service_instance_name: None,
            component_name: None,
            rendered: Rendered {
                repository: self.repository.name.clone(),
                branch: self.repository.branch.clone(),
                folder: self.name.clone(),
                files,
            },
        })
    }

    fn save(&self, tx: &mut dyn Tx, scope: &str) -> Result<(), AwsError> {
        Environment::save(self, tx, scope)
    }

    fn remove(&self, tx: &mut dyn Tx, scope: &str) -> Result<(), AwsError> {
        Environment::remove(self, tx, scope)
    }
}

/// `CreateEnvironment`: self-managed only (`provisioningRepository`, no
/// `protonServiceRoleArn`) [ours: provisiond runs no AWS-managed provisioning].
pub fn create(
    ctx: &RequestContext,
    input: pr::CreateEnvironmentInput,
) -> Result<pr::CreateEnvironmentOutput, AwsError> {
    if input.proton_service_role_arn.is_some() || input.environment_account_connection_id.is_some()
    {
        return Err(invalid(
            "provisiond serves self-managed provisioning only: give provisioningRepository, not protonServiceRoleArn or environmentAccountConnectionId.",
        ));
    }
    let branch = input.provisioning_repository.clone().ok_or_else(|| {
        invalid(
            "provisioningRepository is required: provisiond serves self-managed provisioning only.",
        )
    })?;
    let name = input.name.clone().unwrap_or_default();
    let scope = ctx.scope();
    transact(ctx.store.as_ref(), Mode::Write, |tx| {
        let repo = repository::get_stored(
            tx,
            &scope,
            branch.provider.as_deref().unwrap_or_default(),
            branch.name.as_deref().unwrap_or_default(),
        )?;
        let version = template::published_version(
            tx,
            &scope,
            template::TemplateKind::Environment,
            input.template_name.as_deref().unwrap_or_default(),
            input.template_major_version.as_deref().unwrap_or_default(),
            input.template_minor_version.as_deref(),
        )?;
        let spec = input.spec.clone().unwrap_or_default();
        let state = EnvironmentState {
            template_name: version.template_name.clone(),
            major: version.major,
            minor: version.minor,
            inputs: validated_inputs(&version, &spec)?,
            spec,
        };
        if find(tx, &scope, &name)?.is_some() {
            return Err(conflict(format!("The environment {name} already exists.")));
        }
        let mut env = Environment {
            arn: arn(ctx, &format!("environment/{name}")),
            name: name.clone(),
            description: input.description.clone(),
            created_ms: ctx.now_ms,
            state: state.clone(),
            pending: None,
            repository: RepositoryBranch {
                provider: repo.provider.clone(),
                name: repo.name.clone(),
                branch: branch.branch.clone().unwrap_or_default(),
                arn: repo.arn.clone(),
            },
            codebuild_role_arn: input.codebuild_role_arn.clone(),
            component_role_arn: input.component_role_arn.clone(),
            status: ResourceStatus::creating(),
        };
        deploy(tx, ctx, &mut env, state, None, false)?;
        env.save(tx, &scope)?;
        create_tags(tx, &scope, &env.arn, input.tags.as_ref())?;
        Ok(pr::CreateEnvironmentOutput {
            environment: Some(env.wire()),
        })
    })
}

/// `GetEnvironment`.
pub fn get(
    ctx: &RequestContext,
    input: pr::GetEnvironmentInput,
) -> Result<pr::GetEnvironmentOutput, AwsError> {
    let name = input.name.unwrap_or_default();
    let env = transact(ctx.store.as_ref(), Mode::Read, |tx| {
        load(tx, &ctx.scope(), &name)
    })?;
    Ok(pr::GetEnvironmentOutput {
        environment: Some(env.wire()),
    })
}

/// `ListEnvironments`, in creation order, optionally of some templates.
pub fn list(
    ctx: &RequestContext,
    input: pr::ListEnvironmentsInput,
) -> Result<pr::ListEnvironmentsOutput, AwsError> {
    let scope = ctx.scope();
    let filters = input.environment_templates.unwrap_or_default();
    if filters.is_empty() {
        let after = parse_next_token(input.next_token.as_deref())?;
        let (environments, next) = transact(ctx.store.as_ref(), Mode::Read, |tx| {
            paging::scan_page(
                after,
                page_size(input.max_results),
                |from, limit| store::list(tx, Kind::ProtonEnvironment, &scope, "", from, limit),
                |_: &Environment| true,
            )
        })?;
        return Ok(pr::ListEnvironmentsOutput {
            environments: Some(environments.iter().map(Environment::summary).collect()),
            next_token: next,
        });
    }
    // Those of the templates asked for, found by index, in creation order.
    let wanted: Vec<(String, u32)> = filters
        .iter()
        .filter_map(|f| {
            let major = f.major_version.as_deref()?.parse().ok()?;
            Some((f.template_name.clone()?, major))
        })
        .collect();
    let mut matching: Vec<Environment> = transact(ctx.store.as_ref(), Mode::Read, |tx| {
        let mut found = Vec::new();
        for (name, major) in &wanted {
            found.extend(BY_TEMPLATE.all(
                tx,
                &scope,
                &template_key(name, *major),
                |e: &Environment| e.uses_template(name, *major),
            )?);
        }
        Ok::<_, AwsError>(found)
    })?;
    matching.sort_by(|a, b| (a.created_ms, &a.name).cmp(&(b.created_ms, &b.name)));
    matching.dedup_by(|a, b| a.name == b.name);
    let summaries: Vec<_> = matching.iter().map(Environment::summary).collect();
    let (page, next) = page(summaries, input.next_token.as_deref(), input.max_results)?;
    Ok(pr::ListEnvironmentsOutput {
        environments: Some(page),
        next_token: next,
    })
}

/// `UpdateEnvironment`: `NONE` changes the description and roles only; `CURRENT_VERSION`
/// deploys a new spec on the same version; `MINOR_VERSION` a newer minor of the same major (the
/// one given, else the recommended); `MAJOR_VERSION` another major. Refused while a deployment
/// is under way (`ConflictException`).
pub fn update(
    ctx: &RequestContext,
    input: pr::UpdateEnvironmentInput,
) -> Result<pr::UpdateEnvironmentOutput, AwsError> {
    let name = input.name.clone().unwrap_or_default();
    let scope = ctx.scope();
    transact(ctx.store.as_ref(), Mode::Write, |tx| {
        let mut env = load(tx, &scope, &name)?;
        ensure_idle(&env)?;
        if input.description.is_some() {
            env.description = input.description.clone();
        }
        if input.codebuild_role_arn.is_some() {
            env.codebuild_role_arn = input.codebuild_role_arn.clone();
        }
        if input.component_role_arn.is_some() {
            env.component_role_arn = input.component_role_arn.clone();
        }
        let deployment_type = input.deployment_type.as_deref().unwrap_or("NONE");
        if deployment_type == "NONE" {
            env.save(tx, &scope)?;
            return Ok(pr::UpdateEnvironmentOutput {
                environment: Some(env.wire()),
            });
        }
        let current = env.state.clone();
        let major_text = input
            .template_major_version
            .clone()
            .unwrap_or_else(|| current.major.to_string());
        let version = match deployment_type {
            "CURRENT_VERSION" => {
                if input.template_major_version.is_some() || input.template_minor_version.is_some()
                {
                    return Err(invalid(
                        "deploymentType CURRENT_VERSION keeps the template version; do not give templateMajorVersion or templateMinorVersion.",
                    ));
                }
                template::get_version(
                    tx,
                    &scope,
                    template::TemplateKind::Environment,
                    &current.template_name,
                    current.major,
                    current.minor,
                )?
            }
            "MINOR_VERSION" => {
                if major_text != current.major.to_string() {
                    return Err(invalid(
                        "deploymentType MINOR_VERSION keeps the major version.",
                    ));
                }
                template::published_version(
                    tx,
                    &scope,
                    template::TemplateKind::Environment,
                    &current.template_name,
                    &major_text,
                    input.template_minor_version.as_deref(),
                )?
            }
            _ => {
                if input.template_major_version.is_none() || major_text == current.major.to_string()
                {
                    return Err(invalid(
                        "deploymentType MAJOR_VERSION needs another templateMajorVersion.",
                    ));
                }
                template::published_version(
                    tx,
                    &scope,
                    template::TemplateKind::Environment,
                    &current.template_name,
                    &major_text,
                    input.template_minor_version.as_deref(),
                )?
            }
        };
        let spec = input.spec.clone().unwrap_or_else(|| current.spec.clone());
        let target = EnvironmentState {
            template_name: version.template_name.clone(),
            major: version.major,
            minor: version.minor,
            inputs: validated_inputs(&version, &spec)?,
            spec,
        };
        deploy(tx, ctx, &mut env, target, Some(current.snapshot()), false)?;
        env.save(tx, &scope)?;
        Ok(pr::UpdateEnvironmentOutput {
            environment: Some(env.wire()),
        })
    })
}

/// `DeleteEnvironment`: a `DELETE_IN_PROGRESS` deployment whose bundle says
/// `isResourceDeleted: true`; the environment goes when the pipeline reports success.
pub fn delete(
    ctx: &RequestContext,
    input: pr::DeleteEnvironmentInput,
    dependents: &dyn Dependents,
) -> Result<pr::DeleteEnvironmentOutput, AwsError> {
    let name = input.name.unwrap_or_default();
    let scope = ctx.scope();
    transact(ctx.store.as_ref(), Mode::Write, |tx| {
        let mut env = load(tx, &scope, &name)?;
        ensure_idle(&env)?;
        if dependents.environment_in_use(tx, &scope, &name)? {
            return Err(conflict(format!(
                "The environment {name} still has service instances or components; delete them first."
            )));
        }
        let current = env.state.clone();
        deploy(
            tx,
            ctx,
            &mut env,
            current.clone(),
            Some(current.snapshot()),
            true,
        )?;
        env.save(tx, &scope)?;
        Ok(pr::DeleteEnvironmentOutput {
            environment: Some(env.wire()),
        })
    })
}

/// The outputs of the environment's last succeeded deployment (what service instances and
/// components see).
pub fn current_outputs(
    tx: &mut dyn Tx,
    scope: &str,
    env: &Environment,
) -> Result<Vec<(String, String)>, AwsError> {
    match env.status.last_succeeded_id.as_deref() {
        Some(id) => Ok(deployment::load(tx, scope, id)?.outputs),
        None => Ok(Vec::new()),
    }
}

/// `ListEnvironmentOutputs`: the outputs of the last succeeded deployment, or of `deploymentId`.
pub fn outputs(
    ctx: &RequestContext,
    input: pr::ListEnvironmentOutputsInput,
) -> Result<pr::ListEnvironmentOutputsOutput, AwsError> {
    let name = input.environment_name.unwrap_or_default();
    let scope = ctx.scope();
    let outputs = transact(ctx.store.as_ref(), Mode::Read, |tx| {
        let env = load(tx, &scope, &name)?;
        deployable::outputs(tx, &scope, &env, input.deployment_id.as_deref())
    })?;
    let (page, next) = page(outputs, input.next_token.as_deref(), None)?;
    Ok(pr::ListEnvironmentOutputsOutput {
        outputs: Some(page),
        next_token: next,
    })
}

/// `CancelEnvironmentDeployment`: the environment's current deployment, when `IN_PROGRESS`,
/// becomes `CANCELLED` at once [ours: there is no pull request to close]; the environment keeps
/// its last succeeded state.
pub fn cancel(
    ctx: &RequestContext,
    input: pr::CancelEnvironmentDeploymentInput,
) -> Result<pr::CancelEnvironmentDeploymentOutput, AwsError> {
    let name = input.environment_name.unwrap_or_default();
    let scope = ctx.scope();
    transact(ctx.store.as_ref(), Mode::Write, |tx| {
        let mut env = load(tx, &scope, &name)?;
        deployable::cancel(tx, ctx, &mut env)?;
        Ok(pr::CancelEnvironmentDeploymentOutput {
            environment: Some(env.wire()),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_environment_snapshot_shows_its_template_version_and_spec() {
        let state = EnvironmentState {
            template_name: "vpc".into(),
            major: 3,
            minor: 12,
            spec: "proton: EnvironmentSpec\nspec: {cidr: 10.0.0.0/16}\n".into(),
            inputs: serde_json::json!({"cidr": "10.0.0.0/16"}),
        };
        let wire = state.snapshot().wire();
        assert!(wire.service_instance.is_none() && wire.component.is_none());
        let env = wire.environment.unwrap();
        assert_eq!(env.template_name.as_deref(), Some("vpc"));
        assert_eq!(env.template_major_version.as_deref(), Some("3"));
        assert_eq!(env.template_minor_version.as_deref(), Some("12"));
        assert_eq!(env.spec.as_deref(), Some(state.spec.as_str()));
    }

    #[test]
    fn a_template_key_names_a_template_and_major_version() {
        assert_ne!(template_key("vpc", 1), template_key("vpc", 2));
        assert_ne!(template_key("vpc", 1), template_key("vpc1", 1));
    }
}
