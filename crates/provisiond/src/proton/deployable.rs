//! One deployment path for Proton's three deployable resources (environments, service
//! instances, components). Each carries the same bookkeeping (a `ResourceStatus`, the state it
//! last reached, the state a deployment in progress deploys); what differs between the kinds
//! is data (`Deployable::TARGET_TYPE`) and the bundle each renders (`Deployable::prepare`).
//! Starting a deployment (record it, render its bundle, schedule its delivery), cancelling it,
//! reading its outputs and settling its end are written once, here.

use super::common::{conflict, not_found};
use super::delivery;
use super::deployment::{self, Deployment, ResourceStatus, CANCELLED_MESSAGE};
use super::snapshot::Snapshot;
use super::status::{DeploymentStatus, TargetType};
use crate::context::RequestContext;
use crate::store::Tx;
use provisiond_formats::bundle::Files;
use provisiond_model::proton as pr;
use provisiond_model::AwsError;

/// Where a deployment's bundle is committed, and what it holds.
pub struct Rendered {
    /// The repository (`owner/repo`) of the resource's environment.
    pub repository: String,
    /// Its branch.
    pub branch: String,
    /// The resource's folder in it.
    pub folder: String,
    /// The files of the deployment.
    pub files: Files,
}

/// What a deployment of a resource takes from it: the state it records as its target, the
/// names it carries, and what it commits.
pub struct Prepared {
    /// `targetState`.
    pub target_state: Snapshot,
    /// The service, for service instances and attached components.
    pub service_name: Option<String>,
    /// The service instance, likewise.
    pub service_instance_name: Option<String>,
    /// The component.
    pub component_name: Option<String>,
    /// The bundle and where it goes.
    pub rendered: Rendered,
}

/// A resource Proton deploys.
pub trait Deployable {
    /// The state a deployment takes the resource to.
    type State;
    /// The deployment's `targetResourceType`.
    const TARGET_TYPE: TargetType;

    /// The resource's ARN.
    fn arn(&self) -> &str;
    /// When it was created, epoch ms.
    fn created_ms(&self) -> i64;
    /// The environment it is, or runs in.
    fn environment_name(&self) -> &str;
    /// Its deployment bookkeeping.
    fn status(&self) -> &ResourceStatus;
    /// The same, to change.
    fn status_mut(&mut self) -> &mut ResourceStatus;
    /// The state it last reached (its first target until a deployment succeeds).
    fn state_mut(&mut self) -> &mut Self::State;
    /// The deployment in progress and the state it deploys.
    fn pending_mut(&mut self) -> &mut Option<(String, Self::State)>;
    /// What deployment `deployment_id` to `state` records and commits, reading what the
    /// resource's bundle needs (its environment, template version, attached instance).
    fn prepare(
        &self,
        tx: &mut dyn Tx,
        ctx: &RequestContext,
        state: &Self::State,
        deployment_id: &str,
        is_delete: bool,
    ) -> Result<Prepared, AwsError>;
    /// Stores the resource.
    fn save(&self, tx: &mut dyn Tx, scope: &str) -> Result<(), AwsError>;
    /// Removes the resource (a delete deployment succeeded); its deployments stay.
    fn remove(&self, tx: &mut dyn Tx, scope: &str) -> Result<(), AwsError>;
}

/// Starts a deployment of `resource` to `state`: records it, renders its bundle and schedules
/// its delivery, all in the caller's transaction (the caller saves the resource).
pub fn deploy<R: Deployable>(
    tx: &mut dyn Tx,
    ctx: &RequestContext,
    resource: &mut R,
    state: R::State,
    initial: Option<Snapshot>,
    is_delete: bool,
) -> Result<Deployment, AwsError> {
    let id = crate::ids::uuid();
    let prepared = resource.prepare(tx, ctx, &state, &id, is_delete)?;
    let mut deployment = Deployment::start(
        ctx,
        id,
        resource.arn(),
        R::TARGET_TYPE,
        resource.created_ms(),
        resource.environment_name(),
        resource.status(),
        initial,
        prepared.target_state,
        is_delete,
    );
    deployment.service_name = prepared.service_name;
    deployment.service_instance_name = prepared.service_instance_name;
    deployment.component_name = prepared.component_name;
    let rendered = prepared.rendered;
    delivery::schedule(
        tx,
        ctx,
        &deployment.id,
        &rendered.repository,
        &rendered.branch,
        &rendered.folder,
        &rendered.files,
    )?;
    resource.status_mut().start(&deployment);
    *resource.pending_mut() = Some((deployment.id.clone(), state));
    deployment::create(tx, &ctx.scope(), &deployment)?;
    Ok(deployment)
}

/// Refuses a change while a deployment of the resource is under way.
pub fn ensure_idle<R: Deployable>(resource: &R, noun: &str, name: &str) -> Result<(), AwsError> {
    let status = resource.status();
    if status.busy() {
        return Err(conflict(format!(
            "The {noun} {name} has a deployment in progress ({}).",
            status.last_attempted_id.as_deref().unwrap_or("")
        )));
    }
    Ok(())
}

/// Cancels the resource's current deployment when it is `IN_PROGRESS` (`ConflictException`
/// otherwise): the deployment and the resource become `CANCELLED`, a delivery not yet made is
/// dropped, and the resource keeps the state it last reached. Saves the resource.
pub fn cancel<R: Deployable>(
    tx: &mut dyn Tx,
    ctx: &RequestContext,
    resource: &mut R,
) -> Result<Deployment, AwsError> {
    let scope = ctx.scope();
    let id = resource
        .status()
        .last_attempted_id
        .clone()
        .ok_or_else(|| not_found("deployment of", resource.arn()))?;
    let mut deployment = deployment::load(tx, &scope, &id)?;
    if deployment.status != DeploymentStatus::InProgress {
        return Err(conflict(format!(
            "Deployment {id} is {}; only an IN_PROGRESS deployment can be cancelled.",
            deployment.status
        )));
    }
    deployment.status = DeploymentStatus::Cancelled;
    deployment.status_message = Some(CANCELLED_MESSAGE.into());
    deployment.completed_ms = Some(ctx.now_ms);
    deployment.modified_ms = ctx.now_ms;
    deployment::save(tx, &scope, &deployment)?;
    delivery::unschedule(tx, &scope, &id)?;
    let status = resource.status_mut();
    status.status = DeploymentStatus::Cancelled;
    status.message = Some(CANCELLED_MESSAGE.into());
    *resource.pending_mut() = None;
    resource.save(tx, &scope)?;
    Ok(deployment)
}

/// The outputs a `List*Outputs` call shows for the resource: those of `deployment_id` (which
/// must be the resource's), else of its last succeeded deployment.
pub fn outputs<R: Deployable>(
    tx: &mut dyn Tx,
    scope: &str,
    resource: &R,
    deployment_id: Option<&str>,
) -> Result<Vec<pr::Output>, AwsError> {
    let status = resource.status();
    let Some(id) = deployment_id.or(status.last_succeeded_id.as_deref()) else {
        return Ok(Vec::new());
    };
    let deployment = deployment::load(tx, scope, id)?;
    if deployment.target_arn != resource.arn() {
        return Err(not_found(
            "deployment",
            &format!("{id} of {}", resource.arn()),
        ));
    }
    Ok(deployment.wire_outputs())
}

/// Makes the state `deployment_id` deployed current (it succeeded).
pub fn promote<R: Deployable>(resource: &mut R, deployment_id: &str) {
    let pending = resource.pending_mut();
    if pending.as_ref().is_some_and(|(id, _)| id == deployment_id) {
        if let Some((_, reached)) = pending.take() {
            *resource.state_mut() = reached;
        }
    }
}

/// Forgets what `deployment_id` was deploying (it failed or was cancelled).
pub fn forget<R: Deployable>(resource: &mut R, deployment_id: &str) {
    let pending = resource.pending_mut();
    if pending.as_ref().is_some_and(|(id, _)| id == deployment_id) {
        *pending = None;
    }
}

/// A loaded resource of any kind, as a deployment's end settles it.
pub trait Settle {
    /// Its deployment bookkeeping.
    fn status(&self) -> &ResourceStatus;
    /// Its deployment bookkeeping, to change.
    fn status_mut(&mut self) -> &mut ResourceStatus;
    /// Makes the state `deployment_id` deployed current.
    fn promote(&mut self, deployment_id: &str);
    /// Forgets what `deployment_id` was deploying.
    fn forget(&mut self, deployment_id: &str);
    /// Stores it.
    fn save(&self, tx: &mut dyn Tx, scope: &str) -> Result<(), AwsError>;
    /// Removes it.
    fn remove(&self, tx: &mut dyn Tx, scope: &str) -> Result<(), AwsError>;
}

impl<R: Deployable> Settle for R {
    fn status(&self) -> &ResourceStatus {
        Deployable::status(self)
    }
    fn status_mut(&mut self) -> &mut ResourceStatus {
        Deployable::status_mut(self)
    }

    fn promote(&mut self, deployment_id: &str) {
        promote(self, deployment_id)
    }

    fn forget(&mut self, deployment_id: &str) {
        forget(self, deployment_id)
    }

    fn save(&self, tx: &mut dyn Tx, scope: &str) -> Result<(), AwsError> {
        Deployable::save(self, tx, scope)
    }

    fn remove(&self, tx: &mut dyn Tx, scope: &str) -> Result<(), AwsError> {
        Deployable::remove(self, tx, scope)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proton::environment::{Environment, EnvironmentState, RepositoryBranch};

    fn state(spec: &str) -> EnvironmentState {
        EnvironmentState {
            template_name: "vpc".into(),
            major: 1,
            minor: 0,
            spec: spec.into(),
            inputs: serde_json::Value::Null,
        }
    }

    fn environment() -> Environment {
        Environment {
            name: "dev".into(),
            arn: "arn:aws:proton:us-east-1:123456789012:environment/dev".into(),
            description: None,
            created_ms: 0,
            state: state("reached"),
            pending: Some(("d-1".into(), state("wanted"))),
            repository: RepositoryBranch {
                provider: "GITHUB".into(),
                name: "org/infra".into(),
                branch: "main".into(),
                arn: String::new(),
            },
            codebuild_role_arn: None,
            component_role_arn: None,
            status: ResourceStatus::creating(),
        }
    }

    #[test]
    fn only_the_pending_deployment_promotes_or_forgets_its_state() {
        let mut env = environment();
        promote(&mut env, "d-0");
        assert_eq!(
            env.state,
            state("reached"),
            "another deployment promotes nothing"
        );
        forget(&mut env, "d-0");
        assert!(env.pending.is_some(), "nor forgets anything");
        promote(&mut env, "d-1");
        assert_eq!(env.state, state("wanted"));
        assert!(env.pending.is_none());

        let mut env = environment();
        forget(&mut env, "d-1");
        assert_eq!(env.state, state("reached"));
        assert!(env.pending.is_none());
    }

    #[test]
    fn a_busy_resource_refuses_changes() {
        let mut env = environment();
        env.status.last_attempted_id = Some("d-1".into());
        let err = ensure_idle(&env, "environment", "dev").unwrap_err();
        assert_eq!(err.code, "ConflictException");
        assert!(err.message.contains("(d-1)"), "{}", err.message);
        for status in DeploymentStatus::ALL {
            env.status.status = *status;
            assert_eq!(
                ensure_idle(&env, "environment", "dev").is_err(),
                status.is_busy()
            );
        }
    }
}
