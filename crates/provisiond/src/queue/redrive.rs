//! Dead-letter redrive with SQS's own calls, so standard SQS tooling gives dead-lettered engine
//! tasks back to their queue: `StartMessageMoveTask` (from a `-dlq` to its work queue, or another
//! of the account's queues), `ListMessageMoveTasks`, `CancelMessageMoveTask` and
//! `ListDeadLetterSourceQueues`. A move happens at once, in one transaction, and is recorded as a
//! `COMPLETED` task; a moved message is a fresh delivery (receive count 0, visible now) whose body,
//! workflow token included, is unchanged, so it still works while its record is in progress.

use super::{names, queue_url};
use crate::context::RequestContext;
use crate::store::{self, transact, Kind, Mode, Tx};
use provisiond_model::sqs::{self, ErrorCode};
use provisiond_model::AwsError;
use serde::{Deserialize, Serialize};

/// A recorded move task.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct MoveTask {
    handle: String,
    source_arn: String,
    destination_arn: String,
    moved: i64,
    started_ms: i64,
    max_per_second: Option<i32>,
}

fn arn(ctx: &RequestContext, queue: &str) -> String {
    format!(
        "arn:aws:sqs:{}:{}:{queue}",
        ctx.region, ctx.identity.account
    )
}

/// The caller's queue an ARN names.
fn queue_of_arn(ctx: &RequestContext, arn: &str, what: &str) -> Result<String, AwsError> {
    let prefix = format!("arn:aws:sqs:{}:{}:", ctx.region, ctx.identity.account);
    match arn.strip_prefix(&prefix) {
        Some(name) if names::exists(name) => Ok(name.to_string()),
        _ => Err(ErrorCode::ResourceNotFoundException.with(format!(
            "The {what} {arn} is not a queue of this account and region."
        ))),
    }
}

/// Moves every visible message of `from` to `to` as a fresh delivery; returns how many.
fn move_messages(
    tx: &mut dyn Tx,
    scope: &str,
    from: &str,
    to: &str,
    now_ms: i64,
) -> Result<i64, AwsError> {
    let mut moved = 0;
    loop {
        let batch = tx.claim_messages(scope, from, now_ms, 1000)?;
        if batch.is_empty() {
            if moved > 0 {
                tx.wake_waiters()?;
            }
            return Ok(moved);
        }
        for mut m in batch {
            m.queue = to.to_string();
            m.visible_at_ms = now_ms;
            m.receive_count = 0;
            m.first_receive_ms = None;
            m.receipt.clear();
            tx.update_message(scope, &m)?;
            moved += 1;
        }
    }
}

pub(super) fn start(
    ctx: &RequestContext,
    input: sqs::StartMessageMoveTaskRequest,
) -> Result<sqs::StartMessageMoveTaskResult, AwsError> {
    let source_arn = input.source_arn.unwrap_or_default();
    let source = queue_of_arn(ctx, &source_arn, "source queue")?;
    let Some(origin) = source.strip_suffix(names::DLQ_SUFFIX) else {
        return Err(AwsError::new(
            "InvalidParameterValue",
            400,
            format!("Source queue {source_arn} must be configured as a dead-letter queue."),
        ));
    };
    let destination = match input.destination_arn.as_deref() {
        Some(arn) => queue_of_arn(ctx, arn, "destination queue")?,
        None => origin.to_string(),
    };
    if destination == source {
        return Err(AwsError::new(
            "InvalidParameterValue",
            400,
            "The destination queue must differ from the source queue.",
        ));
    }
    if let Some(rate) = input.max_number_of_messages_per_second {
        if !(1..=500).contains(&rate) {
            return Err(AwsError::new(
                "InvalidParameterValue",
                400,
                format!("Value {rate} for parameter MaxNumberOfMessagesPerSecond is invalid. Reason: Must be between 1 and 500."),
            ));
        }
    }
    let scope = ctx.scope();
    let handle = crate::ids::uuid();
    let task = transact(ctx.store.as_ref(), Mode::Write, |tx| {
        let moved = move_messages(tx, &scope, &source, &destination, ctx.now_ms)?;
        let task = MoveTask {
            handle: handle.clone(),
            source_arn: source_arn.clone(),
            destination_arn: arn(ctx, &destination),
            moved,
            started_ms: ctx.now_ms,
            max_per_second: input.max_number_of_messages_per_second,
        };
        store::put(tx, Kind::QueueMoveTask, &scope, &handle, &source, &task)?;
        Ok::<_, AwsError>(task)
    })?;
    tracing::info!(source = %source, destination = %destination, moved = task.moved, "dead-letter redrive");
    Ok(sqs::StartMessageMoveTaskResult {
        task_handle: Some(task.handle),
    })
}

pub(super) fn list(
    ctx: &RequestContext,
    input: sqs::ListMessageMoveTasksRequest,
) -> Result<sqs::ListMessageMoveTasksResult, AwsError> {
    let source_arn = input.source_arn.unwrap_or_default();
    let source = queue_of_arn(ctx, &source_arn, "source queue")?;
    let max = input.max_results.unwrap_or(1);
    if !(1..=10).contains(&max) {
        return Err(AwsError::new(
            "InvalidParameterValue",
            400,
            format!("Value {max} for parameter MaxResults is invalid. Reason: Must be between 1 and 10."),
        ));
    }
    let scope = ctx.scope();
    // The most recent first, read newest first: however many the queue has had.
    let tasks: Vec<MoveTask> = transact(ctx.store.as_ref(), Mode::Read, |tx| {
        store::list_newest::<MoveTask>(tx, Kind::QueueMoveTask, &scope, &source, None, max as usize)
    })?
    .into_iter()
    .map(|(_, t)| t)
    .collect();
    Ok(sqs::ListMessageMoveTasksResult {
        results: Some(
            tasks
                .into_iter()
                .map(|t| sqs::ListMessageMoveTasksResultEntry {
                    task_handle: None,
                    status: Some("COMPLETED".into()),
                    source_arn: Some(t.source_arn),
                    destination_arn: Some(t.destination_arn),
                    max_number_of_messages_per_second: t.max_per_second,
                    approximate_number_of_messages_moved: Some(t.moved),
                    approximate_number_of_messages_to_move: Some(t.moved),
                    failure_reason: None,
                    started_timestamp: Some(t.started_ms),
                })
                .collect(),
        ),
    })
}

pub(super) fn cancel(
    ctx: &RequestContext,
    input: sqs::CancelMessageMoveTaskRequest,
) -> Result<sqs::CancelMessageMoveTaskResult, AwsError> {
    let handle = input.task_handle.unwrap_or_default();
    let scope = ctx.scope();
    let task: Option<MoveTask> = transact(ctx.store.as_ref(), Mode::Read, |tx| {
        store::get(tx, Kind::QueueMoveTask, &scope, &handle)
    })?;
    Err(match task {
        None => ErrorCode::ResourceNotFoundException
            .with(format!("The task handle {handle} does not name a move task.")),
        Some(_) => ErrorCode::ResourceNotFoundException.with(
            "The move task is not running: moves complete as they start, so there is nothing to cancel.",
        ),
    })
}

pub(super) fn sources(
    ctx: &RequestContext,
    input: sqs::ListDeadLetterSourceQueuesRequest,
) -> Result<sqs::ListDeadLetterSourceQueuesResult, AwsError> {
    let queue = super::queue_of_url(ctx, input.queue_url.as_deref().unwrap_or_default())?;
    let urls = queue
        .strip_suffix(names::DLQ_SUFFIX)
        .map(|origin| vec![queue_url(ctx, origin)])
        .unwrap_or_default();
    Ok(sqs::ListDeadLetterSourceQueuesResult {
        queue_urls: Some(urls),
        next_token: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Fixture;

    #[test]
    fn the_most_recent_move_tasks_are_listed_however_many_there_were() {
        let fx = Fixture::new();
        let ctx = fx.ctx("platform", true);
        let scope = ctx.scope();
        let source = "ServiceCatalogTerraformOSProvisionOperationQueue-dlq";
        transact(fx.store.as_ref(), Mode::Write, |tx| {
            for i in 0..1_005 {
                let task = MoveTask {
                    handle: format!("task-{i}"),
                    source_arn: arn(&ctx, source),
                    destination_arn: arn(&ctx, "ServiceCatalogTerraformOSProvisionOperationQueue"),
                    moved: i,
                    started_ms: i,
                    max_per_second: None,
                };
                store::put(tx, Kind::QueueMoveTask, &scope, &task.handle, source, &task)?;
            }
            Ok::<_, AwsError>(())
        })
        .unwrap();
        let listed = list(
            &ctx,
            sqs::ListMessageMoveTasksRequest {
                source_arn: Some(arn(&ctx, source)),
                max_results: Some(3),
            },
        )
        .unwrap();
        let moved: Vec<i64> = listed
            .results
            .unwrap()
            .into_iter()
            .map(|t| t.approximate_number_of_messages_moved.unwrap())
            .collect();
        assert_eq!(moved, [1_004, 1_003, 1_002]);
    }
}
