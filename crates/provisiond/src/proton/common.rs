//! What every Proton module shares: ARNs, the errors Proton answers with, admin checks, paging
//! over `nextToken`/`maxResults`, and tags kept per resource ARN.

use crate::context::RequestContext;
use crate::paging;
use crate::store::{self, Kind, Tx};
use provisiond_model::proton::{self as pr, ErrorCode};
use provisiond_model::AwsError;

/// `arn:aws:proton:<region>:<account>:<resource>`.
pub fn arn(ctx: &RequestContext, resource: &str) -> String {
    format!(
        "arn:aws:proton:{}:{}:{resource}",
        ctx.region, ctx.identity.account
    )
}

/// `ResourceNotFoundException` naming what was looked for.
pub fn not_found(what: &str, name: &str) -> AwsError {
    ErrorCode::ResourceNotFoundException.with(format!("The {what} {name} was not found."))
}

/// `ConflictException`.
pub fn conflict(message: impl Into<String>) -> AwsError {
    ErrorCode::ConflictException.with(message)
}

/// `ValidationException` for semantic checks (Proton has no InvalidParameters error).
pub fn invalid(message: impl Into<String>) -> AwsError {
    ErrorCode::ValidationException.with(message)
}

/// Refuses callers who do not administer the account: templates, repositories and
/// environments are the platform team's [ours].
pub fn require_admin(ctx: &RequestContext, operation: pr::Operation) -> Result<(), AwsError> {
    if ctx.identity.admin {
        return Ok(());
    }
    Err(ErrorCode::AccessDeniedException.with(format!(
        "User: {} is not authorized to perform: proton:{} because only the account's administrators may",
        ctx.identity.principal,
        operation.name()
    )))
}

/// The position a Proton list call's `nextToken` continues from; `None` for the first page.
/// A token this server did not issue is a `ValidationException`.
pub fn parse_next_token(next_token: Option<&str>) -> Result<Option<i64>, AwsError> {
    match next_token {
        None => Ok(None),
        Some(token) => paging::position(token)
            .map(Some)
            .ok_or_else(|| invalid(format!("The nextToken {token} is not valid."))),
    }
}

/// A Proton list call's page size: `maxResults` (1–100), default 100.
pub fn page_size(max_results: Option<i32>) -> usize {
    paging::page_size(max_results, 100, 100)
}

/// One page of `items` for a Proton list call: `maxResults` (1–100, default 100) after the
/// position in `nextToken`. A token this server did not issue is a `ValidationException`.
pub fn page<T>(
    items: Vec<T>,
    next_token: Option<&str>,
    max_results: Option<i32>,
) -> Result<(Vec<T>, Option<String>), AwsError> {
    let after = parse_next_token(next_token)?.unwrap_or(-1);
    Ok(paging::page_in_memory(items, after, page_size(max_results)))
}

/// Stores the tags given at creation of the resource `arn`.
pub fn create_tags(
    tx: &mut dyn Tx,
    scope: &str,
    arn: &str,
    tags: Option<&Vec<pr::Tag>>,
) -> Result<(), AwsError> {
    let tags: Vec<(String, String)> = tags
        .map(|t| {
            t.iter()
                .map(|tag| {
                    (
                        tag.key.clone().unwrap_or_default(),
                        tag.value.clone().unwrap_or_default(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    store::put(tx, Kind::ProtonTags, scope, arn, "", &tags)?;
    Ok(())
}

/// Removes the tags of a deleted resource.
pub fn delete_tags(tx: &mut dyn Tx, scope: &str, arn: &str) -> Result<(), AwsError> {
    tx.delete(Kind::ProtonTags, scope, arn)?;
    Ok(())
}

/// `TagResource`, `UntagResource`, `ListTagsForResource`: tags of any Proton resource this
/// account has, by ARN; another account's or an unknown ARN is not found.
pub mod tags {
    use super::*;
    use crate::store::{transact, Mode};

    fn load(
        tx: &mut dyn Tx,
        ctx: &RequestContext,
        arn: &str,
    ) -> Result<Vec<(String, String)>, AwsError> {
        store::get::<Vec<(String, String)>>(tx, Kind::ProtonTags, &ctx.scope(), arn)?
            .ok_or_else(|| not_found("resource", arn))
    }

    /// `TagResource`: adds or replaces tags (at most 50 on a resource).
    pub fn tag(
        ctx: &RequestContext,
        input: pr::TagResourceInput,
    ) -> Result<pr::TagResourceOutput, AwsError> {
        let arn = input.resource_arn.unwrap_or_default();
        transact(ctx.store.as_ref(), Mode::Write, |tx| {
            let mut tags = load(tx, ctx, &arn)?;
            for tag in input.tags.iter().flatten() {
                let key = tag.key.clone().unwrap_or_default();
                let value = tag.value.clone().unwrap_or_default();
                match tags.iter_mut().find(|(k, _)| *k == key) {
                    Some(existing) => existing.1 = value,
                    None => tags.push((key, value)),
                }
            }
            if tags.len() > 50 {
                return Err(ErrorCode::ServiceQuotaExceededException.with(format!(
                    "{arn} would have {} tags; the limit is 50.",
                    tags.len()
                )));
            }
            store::put(tx, Kind::ProtonTags, &ctx.scope(), &arn, "", &tags)?;
            Ok(pr::TagResourceOutput {})
        })
    }

    /// `UntagResource`.
    pub fn untag(
        ctx: &RequestContext,
        input: pr::UntagResourceInput,
    ) -> Result<pr::UntagResourceOutput, AwsError> {
        let arn = input.resource_arn.unwrap_or_default();
        let keys = input.tag_keys.unwrap_or_default();
        transact(ctx.store.as_ref(), Mode::Write, |tx| {
            let mut tags = load(tx, ctx, &arn)?;
            tags.retain(|(k, _)| !keys.contains(k));
            store::put(tx, Kind::ProtonTags, &ctx.scope(), &arn, "", &tags)?;
            Ok(pr::UntagResourceOutput {})
        })
    }

    /// `ListTagsForResource`, in the order the tags were added.
    pub fn list(
        ctx: &RequestContext,
        input: pr::ListTagsForResourceInput,
    ) -> Result<pr::ListTagsForResourceOutput, AwsError> {
        let arn = input.resource_arn.unwrap_or_default();
        let tags = transact(ctx.store.as_ref(), Mode::Read, |tx| load(tx, ctx, &arn))?;
        let wire: Vec<pr::Tag> = tags
            .into_iter()
            .map(|(k, v)| pr::Tag {
                key: Some(k),
                value: Some(v),
            })
            .collect();
        let (page, next) = page(wire, input.next_token.as_deref(), input.max_results)?;
        Ok(pr::ListTagsForResourceOutput {
            tags: Some(page),
            next_token: next,
        })
    }
}
