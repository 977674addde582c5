//! The portfolios page: what is published. For an admin key, each portfolio with its products,
//! their versions and the principals who may launch them (`ListPortfolios`,
//! `SearchProductsAsAdmin`, `ListProvisioningArtifacts`, `ListPrincipalsForPortfolio`); for
//! any other key, the products it may launch and their versions (`SearchProducts`,
//! `DescribeProduct`).

use super::html::{self, badge, Text, Viewer};
use super::page::Reply;
use crate::catalog::{portfolio, principal, product, product_view};
use crate::context::RequestContext;
use provisiond_model::servicecatalog as sc;
use provisiond_model::AwsError;
use std::fmt::Write;

/// Items of each list the page reads at most.
const LISTED: i32 = 100;

/// A product as the page shows it.
pub struct Published {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its type (`TERRAFORM_OPEN_SOURCE`, …).
    pub product_type: String,
    /// Its owner.
    pub owner: String,
    /// Its short description.
    pub description: String,
    /// Its versions: (id, name, description, active).
    pub versions: Vec<(String, String, String, bool)>,
}

/// A portfolio as an admin key sees it.
pub struct PortfolioView {
    /// Its id.
    pub id: String,
    /// Its display name.
    pub name: String,
    /// Its provider.
    pub provider: String,
    /// Its description.
    pub description: String,
    /// Who may launch its products: (principal ARN or pattern, type).
    pub principals: Vec<(String, String)>,
    /// Its products.
    pub products: Vec<Published>,
}

/// What the page shows.
pub enum Catalog {
    /// An admin key's view: every portfolio.
    Admin(Vec<PortfolioView>),
    /// Another key's view: what it may launch.
    Launchable(Vec<Published>),
}

/// A version as the page lists it: (id, name, description, active).
fn version(
    id: Option<String>,
    name: Option<String>,
    description: Option<String>,
    active: Option<bool>,
) -> (String, String, String, bool) {
    (
        id.unwrap_or_default(),
        name.unwrap_or_default(),
        description.unwrap_or_default(),
        active.unwrap_or(true),
    )
}

fn published(
    ctx: &RequestContext,
    summary: sc::ProductViewSummary,
    admin: bool,
) -> Result<Published, AwsError> {
    let id = summary.product_id.clone().unwrap_or_default();
    let versions = if admin {
        product::list_artifacts(
            ctx,
            sc::ListProvisioningArtifactsInput {
                product_id: Some(id.clone()),
                ..Default::default()
            },
        )?
        .provisioning_artifact_details
        .unwrap_or_default()
        .into_iter()
        .map(|a| version(a.id, a.name, a.description, a.active))
        .collect()
    } else {
        product_view::describe(
            ctx,
            sc::DescribeProductInput {
                id: Some(id.clone()),
                ..Default::default()
            },
        )?
        .provisioning_artifacts
        .unwrap_or_default()
        .into_iter()
        .map(|a| version(a.id, a.name, a.description, None))
        .collect()
    };
    Ok(Published {
        id,
        name: summary.name.unwrap_or_default(),
        product_type: summary.r#type.unwrap_or_default(),
        owner: summary.owner.unwrap_or_default(),
        description: summary.short_description.unwrap_or_default(),
        versions,
    })
}

/// Reads the page for `ctx`'s key.
pub fn gather(ctx: &RequestContext) -> Result<Catalog, AwsError> {
    if !ctx.identity.admin {
        let summaries = product_view::search(
            ctx,
            sc::SearchProductsInput {
                page_size: Some(LISTED),
                ..Default::default()
            },
        )?
        .product_view_summaries
        .unwrap_or_default();
        let products = summaries
            .into_iter()
            .map(|s| published(ctx, s, false))
            .collect::<Result<_, _>>()?;
        return Ok(Catalog::Launchable(products));
    }
    let portfolios = portfolio::list(
        ctx,
        sc::ListPortfoliosInput {
            page_size: Some(LISTED),
            ..Default::default()
        },
    )?
    .portfolio_details
    .unwrap_or_default();
    let mut views = Vec::new();
    for p in portfolios {
        let id = p.id.unwrap_or_default();
        let principals = principal::list(
            ctx,
            sc::ListPrincipalsForPortfolioInput {
                portfolio_id: Some(id.clone()),
                page_size: Some(LISTED),
                ..Default::default()
            },
        )?
        .principals
        .unwrap_or_default()
        .into_iter()
        .map(|p| {
            (
                p.principal_arn.unwrap_or_default(),
                p.principal_type.unwrap_or_default(),
            )
        })
        .collect();
        let products = product::search_as_admin(
            ctx,
            sc::SearchProductsAsAdminInput {
                portfolio_id: Some(id.clone()),
                page_size: Some(LISTED),
                ..Default::default()
            },
        )?
        .product_view_details
        .unwrap_or_default()
        .into_iter()
        .filter_map(|d| d.product_view_summary)
        .map(|s| published(ctx, s, true))
        .collect::<Result<_, _>>()?;
        views.push(PortfolioView {
            id,
            name: p.display_name.unwrap_or_default(),
            provider: p.provider_name.unwrap_or_default(),
            description: p.description.unwrap_or_default(),
            principals,
            products,
        });
    }
    Ok(Catalog::Admin(views))
}

/// The portfolios page.
pub fn page(ctx: &RequestContext, viewer: &Viewer<'_>) -> Result<Reply, AwsError> {
    let catalog = gather(ctx)?;
    Ok(Reply::html(
        200,
        html::page(
            "Portfolios and products",
            Some(viewer),
            "/console/portfolios",
            &render(&catalog),
        ),
    ))
}

fn products_table(out: &mut String, products: &[Published]) {
    if products.is_empty() {
        out.push_str("<p class=\"muted\">No products.</p>");
        return;
    }
    out.push_str(
        "<div class=\"table\"><table class=\"products\"><thead><tr><th>Product</th><th>Type</th>\
         <th>Owner</th><th>Description</th><th>Versions</th></tr></thead><tbody>",
    );
    for p in products {
        let mut versions = String::new();
        for (id, name, description, active) in &p.versions {
            let _ = write!(
                versions,
                "<div>{} <span class=\"muted\">{}</span>{}{}</div>",
                Text(name),
                Text(id),
                if description.is_empty() {
                    String::new()
                } else {
                    format!(" · {}", Text(description))
                },
                if *active {
                    ""
                } else {
                    " <span class=\"badge\">inactive</span>"
                }
            );
        }
        let _ = write!(
            out,
            "<tr><td>{} <span class=\"muted\">{}</span></td><td>{}</td><td>{}</td><td>{}</td><td>{versions}</td></tr>",
            Text(&p.name),
            Text(&p.id),
            badge(&p.product_type),
            Text(&p.owner),
            Text(&p.description),
        );
    }
    out.push_str("</tbody></table></div>");
}

/// The page's HTML.
pub fn render(catalog: &Catalog) -> String {
    let mut out = String::new();
    match catalog {
        Catalog::Launchable(products) => {
            out.push_str("<p class=\"muted\">The products you may launch.</p>");
            products_table(&mut out, products);
        }
        Catalog::Admin(portfolios) if portfolios.is_empty() => {
            out.push_str("<p class=\"muted\" id=\"no-portfolios\">No portfolios.</p>");
        }
        Catalog::Admin(portfolios) => {
            for p in portfolios {
                let _ = write!(
                    out,
                    "<section class=\"portfolio\"><h2>{} <span class=\"muted\">{} · {}</span></h2><p>{}</p>",
                    Text(&p.name),
                    Text(&p.id),
                    Text(&p.provider),
                    Text(&p.description)
                );
                out.push_str("<h3>Who may launch</h3>");
                if p.principals.is_empty() {
                    out.push_str("<p class=\"muted\">Nobody yet.</p>");
                } else {
                    out.push_str("<ul class=\"principals\">");
                    for (arn, kind) in &p.principals {
                        let _ = write!(
                            out,
                            "<li>{} <span class=\"muted\">{}</span></li>",
                            Text(arn),
                            Text(kind)
                        );
                    }
                    out.push_str("</ul>");
                }
                out.push_str("<h3>Products</h3>");
                products_table(&mut out, &p.products);
                out.push_str("</section>");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_descriptions_and_principals_are_escaped() {
        let catalog = Catalog::Admin(vec![PortfolioView {
            id: "port-1".into(),
            name: "<Platform>".into(),
            provider: "p&q".into(),
            description: "<script>steal()</script>".into(),
            principals: vec![("arn:aws:iam::111122223333:role/<dev>".into(), "IAM".into())],
            products: vec![Published {
                id: "prod-1".into(),
                name: "<img src=x>".into(),
                product_type: "TERRAFORM_OPEN_SOURCE".into(),
                owner: "\"owner\"".into(),
                description: "d<".into(),
                versions: vec![("pa-1".into(), "v<1>".into(), "first <b>".into(), false)],
            }],
        }]);
        let html = render(&catalog);
        for raw in [
            "<Platform>",
            "<script>",
            "role/<dev>",
            "<img",
            "v<1>",
            "first <b>",
        ] {
            assert!(!html.contains(raw), "{raw} in {html}");
        }
        assert!(html.contains("&lt;Platform&gt;") && html.contains("p&amp;q"));
        assert!(html.contains("&quot;owner&quot;") && html.contains("inactive"));
    }
}
