//! `NotifyResourceDeploymentStatusChange` (SPEC §7.5): a self-managed pipeline reports how a
//! deployment went. The model's constraints are checked by `dispatch` before this runs; the
//! steps below follow the SPEC's order, and steps 5–7 are one transaction. `statusMessage` and
//! output values are never logged.

use super::common::{conflict, not_found};
use super::deployment::{self, Deployment};
use super::target;
use crate::context::RequestContext;
use crate::store::{transact, Mode};
use provisiond_model::proton as pr;
use provisiond_model::AwsError;

/// The final deployment statuses a notified status ends in: `SUCCEEDED` ends a delete as
/// `DELETE_COMPLETE`, `FAILED` as `DELETE_FAILED`.
fn final_status(notified: &str, is_delete: bool) -> Option<&'static str> {
    match (notified, is_delete) {
        ("SUCCEEDED", false) => Some("SUCCEEDED"),
        ("SUCCEEDED", true) => Some("DELETE_COMPLETE"),
        ("FAILED", false) => Some("FAILED"),
        ("FAILED", true) => Some("DELETE_FAILED"),
        _ => None,
    }
}

/// Step 4: a repeat of the status a deployment ended with is `{}`; anything else conflicts.
fn ended(
    deployment: &Deployment,
    notified: &str,
) -> Result<pr::NotifyResourceDeploymentStatusChangeOutput, AwsError> {
    if final_status(notified, deployment.is_delete) == Some(deployment.status.as_str()) {
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
    let notified = input.status.clone().unwrap_or_else(|| "IN_PROGRESS".into());
    // Step 2: the ARN must name a deployable resource of the caller's account and region.
    let target = target::parse(ctx, &arn).ok_or_else(|| not_found("resource", &arn))?;
    let scope = ctx.scope();
    transact(ctx.store.as_ref(), Mode::Write, |tx| {
        let Some(mut resource) = target::load(tx, &scope, &target)? else {
            // A resource whose delete succeeded is gone; a pipeline retrying that success
            // still gets `{}` [ours].
            let last = deployment::of_target(tx, &scope, &arn)?.into_iter().last();
            if let Some(last) = last.filter(|d| d.status == "DELETE_COMPLETE") {
                if input
                    .deployment_id
                    .as_deref()
                    .is_none_or(|id| id == last.id)
                {
                    return ended(&last, &notified);
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
            return ended(&deployment, &notified);
        }
        let outputs = input.outputs.clone().unwrap_or_default();
        deployment.merge_outputs(&outputs);
        if input.status_message.is_some() {
            deployment.status_message = input.status_message.clone();
        }
        deployment.modified_ms = ctx.now_ms;
        match final_status(&notified, deployment.is_delete) {
            // Step 5: still in progress.
            None => {
                deployment::save(tx, &scope, &deployment)?;
                let status = resource.status_mut();
                status.message = input.status_message.clone().or(status.message.take());
                resource.save(tx, &scope)?;
            }
            // Step 6: success.
            Some(done) if notified == "SUCCEEDED" => {
                deployment.status = done.into();
                deployment.completed_ms = Some(ctx.now_ms);
                deployment::save(tx, &scope, &deployment)?;
                if deployment.is_delete {
                    resource.remove(tx, &scope)?;
                } else {
                    resource.promote(&id);
                    let status = resource.status_mut();
                    status.status = "SUCCEEDED".into();
                    status.message = input.status_message.clone();
                    status.last_succeeded_id = Some(id.clone());
                    status.last_succeeded_ms = ctx.now_ms;
                    resource.save(tx, &scope)?;
                }
            }
            // Step 7: failure.
            Some(done) => {
                deployment.status = done.into();
                deployment.completed_ms = Some(ctx.now_ms);
                deployment::save(tx, &scope, &deployment)?;
                resource.forget(&id);
                let status = resource.status_mut();
                status.status = done.into();
                status.message = input.status_message.clone();
                resource.save(tx, &scope)?;
            }
        }
        Ok(pr::NotifyResourceDeploymentStatusChangeOutput {})
    })
}
