//! The resources a deployment targets, found by ARN: what NotifyResourceDeploymentStatusChange
//! and DeleteDeployment act on. provisiond serves environments; service instances, service
//! pipelines and components are recognised by their ARN forms and not found until they are
//! served.

use super::deployment::ResourceStatus;
use super::environment::{self, Environment};
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
}

impl Resource {
    /// Loads the resource `target` names, if it exists.
    pub fn load(
        tx: &mut dyn Tx,
        scope: &str,
        target: &Target,
    ) -> Result<Option<Resource>, AwsError> {
        Ok(match target {
            Target::Environment(name) => {
                environment::find(tx, scope, name)?.map(Resource::Environment)
            }
            Target::ServiceInstance(..) | Target::ServicePipeline(_) | Target::Component(_) => None,
        })
    }

    /// Its deployment bookkeeping.
    pub fn status(&mut self) -> &mut ResourceStatus {
        match self {
            Resource::Environment(e) => &mut e.status,
        }
    }

    /// Makes the state deployment `deployment_id` deployed current.
    pub fn apply_target(&mut self, deployment_id: &str) {
        match self {
            Resource::Environment(e) => {
                if let Some((id, state)) = e.pending.take() {
                    if id == deployment_id {
                        e.state = state;
                    } else {
                        e.pending = Some((id, state));
                    }
                }
            }
        }
    }

    /// Forgets what deployment `deployment_id` was deploying (it failed).
    pub fn drop_target(&mut self, deployment_id: &str) {
        match self {
            Resource::Environment(e) => {
                if e.pending
                    .as_ref()
                    .is_some_and(|(id, _)| id == deployment_id)
                {
                    e.pending = None;
                }
            }
        }
    }

    /// Stores the resource.
    pub fn save(&self, tx: &mut dyn Tx, scope: &str) -> Result<(), AwsError> {
        match self {
            Resource::Environment(e) => e.save(tx, scope),
        }
    }

    /// Removes the resource (a delete deployment succeeded); its deployments stay.
    pub fn remove(&self, tx: &mut dyn Tx, scope: &str) -> Result<(), AwsError> {
        match self {
            Resource::Environment(e) => {
                tx.delete(crate::store::Kind::ProtonEnvironment, scope, &e.name)?;
                super::common::delete_tags(tx, scope, &e.arn)
            }
        }
    }
}

/// The deployment bookkeeping of the resource at `arn` (stored ARNs only), if it exists.
pub fn status_of(
    tx: &mut dyn Tx,
    scope: &str,
    arn: &str,
) -> Result<Option<ResourceStatus>, AwsError> {
    let Some(resource) = arn.split_once(":environment/").map(|(_, name)| name) else {
        return Ok(None);
    };
    Ok(environment::find(tx, scope, resource)?.map(|e| e.status))
}
