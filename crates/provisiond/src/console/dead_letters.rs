//! The dead-letters page: the engine tasks in each work queue's dead-letter queue (the record
//! each is for, when it was sent, how often it was received; never its workflow token), and
//! for admin keys the redrive action, SQS's own `StartMessageMoveTask`, audited like the call.

use super::html::{self, csrf_field, when, PathPart, Text, Viewer};
use super::page::Reply;
use crate::audit;
use crate::context::RequestContext;
use crate::queue::{names, EngineQueues};
use crate::store::{transact, Mode, QueuedMessage};
use provisiond_formats::task::TaskMessage;
use provisiond_model::sqs::{self, Handler as _};
use provisiond_model::AwsError;
use std::fmt::Write;

/// The most tasks shown per dead-letter queue.
const SHOWN: usize = 100;

/// One dead-letter queue with tasks.
pub struct DeadLetters {
    /// The work queue its tasks came from.
    pub queue: String,
    /// Its tasks, oldest first (at most `SHOWN`).
    pub tasks: Vec<DeadTask>,
}

/// A dead-lettered task as the page shows it.
pub struct DeadTask {
    /// The message id.
    pub message_id: String,
    /// The record it is for, when its body is an engine task.
    pub record_id: Option<String>,
    /// Its operation (`PROVISION_PRODUCT`, …).
    pub operation: Option<String>,
    /// When it was first sent.
    pub sent_ms: i64,
    /// How often it was received before it moved here.
    pub receive_count: i64,
    /// When it was first received.
    pub first_receive_ms: Option<i64>,
}

fn dead_task(m: QueuedMessage) -> DeadTask {
    let task = serde_json::from_str::<TaskMessage>(&m.body).ok();
    DeadTask {
        message_id: m.message_id,
        record_id: task.as_ref().map(|t| t.record_id.clone()),
        operation: task
            .and_then(|t| serde_json::to_value(t.operation).ok())
            .and_then(|v| v.as_str().map(str::to_string)),
        sent_ms: m.sent_ms,
        receive_count: m.receive_count,
        first_receive_ms: m.first_receive_ms,
    }
}

/// The dead-letter queues of `ctx`'s account and region that hold tasks. Read in a read
/// transaction, `claim_messages` only reads: nothing is received or hidden.
pub fn gather(ctx: &RequestContext) -> Result<Vec<DeadLetters>, AwsError> {
    let scope = ctx.scope();
    let found = transact(ctx.store.as_ref(), Mode::Read, |tx| {
        let mut found = Vec::new();
        for queue in names::all() {
            let Some(dlq) = names::dead_letter_queue(&queue) else {
                continue;
            };
            let messages = tx.claim_messages(&scope, &dlq, i64::MAX, SHOWN)?;
            if !messages.is_empty() {
                found.push(DeadLetters {
                    queue,
                    tasks: messages.into_iter().map(dead_task).collect(),
                });
            }
        }
        Ok::<_, crate::store::StoreError>(found)
    })?;
    Ok(found)
}

/// The dead-letters page.
pub fn page(
    ctx: &RequestContext,
    viewer: &Viewer<'_>,
    query: &[(String, String)],
) -> Result<Reply, AwsError> {
    let queues = gather(ctx)?;
    let moved = super::form::get(query, "moved").and_then(|n| n.parse::<i64>().ok());
    Ok(Reply::html(
        200,
        html::page(
            "Dead letters",
            Some(viewer),
            "/console/dead-letters",
            &render(&queues, viewer.admin.then_some(viewer.csrf), moved),
        ),
    ))
}

/// Moves every task of `queue`'s dead-letter queue back to it (`StartMessageMoveTask`).
pub fn redrive(ctx: &RequestContext, form: &[(String, String)]) -> Result<Reply, AwsError> {
    ctx.require_admin("sqs:StartMessageMoveTask")?;
    let queue = super::form::get(form, "queue").unwrap_or_default();
    let dlq = names::dead_letter_queue(queue)
        .filter(|_| names::exists(queue))
        .ok_or_else(|| {
            sqs::ErrorCode::ResourceNotFoundException
                .with(format!("{queue} is not an engine work queue."))
        })?;
    let entry = ctx.audit_entry("console", "StartMessageMoveTask");
    let arn = |name: &str| format!("arn:aws:sqs:{}:{}:{name}", ctx.region, ctx.identity.account);
    audit::audited(ctx.store.as_ref(), entry, || {
        EngineQueues.start_message_move_task(
            ctx,
            sqs::StartMessageMoveTaskRequest {
                source_arn: Some(arn(&dlq)),
                destination_arn: Some(arn(queue)),
                ..Default::default()
            },
        )
    })?;
    let moved = transact(ctx.store.as_ref(), Mode::Read, |tx| {
        tx.queue_counts(&ctx.scope(), queue, ctx.now_ms)
    })?
    .0;
    Ok(Reply::redirect(format!(
        "/console/dead-letters?moved={moved}"
    )))
}

/// The page's HTML; `csrf` is given to admin keys, who may redrive.
pub fn render(queues: &[DeadLetters], csrf: Option<&str>, moved: Option<i64>) -> String {
    let mut out = String::new();
    if let Some(n) = moved {
        let _ = write!(
            out,
            "<p class=\"notice\" role=\"status\">Redriven: the work queue now has {n} waiting.</p>"
        );
    }
    if queues.is_empty() {
        out.push_str("<p class=\"muted\" id=\"no-dead-letters\">No dead-lettered tasks.</p>");
        return out;
    }
    for q in queues {
        let _ = write!(out, "<h2>{}</h2>", Text(&q.queue));
        if let Some(csrf) = csrf {
            let _ = write!(
                out,
                "<form method=\"post\" action=\"/console/dead-letters/redrive\" class=\"redrive\">{}\
                 <input type=\"hidden\" name=\"queue\" value=\"{}\">\
                 <button type=\"submit\">Redrive {} to {}</button></form>",
                csrf_field(csrf),
                Text(&q.queue),
                if q.tasks.len() == SHOWN {
                    "all".to_string()
                } else {
                    q.tasks.len().to_string()
                },
                Text(&q.queue)
            );
        }
        out.push_str(
            "<div class=\"table\"><table class=\"dead-letters\"><thead><tr><th>Task</th><th>Record</th>\
             <th>Operation</th><th>Sent</th><th>First received</th><th>Receives</th></tr></thead><tbody>",
        );
        for t in &q.tasks {
            let record = match &t.record_id {
                Some(id) => format!(
                    "<a href=\"/console/records/{}\">{}</a>",
                    PathPart(id),
                    Text(id)
                ),
                None => "<span class=\"muted\">not an engine task</span>".into(),
            };
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{record}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                Text(&t.message_id),
                Text(t.operation.as_deref().unwrap_or("")),
                when(t.sent_ms),
                t.first_receive_ms.map(when).unwrap_or_default(),
                t.receive_count
            );
        }
        out.push_str("</tbody></table></div>");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_task_body_that_is_not_ours_is_shown_safely_and_its_token_never() {
        let ours = QueuedMessage {
            message_id: "m-1".into(),
            queue: "q-dlq".into(),
            body: serde_json::json!({
                "token": "SECRET-TOKEN", "operation": "PROVISION_PRODUCT",
                "provisionedProductId": "pp-1", "provisionedProductName": "n",
                "recordId": "rec-<1>",
                "identity": {"principal": "p", "awsAccountId": "111122223333", "organizationId": ""},
            })
            .to_string(),
            sent_ms: 1_700_000_000_000,
            visible_at_ms: 0,
            receive_count: 5,
            first_receive_ms: Some(1_700_000_001_000),
            receipt: String::new(),
            attributes: String::new(),
        };
        let foreign = QueuedMessage {
            message_id: "<m>".into(),
            body: "<not json>".into(),
            ..ours.clone()
        };
        let queues = vec![DeadLetters {
            queue: "Queue<".into(),
            tasks: vec![dead_task(ours), dead_task(foreign)],
        }];
        let html = render(&queues, Some("tok"), None);
        assert!(!html.contains("SECRET-TOKEN"));
        assert!(!html.contains("<m>") && !html.contains("Queue<") && !html.contains("rec-<1>"));
        assert!(html.contains("href=\"/console/records/rec-%3C1%3E\""));
        assert!(html.contains("not an engine task"));
        assert!(html.contains("name=\"csrf\" value=\"tok\""));
        assert!(
            !render(&queues, None, None).contains("<form"),
            "no redrive without an admin key"
        );
    }
}
