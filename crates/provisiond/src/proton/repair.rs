//! An operator's remedy for a Proton deployment stuck in progress: fail it as the pipeline's
//! `FAILED` would, with the operator's reason as its status message, and drop its delivery if
//! it was never committed.

use super::deployment::{self, Deployment};
use super::{delivery, notify, target};
use crate::store::Tx;
use provisiond_model::proton::ErrorCode;
use provisiond_model::AwsError;

/// Ends the deployment `deployment_id` of `scope`, which must be in progress, as `FAILED`
/// (`DELETE_FAILED` for a delete) with `reason`; the resource it targets keeps the state it had
/// and says the deployment failed.
pub fn fail(
    tx: &mut dyn Tx,
    scope: &str,
    deployment_id: &str,
    reason: &str,
    now_ms: i64,
) -> Result<Deployment, AwsError> {
    let mut deployment = deployment::load_for_update(tx, scope, deployment_id)?;
    if deployment.is_final() {
        return Err(ErrorCode::ConflictException.with(format!(
            "Deployment {deployment_id} already ended with status {}: there is nothing to repair.",
            deployment.status
        )));
    }
    deployment.status_message = Some(reason.to_string());
    let mut resource = target::load_by_arn(tx, scope, &deployment.target_arn)?
        .filter(|r| r.status().last_attempted_id.as_deref() == Some(deployment_id));
    notify::end_failed(
        tx,
        scope,
        resource.as_mut(),
        &mut deployment,
        Some(reason.to_string()),
        now_ms,
    )?;
    delivery::unschedule(tx, scope, deployment_id)?;
    Ok(deployment)
}

/// Where a deployment in progress stands: its bundle still waiting to be committed to the
/// environment's repository, or delivered (the pipeline has it) or self-managed without one.
pub fn delivery_state(
    tx: &mut dyn Tx,
    scope: &str,
    deployment_id: &str,
) -> Result<&'static str, AwsError> {
    Ok(if delivery::is_pending(tx, scope, deployment_id)? {
        "PENDING_DELIVERY"
    } else {
        "DELIVERED"
    })
}
