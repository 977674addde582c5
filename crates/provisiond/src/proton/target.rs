//! The resources a deployment targets, found by ARN: what NotifyResourceDeploymentStatusChange
//! and DeleteDeployment act on: environments, service instances and components. Service
//! pipelines are recognised by their ARN form and never found (provisiond serves none).

use super::common::conflict;
use super::deployable::Settle;
use super::deployment::{self, ResourceStatus};
use super::{component, environment, service};
use crate::context::RequestContext;
use crate::store::{self, transact, Kind, Mode, Tx};
use provisiond_model::proton as pr;
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

/// The target a Proton resource path names (`environment/<name>`, …), in one of the
/// deployable forms.
fn from_path(path: &str) -> Option<Target> {
    match path.split('/').collect::<Vec<_>>()[..] {
        ["environment", name] => Some(Target::Environment(name.into())),
        ["service", service, "service-instance", instance] => {
            Some(Target::ServiceInstance(service.into(), instance.into()))
        }
        ["service", service, "pipeline"] => Some(Target::ServicePipeline(service.into())),
        ["component", name] => Some(Target::Component(name.into())),
        _ => None,
    }
}

/// The target an ARN names, if it is a Proton ARN of the caller's account and region in one of
/// the deployable forms.
pub fn parse(ctx: &RequestContext, arn: &str) -> Option<Target> {
    let prefix = format!("arn:aws:proton:{}:{}:", ctx.region, ctx.identity.account);
    from_path(arn.strip_prefix(&prefix)?)
}

/// A loaded deployable resource of any kind.
pub type Resource = Box<dyn Settle>;

/// Loads the resource `target` names, if it exists. Service pipelines are not served, so none
/// exists.
pub fn load(tx: &mut dyn Tx, scope: &str, target: &Target) -> Result<Option<Resource>, AwsError> {
    fn boxed<R: Settle + 'static>(found: Option<R>) -> Option<Resource> {
        found.map(|r| Box::new(r) as Resource)
    }
    Ok(match target {
        Target::Environment(name) => boxed(environment::find(tx, scope, name)?),
        Target::ServiceInstance(service, instance) => {
            boxed(service::find_instance(tx, scope, service, instance)?)
        }
        Target::Component(name) => boxed(component::find(tx, scope, name)?),
        Target::ServicePipeline(_) => None,
    })
}

/// Loads the resource at `arn` (an ARN provisiond stored, so of its scope), if it exists.
pub fn load_by_arn(tx: &mut dyn Tx, scope: &str, arn: &str) -> Result<Option<Resource>, AwsError> {
    let Some((_, resource)) = arn.split_once(":proton:") else {
        return Ok(None);
    };
    let mut parts = resource.splitn(3, ':');
    let (_region, _account, path) = (parts.next(), parts.next(), parts.next().unwrap_or(""));
    match from_path(path) {
        Some(target) => load(tx, scope, &target),
        None => Ok(None),
    }
}

/// The deployment bookkeeping of the resource at `arn` (an ARN provisiond stored), if it
/// exists.
pub fn status_of(
    tx: &mut dyn Tx,
    scope: &str,
    arn: &str,
) -> Result<Option<ResourceStatus>, AwsError> {
    Ok(load_by_arn(tx, scope, arn)?.map(|mut r| r.status_mut().clone()))
}

/// `DeleteDeployment`: removes an ended deployment's record. A deployment in progress, or the
/// one a resource names as its last attempted or last succeeded, stays (`ConflictException`)
/// [ours].
pub fn delete_deployment(
    ctx: &RequestContext,
    input: pr::DeleteDeploymentInput,
) -> Result<pr::DeleteDeploymentOutput, AwsError> {
    let id = input.id.unwrap_or_default();
    let scope = ctx.scope();
    transact(ctx.store.as_ref(), Mode::Write, |tx| {
        let deployment = deployment::load(tx, &scope, &id)?;
        if !deployment.is_final() {
            return Err(conflict(format!(
                "Deployment {id} is {}; only an ended deployment can be deleted.",
                deployment.status
            )));
        }
        if let Some(status) = status_of(tx, &scope, &deployment.target_arn)? {
            if status.last_attempted_id.as_deref() == Some(id.as_str())
                || status.last_succeeded_id.as_deref() == Some(id.as_str())
            {
                return Err(conflict(format!(
                    "Deployment {id} is the last attempted or last succeeded deployment of {}.",
                    deployment.target_arn
                )));
            }
        }
        tx.delete(Kind::ProtonDeployment, &scope, &id)?;
        store::index::forget(tx, &scope, &id, &deployment)?;
        Ok(pr::DeleteDeploymentOutput {
            deployment: Some(deployment.wire()),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_the_deployable_kinds() {
        assert_eq!(
            from_path("environment/dev"),
            Some(Target::Environment("dev".into()))
        );
        assert_eq!(
            from_path("service/web/service-instance/one"),
            Some(Target::ServiceInstance("web".into(), "one".into()))
        );
        assert_eq!(
            from_path("service/web/pipeline"),
            Some(Target::ServicePipeline("web".into()))
        );
        assert_eq!(
            from_path("component/cache"),
            Some(Target::Component("cache".into()))
        );
        assert_eq!(from_path("environment/dev/extra"), None);
        assert_eq!(from_path("environment-template/t"), None);
    }
}
