//! Portfolios: create (idempotent on `IdempotencyToken`), describe, update (fields and tags),
//! delete and list with paging. Ids are `port-` + 13 lowercase alphanumerics; the ARN is
//! `arn:aws:catalog:<region>:<account>:portfolio/<id>`. Writes are for the account's admins.

use crate::context::RequestContext;
use crate::store::{self, transact, Kind, Mode};
use crate::{idempotency, paging};
use provisiond_model::servicecatalog::{self as sc, ErrorCode};
use provisiond_model::{AwsError, Timestamp};
use serde::{Deserialize, Serialize};

/// Most tags a portfolio may carry.
pub const MAX_TAGS: usize = 50;

/// A stored portfolio.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Portfolio {
    /// `port-…`
    pub id: String,
    /// `arn:aws:catalog:…:portfolio/<id>`
    pub arn: String,
    /// The name shown to users.
    pub display_name: String,
    /// Free text.
    pub description: Option<String>,
    /// Who provides the portfolio.
    pub provider_name: String,
    /// Creation time, epoch milliseconds.
    pub created_ms: i64,
    /// Tags in the order they were added.
    pub tags: Vec<(String, String)>,
}

impl Portfolio {
    /// The portfolio as `PortfolioDetail`.
    pub fn detail(&self) -> sc::PortfolioDetail {
        sc::PortfolioDetail {
            id: Some(self.id.clone()),
            arn: Some(self.arn.clone()),
            display_name: Some(self.display_name.clone()),
            description: self.description.clone(),
            created_time: Some(Timestamp::from_millis(self.created_ms)),
            provider_name: Some(self.provider_name.clone()),
        }
    }

    fn wire_tags(&self) -> Vec<sc::Tag> {
        super::wire_tags(&self.tags)
    }
}

/// The portfolio `id` of `scope`, or `ResourceNotFoundException`.
pub fn get(tx: &mut dyn crate::store::Tx, scope: &str, id: &str) -> Result<Portfolio, AwsError> {
    store::get(tx, Kind::Portfolio, scope, id)?.ok_or_else(|| not_found(id))
}

fn not_found(id: &str) -> AwsError {
    ErrorCode::ResourceNotFoundException.with(format!("Portfolio {id} not found."))
}

/// Adds `tags` (replacing the value of a key already present), refusing duplicates in one
/// request and more than `MAX_TAGS` in all.
fn add_tags(existing: &mut Vec<(String, String)>, tags: &[sc::Tag]) -> Result<(), AwsError> {
    let mut seen = std::collections::HashSet::new();
    for tag in tags {
        let key = tag.key.clone().unwrap_or_default();
        if !seen.insert(key.clone()) {
            return Err(ErrorCode::InvalidParametersException
                .with(format!("Tag key {key} is given more than once.")));
        }
        let value = tag.value.clone().unwrap_or_default();
        match existing.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => existing.push((key, value)),
        }
    }
    if existing.len() > MAX_TAGS {
        return Err(ErrorCode::LimitExceededException
            .with(format!("A portfolio may have at most {MAX_TAGS} tags.")));
    }
    Ok(())
}

/// `CreatePortfolio`.
pub fn create(
    ctx: &RequestContext,
    input: sc::CreatePortfolioInput,
) -> Result<sc::CreatePortfolioOutput, AwsError> {
    let scope = ctx.scope();
    let token = input.idempotency_token.clone().unwrap_or_default();
    transact(ctx.store.as_ref(), Mode::Write, |tx| {
        idempotency::remember(tx, &scope, "CreatePortfolio", &token, |tx| {
            let id = crate::ids::catalog_id("port");
            let mut portfolio = Portfolio {
                arn: format!(
                    "arn:aws:catalog:{}:{}:portfolio/{id}",
                    ctx.region, ctx.identity.account
                ),
                id: id.clone(),
                display_name: input.display_name.clone().unwrap_or_default(),
                description: input.description.clone(),
                provider_name: input.provider_name.clone().unwrap_or_default(),
                created_ms: ctx.now_ms,
                tags: Vec::new(),
            };
            add_tags(
                &mut portfolio.tags,
                input.tags.as_deref().unwrap_or_default(),
            )?;
            store::insert(tx, Kind::Portfolio, &scope, &id, "", &portfolio)?;
            Ok(sc::CreatePortfolioOutput {
                portfolio_detail: Some(portfolio.detail()),
                tags: Some(portfolio.wire_tags()),
            })
        })
    })
}

/// `DescribePortfolio`.
pub fn describe(
    ctx: &RequestContext,
    input: sc::DescribePortfolioInput,
) -> Result<sc::DescribePortfolioOutput, AwsError> {
    let id = input.id.unwrap_or_default();
    let scope = ctx.scope();
    let portfolio: Portfolio = transact(ctx.store.as_ref(), Mode::Read, |tx| {
        store::get(tx, Kind::Portfolio, &scope, &id)
    })?
    .ok_or_else(|| not_found(&id))?;
    Ok(sc::DescribePortfolioOutput {
        portfolio_detail: Some(portfolio.detail()),
        tags: Some(portfolio.wire_tags()),
        tag_options: Some(Vec::new()),
        budgets: Some(Vec::new()),
    })
}

/// `UpdatePortfolio`.
pub fn update(
    ctx: &RequestContext,
    input: sc::UpdatePortfolioInput,
) -> Result<sc::UpdatePortfolioOutput, AwsError> {
    let id = input.id.clone().unwrap_or_default();
    let scope = ctx.scope();
    transact(ctx.store.as_ref(), Mode::Write, |tx| {
        let mut portfolio: Portfolio =
            store::get(tx, Kind::Portfolio, &scope, &id)?.ok_or_else(|| not_found(&id))?;
        if let Some(name) = &input.display_name {
            portfolio.display_name = name.clone();
        }
        if let Some(description) = &input.description {
            portfolio.description = Some(description.clone());
        }
        if let Some(provider) = &input.provider_name {
            portfolio.provider_name = provider.clone();
        }
        let remove = input.remove_tags.as_deref().unwrap_or_default();
        portfolio.tags.retain(|(k, _)| !remove.contains(k));
        add_tags(
            &mut portfolio.tags,
            input.add_tags.as_deref().unwrap_or_default(),
        )?;
        store::put(tx, Kind::Portfolio, &scope, &id, "", &portfolio)?;
        Ok(sc::UpdatePortfolioOutput {
            portfolio_detail: Some(portfolio.detail()),
            tags: Some(portfolio.wire_tags()),
        })
    })
}

/// `DeletePortfolio`.
pub fn delete(
    ctx: &RequestContext,
    input: sc::DeletePortfolioInput,
) -> Result<sc::DeletePortfolioOutput, AwsError> {
    let id = input.id.unwrap_or_default();
    let scope = ctx.scope();
    transact(ctx.store.as_ref(), Mode::Write, |tx| {
        get(tx, &scope, &id)?;
        if !tx
            .list(Kind::PortfolioPrincipal, &scope, &id, None, 1)?
            .is_empty()
        {
            return Err(ErrorCode::ResourceInUseException.with(format!(
                "Portfolio {id} has associated principals; disassociate them first."
            )));
        }
        if !tx
            .list(Kind::PortfolioProduct, &scope, &id, None, 1)?
            .is_empty()
        {
            return Err(ErrorCode::ResourceInUseException.with(format!(
                "Portfolio {id} has associated products; disassociate them first."
            )));
        }
        if !tx.list(Kind::Constraint, &scope, &id, None, 1)?.is_empty() {
            return Err(ErrorCode::ResourceInUseException.with(format!(
                "Portfolio {id} has constraints; delete them first."
            )));
        }
        tx.delete(Kind::Portfolio, &scope, &id)?;
        Ok(sc::DeletePortfolioOutput {})
    })
}

/// Portfolios per page when the caller does not say.
pub const DEFAULT_PAGE_SIZE: usize = 20;

/// `ListPortfolios`.
pub fn list(
    ctx: &RequestContext,
    input: sc::ListPortfoliosInput,
) -> Result<sc::ListPortfoliosOutput, AwsError> {
    let after = paging::parse_token(input.page_token.as_deref())?;
    let size = paging::page_size(input.page_size, DEFAULT_PAGE_SIZE, 100);
    let scope = ctx.scope();
    let rows: Vec<(i64, Portfolio)> = transact(ctx.store.as_ref(), Mode::Read, |tx| {
        store::list(tx, Kind::Portfolio, &scope, "", after, size + 1)
    })?;
    let (page, next) = paging::split_page(rows, size);
    Ok(sc::ListPortfoliosOutput {
        portfolio_details: Some(page.iter().map(Portfolio::detail).collect()),
        next_page_token: next,
    })
}
