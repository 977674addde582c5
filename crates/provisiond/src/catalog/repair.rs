//! An operator's remedies for a record stuck in progress: fail it as the engine's `FAILED`
//! would, or give its task back to the engine under a fresh workflow token so the old one
//! stops working. Both change the record, its task and its provisioned product in the
//! caller's transaction, like a Notify call does.

use super::notify::{self, EngineResult};
use super::provisioning::{self, Record};
use super::status::{EngineOutcome, RecordStatus};
use super::workflow_token::{self as token, EngineOperation, WorkflowClaims};
use crate::crypto::ServerKey;
use crate::queue;
use crate::store::{self, Kind, Tx};
use provisiond_model::servicecatalog::ErrorCode;
use provisiond_model::AwsError;

/// The record `record_id` of `scope`, which must be in progress with an engine task to repair,
/// and the engine operation it asks for.
fn in_progress(
    tx: &mut dyn Tx,
    scope: &str,
    record_id: &str,
) -> Result<(Record, EngineOperation), AwsError> {
    let record = provisioning::get_record_for_update(tx, scope, record_id)?;
    match record.record_type.engine_operation() {
        Some(operation) if record.status == RecordStatus::InProgress => Ok((record, operation)),
        _ => Err(ErrorCode::InvalidStateException.with(format!(
            "Record {record_id} is {}, not in progress: there is nothing to repair.",
            record.status
        ))),
    }
}

/// Settles the stuck record `record_id` as the engine's `FAILED` with `reason` would: the record
/// `FAILED` with the reason among its errors, its provisioned product `TAINTED` (or `ERROR`
/// after a first provision), its plan's execution failed, its engine task removed. A later
/// Notify for it is answered as for any settled record.
pub fn fail(
    tx: &mut dyn Tx,
    scope: &str,
    record_id: &str,
    reason: &str,
    now_ms: i64,
) -> Result<Record, AwsError> {
    let (mut record, operation) = in_progress(tx, scope, record_id)?;
    let result = EngineResult {
        operation,
        workflow_token: String::new(),
        record_id: record.id.clone(),
        outcome: EngineOutcome::Failed,
        failure_reason: Some(reason.to_string()),
        outputs: Vec::new(),
        resource_tag: None,
        idempotency_token: format!("operator:{}", crate::ids::uuid()),
    };
    notify::apply(tx, scope, &mut record, &result, now_ms)?;
    Ok(record)
}

/// Gives the stuck record `record_id` back to the engine: its task (wherever it is: waiting,
/// received, dead-lettered or gone) is replaced by a new one carrying a workflow token of the
/// next generation, and only that token settles the record from now on.
pub fn retry(
    tx: &mut dyn Tx,
    key: &ServerKey,
    scope: &str,
    record_id: &str,
    now_ms: i64,
) -> Result<Record, AwsError> {
    let (mut record, operation) = in_progress(tx, scope, record_id)?;
    let (account, region) = scope.split_once('/').unwrap_or((scope, ""));
    let queue_name = match record.task.take() {
        Some((queue_name, message_id)) => {
            queue::discard_task(tx, scope, &queue_name, &message_id)?;
            queue_name
        }
        None => {
            super::engine_task::queue_name(&record.product_type, operation).ok_or_else(|| {
                ErrorCode::InvalidStateException.with(format!(
                    "Record {record_id} is of product type {}, which no engine provisions.",
                    record.product_type
                ))
            })?
        }
    };
    let object_key = if operation == EngineOperation::Terminate {
        String::new()
    } else {
        super::product::get_artifact(tx, scope, &record.product_id, &record.artifact_id)?.object_key
    };
    record.token_generation += 1;
    let token = token::issue(
        key,
        &WorkflowClaims {
            account: account.to_string(),
            region: region.to_string(),
            record_id: record.id.clone(),
            provisioned_product_id: record.provisioned_product_id.clone(),
            operation,
            issued_ms: now_ms,
            generation: record.token_generation,
        },
    );
    let body = provisioning::task_body(&record, operation, &object_key, &token, account);
    let message_id = queue::enqueue(tx, scope, &queue_name, &body, now_ms, 0)?;
    record.task = Some((queue_name, message_id));
    record.updated_ms = now_ms;
    store::put(tx, Kind::Record, scope, &record.id, "", &record)?;
    Ok(record)
}

/// The state of a record's engine task.
pub fn task_state(
    tx: &mut dyn Tx,
    scope: &str,
    record: &Record,
) -> Result<queue::TaskState, AwsError> {
    match &record.task {
        Some((queue_name, message_id)) => queue::task_state(tx, scope, queue_name, message_id),
        None => Ok(queue::TaskState::Gone),
    }
}
