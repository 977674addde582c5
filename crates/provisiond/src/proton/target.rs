//! The resources a deployment targets, found by ARN: what NotifyResourceDeploymentStatusChange
//! and DeleteDeployment act on: environments, service instances and components. Service
//! pipelines are recognised by their ARN form and never found (provisiond serves none).

use super::component::{self, Component};
use super::deployment::ResourceStatus;
use super::environment::{self, Environment};
use super::service::{self, ServiceInstance};
use crate::context::RequestContext;
use crate::store::Tx;
use provisiond_model::AwsError;

/// A deployable resource named by an ARN of the caller's account and region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `environment/<name>`.
    Environment(String),
    /// `service/<service>/service-instance/<instance>`.
    ServiceInstance(String, String),
    /// `service/<service>/pipeline`.
    ServicePipeline(String),
    /// `component/<name>`.
    Component(String),
}

/// The target an ARN names, if it is a Proton ARN of the caller's account and region in one of
/// the deployable forms.
pub fn parse(ctx: &RequestContext, arn: &str) -> Option<Target> {
    let prefix = format!("arn:aws:proton:{}:{}:", ctx.region, ctx.identity.account);
    let resource = arn.strip_prefix(&prefix)?;
    let parts: Vec<&str> = resource.split('/').collect();
    match parts[..] {
        ["environment", name] => Some(Target::Environment(name.into())),
        ["service", service, "service-instance", instance] => {
            Some(Target::ServiceInstance(service.into(), instance.into()))
        }
        ["service", service, "pipeline"] => Some(Target::ServicePipeline(service.into())),
        ["component", name] => Some(Target::Component(name.into())),
        _ => None,
    }
}

/// A loaded deployable resource.
pub enum Resource {
    /// An environment.
    Environment(Environment),
    /// A service instance.
    ServiceInstance(ServiceInstance),
    /// A component.
    Component(Component),
}

/// Makes `pending` current when it is what `deployment_id` deployed.
fn promote<S>(state: &mut S, pending: &mut Option<(String, S)>, deployment_id: &str) {
    if pending.as_ref().is_some_and(|(id, _)| id == deployment_id) {
        if let Some((_, target)) = pending.take() {
            *state = target;
        }
    }
}

impl Resource {
    /// Loads the resource `target` names, if it exists. Service pipelines are not served, so
    /// none exists.
    pub fn load(
        tx: &mut dyn Tx,
        scope: &str,
        target: &Target,
    ) -> Result<Option<Resource>, AwsError> {
        Ok(match target {
            Target::Environment(name) => {
                environment::find(tx, scope, name)?.map(Resource::Environment)
            }
            Target::ServiceInstance(service, instance) => {
                service::find_instance(tx, scope, service, instance)?.map(Resource::ServiceInstance)
            }
            Target::Component(name) => component::find(tx, scope, name)?.map(Resource::Component),
            Target::ServicePipeline(_) => None,
        })
    }

    /// Its deployment bookkeeping.
    pub fn status(&mut self) -> &mut ResourceStatus {
        match self {
            Resource::Environment(e) => &mut e.status,
            Resource::ServiceInstance(i) => &mut i.status,
            Resource::Component(c) => &mut c.status,
        }
    }

    /// Makes the state deployment `deployment_id` deployed current.
    pub fn apply_target(&mut self, deployment_id: &str) {
        match self {
            Resource::Environment(e) => promote(&mut e.state, &mut e.pending, deployment_id),
            Resource::ServiceInstance(i) => promote(&mut i.state, &mut i.pending, deployment_id),
            Resource::Component(c) => promote(&mut c.state, &mut c.pending, deployment_id),
        }
    }

    /// Forgets what deployment `deployment_id` was deploying (it failed).
    pub fn drop_target(&mut self, deployment_id: &str) {
        fn clear<S>(pending: &mut Option<(String, S)>, deployment_id: &str) {
            if pending.as_ref().is_some_and(|(id, _)| id == deployment_id) {
                *pending = None;
            }
        }
        match self {
            Resource::Environment(e) => clear(&mut e.pending, deployment_id),
            Resource::ServiceInstance(i) => clear(&mut i.pending, deployment_id),
            Resource::Component(c) => clear(&mut c.pending, deployment_id),
        }
    }

    /// Stores the resource.
    pub fn save(&self, tx: &mut dyn Tx, scope: &str) -> Result<(), AwsError> {
        match self {
            Resource::Environment(e) => e.save(tx, scope),
            Resource::ServiceInstance(i) => i.save(tx, scope),
            Resource::Component(c) => c.save(tx, scope),
        }
    }

    /// Removes the resource (a delete deployment succeeded); its deployments stay.
    pub fn remove(&self, tx: &mut dyn Tx, scope: &str) -> Result<(), AwsError> {
        match self {
            Resource::Environment(e) => e.remove(tx, scope),
            Resource::ServiceInstance(i) => i.remove(tx, scope),
            Resource::Component(c) => c.remove(tx, scope),
        }
    }
}

/// The deployment bookkeeping of the resource at `arn` (an ARN provisiond stored), if it
/// exists.
pub fn status_of(
    tx: &mut dyn Tx,
    scope: &str,
    arn: &str,
) -> Result<Option<ResourceStatus>, AwsError> {
    let Some((_, resource)) = arn.split_once(":proton:") else {
        return Ok(None);
    };
    let mut parts = resource.splitn(3, ':');
    let (_region, _account, path) = (parts.next(), parts.next(), parts.next().unwrap_or(""));
    let target = match path.split('/').collect::<Vec<_>>()[..] {
        ["environment", name] => Target::Environment(name.into()),
        ["service", service, "service-instance", instance] => {
            Target::ServiceInstance(service.into(), instance.into())
        }
        ["component", name] => Target::Component(name.into()),
        _ => return Ok(None),
    };
    Ok(Resource::load(tx, scope, &target)?.map(|mut r| r.status().clone()))
}
