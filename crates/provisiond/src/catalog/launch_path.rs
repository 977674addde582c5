//! Launch paths: the portfolios through which the caller may provision a product. A path
//! exists for each portfolio that holds the product and has the caller's principal associated
//! (by ARN or pattern). Its id is `lpv3-` + the portfolio id's 13 characters, so it names the
//! portfolio stably. `resolve` picks the path of a provisioning call (the only one when
//! `PathId` is omitted).

use super::constraint::{self, Constraint};
use super::{portfolio, principal, product};
use crate::context::RequestContext;
use crate::paging;
use crate::store::{self, transact, Kind, Mode, Tx};
use provisiond_model::servicecatalog::{self as sc, ErrorCode};
use provisiond_model::AwsError;

/// A launch path the caller may use.
#[derive(Debug, Clone)]
pub struct LaunchPath {
    /// `lpv3-…`
    pub id: String,
    /// The portfolio behind it.
    pub portfolio: portfolio::Portfolio,
    /// Its launch constraint, if any.
    pub launch: Option<Constraint>,
}

/// The path id of a portfolio.
pub fn path_id(portfolio_id: &str) -> String {
    format!("lpv3-{}", portfolio_id.trim_start_matches("port-"))
}

/// Every launch path of `product_id` open to the caller, in the order the product joined the
/// portfolios.
pub fn paths(
    tx: &mut dyn Tx,
    ctx: &RequestContext,
    scope: &str,
    product_id: &str,
) -> Result<Vec<LaunchPath>, AwsError> {
    product::get(tx, scope, product_id)?;
    let links =
        store::list_all::<product::ProductLink>(tx, Kind::ProductPortfolio, scope, product_id)?;
    let mut out = Vec::new();
    for link in links {
        if !open_to_caller(tx, ctx, scope, &link.portfolio_id)? {
            continue;
        }
        out.push(LaunchPath {
            id: path_id(&link.portfolio_id),
            portfolio: portfolio::get(tx, scope, &link.portfolio_id)?,
            launch: constraint::launch_constraint(tx, scope, &link.portfolio_id, product_id)?,
        });
    }
    Ok(out)
}

/// Whether the caller's principal is associated with the portfolio (by ARN or pattern).
pub fn open_to_caller(
    tx: &mut dyn Tx,
    ctx: &RequestContext,
    scope: &str,
    portfolio_id: &str,
) -> Result<bool, AwsError> {
    Ok(principal::of_portfolio(tx, scope, portfolio_id)?
        .iter()
        .any(|a| a.matches(&ctx.identity.principal)))
}

/// The path a provisioning call uses: `path_id` if given (and open to the caller), else the only
/// path there is.
pub fn resolve(
    tx: &mut dyn Tx,
    ctx: &RequestContext,
    scope: &str,
    product_id: &str,
    path_id: Option<&str>,
    path_name: Option<&str>,
) -> Result<LaunchPath, AwsError> {
    let paths = paths(tx, ctx, scope, product_id)?;
    let chosen = match (path_id, path_name) {
        (Some(id), _) => paths.into_iter().find(|p| p.id == id),
        (None, Some(name)) => paths.into_iter().find(|p| p.portfolio.display_name == name),
        (None, None) => {
            if paths.len() > 1 {
                return Err(ErrorCode::InvalidParametersException.with(format!(
                    "Product {product_id} has {} launch paths for you; give PathId.",
                    paths.len()
                )));
            }
            paths.into_iter().next()
        }
    };
    chosen.ok_or_else(|| {
        ErrorCode::ResourceNotFoundException.with(format!(
            "No launch path of product {product_id} is open to {}.",
            ctx.identity.principal
        ))
    })
}

/// `ListLaunchPaths`.
pub fn list(
    ctx: &RequestContext,
    input: sc::ListLaunchPathsInput,
) -> Result<sc::ListLaunchPathsOutput, AwsError> {
    let product_id = input.product_id.unwrap_or_default();
    let after = paging::parse_token(input.page_token.as_deref())?.unwrap_or(-1);
    let size = paging::page_size(input.page_size, 20, 20);
    let scope = ctx.scope();
    let all = transact(ctx.store.as_ref(), Mode::Read, |tx| {
        paths(tx, ctx, &scope, &product_id)
    })?;
    let (page, next) = paging::page_in_memory(all, after, size);
    Ok(sc::ListLaunchPathsOutput {
        launch_path_summaries: Some(
            page.into_iter()
                .map(|p| sc::LaunchPathSummary {
                    id: Some(p.id),
                    constraint_summaries: Some(p.launch.iter().map(Constraint::summary).collect()),
                    tags: Some(Vec::new()),
                    name: Some(p.portfolio.display_name),
                })
                .collect(),
        ),
        next_page_token: next,
    })
}

/// `DescribeProvisioningParameters`: the version's parameters along the chosen path.
pub fn describe_parameters(
    ctx: &RequestContext,
    input: sc::DescribeProvisioningParametersInput,
) -> Result<sc::DescribeProvisioningParametersOutput, AwsError> {
    let scope = ctx.scope();
    transact(ctx.store.as_ref(), Mode::Read, |tx| {
        let lookup = product::VersionLookup {
            product: product::Named::of(input.product_id.clone(), input.product_name.clone()),
            version: product::Named::of(
                input.provisioning_artifact_id.clone(),
                input.provisioning_artifact_name.clone(),
            ),
        };
        let (prod, artifact) = product::resolve_version(tx, &scope, &lookup)?;
        let path = resolve(
            tx,
            ctx,
            &scope,
            &prod.id,
            input.path_id.as_deref(),
            input.path_name.as_deref(),
        )?;
        Ok(sc::DescribeProvisioningParametersOutput {
            provisioning_artifact_parameters: Some(artifact.parameters()),
            constraint_summaries: Some(path.launch.iter().map(Constraint::summary).collect()),
            usage_instructions: Some(Vec::new()),
            tag_options: Some(Vec::new()),
            provisioning_artifact_preferences: None,
            provisioning_artifact_outputs: None,
            provisioning_artifact_output_keys: None,
        })
    })
}
