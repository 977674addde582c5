//! `NotifyResourceDeploymentStatusChange` (SPEC §7.5): a self-managed pipeline reports how a
//! deployment went. The model's constraints are checked by `dispatch` before this runs; the
//! steps below follow the SPEC's order, and steps 5–7 are one transaction. `statusMessage` and
//! output values are never logged.

use super::common::{conflict, invalid, not_found};
use super::deployment::{self, Deployment};
use super::status::DeploymentStatus;
use super::target;
use crate::context::RequestContext;
use crate::store::{transact, Mode, Tx};
use provisiond_model::proton as pr;
use provisiond_model::AwsError;

/// The status a pipeline reports (`IN_PROGRESS` when it names none). The protocol layer has
/// checked it against the model's enum; an unknown one here is refused the same way.
fn notified_status(status: Option<&str>) -> Result<DeploymentStatus, AwsError> {
    let status = status.unwrap_or(DeploymentStatus::InProgress.as_str());
    DeploymentStatus::parse(status).ok_or_else(|| {
        invalid(format!(
            "Value '{status}' at 'status' failed to satisfy constraint: Member must satisfy enum value set: [{}]",
            DeploymentStatus::ALL
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })
}

/// Step 4: a repeat of the status a deployment ended with is `{}`; anything else conflicts.
fn ended(
    deployment: &Deployment,
    notified: DeploymentStatus,
) -> Result<pr::NotifyResourceDeploymentStatusChangeOutput, AwsError> {
    if DeploymentStatus::ended_by(notified, deployment.is_delete) == Some(deployment.status) {
        return Ok(pr::NotifyResourceDeploymentStatusChangeOutput {});
    }
    Err(conflict(format!(
        "Deployment {} already ended with status {}.",
        deployment.id, deployment.status
    )))
}

/// Runs the notify.
pub fn notify(
    ctx: &RequestContext,
    input: pr::NotifyResourceDeploymentStatusChangeInput,
) -> Result<pr::NotifyResourceDeploymentStatusChangeOutput, AwsError> {
    let arn = input.resource_arn.clone().unwrap_or_default();
    let notified = notified_status(input.status.as_deref())?;
    // Step 2: the ARN must name a deployable resource of the caller's account and region.
    let target = target::parse(ctx, &arn).ok_or_else(|| not_found("resource", &arn))?;
    let scope = ctx.scope();
    transact(ctx.store.as_ref(), Mode::Write, |tx| {
        let Some(mut resource) = target::load(tx, &scope, &target)? else {
            // A resource whose delete succeeded is gone; a pipeline retrying that success
            // still gets `{}` [ours].
            let last = deployment::of_target(tx, &scope, &arn)?.into_iter().last();
            if let Some(last) = last.filter(|d| d.status == DeploymentStatus::DeleteComplete) {
                if input
                    .deployment_id
                    .as_deref()
                    .is_none_or(|id| id == last.id)
                {
                    return ended(&last, notified);
                }
            }
            return Err(not_found("resource", &arn));
        };
        // Step 3: which deployment.
        let current = resource.status_mut().last_attempted_id.clone();
        let id = match input.deployment_id.clone().or_else(|| current.clone()) {
            Some(id) => id,
            None => return Err(not_found("deployment of", &arn)),
        };
        let mut deployment = deployment::load_for_update(tx, &scope, &id)?;
        if current.as_deref() != Some(id.as_str()) || deployment.target_arn != arn {
            return Err(conflict(format!(
                "Deployment {id} is not the current deployment of {arn}"
            )));
        }
        // Step 4: an ended deployment.
        if deployment.is_final() {
            return ended(&deployment, notified);
        }
        let outputs = input.outputs.clone().unwrap_or_default();
        deployment.merge_outputs(&outputs);
        if input.status_message.is_some() {
            deployment.status_message = input.status_message.clone();
        }
        deployment.modified_ms = ctx.now_ms;
        match DeploymentStatus::ended_by(notified, deployment.is_delete) {
            // Step 5: still in progress.
            None => {
                deployment::save(tx, &scope, &deployment)?;
                let status = resource.status_mut();
                status.message = input.status_message.clone().or(status.message.take());
                resource.save(tx, &scope)?;
            }
            // Step 6: success.
            Some(done) if notified == DeploymentStatus::Succeeded => {
                deployment.status = done;
                deployment.completed_ms = Some(ctx.now_ms);
                deployment::save(tx, &scope, &deployment)?;
                if deployment.is_delete {
                    resource.remove(tx, &scope)?;
                } else {
                    resource.promote(&id);
                    let status = resource.status_mut();
                    status.status = DeploymentStatus::Succeeded;
                    status.message = input.status_message.clone();
                    status.last_succeeded_id = Some(id.clone());
                    status.last_succeeded_ms = ctx.now_ms;
                    resource.save(tx, &scope)?;
                }
            }
            // Step 7: failure.
            Some(_) => {
                let message = input.status_message.clone();
                end_failed(
                    tx,
                    &scope,
                    Some(&mut resource),
                    &mut deployment,
                    message,
                    ctx.now_ms,
                )?;
            }
        }
        Ok(pr::NotifyResourceDeploymentStatusChangeOutput {})
    })
}

/// Ends `deployment` as a pipeline's `FAILED` does: the deployment `FAILED` (`DELETE_FAILED`
/// for a delete), and `resource`, when it is the deployment's target, keeps the state it had
/// with its status saying the deployment failed with `message`.
pub(crate) fn end_failed(
    tx: &mut dyn Tx,
    scope: &str,
    resource: Option<&mut target::Resource>,
    deployment: &mut Deployment,
    message: Option<String>,
    now_ms: i64,
) -> Result<(), AwsError> {
    let done = DeploymentStatus::ended_by(DeploymentStatus::Failed, deployment.is_delete)
        .expect("a failure ends every deployment");
    deployment.status = done;
    deployment.modified_ms = now_ms;
    deployment.completed_ms = Some(now_ms);
    deployment::save(tx, scope, deployment)?;
    if let Some(resource) = resource {
        resource.forget(&deployment.id);
        let status = resource.status_mut();
        status.status = done;
        status.message = message;
        resource.save(tx, scope)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proton::deployable::Deployable;
    use crate::proton::deployment::ResourceStatus;
    use crate::proton::environment::{self, Environment, EnvironmentState, RepositoryBranch};
    use crate::proton::status::TargetType;
    use crate::testing::{Fixture, ACCOUNT};

    const ARN: &str = "arn:aws:proton:us-east-1:123456789012:environment/dev";

    fn state(minor: u32, spec: &str) -> EnvironmentState {
        EnvironmentState {
            template_name: "vpc".into(),
            major: 1,
            minor,
            spec: spec.into(),
            inputs: serde_json::json!({}),
        }
    }

    /// An environment at `state(0, "before")` with deployment `d-1` to `state(1, "after")` in
    /// progress (a delete of it when `is_delete`), as the domain stores them.
    fn deploying(fx: &Fixture, is_delete: bool) {
        let ctx = fx.ctx("platform", true);
        let scope = ctx.scope();
        let mut env = Environment {
            name: "dev".into(),
            arn: ARN.into(),
            description: None,
            created_ms: ctx.now_ms,
            state: state(0, "before"),
            pending: None,
            repository: RepositoryBranch {
                provider: "GITHUB".into(),
                name: "org/infra".into(),
                branch: "main".into(),
                arn: format!("arn:aws:proton:us-east-1:{ACCOUNT}:repository/github:org/infra"),
            },
            codebuild_role_arn: None,
            component_role_arn: None,
            status: ResourceStatus::creating(),
        };
        let target = if is_delete {
            state(0, "before")
        } else {
            state(1, "after")
        };
        let deployment = Deployment::start(
            &ctx,
            "d-1".into(),
            ARN,
            TargetType::Environment,
            env.created_ms,
            "dev",
            &env.status,
            Some(env.state.snapshot()),
            target.snapshot(),
            is_delete,
        );
        env.status.start(&deployment);
        env.pending = Some(("d-1".into(), target));
        transact(fx.store.as_ref(), Mode::Write, |tx| {
            deployment::create(tx, &scope, &deployment)?;
            Deployable::save(&env, tx, &scope)
        })
        .unwrap();
    }

    fn report(
        status: Option<&str>,
        message: Option<&str>,
    ) -> pr::NotifyResourceDeploymentStatusChangeInput {
        pr::NotifyResourceDeploymentStatusChangeInput {
            resource_arn: Some(ARN.into()),
            status: status.map(Into::into),
            deployment_id: Some("d-1".into()),
            outputs: Some(vec![pr::Output {
                key: Some("vpc_id".into()),
                value_string: Some("vpc-1".into()),
            }]),
            status_message: message.map(Into::into),
        }
    }

    fn read(fx: &Fixture) -> (Option<Environment>, Deployment) {
        let scope = fx.ctx("platform", true).scope();
        transact(fx.store.as_ref(), Mode::Read, |tx| {
            Ok::<_, AwsError>((
                environment::find(tx, &scope, "dev")?,
                deployment::load(tx, &scope, "d-1")?,
            ))
        })
        .unwrap()
    }

    #[test]
    fn success_promotes_the_target_state_and_a_repeat_changes_nothing() {
        let fx = Fixture::new();
        deploying(&fx, false);
        let ctx = fx.ctx("pipeline", false);
        notify(&ctx, report(Some("SUCCEEDED"), Some("applied"))).unwrap();
        let (env, d) = read(&fx);
        let env = env.unwrap();
        assert_eq!(d.status, DeploymentStatus::Succeeded);
        assert_eq!(d.outputs, [("vpc_id".to_string(), "vpc-1".to_string())]);
        assert!(d.completed_ms.is_some());
        assert_eq!(env.status.status, DeploymentStatus::Succeeded);
        assert_eq!(env.status.last_succeeded_id.as_deref(), Some("d-1"));
        assert_eq!(env.state, state(1, "after"));
        assert!(env.pending.is_none());

        notify(&ctx, report(Some("SUCCEEDED"), None)).unwrap();
        let err = notify(&ctx, report(Some("FAILED"), None)).unwrap_err();
        assert_eq!(err.code, "ConflictException");
        assert_eq!(read(&fx).1.status, DeploymentStatus::Succeeded);
    }

    #[test]
    fn progress_keeps_the_deployment_open_and_failure_keeps_the_state_reached() {
        let fx = Fixture::new();
        deploying(&fx, false);
        let ctx = fx.ctx("pipeline", false);
        notify(&ctx, report(None, Some("planning"))).unwrap();
        let (env, d) = read(&fx);
        assert_eq!(d.status, DeploymentStatus::InProgress);
        assert_eq!(env.unwrap().status.message.as_deref(), Some("planning"));

        notify(&ctx, report(Some("FAILED"), Some("apply failed"))).unwrap();
        let (env, d) = read(&fx);
        let env = env.unwrap();
        assert_eq!(d.status, DeploymentStatus::Failed);
        assert_eq!(env.status.status, DeploymentStatus::Failed);
        assert_eq!(env.status.message.as_deref(), Some("apply failed"));
        assert_eq!(env.status.last_succeeded_id, None);
        assert_eq!(env.state, state(0, "before"), "a failure changes no state");
        assert!(env.pending.is_none());
    }

    #[test]
    fn a_successful_delete_removes_the_resource_and_its_retry_still_succeeds() {
        let fx = Fixture::new();
        deploying(&fx, true);
        let ctx = fx.ctx("pipeline", false);
        notify(&ctx, report(Some("SUCCEEDED"), None)).unwrap();
        let (env, d) = read(&fx);
        assert!(env.is_none());
        assert_eq!(d.status, DeploymentStatus::DeleteComplete);
        notify(&ctx, report(Some("SUCCEEDED"), None)).unwrap();
        let err = notify(&ctx, report(Some("FAILED"), None)).unwrap_err();
        assert_eq!(err.code, "ConflictException");
    }

    #[test]
    fn another_deployment_or_an_unknown_status_is_refused() {
        let fx = Fixture::new();
        deploying(&fx, false);
        let ctx = fx.ctx("pipeline", false);
        let mut other = report(Some("SUCCEEDED"), None);
        other.deployment_id = Some("d-2".into());
        assert_eq!(
            notify(&ctx, other).unwrap_err().code,
            "ResourceNotFoundException"
        );
        let err = notify(&ctx, report(Some("DONE"), None)).unwrap_err();
        assert_eq!(err.code, "ValidationException");
        assert!(
            err.message.contains("[IN_PROGRESS, SUCCEEDED"),
            "{}",
            err.message
        );
        assert_eq!(read(&fx).1.status, DeploymentStatus::InProgress);
        assert_eq!(notified_status(None).unwrap(), DeploymentStatus::InProgress);
    }
}
