//! The engine callbacks: `NotifyProvisionProductEngineWorkflowResult`,
//! `NotifyUpdateProvisionedProductEngineWorkflowResult` and
//! `NotifyTerminateProvisionedProductEngineWorkflowResult`. The order of checks is SPEC §5.3's:
//! the token must open for the caller's account and region, name this record and this call;
//! the record must exist; a repeated idempotency token, or a retry of the status the record
//! already has, changes nothing; otherwise the record, the provisioned product and the engine
//! task are settled in one transaction.

use super::provisioning::{self, Output, ProvisionedProduct, Record};
use super::workflow_token::{self as token, EngineOperation};
use crate::context::RequestContext;
use crate::store::{self, transact, Kind, Mode, Tx};
use provisiond_model::servicecatalog::{self as sc, ErrorCode};
use provisiond_model::AwsError;

/// The code of the record error a failed engine run leaves.
pub const FAILURE_CODE: &str = "ENGINE_WORKFLOW_FAILURE";

/// What an engine reports, whichever of the three calls carries it.
pub struct EngineResult {
    /// The call that carries it.
    pub operation: EngineOperation,
    /// The token from the task.
    pub workflow_token: String,
    /// The record the engine worked on.
    pub record_id: String,
    /// `SUCCEEDED` or `FAILED`.
    pub status: String,
    /// Why it failed.
    pub failure_reason: Option<String>,
    /// The run's outputs.
    pub outputs: Vec<Output>,
    /// `ResourceIdentifier.UniqueTag` (provision only).
    pub resource_tag: Option<(String, String)>,
    /// The call's idempotency token.
    pub idempotency_token: String,
}

fn invalid(message: impl Into<String>) -> AwsError {
    ErrorCode::InvalidParametersException.with(message)
}

fn operation_name(op: EngineOperation) -> &'static str {
    match op {
        EngineOperation::Provision => "PROVISION_PRODUCT",
        EngineOperation::Update => "UPDATE_PROVISIONED_PRODUCT",
        EngineOperation::Terminate => "TERMINATE_PROVISIONED_PRODUCT",
    }
}

/// Settles a record with an engine's result.
pub fn settle(ctx: &RequestContext, result: EngineResult) -> Result<(), AwsError> {
    let claims = token::open(&ctx.server_key, &result.workflow_token)
        .ok()
        .filter(|c| c.account == ctx.identity.account && c.region == ctx.region)
        .ok_or_else(|| invalid("The workflow token is not valid."))?;
    if claims.record_id != result.record_id {
        return Err(invalid(format!(
            "The workflow token is not for record {}.",
            result.record_id
        )));
    }
    if claims.operation != result.operation {
        return Err(invalid(format!(
            "The workflow token is for a {} task, not {}.",
            operation_name(claims.operation),
            operation_name(result.operation)
        )));
    }
    let scope = ctx.scope();
    transact(ctx.store.as_ref(), Mode::Write, |tx| {
        let mut record = provisioning::get_record_for_update(tx, &scope, &result.record_id)?;
        if record.provisioned_product_id != claims.provisioned_product_id {
            return Err(invalid("The workflow token is not valid."));
        }
        if record.accepted_tokens.contains(&result.idempotency_token) {
            return Ok(());
        }
        if record.status != "IN_PROGRESS" {
            return if record.status == result.status {
                Ok(())
            } else {
                Err(invalid(format!(
                    "Record {} is already {}.",
                    record.id, record.status
                )))
            };
        }
        apply(tx, ctx, &scope, &mut record, &result)
    })
}

fn apply(
    tx: &mut dyn Tx,
    ctx: &RequestContext,
    scope: &str,
    record: &mut Record,
    result: &EngineResult,
) -> Result<(), AwsError> {
    let succeeded = result.status == "SUCCEEDED";
    record.status = result.status.clone();
    record.updated_ms = ctx.now_ms;
    record
        .accepted_tokens
        .push(result.idempotency_token.clone());
    if result.operation != EngineOperation::Terminate {
        record.outputs = result.outputs.clone();
    }
    if !succeeded {
        let reason = result
            .failure_reason
            .clone()
            .unwrap_or_else(|| "The engine reported a failure without a reason.".into());
        record.errors.push((FAILURE_CODE.into(), reason));
    }
    if let Some(plan_id) = &record.plan_id {
        super::plan::settle(
            tx,
            scope,
            plan_id,
            succeeded,
            result.failure_reason.clone(),
            ctx.now_ms,
        )?;
    }
    if let Some((queue, message_id)) = record.task.take() {
        tx.delete_message(scope, &queue, &message_id)?;
    }
    store::put(tx, Kind::Record, scope, &record.id, "", &*record)?;

    let Some(mut pp) = store::get_for_update::<ProvisionedProduct>(
        tx,
        Kind::ProvisionedProduct,
        scope,
        &record.provisioned_product_id,
    )?
    else {
        // The product is already gone (terminated with IgnoreErrors meanwhile): the record is settled.
        return Ok(());
    };
    if let Some(tag) = &result.resource_tag {
        pp.resource_group_tag = Some(tag.clone());
    }
    let remove =
        result.operation == EngineOperation::Terminate && (succeeded || record.ignore_errors);
    if remove {
        tx.delete(Kind::ProvisionedProduct, scope, &pp.id)?;
        tx.delete(Kind::ProvisionedProductName, scope, &pp.name)?;
        return Ok(());
    }
    if succeeded {
        pp.status = "AVAILABLE".into();
        pp.status_message = None;
        pp.last_successful_provisioning_record_id = Some(record.id.clone());
        pp.artifact_id = record.artifact_id.clone();
        pp.parameters = record.parameters.clone();
        pp.tags = record.tags.clone();
        pp.outputs = record.outputs.clone();
    } else {
        pp.status = match result.operation {
            EngineOperation::Provision if result.resource_tag.is_none() => "ERROR",
            _ => "TAINTED",
        }
        .into();
        pp.status_message = result.failure_reason.clone();
    }
    store::put(tx, Kind::ProvisionedProduct, scope, &pp.id, "", &pp)?;
    Ok(())
}

fn outputs(list: Option<Vec<sc::RecordOutput>>) -> Vec<Output> {
    list.unwrap_or_default()
        .into_iter()
        .map(|o| Output {
            key: o.output_key.unwrap_or_default(),
            value: o.output_value,
            description: o.description,
        })
        .collect()
}

/// `NotifyProvisionProductEngineWorkflowResult`.
pub fn provision(
    ctx: &RequestContext,
    input: sc::NotifyProvisionProductEngineWorkflowResultInput,
) -> Result<sc::NotifyProvisionProductEngineWorkflowResultOutput, AwsError> {
    settle(
        ctx,
        EngineResult {
            operation: EngineOperation::Provision,
            workflow_token: input.workflow_token.unwrap_or_default(),
            record_id: input.record_id.unwrap_or_default(),
            status: input.status.unwrap_or_default(),
            failure_reason: input.failure_reason,
            outputs: outputs(input.outputs),
            resource_tag: input
                .resource_identifier
                .and_then(|r| r.unique_tag)
                .map(|t| (t.key.unwrap_or_default(), t.value.unwrap_or_default())),
            idempotency_token: input.idempotency_token.unwrap_or_default(),
        },
    )?;
    Ok(sc::NotifyProvisionProductEngineWorkflowResultOutput {})
}

/// `NotifyUpdateProvisionedProductEngineWorkflowResult`.
pub fn update(
    ctx: &RequestContext,
    input: sc::NotifyUpdateProvisionedProductEngineWorkflowResultInput,
) -> Result<sc::NotifyUpdateProvisionedProductEngineWorkflowResultOutput, AwsError> {
    settle(
        ctx,
        EngineResult {
            operation: EngineOperation::Update,
            workflow_token: input.workflow_token.unwrap_or_default(),
            record_id: input.record_id.unwrap_or_default(),
            status: input.status.unwrap_or_default(),
            failure_reason: input.failure_reason,
            outputs: outputs(input.outputs),
            resource_tag: None,
            idempotency_token: input.idempotency_token.unwrap_or_default(),
        },
    )?;
    Ok(sc::NotifyUpdateProvisionedProductEngineWorkflowResultOutput {})
}

/// `NotifyTerminateProvisionedProductEngineWorkflowResult`.
pub fn terminate(
    ctx: &RequestContext,
    input: sc::NotifyTerminateProvisionedProductEngineWorkflowResultInput,
) -> Result<sc::NotifyTerminateProvisionedProductEngineWorkflowResultOutput, AwsError> {
    settle(
        ctx,
        EngineResult {
            operation: EngineOperation::Terminate,
            workflow_token: input.workflow_token.unwrap_or_default(),
            record_id: input.record_id.unwrap_or_default(),
            status: input.status.unwrap_or_default(),
            failure_reason: input.failure_reason,
            outputs: Vec::new(),
            resource_tag: None,
            idempotency_token: input.idempotency_token.unwrap_or_default(),
        },
    )?;
    Ok(sc::NotifyTerminateProvisionedProductEngineWorkflowResultOutput {})
}
