//! The engine queues, served over the SQS JSON protocol (`AmazonSQS`, awsJson 1.0) so an engine
//! written for AWS receives its work unchanged: GetQueueUrl, ListQueues, GetQueueAttributes,
//! ReceiveMessage (long polling), DeleteMessage(Batch), ChangeMessageVisibility(Batch),
//! SendMessage(Batch) with message attributes (`attributes`), PurgeQueue, and the dead-letter
//! redrive calls (`redrive`). Semantics are SQS's: a received message is invisible for the visibility timeout,
//! then delivered again with its receive count raised; after `MAX_RECEIVES` receives it moves to
//! the queue's `-dlq`. Only the latest receipt handle of a message deletes it.

pub mod attributes;
pub mod names;
pub mod operations;
mod redrive;

use crate::context::RequestContext;
use crate::store::{transact, Mode, QueuedMessage, StoreError, Tx};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use md5::{Digest, Md5};
use provisiond_model::sqs::{self, ErrorCode, Operation};
use provisiond_model::AwsError;
use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

/// Receives after which a message moves to the dead-letter queue (the reference engine's setting).
pub const MAX_RECEIVES: i64 = 5;
/// Default visibility timeout in seconds (the reference engine's setting).
pub const DEFAULT_VISIBILITY_SECS: i64 = 180;
/// Longest visibility timeout SQS allows: 12 hours.
pub const MAX_VISIBILITY_SECS: i64 = 43_200;
/// Longest long poll.
pub const MAX_WAIT_SECS: i64 = 20;
/// Largest message body: 256 KiB.
pub const MAX_BODY_BYTES: usize = 262_144;

/// The queue API. Long pollers wait on the store's [`crate::store::Wakeups`], which every
/// commit that adds or releases a message moves on (`Tx::wake_waiters`).
#[derive(Default)]
pub struct EngineQueues;

/// An SQS-style "invalid parameter" answer (SQS's JSON model has no shape for it).
fn invalid_parameter(message: impl Into<String>) -> AwsError {
    AwsError::new("InvalidParameterValue", 400, message)
}

fn no_such_queue() -> AwsError {
    ErrorCode::QueueDoesNotExist.with("The specified queue does not exist.")
}

/// The queue a URL names, if it is one of the caller's: `http(s)://<host>/<account>/<name>`.
fn queue_of_url(ctx: &RequestContext, url: &str) -> Result<String, AwsError> {
    let path = url.split_once("://").map_or(url, |(_, rest)| rest);
    let mut parts = path.rsplit('/');
    let name = parts.next().unwrap_or_default();
    let account = parts.next().unwrap_or_default();
    if account != ctx.identity.account || !names::exists(name) {
        return Err(no_such_queue());
    }
    Ok(name.to_string())
}

fn queue_url(ctx: &RequestContext, name: &str) -> String {
    format!("http://{}/{}/{name}", ctx.host, ctx.identity.account)
}

/// A receipt handle names the message and the receive it came from.
fn receipt_handle(message_id: &str, nonce: &str) -> String {
    B64.encode(format!("{message_id}:{nonce}"))
}

fn parse_receipt_handle(handle: &str) -> Result<(String, String), AwsError> {
    let bad = || {
        ErrorCode::ReceiptHandleIsInvalid.with(format!(
            "The input receipt handle \"{handle}\" is not a valid receipt handle."
        ))
    };
    let raw = B64.decode(handle).map_err(|_| bad())?;
    let text = String::from_utf8(raw).map_err(|_| bad())?;
    let (id, nonce) = text.split_once(':').ok_or_else(bad)?;
    if id.is_empty() || nonce.is_empty() {
        return Err(bad());
    }
    Ok((id.to_string(), nonce.to_string()))
}

/// The in-flight message a receipt handle may act on: `None` when the message is gone (a repeated
/// delete succeeds, as in SQS); an error when the handle is not the latest one.
fn message_for_handle(
    tx: &mut dyn Tx,
    scope: &str,
    queue: &str,
    handle: &str,
) -> Result<Option<QueuedMessage>, AwsError> {
    let (id, nonce) = parse_receipt_handle(handle)?;
    let Some(message) = tx.message(scope, queue, &id)? else {
        return Ok(None);
    };
    if message.receipt != nonce {
        return Err(ErrorCode::ReceiptHandleIsInvalid.with("The receipt handle has expired."));
    }
    Ok(Some(message))
}

/// Checks the entries of a batch call: 1 to 10, ids distinct, of letters, digits, `-` and `_`.
fn check_batch_ids<'e>(
    ids: impl ExactSizeIterator<Item = &'e str>,
    entry: &str,
) -> Result<(), AwsError> {
    if ids.len() == 0 {
        return Err(ErrorCode::EmptyBatchRequest.with(format!(
            "There should be at least one {entry} in the request."
        )));
    }
    if ids.len() > 10 {
        return Err(ErrorCode::TooManyEntriesInBatchRequest.with(format!(
            "Maximum number of entries per request are 10. You have sent {}.",
            ids.len()
        )));
    }
    let mut seen = HashSet::new();
    for id in ids {
        if !seen.insert(id) {
            return Err(ErrorCode::BatchEntryIdsNotDistinct.with(format!("Id {id} repeated.")));
        }
        let valid = !id.is_empty()
            && id.len() <= 80
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !valid {
            return Err(ErrorCode::InvalidBatchEntryId.with("A batch entry id can only contain alphanumeric characters, hyphens and underscores. It can be at most 80 letters long."));
        }
    }
    Ok(())
}

/// The queue and the entries of a batch call, checked by [`check_batch_ids`].
fn batch<E>(
    ctx: &RequestContext,
    queue_url: Option<&str>,
    entries: Option<Vec<E>>,
    entry: &str,
    id: impl Fn(&E) -> Option<&str>,
) -> Result<(String, Vec<E>), AwsError> {
    let queue = queue_of_url(ctx, queue_url.unwrap_or_default())?;
    let entries = entries.unwrap_or_default();
    check_batch_ids(entries.iter().map(|e| id(e).unwrap_or_default()), entry)?;
    Ok((queue, entries))
}

/// A batch entry's failure, as the batch answer lists it.
fn failed_entry(id: &Option<String>, err: AwsError) -> sqs::BatchResultErrorEntry {
    sqs::BatchResultErrorEntry {
        id: id.clone(),
        sender_fault: Some(err.status < 500),
        code: Some(err.code.to_string()),
        message: Some(err.message),
    }
}

/// A message to send, checked: its body, encoded attributes, their digest and the delay.
struct Outgoing {
    body: String,
    attributes: String,
    md5_of_attributes: Option<String>,
    delay_secs: i64,
}

fn check_outgoing(
    body: Option<String>,
    message_attributes: Option<attributes::Attributes>,
    delay_seconds: Option<i32>,
) -> Result<Outgoing, AwsError> {
    let body = body.unwrap_or_default();
    let message_attributes = message_attributes.unwrap_or_default();
    let attributes_size = attributes::check(&message_attributes)?;
    if body.is_empty() || body.len() + attributes_size > MAX_BODY_BYTES {
        return Err(invalid_parameter(format!(
            "The message body must be between 1 and {MAX_BODY_BYTES} bytes long, message attributes included."
        )));
    }
    let delay_secs = i64::from(delay_seconds.unwrap_or(0));
    if !(0..=900).contains(&delay_secs) {
        return Err(invalid_parameter(format!(
            "Value {delay_secs} for parameter DelaySeconds is invalid. Reason: must be between 0 and 900."
        )));
    }
    Ok(Outgoing {
        md5_of_attributes: attributes::md5(&message_attributes),
        attributes: attributes::encode(&message_attributes),
        body,
        delay_secs,
    })
}

/// Changes the visibility of the in-flight message a receipt handle names.
fn change_visibility(
    tx: &mut dyn Tx,
    scope: &str,
    queue: &str,
    handle: &str,
    timeout_secs: i64,
    now_ms: i64,
) -> Result<(), AwsError> {
    if !(0..=MAX_VISIBILITY_SECS).contains(&timeout_secs) {
        return Err(invalid_parameter(format!(
            "Value {timeout_secs} for parameter VisibilityTimeout is invalid. Reason: Must be between 0 and {MAX_VISIBILITY_SECS}."
        )));
    }
    let mut m = message_for_handle(tx, scope, queue, handle)?
        .ok_or_else(|| ErrorCode::ReceiptHandleIsInvalid.with("The receipt handle has expired."))?;
    if m.visible_at_ms <= now_ms {
        return Err(ErrorCode::MessageNotInflight.with("The message referred to is not in flight."));
    }
    m.visible_at_ms = now_ms + timeout_secs * 1000;
    tx.update_message(scope, &m)?;
    if timeout_secs == 0 {
        tx.wake_waiters()?;
    }
    Ok(())
}

fn md5_hex(body: &str) -> String {
    hex::encode(Md5::digest(body.as_bytes()))
}

fn nonce() -> String {
    let mut b = [0u8; 16];
    getrandom::getrandom(&mut b).expect("the OS random source is available");
    hex::encode(b)
}

/// Adds `body` to `queue` of `scope` in the caller's transaction; its commit wakes long
/// pollers.
pub fn enqueue(
    tx: &mut dyn Tx,
    scope: &str,
    queue: &str,
    body: &str,
    now_ms: i64,
    delay_secs: i64,
) -> Result<String, AwsError> {
    enqueue_with_attributes(tx, scope, queue, body, String::new(), now_ms, delay_secs)
}

/// [`enqueue`], with message attributes (as `attributes::encode` writes them).
fn enqueue_with_attributes(
    tx: &mut dyn Tx,
    scope: &str,
    queue: &str,
    body: &str,
    attributes: String,
    now_ms: i64,
    delay_secs: i64,
) -> Result<String, AwsError> {
    let message_id = crate::ids::uuid();
    tx.enqueue(
        scope,
        &QueuedMessage {
            message_id: message_id.clone(),
            queue: queue.to_string(),
            body: body.to_string(),
            sent_ms: now_ms,
            visible_at_ms: now_ms + delay_secs * 1000,
            receive_count: 0,
            first_receive_ms: None,
            receipt: String::new(),
            attributes,
        },
    )?;
    tx.wake_waiters()?;
    Ok(message_id)
}

/// Where an engine task is, found by the queue it was sent to and its message id: there, or in
/// that queue's dead-letter queue after its receives ran out (a redrive moves it back with the
/// same id).
pub fn find_task(
    tx: &mut dyn Tx,
    scope: &str,
    queue: &str,
    message_id: &str,
) -> Result<Option<QueuedMessage>, AwsError> {
    if let Some(message) = tx.message(scope, queue, message_id)? {
        return Ok(Some(message));
    }
    match names::dead_letter_queue(queue) {
        Some(dlq) => Ok(tx.message(scope, &dlq, message_id)?),
        None => Ok(None),
    }
}

/// Where an engine task stands, as an operator looking for stuck work wants to know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskState {
    /// In its queue, never received.
    Waiting,
    /// In its queue, received this many times (an engine has it, or had it and let it go).
    Received(i64),
    /// Moved to the dead-letter queue after its receives ran out.
    DeadLettered,
    /// Not in either queue: an operator or a purge removed it.
    Gone,
}

impl TaskState {
    /// The state's name in `admin records` output.
    pub fn name(self) -> &'static str {
        match self {
            Self::Waiting => "WAITING",
            Self::Received(_) => "RECEIVED",
            Self::DeadLettered => "DEAD_LETTERED",
            Self::Gone => "GONE",
        }
    }
}

/// The state of the engine task `message_id` sent to `queue`.
pub fn task_state(
    tx: &mut dyn Tx,
    scope: &str,
    queue: &str,
    message_id: &str,
) -> Result<TaskState, AwsError> {
    Ok(match find_task(tx, scope, queue, message_id)? {
        None => TaskState::Gone,
        Some(m) if m.queue != queue => TaskState::DeadLettered,
        Some(m) if m.receive_count == 0 => TaskState::Waiting,
        Some(m) => TaskState::Received(m.receive_count),
    })
}

/// Removes an engine task wherever it is, its queue or that queue's dead-letter queue,
/// without asking whether it was still there: a message's id is unique, and a store whose
/// statements are round trips sends the removal with the next statement.
pub fn discard_task(
    tx: &mut dyn Tx,
    scope: &str,
    queue: &str,
    message_id: &str,
) -> Result<(), AwsError> {
    match names::dead_letter_queue(queue) {
        Some(dlq) => tx.discard_message(scope, &[queue, &dlq], message_id)?,
        None => tx.discard_message(scope, &[queue], message_id)?,
    }
    Ok(())
}

/// Takes up to `max` visible messages of `queue`, making each invisible for `visibility_ms` and
/// moving those received `MAX_RECEIVES` times to the dead-letter queue.
fn receive_once(
    tx: &mut dyn Tx,
    scope: &str,
    queue: &str,
    now_ms: i64,
    max: usize,
    visibility_ms: i64,
) -> Result<Vec<QueuedMessage>, AwsError> {
    let mut taken = Vec::new();
    // A message taken (or moved) in this call is never looked at again by it, even when it is
    // still visible (VisibilityTimeout 0): one receive hands a message out at most once.
    let mut handled: std::collections::HashSet<String> = std::collections::HashSet::new();
    // Each round either takes messages or moves them away, so this ends.
    loop {
        let want = max - taken.len();
        let candidates: Vec<QueuedMessage> = tx
            .claim_messages(scope, queue, now_ms, want + handled.len())?
            .into_iter()
            .filter(|m| !handled.contains(&m.message_id))
            .take(want)
            .collect();
        if candidates.is_empty() {
            return Ok(taken);
        }
        for mut m in candidates {
            handled.insert(m.message_id.clone());
            match names::dead_letter_queue(queue) {
                Some(dlq) if m.receive_count >= MAX_RECEIVES => {
                    m.queue = dlq;
                    m.visible_at_ms = now_ms;
                    m.receipt.clear();
                }
                _ => {
                    m.receive_count += 1;
                    m.first_receive_ms.get_or_insert(now_ms);
                    m.receipt = nonce();
                    m.visible_at_ms = now_ms + visibility_ms;
                    taken.push(m.clone());
                }
            }
            tx.update_message(scope, &m)?;
        }
        if taken.len() >= max {
            return Ok(taken);
        }
    }
}

fn wants(attributes: &[String], name: &str) -> bool {
    attributes.iter().any(|a| a == "All" || a == name)
}

impl sqs::Handler for EngineQueues {
    type Context = RequestContext;

    fn implements(&self, operation: Operation) -> bool {
        operations::facts(operation).is_some()
    }

    fn authorize(&self, _ctx: &RequestContext, _operation: Operation) -> Result<(), AwsError> {
        // Every served queue operation is open to any key of the account (`operations::TABLE`).
        Ok(())
    }

    fn start_message_move_task(
        &self,
        ctx: &RequestContext,
        input: sqs::StartMessageMoveTaskRequest,
    ) -> Result<sqs::StartMessageMoveTaskResult, AwsError> {
        redrive::start(ctx, input)
    }

    fn list_message_move_tasks(
        &self,
        ctx: &RequestContext,
        input: sqs::ListMessageMoveTasksRequest,
    ) -> Result<sqs::ListMessageMoveTasksResult, AwsError> {
        redrive::list(ctx, input)
    }

    fn cancel_message_move_task(
        &self,
        ctx: &RequestContext,
        input: sqs::CancelMessageMoveTaskRequest,
    ) -> Result<sqs::CancelMessageMoveTaskResult, AwsError> {
        redrive::cancel(ctx, input)
    }

    fn list_dead_letter_source_queues(
        &self,
        ctx: &RequestContext,
        input: sqs::ListDeadLetterSourceQueuesRequest,
    ) -> Result<sqs::ListDeadLetterSourceQueuesResult, AwsError> {
        redrive::sources(ctx, input)
    }

    fn get_queue_url(
        &self,
        ctx: &RequestContext,
        input: sqs::GetQueueUrlRequest,
    ) -> Result<sqs::GetQueueUrlResult, AwsError> {
        let name = input.queue_name.unwrap_or_default();
        let owner_ok = input
            .queue_owner_aws_account_id
            .as_deref()
            .is_none_or(|a| a == ctx.identity.account);
        if !owner_ok || !names::exists(&name) {
            return Err(no_such_queue());
        }
        Ok(sqs::GetQueueUrlResult {
            queue_url: Some(queue_url(ctx, &name)),
        })
    }

    fn list_queues(
        &self,
        ctx: &RequestContext,
        input: sqs::ListQueuesRequest,
    ) -> Result<sqs::ListQueuesResult, AwsError> {
        let prefix = input.queue_name_prefix.unwrap_or_default();
        let max = match input.max_results {
            None => None,
            Some(n) if (1..=1000).contains(&n) => Some(n as usize),
            Some(n) => return Err(invalid_parameter(format!("Value {n} for parameter MaxResults is invalid. Reason: must be between 1 and 1000."))),
        };
        let start = match input.next_token.as_deref() {
            None | Some("") => 0,
            Some(t) => crate::paging::position(t)
                .filter(|n| *n >= 0)
                .ok_or_else(|| invalid_parameter("Invalid NextToken value."))?
                as usize,
        };
        let matching: Vec<String> = names::all()
            .into_iter()
            .filter(|n| n.starts_with(&prefix))
            .collect();
        let end = max.map_or(matching.len(), |m| (start + m).min(matching.len()));
        let page: Vec<String> = matching
            .get(start..end)
            .unwrap_or_default()
            .iter()
            .map(|n| queue_url(ctx, n))
            .collect();
        let next_token =
            (max.is_some() && end < matching.len()).then(|| crate::paging::token_after(end as i64));
        Ok(sqs::ListQueuesResult {
            queue_urls: Some(page),
            next_token,
        })
    }

    fn get_queue_attributes(
        &self,
        ctx: &RequestContext,
        input: sqs::GetQueueAttributesRequest,
    ) -> Result<sqs::GetQueueAttributesResult, AwsError> {
        let queue = queue_of_url(ctx, input.queue_url.as_deref().unwrap_or_default())?;
        let wanted = input.attribute_names.unwrap_or_default();
        let scope = ctx.scope();
        let (visible, in_flight) = transact(ctx.store.as_ref(), Mode::Read, |tx| {
            tx.queue_counts(&scope, &queue, ctx.now_ms)
        })?;
        let arn =
            |name: &str| format!("arn:aws:sqs:{}:{}:{name}", ctx.region, ctx.identity.account);
        let mut all: Vec<(&str, String)> = vec![
            ("ApproximateNumberOfMessages", visible.to_string()),
            (
                "ApproximateNumberOfMessagesNotVisible",
                in_flight.to_string(),
            ),
            ("ApproximateNumberOfMessagesDelayed", "0".into()),
            ("VisibilityTimeout", DEFAULT_VISIBILITY_SECS.to_string()),
            ("MaximumMessageSize", MAX_BODY_BYTES.to_string()),
            ("MessageRetentionPeriod", "1209600".into()),
            ("ReceiveMessageWaitTimeSeconds", "0".into()),
            ("DelaySeconds", "0".into()),
            ("QueueArn", arn(&queue)),
        ];
        if let Some(dlq) = names::dead_letter_queue(&queue) {
            all.push((
                "RedrivePolicy",
                serde_json::json!({"deadLetterTargetArn": arn(&dlq), "maxReceiveCount": MAX_RECEIVES}).to_string(),
            ));
        }
        let known: HashSet<&str> = all.iter().map(|(k, _)| *k).collect();
        if let Some(unknown) = wanted.iter().find(|w| {
            w.as_str() != "All" && !known.contains(w.as_str()) && w.as_str() != "RedrivePolicy"
        }) {
            return Err(
                ErrorCode::InvalidAttributeName.with(format!("Unknown Attribute {unknown}."))
            );
        }
        let attributes: BTreeMap<String, String> = all
            .into_iter()
            .filter(|(k, _)| wants(&wanted, k))
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        Ok(sqs::GetQueueAttributesResult {
            attributes: (!attributes.is_empty()).then_some(attributes),
        })
    }

    fn receive_message(
        &self,
        ctx: &RequestContext,
        input: sqs::ReceiveMessageRequest,
    ) -> Result<sqs::ReceiveMessageResult, AwsError> {
        let queue = queue_of_url(ctx, input.queue_url.as_deref().unwrap_or_default())?;
        let max = i64::from(input.max_number_of_messages.unwrap_or(1));
        if !(1..=10).contains(&max) {
            return Err(invalid_parameter(format!(
                "Value {max} for parameter MaxNumberOfMessages is invalid. Reason: Must be between 1 and 10, if provided."
            )));
        }
        let visibility = i64::from(
            input
                .visibility_timeout
                .unwrap_or(DEFAULT_VISIBILITY_SECS as i32),
        );
        if !(0..=MAX_VISIBILITY_SECS).contains(&visibility) {
            return Err(invalid_parameter(format!(
                "Value {visibility} for parameter VisibilityTimeout is invalid. Reason: Must be between 0 and {MAX_VISIBILITY_SECS}."
            )));
        }
        let wait = i64::from(input.wait_time_seconds.unwrap_or(0));
        if !(0..=MAX_WAIT_SECS).contains(&wait) {
            return Err(invalid_parameter(format!(
                "Value {wait} for parameter WaitTimeSeconds is invalid. Reason: Must be >= 0 and <= {MAX_WAIT_SECS}, if provided."
            )));
        }
        let message_attribute_names = input.message_attribute_names.unwrap_or_default();
        let mut attribute_names = input.attribute_names.unwrap_or_default();
        attribute_names.extend(input.message_system_attribute_names.unwrap_or_default());
        let scope = ctx.scope();
        let deadline = ctx.now_ms + wait * 1000;
        let wakeups = ctx.store.wakeups();
        let taken = loop {
            let seen = wakeups.generation();
            let now = crate::time::now_ms().max(ctx.now_ms);
            let taken = transact(ctx.store.as_ref(), Mode::Write, |tx| {
                receive_once(tx, &scope, &queue, now, max as usize, visibility * 1000)
            })?;
            if !taken.is_empty() || now >= deadline || wakeups.is_closed() {
                break taken;
            }
            let next = transact(ctx.store.as_ref(), Mode::Read, |tx| {
                tx.next_visible_at(&scope, &queue, now)
            })?;
            let until = next.map_or(deadline, |n| n.min(deadline));
            wakeups.wait(seen, Duration::from_millis((until - now).max(1) as u64));
        };
        let messages = taken
            .into_iter()
            .map(|m| {
                let mut attributes = BTreeMap::new();
                let mut add = |name: &str, value: String| {
                    if wants(&attribute_names, name) {
                        attributes.insert(name.to_string(), value);
                    }
                };
                add("ApproximateReceiveCount", m.receive_count.to_string());
                add("SentTimestamp", m.sent_ms.to_string());
                add(
                    "ApproximateFirstReceiveTimestamp",
                    m.first_receive_ms.unwrap_or(m.sent_ms).to_string(),
                );
                add("SenderId", ctx.identity.account.clone());
                let chosen =
                    attributes::select(attributes::decode(&m.attributes), &message_attribute_names);
                sqs::Message {
                    md5_of_message_attributes: attributes::md5(&chosen),
                    message_attributes: (!chosen.is_empty()).then_some(chosen),
                    receipt_handle: Some(receipt_handle(&m.message_id, &m.receipt)),
                    md5_of_body: Some(md5_hex(&m.body)),
                    message_id: Some(m.message_id),
                    body: Some(m.body),
                    attributes: (!attributes.is_empty()).then_some(attributes),
                }
            })
            .collect();
        Ok(sqs::ReceiveMessageResult {
            messages: Some(messages),
        })
    }

    fn delete_message(
        &self,
        ctx: &RequestContext,
        input: sqs::DeleteMessageRequest,
    ) -> Result<(), AwsError> {
        let queue = queue_of_url(ctx, input.queue_url.as_deref().unwrap_or_default())?;
        let handle = input.receipt_handle.unwrap_or_default();
        let scope = ctx.scope();
        transact(ctx.store.as_ref(), Mode::Write, |tx| {
            if let Some(m) = message_for_handle(tx, &scope, &queue, &handle)? {
                tx.delete_message(&scope, &queue, &m.message_id)?;
            }
            Ok(())
        })
    }

    fn delete_message_batch(
        &self,
        ctx: &RequestContext,
        input: sqs::DeleteMessageBatchRequest,
    ) -> Result<sqs::DeleteMessageBatchResult, AwsError> {
        let (queue, entries) = batch(
            ctx,
            input.queue_url.as_deref(),
            input.entries,
            "DeleteMessageBatchRequestEntry",
            |e| e.id.as_deref(),
        )?;
        let scope = ctx.scope();
        transact(ctx.store.as_ref(), Mode::Write, |tx| {
            let mut result = sqs::DeleteMessageBatchResult {
                successful: Some(Vec::new()),
                failed: Some(Vec::new()),
            };
            for e in &entries {
                let handle = e.receipt_handle.as_deref().unwrap_or_default();
                match message_for_handle(tx, &scope, &queue, handle) {
                    Ok(found) => {
                        if let Some(m) = found {
                            tx.delete_message(&scope, &queue, &m.message_id)?;
                        }
                        result
                            .successful
                            .get_or_insert_with(Vec::new)
                            .push(sqs::DeleteMessageBatchResultEntry { id: e.id.clone() });
                    }
                    Err(err) => result
                        .failed
                        .get_or_insert_with(Vec::new)
                        .push(failed_entry(&e.id, err)),
                }
            }
            Ok(result)
        })
    }

    fn change_message_visibility(
        &self,
        ctx: &RequestContext,
        input: sqs::ChangeMessageVisibilityRequest,
    ) -> Result<(), AwsError> {
        let queue = queue_of_url(ctx, input.queue_url.as_deref().unwrap_or_default())?;
        let handle = input.receipt_handle.unwrap_or_default();
        let timeout = i64::from(input.visibility_timeout.unwrap_or(0));
        let scope = ctx.scope();
        transact(ctx.store.as_ref(), Mode::Write, |tx| {
            change_visibility(tx, &scope, &queue, &handle, timeout, ctx.now_ms)
        })?;
        Ok(())
    }

    fn send_message(
        &self,
        ctx: &RequestContext,
        input: sqs::SendMessageRequest,
    ) -> Result<sqs::SendMessageResult, AwsError> {
        let queue = queue_of_url(ctx, input.queue_url.as_deref().unwrap_or_default())?;
        let out = check_outgoing(
            input.message_body,
            input.message_attributes,
            input.delay_seconds,
        )?;
        let scope = ctx.scope();
        let id = transact(ctx.store.as_ref(), Mode::Write, |tx| {
            enqueue_with_attributes(
                tx,
                &scope,
                &queue,
                &out.body,
                out.attributes.clone(),
                ctx.now_ms,
                out.delay_secs,
            )
        })?;
        Ok(sqs::SendMessageResult {
            message_id: Some(id),
            md5_of_message_body: Some(md5_hex(&out.body)),
            md5_of_message_attributes: out.md5_of_attributes,
            ..Default::default()
        })
    }

    fn send_message_batch(
        &self,
        ctx: &RequestContext,
        input: sqs::SendMessageBatchRequest,
    ) -> Result<sqs::SendMessageBatchResult, AwsError> {
        let (queue, entries) = batch(
            ctx,
            input.queue_url.as_deref(),
            input.entries,
            "SendMessageBatchRequestEntry",
            |e| e.id.as_deref(),
        )?;
        let total: usize = entries
            .iter()
            .map(|e| e.message_body.as_deref().map_or(0, str::len))
            .sum();
        if total > MAX_BODY_BYTES {
            return Err(ErrorCode::BatchRequestTooLong.with(format!(
                "Batch requests cannot be longer than {MAX_BODY_BYTES} bytes. You have sent {total} bytes."
            )));
        }
        let checked: Vec<(Option<String>, Result<Outgoing, AwsError>)> = entries
            .into_iter()
            .map(|e| {
                (
                    e.id,
                    check_outgoing(e.message_body, e.message_attributes, e.delay_seconds),
                )
            })
            .collect();
        let scope = ctx.scope();
        let result = transact(ctx.store.as_ref(), Mode::Write, |tx| {
            let mut result = sqs::SendMessageBatchResult {
                successful: Some(Vec::new()),
                failed: Some(Vec::new()),
            };
            for (id, out) in &checked {
                match out {
                    Ok(out) => {
                        let message_id = enqueue_with_attributes(
                            tx,
                            &scope,
                            &queue,
                            &out.body,
                            out.attributes.clone(),
                            ctx.now_ms,
                            out.delay_secs,
                        )?;
                        result.successful.get_or_insert_with(Vec::new).push(
                            sqs::SendMessageBatchResultEntry {
                                id: id.clone(),
                                message_id: Some(message_id),
                                md5_of_message_body: Some(md5_hex(&out.body)),
                                md5_of_message_attributes: out.md5_of_attributes.clone(),
                                ..Default::default()
                            },
                        );
                    }
                    Err(err) => result
                        .failed
                        .get_or_insert_with(Vec::new)
                        .push(failed_entry(id, err.clone())),
                }
            }
            Ok::<_, AwsError>(result)
        })?;
        Ok(result)
    }

    fn change_message_visibility_batch(
        &self,
        ctx: &RequestContext,
        input: sqs::ChangeMessageVisibilityBatchRequest,
    ) -> Result<sqs::ChangeMessageVisibilityBatchResult, AwsError> {
        let (queue, entries) = batch(
            ctx,
            input.queue_url.as_deref(),
            input.entries,
            "ChangeMessageVisibilityBatchRequestEntry",
            |e| e.id.as_deref(),
        )?;
        let scope = ctx.scope();
        let result = transact(ctx.store.as_ref(), Mode::Write, |tx| {
            let mut result = sqs::ChangeMessageVisibilityBatchResult {
                successful: Some(Vec::new()),
                failed: Some(Vec::new()),
            };
            for e in &entries {
                let timeout = i64::from(e.visibility_timeout.unwrap_or(0));
                let handle = e.receipt_handle.as_deref().unwrap_or_default();
                match change_visibility(tx, &scope, &queue, handle, timeout, ctx.now_ms) {
                    Ok(()) => {
                        result.successful.get_or_insert_with(Vec::new).push(
                            sqs::ChangeMessageVisibilityBatchResultEntry { id: e.id.clone() },
                        );
                    }
                    Err(err) if err.status >= 500 => return Err(err),
                    Err(err) => result
                        .failed
                        .get_or_insert_with(Vec::new)
                        .push(failed_entry(&e.id, err)),
                }
            }
            Ok(result)
        })?;
        Ok(result)
    }

    fn purge_queue(
        &self,
        ctx: &RequestContext,
        input: sqs::PurgeQueueRequest,
    ) -> Result<(), AwsError> {
        let queue = queue_of_url(ctx, input.queue_url.as_deref().unwrap_or_default())?;
        let scope = ctx.scope();
        let purged = transact(ctx.store.as_ref(), Mode::Write, |tx| {
            Ok::<_, AwsError>(tx.purge_messages(&scope, &queue)?)
        })?;
        tracing::info!(%queue, purged, "queue purged");
        Ok(())
    }
}

/// How many engine tasks one work queue of a scope holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskCounts {
    /// The work queue.
    pub queue: String,
    /// Waiting to be received.
    pub visible: i64,
    /// Received and invisible.
    pub in_flight: i64,
    /// In the queue's dead-letter queue.
    pub dead_lettered: i64,
}

/// The engine tasks of every work queue of `scope` at `now_ms`, in `names::all` order.
pub fn task_counts(
    tx: &mut dyn Tx,
    scope: &str,
    now_ms: i64,
) -> Result<Vec<TaskCounts>, StoreError> {
    let mut counts = Vec::new();
    for queue in names::all() {
        let Some(dlq) = names::dead_letter_queue(&queue) else {
            continue;
        };
        let (visible, in_flight) = tx.queue_counts(scope, &queue, now_ms)?;
        let (dead_visible, dead_in_flight) = tx.queue_counts(scope, &dlq, now_ms)?;
        counts.push(TaskCounts {
            queue,
            visible,
            in_flight,
            dead_lettered: dead_visible + dead_in_flight,
        });
    }
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receipt_handles_round_trip_and_refuse_garbage() {
        let h = receipt_handle("id-1", "abc");
        assert_eq!(
            parse_receipt_handle(&h).unwrap(),
            ("id-1".to_string(), "abc".to_string())
        );
        assert_eq!(
            parse_receipt_handle("garbage!").unwrap_err().code,
            "ReceiptHandleIsInvalid"
        );
        assert_eq!(
            parse_receipt_handle(&B64.encode("no-colon"))
                .unwrap_err()
                .code,
            "ReceiptHandleIsInvalid"
        );
    }

    #[test]
    fn md5_of_body_is_the_hex_digest() {
        assert_eq!(md5_hex("hello"), "5d41402abc4b2a76b9719d911017c592");
    }
}
