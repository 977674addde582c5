//! One deployment path for Proton's three deployable resources (environments, service
//! instances, components). Each carries the same bookkeeping (a `ResourceStatus`, the state it
//! last reached, the state a deployment in progress deploys); what differs between the kinds
//! is data (`Deployable::TARGET_TYPE`) and the bundle each renders (`Deployable::prepare`).
//! Starting a deployment (record it, render its bundle, schedule its delivery), cancelling it,
//! reading its outputs and settling its end are written once, here.

use super::common::{conflict, not_found};
use super::delivery;
use super::deployment::{self, Deployment, ResourceStatus, CANCELLED_MESSAGE};
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

/// A resource Proton deploys.
pub trait Deployable {
    /// The state a deployment takes the resource to.
    type State;
    /// `ENVIRONMENT`, `SERVICE_INSTANCE` or `COMPONENT` (the deployment's `targetResourceType`).
    const TARGET_TYPE: &'static str;

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
    /// Completes `deployment` (the state it deploys on the wire, the names it carries) and
    /// renders what it commits, reading what the resource's bundle needs (its environment,
    /// template version, attached instance).
    fn prepare(
        &self,
        tx: &mut dyn Tx,
        ctx: &RequestContext,
        state: &Self::State,
        deployment: &mut Deployment,
    ) -> Result<Rendered, AwsError>;
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
    initial: Option<pr::DeploymentState>,
    is_delete: bool,
) -> Result<Deployment, AwsError> {
    let mut deployment = Deployment::start(
        ctx,
        resource.arn(),
        R::TARGET_TYPE,
        resource.created_ms(),
        resource.environment_name(),
        resource.status(),
        initial,
        pr::DeploymentState::default(),
        is_delete,
    );
    let rendered = resource.prepare(tx, ctx, &state, &mut deployment)?;
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
    if deployment.status != "IN_PROGRESS" {
        return Err(conflict(format!(
            "Deployment {id} is {}; only an IN_PROGRESS deployment can be cancelled.",
            deployment.status
        )));
    }
    deployment.status = "CANCELLED".into();
    deployment.status_message = Some(CANCELLED_MESSAGE.into());
    deployment.completed_ms = Some(ctx.now_ms);
    deployment.modified_ms = ctx.now_ms;
    deployment::save(tx, &scope, &deployment)?;
    delivery::unschedule(tx, &scope, &id)?;
    let status = resource.status_mut();
    status.status = "CANCELLED".into();
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
