//! Launch constraints: the IAM role an engine assumes to provision a product from a portfolio
//! (`{"RoleArn": "arn:aws:iam::<account>:role/<name>"}`). One per product and portfolio; the
//! product must already be in the portfolio. Only `LAUNCH` constraints are served.

use super::{portfolio, product};
use crate::context::RequestContext;
use crate::store::{self, transact, Kind, Mode, Tx};
use crate::{idempotency, paging};
use provisiond_model::servicecatalog::{self as sc, ErrorCode};
use provisiond_model::AwsError;
use serde::{Deserialize, Serialize};

/// A stored constraint.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Constraint {
    /// `cons-…`
    pub id: String,
    /// `LAUNCH`.
    pub constraint_type: String,
    /// Description.
    pub description: Option<String>,
    /// The account that owns it.
    pub owner: String,
    /// The product.
    pub product_id: String,
    /// The portfolio.
    pub portfolio_id: String,
    /// The launch role.
    pub role_arn: String,
}

impl Constraint {
    /// The constraint as `ConstraintDetail`.
    pub fn detail(&self) -> sc::ConstraintDetail {
        sc::ConstraintDetail {
            constraint_id: Some(self.id.clone()),
            r#type: Some(self.constraint_type.clone()),
            description: self.description.clone(),
            owner: Some(self.owner.clone()),
            product_id: Some(self.product_id.clone()),
            portfolio_id: Some(self.portfolio_id.clone()),
        }
    }

    /// The constraint as `ConstraintSummary`.
    pub fn summary(&self) -> sc::ConstraintSummary {
        sc::ConstraintSummary {
            r#type: Some(self.constraint_type.clone()),
            description: self.description.clone(),
        }
    }

    fn parameters(&self) -> String {
        serde_json::json!({ "RoleArn": self.role_arn }).to_string()
    }
}

fn invalid(message: impl Into<String>) -> AwsError {
    ErrorCode::InvalidParametersException.with(message)
}

/// The launch constraint of `product_id` in `portfolio_id`, if any.
pub fn launch_constraint(
    tx: &mut dyn Tx,
    scope: &str,
    portfolio_id: &str,
    product_id: &str,
) -> Result<Option<Constraint>, AwsError> {
    Ok(
        store::list_all::<Constraint>(tx, Kind::Constraint, scope, portfolio_id)?
            .into_iter()
            .find(|c| c.product_id == product_id && c.constraint_type == "LAUNCH"),
    )
}

/// Reads `{"RoleArn": …}` (or `{"LocalRoleName": …}`, which names a role of the caller's
/// account) into a role ARN of the caller's account.
fn role_arn(ctx: &RequestContext, parameters: &str) -> Result<String, AwsError> {
    let value: serde_json::Value = serde_json::from_str(parameters).map_err(|e| {
        invalid(format!(
            "Parameters must be a JSON object with RoleArn: {e}"
        ))
    })?;
    let account = &ctx.identity.account;
    if let Some(name) = value.get("LocalRoleName").and_then(|v| v.as_str()) {
        return Ok(format!("arn:aws:iam::{account}:role/{name}"));
    }
    let arn = value
        .get("RoleArn")
        .and_then(|v| v.as_str())
        .ok_or_else(|| {
            invalid("A LAUNCH constraint's Parameters must name a RoleArn or a LocalRoleName.")
        })?;
    let prefix = format!("arn:aws:iam::{account}:role/");
    match arn.strip_prefix(&prefix) {
        Some(name) if !name.is_empty() => Ok(arn.to_string()),
        _ => Err(invalid(format!(
            "RoleArn {arn} must be an IAM role of account {account} ({prefix}<name>)."
        ))),
    }
}

/// `CreateConstraint` (type `LAUNCH`).
pub fn create(
    ctx: &RequestContext,
    input: sc::CreateConstraintInput,
) -> Result<sc::CreateConstraintOutput, AwsError> {
    let constraint_type = input.r#type.clone().unwrap_or_default();
    if constraint_type != "LAUNCH" {
        return Err(invalid(format!("Constraint type {constraint_type} is not supported; provisiond serves LAUNCH constraints.")));
    }
    let role_arn = role_arn(ctx, input.parameters.as_deref().unwrap_or_default())?;
    let portfolio_id = input.portfolio_id.clone().unwrap_or_default();
    let product_id = input.product_id.clone().unwrap_or_default();
    let token = input.idempotency_token.clone().unwrap_or_default();
    let scope = ctx.scope();
    transact(ctx.store.as_ref(), Mode::Write, |tx| {
        idempotency::remember(tx, &scope, "CreateConstraint", &token, |tx| {
            portfolio::get(tx, &scope, &portfolio_id)?;
            product::get(tx, &scope, &product_id)?;
            if tx
                .get(
                    Kind::PortfolioProduct,
                    &scope,
                    &format!("{portfolio_id}/{product_id}"),
                )?
                .is_none()
            {
                return Err(invalid(format!(
                    "Product {product_id} is not in portfolio {portfolio_id}; associate it first."
                )));
            }
            if launch_constraint(tx, &scope, &portfolio_id, &product_id)?.is_some() {
                return Err(ErrorCode::DuplicateResourceException.with(format!(
                    "Product {product_id} already has a LAUNCH constraint in portfolio {portfolio_id}."
                )));
            }
            let constraint = Constraint {
                id: crate::ids::catalog_id("cons"),
                constraint_type: constraint_type.clone(),
                description: input.description.clone(),
                owner: ctx.identity.account.clone(),
                product_id: product_id.clone(),
                portfolio_id: portfolio_id.clone(),
                role_arn: role_arn.clone(),
            };
            store::insert(
                tx,
                Kind::Constraint,
                &scope,
                &constraint.id,
                &portfolio_id,
                &constraint,
            )?;
            Ok(sc::CreateConstraintOutput {
                constraint_detail: Some(constraint.detail()),
                constraint_parameters: Some(constraint.parameters()),
                status: Some(super::status::CREATED.into()),
            })
        })
    })
}

fn get(tx: &mut dyn Tx, scope: &str, id: &str) -> Result<Constraint, AwsError> {
    store::get(tx, Kind::Constraint, scope, id)?.ok_or_else(|| {
        ErrorCode::ResourceNotFoundException.with(format!("Constraint {id} not found."))
    })
}

/// `DescribeConstraint`.
pub fn describe(
    ctx: &RequestContext,
    input: sc::DescribeConstraintInput,
) -> Result<sc::DescribeConstraintOutput, AwsError> {
    let id = input.id.unwrap_or_default();
    let scope = ctx.scope();
    let c = transact(ctx.store.as_ref(), Mode::Read, |tx| get(tx, &scope, &id))?;
    Ok(sc::DescribeConstraintOutput {
        constraint_detail: Some(c.detail()),
        constraint_parameters: Some(c.parameters()),
        status: Some(super::status::CREATED.into()),
    })
}

/// `DeleteConstraint`.
pub fn delete(
    ctx: &RequestContext,
    input: sc::DeleteConstraintInput,
) -> Result<sc::DeleteConstraintOutput, AwsError> {
    let id = input.id.unwrap_or_default();
    let scope = ctx.scope();
    transact(ctx.store.as_ref(), Mode::Write, |tx| {
        get(tx, &scope, &id)?;
        tx.delete(Kind::Constraint, &scope, &id)?;
        Ok(sc::DeleteConstraintOutput {})
    })
}

/// `ListConstraintsForPortfolio`.
pub fn list_for_portfolio(
    ctx: &RequestContext,
    input: sc::ListConstraintsForPortfolioInput,
) -> Result<sc::ListConstraintsForPortfolioOutput, AwsError> {
    let portfolio_id = input.portfolio_id.unwrap_or_default();
    let after = paging::parse_token(input.page_token.as_deref())?;
    let size = paging::page_size(input.page_size, 20, 20);
    let scope = ctx.scope();
    let (page, next) = transact(ctx.store.as_ref(), Mode::Read, |tx| {
        portfolio::get(tx, &scope, &portfolio_id)?;
        let product_id = input.product_id.as_deref();
        Ok::<_, AwsError>(paging::scan_page(
            after,
            size,
            |from, limit| store::list(tx, Kind::Constraint, &scope, &portfolio_id, from, limit),
            |c: &Constraint| product_id.is_none_or(|p| c.product_id == p),
        )?)
    })?;
    Ok(sc::ListConstraintsForPortfolioOutput {
        constraint_details: Some(page.iter().map(Constraint::detail).collect()),
        next_page_token: next,
    })
}
