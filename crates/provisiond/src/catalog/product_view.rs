//! What an end user sees of products: those with a launch path open to them
//! (`DescribeProduct`, `SearchProducts`), never the others.

use super::launch_path;
use super::product::{
    artifacts, product_not_found, resolve, Product, ProductLink, ProductQuery, DEFAULT_PAGE_SIZE,
};
use crate::context::RequestContext;
use crate::paging;
use crate::store::{self, transact, Kind, Mode, Tx};
use provisiond_model::servicecatalog as sc;
use provisiond_model::{AwsError, Timestamp};
use std::collections::HashMap;

/// Every product with a launch path open to the caller, in creation order. Whether the caller
/// may use a portfolio is asked once per portfolio, however many products it holds.
fn launchable(
    tx: &mut dyn Tx,
    ctx: &RequestContext,
    scope: &str,
) -> Result<Vec<Product>, AwsError> {
    let mut open: HashMap<String, bool> = HashMap::new();
    let mut out = Vec::new();
    for product in store::list_all::<Product>(tx, Kind::Product, scope, "")? {
        let links = store::list_all::<ProductLink>(tx, Kind::ProductPortfolio, scope, &product.id)?;
        for link in links {
            let may = match open.get(&link.portfolio_id) {
                Some(may) => *may,
                None => {
                    let may = launch_path::open_to_caller(tx, ctx, scope, &link.portfolio_id)?;
                    open.insert(link.portfolio_id, may);
                    may
                }
            };
            if may {
                out.push(product);
                break;
            }
        }
    }
    Ok(out)
}

/// `DescribeProduct`: the end user's view of a product they may launch (active versions and
/// launch paths); a product with no path for the caller is not found.
pub fn describe(
    ctx: &RequestContext,
    input: sc::DescribeProductInput,
) -> Result<sc::DescribeProductOutput, AwsError> {
    let scope = ctx.scope();
    transact(ctx.store.as_ref(), Mode::Read, |tx| {
        let p = resolve(tx, &scope, input.id.as_deref(), input.name.as_deref())?;
        let paths = launch_path::paths(tx, ctx, &scope, &p.id)?;
        if paths.is_empty() {
            return Err(product_not_found(&p.id));
        }
        let versions = artifacts(tx, &scope, &p.id)?
            .into_iter()
            .filter(|a| a.active)
            .map(|a| sc::ProvisioningArtifact {
                id: Some(a.id.clone()),
                name: a.name.clone(),
                description: a.description.clone(),
                created_time: Some(Timestamp::from_millis(a.created_ms)),
                guidance: Some(a.guidance.clone()),
            })
            .collect();
        Ok(sc::DescribeProductOutput {
            product_view_summary: Some(p.summary()),
            provisioning_artifacts: Some(versions),
            budgets: Some(Vec::new()),
            launch_paths: Some(
                paths
                    .into_iter()
                    .map(|lp| sc::LaunchPath {
                        id: Some(lp.id),
                        name: Some(lp.portfolio.display_name),
                    })
                    .collect(),
            ),
        })
    })
}

/// `SearchProducts`: products the caller may launch, narrowed and ordered by [`ProductQuery`].
pub fn search(
    ctx: &RequestContext,
    input: sc::SearchProductsInput,
) -> Result<sc::SearchProductsOutput, AwsError> {
    let scope = ctx.scope();
    let after = paging::parse_token(input.page_token.as_deref())?.unwrap_or(-1);
    let size = paging::page_size(input.page_size, DEFAULT_PAGE_SIZE, 100);
    let query = ProductQuery::new(
        input.filters.as_ref(),
        input.sort_by.clone(),
        input.sort_order.as_deref(),
    );
    let found = transact(ctx.store.as_ref(), Mode::Read, |tx| {
        let launchable = launchable(tx, ctx, &scope)?;
        query.apply(tx, &scope, launchable)
    })?;
    let (page, next) = paging::page_in_memory(found, after, size);
    Ok(sc::SearchProductsOutput {
        product_view_summaries: Some(page.iter().map(Product::summary).collect()),
        product_view_aggregations: None,
        next_page_token: next,
    })
}
