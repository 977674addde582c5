//! Products in portfolios: `AssociateProductWithPortfolio` (idempotent), its undoing (refused
//! while a launch constraint ties the product to the portfolio) and `ListPortfoliosForProduct`.
//! Each link is kept twice, by portfolio and by product, in one transaction.

use super::product::{get, ProductLink, DEFAULT_PAGE_SIZE};
use super::{constraint, portfolio};
use crate::context::RequestContext;
use crate::paging;
use crate::store::{self, transact, Kind, Mode};
use provisiond_model::servicecatalog::{self as sc, ErrorCode};
use provisiond_model::AwsError;

/// `AssociateProductWithPortfolio` (idempotent).
pub fn associate(
    ctx: &RequestContext,
    input: sc::AssociateProductWithPortfolioInput,
) -> Result<sc::AssociateProductWithPortfolioOutput, AwsError> {
    let link = ProductLink {
        portfolio_id: input.portfolio_id.unwrap_or_default(),
        product_id: input.product_id.unwrap_or_default(),
    };
    let scope = ctx.scope();
    transact(ctx.store.as_ref(), Mode::Write, |tx| {
        portfolio::get(tx, &scope, &link.portfolio_id)?;
        get(tx, &scope, &link.product_id)?;
        let forward = format!("{}/{}", link.portfolio_id, link.product_id);
        let backward = format!("{}/{}", link.product_id, link.portfolio_id);
        store::insert(
            tx,
            Kind::PortfolioProduct,
            &scope,
            &forward,
            &link.portfolio_id,
            &link,
        )?;
        store::insert(
            tx,
            Kind::ProductPortfolio,
            &scope,
            &backward,
            &link.product_id,
            &link,
        )?;
        Ok(sc::AssociateProductWithPortfolioOutput {})
    })
}

/// `DisassociateProductFromPortfolio`.
pub fn disassociate(
    ctx: &RequestContext,
    input: sc::DisassociateProductFromPortfolioInput,
) -> Result<sc::DisassociateProductFromPortfolioOutput, AwsError> {
    let portfolio_id = input.portfolio_id.unwrap_or_default();
    let product_id = input.product_id.unwrap_or_default();
    let scope = ctx.scope();
    transact(ctx.store.as_ref(), Mode::Write, |tx| {
        if constraint::launch_constraint(tx, &scope, &portfolio_id, &product_id)?.is_some() {
            return Err(ErrorCode::ResourceInUseException.with(format!(
                "Product {product_id} has a launch constraint in portfolio {portfolio_id}; delete it first."
            )));
        }
        let forward = tx.delete(
            Kind::PortfolioProduct,
            &scope,
            &format!("{portfolio_id}/{product_id}"),
        )?;
        tx.delete(
            Kind::ProductPortfolio,
            &scope,
            &format!("{product_id}/{portfolio_id}"),
        )?;
        if forward {
            Ok(sc::DisassociateProductFromPortfolioOutput {})
        } else {
            Err(ErrorCode::ResourceNotFoundException.with(format!(
                "Product {product_id} is not associated with portfolio {portfolio_id}."
            )))
        }
    })
}

/// `ListPortfoliosForProduct`.
pub fn list_portfolios(
    ctx: &RequestContext,
    input: sc::ListPortfoliosForProductInput,
) -> Result<sc::ListPortfoliosForProductOutput, AwsError> {
    let product_id = input.product_id.unwrap_or_default();
    let after = paging::parse_token(input.page_token.as_deref())?;
    let size = paging::page_size(input.page_size, DEFAULT_PAGE_SIZE, 100);
    let scope = ctx.scope();
    let (page, next) = transact(ctx.store.as_ref(), Mode::Read, |tx| {
        get(tx, &scope, &product_id)?;
        let links = store::list::<ProductLink>(
            tx,
            Kind::ProductPortfolio,
            &scope,
            &product_id,
            after,
            size + 1,
        )?;
        let mut rows = Vec::new();
        for (seq, link) in links {
            rows.push((seq, portfolio::get(tx, &scope, &link.portfolio_id)?));
        }
        Ok::<_, AwsError>(paging::split_page(rows, size))
    })?;
    Ok(sc::ListPortfoliosForProductOutput {
        portfolio_details: Some(page.iter().map(portfolio::Portfolio::detail).collect()),
        next_page_token: next,
    })
}
