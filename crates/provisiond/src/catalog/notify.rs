//! The engine callbacks: `NotifyProvisionProductEngineWorkflowResult`,
//! `NotifyUpdateProvisionedProductEngineWorkflowResult` and
//! `NotifyTerminateProvisionedProductEngineWorkflowResult`. The order of checks is SPEC §5.3's:
//! the token must open for the caller's account and region, name this record and this call;
//! the record must exist; a repeated idempotency token, or a retry of the status the record
//! already has, changes nothing; otherwise the record, the provisioned product and the engine
//! task are settled in one transaction.

use super::provisioning::{self, Output, ProvisionedProduct, Record};
use super::status::{EngineOutcome, ProductStatus, RecordStatus, RecordType};
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
    /// What the run came to.
    pub outcome: EngineOutcome,
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

/// What a Notify call does to its record, given what the record already says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settlement {
    /// The record is in progress: settle it.
    Apply,
    /// A repeat (an idempotency token already accepted, or the status the record already has):
    /// nothing changes and the call succeeds.
    Repeat,
    /// The record was settled otherwise: the call is refused.
    Conflict,
}

/// SPEC §5.3's decision for a result reaching a record in `status`.
pub fn settlement(
    status: RecordStatus,
    token_accepted: bool,
    outcome: EngineOutcome,
) -> Settlement {
    if token_accepted {
        Settlement::Repeat
    } else if status == RecordStatus::InProgress {
        Settlement::Apply
    } else if status == outcome.record_status() {
        Settlement::Repeat
    } else {
        Settlement::Conflict
    }
}

/// What becomes of a provisioned product when its record settles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProductAfter {
    /// It is gone: terminated, or a terminate with `IgnoreErrors` ended either way.
    Removed,
    /// It stays, in this state.
    Becomes(ProductStatus),
}

/// The provisioned product's fate: success makes it `AVAILABLE`; a failed first provision that
/// reported no resources leaves it `ERROR`, any other failure `TAINTED`.
pub fn product_after(
    operation: EngineOperation,
    outcome: EngineOutcome,
    ignore_errors: bool,
    resources_reported: bool,
) -> ProductAfter {
    use EngineOperation::*;
    use EngineOutcome::*;
    match (operation, outcome) {
        (Terminate, Succeeded) => ProductAfter::Removed,
        (Terminate, Failed) if ignore_errors => ProductAfter::Removed,
        (_, Succeeded) => ProductAfter::Becomes(ProductStatus::Available),
        (Provision, Failed) if !resources_reported => ProductAfter::Becomes(ProductStatus::Error),
        (_, Failed) => ProductAfter::Becomes(ProductStatus::Tainted),
    }
}

/// The outcome a Notify call names; the protocol layer has already checked it against the
/// model's enum, so an unknown one here is refused the same way.
fn outcome_of(status: Option<String>) -> Result<EngineOutcome, AwsError> {
    let status = status.unwrap_or_default();
    EngineOutcome::parse(&status).ok_or_else(|| {
        invalid(format!(
            "Value '{status}' at 'status' failed to satisfy constraint: Member must satisfy enum value set: [SUCCEEDED, FAILED]"
        ))
    })
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
            RecordType::from(claims.operation),
            RecordType::from(result.operation)
        )));
    }
    let scope = ctx.scope();
    transact(ctx.store.as_ref(), Mode::Write, |tx| {
        // The token names the provisioned product `apply` reads for update: asked for now, its
        // lock goes with the record's rather than in a round trip of its own.
        tx.lock_ahead(
            Kind::ProvisionedProduct,
            &scope,
            &claims.provisioned_product_id,
        )?;
        let mut record = provisioning::get_record_for_update(tx, &scope, &result.record_id)?;
        // A token of another product, or one an operator's retry has replaced.
        if record.provisioned_product_id != claims.provisioned_product_id
            || record.token_generation != claims.generation
        {
            return Err(invalid("The workflow token is not valid."));
        }
        let accepted = record.accepted_tokens.contains(&result.idempotency_token);
        match settlement(record.status, accepted, result.outcome) {
            Settlement::Apply => apply(tx, &scope, &mut record, &result, ctx.now_ms),
            Settlement::Repeat => Ok(()),
            Settlement::Conflict => Err(invalid(format!(
                "Record {} is already {}.",
                record.id, record.status
            ))),
        }
    })
}

/// Settles `record`, in progress, with `result`: the record, its plan, its engine task and its
/// provisioned product change together in `tx`.
pub(crate) fn apply(
    tx: &mut dyn Tx,
    scope: &str,
    record: &mut Record,
    result: &EngineResult,
    now_ms: i64,
) -> Result<(), AwsError> {
    // The provisioned product is read for update below: asked for now (when the caller did
    // not already), its lock goes with the next statement rather than in a round trip of its
    // own.
    tx.lock_ahead(
        Kind::ProvisionedProduct,
        scope,
        &record.provisioned_product_id,
    )?;
    let succeeded = result.outcome == EngineOutcome::Succeeded;
    record.status = result.outcome.record_status();
    record.updated_ms = now_ms;
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
            result.outcome,
            result.failure_reason.clone(),
            now_ms,
        )?;
    }
    if let Some((queue, message_id)) = record.task.take() {
        crate::queue::discard_task(tx, scope, &queue, &message_id)?;
    }
    store::put(tx, Kind::Record, scope, &record.id, "", &*record)?;
    crate::in_flight::forget(tx, &record.id)?;

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
    let after = product_after(
        result.operation,
        result.outcome,
        record.ignore_errors,
        result.resource_tag.is_some(),
    );
    let ProductAfter::Becomes(status) = after else {
        tx.delete(Kind::ProvisionedProduct, scope, &pp.id)?;
        tx.delete(Kind::ProvisionedProductName, scope, &pp.name)?;
        return Ok(());
    };
    pp.status = status;
    if succeeded {
        pp.status_message = None;
        pp.last_successful_provisioning_record_id = Some(record.id.clone());
        pp.artifact_id = record.artifact_id.clone();
        pp.parameters = record.parameters.clone();
        pp.tags = record.tags.clone();
        pp.outputs = record.outputs.clone();
    } else {
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
            outcome: outcome_of(input.status)?,
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
            outcome: outcome_of(input.status)?,
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
            outcome: outcome_of(input.status)?,
            failure_reason: input.failure_reason,
            outputs: Vec::new(),
            resource_tag: None,
            idempotency_token: input.idempotency_token.unwrap_or_default(),
        },
    )?;
    Ok(sc::NotifyTerminateProvisionedProductEngineWorkflowResultOutput {})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Fixture, ACCOUNT};
    use EngineOperation::{Provision, Terminate, Update};
    use EngineOutcome::{Failed, Succeeded};

    const QUEUE: &str = "ServiceCatalogTerraformOSProvisionOperationQueue";

    #[test]
    fn a_result_settles_only_a_record_in_progress_and_repeats_change_nothing() {
        use RecordStatus::InProgress;
        assert_eq!(settlement(InProgress, false, Succeeded), Settlement::Apply);
        assert_eq!(settlement(InProgress, false, Failed), Settlement::Apply);
        // The same status again, with a new idempotency token: a retry.
        assert_eq!(
            settlement(RecordStatus::Succeeded, false, Succeeded),
            Settlement::Repeat
        );
        assert_eq!(
            settlement(RecordStatus::Failed, false, Failed),
            Settlement::Repeat
        );
        // The other status: refused.
        assert_eq!(
            settlement(RecordStatus::Succeeded, false, Failed),
            Settlement::Conflict
        );
        assert_eq!(
            settlement(RecordStatus::Failed, false, Succeeded),
            Settlement::Conflict
        );
        // An accepted idempotency token answers as before, whatever the status says.
        for status in RecordStatus::ALL {
            for outcome in EngineOutcome::ALL {
                assert_eq!(settlement(*status, true, *outcome), Settlement::Repeat);
            }
        }
    }

    #[test]
    fn the_product_is_removed_available_tainted_or_error_as_spec_says() {
        use ProductAfter::{Becomes, Removed};
        use ProductStatus::{Available, Error, Tainted};
        let cases = [
            (Provision, Succeeded, false, false, Becomes(Available)),
            (Provision, Failed, false, false, Becomes(Error)),
            (Provision, Failed, false, true, Becomes(Tainted)),
            (Update, Succeeded, false, false, Becomes(Available)),
            (Update, Failed, false, false, Becomes(Tainted)),
            (Terminate, Succeeded, false, false, Removed),
            (Terminate, Failed, false, false, Becomes(Tainted)),
            (Terminate, Failed, true, false, Removed),
            (Terminate, Succeeded, true, false, Removed),
        ];
        for (op, outcome, ignore, reported, expected) in cases {
            assert_eq!(
                product_after(op, outcome, ignore, reported),
                expected,
                "{op:?} {outcome:?} ignore_errors={ignore} resources_reported={reported}"
            );
        }
    }

    /// A provisioned product under change with its record in progress and its engine task
    /// queued, written as the domain would, and the token its task carries.
    fn under_change(
        fx: &Fixture,
        operation: EngineOperation,
    ) -> (ProvisionedProduct, Record, String) {
        let ctx = fx.ctx("dev", false);
        let scope = ctx.scope();
        let pp = ProvisionedProduct {
            id: "pp-unittest0001".into(),
            name: "bucket".into(),
            arn: format!("arn:aws:servicecatalog:us-east-1:{ACCOUNT}:stack/bucket/pp-unittest0001"),
            product_type: "TERRAFORM_OPEN_SOURCE".into(),
            status: ProductStatus::UnderChange,
            status_message: None,
            created_ms: ctx.now_ms,
            idempotency_token: "t".into(),
            last_record_id: "rec-unittest0001".into(),
            last_provisioning_record_id: "rec-unittest0001".into(),
            last_successful_provisioning_record_id: None,
            product_id: "prod-unittest0001".into(),
            artifact_id: "pa-unittest0001".into(),
            path_id: "lpv3-unittest0001".into(),
            launch_role_arn: None,
            parameters: vec![("size".into(), "3".into())],
            tags: Vec::new(),
            outputs: Vec::new(),
            resource_group_tag: None,
            owner_principal: ctx.identity.principal.clone(),
        };
        let token = token::issue(
            &fx.key,
            &token::WorkflowClaims {
                account: ACCOUNT.into(),
                region: "us-east-1".into(),
                record_id: "rec-unittest0001".into(),
                provisioned_product_id: pp.id.clone(),
                operation,
                issued_ms: ctx.now_ms,
                generation: 0,
            },
        );
        let queue = QUEUE.to_string();
        let record = transact(fx.store.as_ref(), Mode::Write, |tx| {
            let message_id = crate::queue::enqueue(tx, &scope, &queue, "{}", ctx.now_ms, 0)?;
            let record = Record {
                id: "rec-unittest0001".into(),
                provisioned_product_id: pp.id.clone(),
                provisioned_product_name: pp.name.clone(),
                product_type: pp.product_type.clone(),
                record_type: RecordType::from(operation),
                status: RecordStatus::InProgress,
                created_ms: ctx.now_ms,
                updated_ms: ctx.now_ms,
                product_id: pp.product_id.clone(),
                artifact_id: pp.artifact_id.clone(),
                path_id: pp.path_id.clone(),
                launch_role_arn: None,
                parameters: pp.parameters.clone(),
                tags: Vec::new(),
                errors: Vec::new(),
                outputs: Vec::new(),
                ignore_errors: false,
                task: Some((queue.clone(), message_id)),
                accepted_tokens: Vec::new(),
                token_generation: 0,
                owner_principal: Some(ctx.identity.principal.clone()),
                plan_id: None,
            };
            provisioning::insert_record(tx, &scope, &record)?;
            store::insert(
                tx,
                Kind::ProvisionedProductName,
                &scope,
                &pp.name,
                "",
                &pp.id,
            )?;
            store::insert(tx, Kind::ProvisionedProduct, &scope, &pp.id, "", &pp)?;
            Ok::<_, AwsError>(record)
        })
        .unwrap();
        (pp, record, token)
    }

    fn result(
        operation: EngineOperation,
        token: &str,
        outcome: EngineOutcome,
        idempotency_token: &str,
    ) -> EngineResult {
        EngineResult {
            operation,
            workflow_token: token.into(),
            record_id: "rec-unittest0001".into(),
            outcome,
            failure_reason: (outcome == Failed).then(|| "terraform apply failed".into()),
            outputs: vec![Output {
                key: "bucket".into(),
                value: Some("b-1".into()),
                description: None,
            }],
            resource_tag: None,
            idempotency_token: idempotency_token.into(),
        }
    }

    fn read(fx: &Fixture) -> (Record, Option<ProvisionedProduct>, usize) {
        let scope = fx.ctx("dev", false).scope();
        transact(fx.store.as_ref(), Mode::Read, |tx| {
            let record = provisioning::get_record(tx, &scope, "rec-unittest0001")?;
            let pp = store::get(tx, Kind::ProvisionedProduct, &scope, "pp-unittest0001")?;
            let (visible, hidden) = tx.queue_counts(&scope, QUEUE, crate::time::now_ms())?;
            let queued = (visible + hidden) as usize;
            Ok::<_, AwsError>((record, pp, queued))
        })
        .unwrap()
    }

    #[test]
    fn a_failed_first_provision_fails_the_record_errors_the_product_and_removes_the_task() {
        let fx = Fixture::new();
        let (_, _, token) = under_change(&fx, Provision);
        let ctx = fx.ctx("engine", false);
        settle(&ctx, result(Provision, &token, Failed, "n-1")).unwrap();
        let (record, pp, queued) = read(&fx);
        assert_eq!(record.status, RecordStatus::Failed);
        assert_eq!(
            record.errors,
            [(
                FAILURE_CODE.to_string(),
                "terraform apply failed".to_string()
            )]
        );
        let pp = pp.unwrap();
        assert_eq!(pp.status, ProductStatus::Error);
        assert_eq!(pp.status_message.as_deref(), Some("terraform apply failed"));
        assert_eq!(pp.last_successful_provisioning_record_id, None);
        assert_eq!(queued, 0, "the engine task is settled with the record");

        // A retry with a new idempotency token and the same status changes nothing; the other
        // status is refused.
        settle(&ctx, result(Provision, &token, Failed, "n-2")).unwrap();
        assert_eq!(read(&fx).0.accepted_tokens, ["n-1"]);
        let err = settle(&ctx, result(Provision, &token, Succeeded, "n-3")).unwrap_err();
        assert_eq!(err.code, "InvalidParametersException");
        assert!(err.message.contains("already FAILED"), "{}", err.message);
    }

    #[test]
    fn a_successful_update_makes_the_product_available_with_the_records_outputs() {
        let fx = Fixture::new();
        let (_, _, token) = under_change(&fx, Update);
        settle(
            &fx.ctx("engine", false),
            result(Update, &token, Succeeded, "n-1"),
        )
        .unwrap();
        let (record, pp, _) = read(&fx);
        assert_eq!(record.status, RecordStatus::Succeeded);
        let pp = pp.unwrap();
        assert_eq!(pp.status, ProductStatus::Available);
        assert_eq!(pp.outputs, record.outputs);
        assert_eq!(pp.outputs[0].value.as_deref(), Some("b-1"));
        assert_eq!(
            pp.last_successful_provisioning_record_id.as_deref(),
            Some("rec-unittest0001")
        );
    }

    #[test]
    fn a_successful_terminate_removes_the_product_and_its_name() {
        let fx = Fixture::new();
        let (_, _, token) = under_change(&fx, Terminate);
        settle(
            &fx.ctx("engine", false),
            result(Terminate, &token, Succeeded, "n-1"),
        )
        .unwrap();
        let (record, pp, _) = read(&fx);
        assert_eq!(record.status, RecordStatus::Succeeded);
        assert!(record.outputs.is_empty(), "a terminate keeps no outputs");
        assert!(pp.is_none());
        let scope = fx.ctx("dev", false).scope();
        let name: Option<String> = transact(fx.store.as_ref(), Mode::Read, |tx| {
            store::get(tx, Kind::ProvisionedProductName, &scope, "bucket")
        })
        .unwrap();
        assert_eq!(name, None, "the name is free again");
    }

    #[test]
    fn a_token_for_another_call_or_record_is_refused_and_nothing_changes() {
        let fx = Fixture::new();
        let (_, _, token) = under_change(&fx, Update);
        let ctx = fx.ctx("engine", false);
        let err = settle(&ctx, result(Terminate, &token, Succeeded, "n-1")).unwrap_err();
        assert!(
            err.message
                .contains("UPDATE_PROVISIONED_PRODUCT task, not TERMINATE_PROVISIONED_PRODUCT"),
            "{}",
            err.message
        );
        let mut other = result(Update, &token, Succeeded, "n-1");
        other.record_id = "rec-unittest0002".into();
        assert!(settle(&ctx, other).is_err());
        let forged = result(Update, "AAAA", Succeeded, "n-1");
        assert_eq!(
            settle(&ctx, forged).unwrap_err().message,
            "The workflow token is not valid."
        );
        let (record, pp, queued) = read(&fx);
        assert_eq!(record.status, RecordStatus::InProgress);
        assert_eq!(pp.unwrap().status, ProductStatus::UnderChange);
        assert_eq!(queued, 1);
    }

    #[test]
    fn an_unknown_status_is_refused_at_the_edge() {
        assert_eq!(outcome_of(Some("FAILED".into())).unwrap(), Failed);
        let err = outcome_of(Some("DONE".into())).unwrap_err();
        assert_eq!(err.code, "InvalidParametersException");
        assert!(outcome_of(None).is_err());
    }
}
