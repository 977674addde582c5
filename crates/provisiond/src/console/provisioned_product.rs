//! The provisioned product page: its state, its record history (newest first, each linking to
//! its record), its last successful record and its current outputs, read through
//! `DescribeProvisionedProduct`, `ListRecordHistory` and `GetProvisionedProductOutputs`.

use super::html::{self, badge, when, PathPart, Text, Viewer};
use super::page::Reply;
use super::records::{self, Filters, Row};
use crate::catalog::provisioning;
use crate::context::RequestContext;
use provisiond_model::servicecatalog as sc;
use provisiond_model::AwsError;
use std::fmt::Write;

/// What the page shows.
pub struct ProductPage {
    /// The provisioned product.
    pub detail: sc::ProvisionedProductDetail,
    /// Its newest records.
    pub history: Vec<Row>,
    /// Whether it has older ones.
    pub more: bool,
    /// Its current outputs: (key, value, description).
    pub outputs: Vec<(String, String, String)>,
}

/// Reads the page of the provisioned product `id` for `ctx`'s key.
pub fn gather(ctx: &RequestContext, id: &str) -> Result<ProductPage, AwsError> {
    let detail = provisioning::describe(
        ctx,
        sc::DescribeProvisionedProductInput {
            id: Some(id.to_string()),
            ..Default::default()
        },
    )?
    .provisioned_product_detail
    .unwrap_or_default();
    let filters = Filters {
        provisioned_product: id.to_string(),
        ..Default::default()
    };
    let (history, next) = records::gather(ctx, &filters)?;
    let outputs = provisioning::outputs(
        ctx,
        sc::GetProvisionedProductOutputsInput {
            provisioned_product_id: Some(id.to_string()),
            page_size: Some(20),
            ..Default::default()
        },
    )?;
    Ok(ProductPage {
        detail,
        history,
        more: next.is_some(),
        outputs: outputs
            .outputs
            .unwrap_or_default()
            .into_iter()
            .map(|o| {
                (
                    o.output_key.unwrap_or_default(),
                    o.output_value.unwrap_or_default(),
                    o.description.unwrap_or_default(),
                )
            })
            .collect(),
    })
}

/// The provisioned product page.
pub fn page(ctx: &RequestContext, viewer: &Viewer<'_>, id: &str) -> Result<Reply, AwsError> {
    let page = gather(ctx, id)?;
    let title = format!(
        "Provisioned product {}",
        page.detail.name.as_deref().unwrap_or(id)
    );
    Ok(Reply::html(
        200,
        html::page(&title, Some(viewer), "/console/records", &render(&page)),
    ))
}

/// The page's HTML.
pub fn render(p: &ProductPage) -> String {
    let d = &p.detail;
    let text = |v: &Option<String>| Text(v.as_deref().unwrap_or_default()).to_string();
    let record_link = |v: &Option<String>| match v.as_deref() {
        Some(id) => format!(
            "<a href=\"/console/records/{}\">{}</a>",
            PathPart(id),
            Text(id)
        ),
        None => "none".into(),
    };
    let mut out = String::new();
    let _ = write!(
        out,
        "<dl class=\"facts\" id=\"provisioned-product\"><dt>Status</dt><dd>{}</dd>\
         <dt>Status message</dt><dd>{}</dd><dt>Id</dt><dd>{}</dd><dt>Type</dt><dd>{}</dd>\
         <dt>Product</dt><dd>{}</dd><dt>Version</dt><dd>{}</dd><dt>Created</dt><dd>{}</dd>\
         <dt>Last record</dt><dd>{}</dd><dt>Last successful record</dt><dd id=\"last-successful\">{}</dd></dl>",
        badge(d.status.as_deref().unwrap_or_default()),
        text(&d.status_message),
        text(&d.id),
        text(&d.r#type),
        text(&d.product_id),
        text(&d.provisioning_artifact_id),
        d.created_time.map(|t| when((t.0 * 1000.0) as i64)).unwrap_or_default(),
        record_link(&d.last_record_id),
        record_link(&d.last_successful_provisioning_record_id),
    );
    out.push_str("<h2>Current outputs</h2>");
    if p.outputs.is_empty() {
        out.push_str("<p class=\"muted\">None.</p>");
    } else {
        out.push_str(
            "<div class=\"table\"><table id=\"current-outputs\"><thead><tr><th>Key</th><th>Value</th>\
             <th>Description</th></tr></thead><tbody>",
        );
        for (key, value, description) in &p.outputs {
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                Text(key),
                Text(value),
                Text(description)
            );
        }
        out.push_str("</tbody></table></div>");
    }
    out.push_str("<h2>Record history</h2>");
    out.push_str(&records::table(&p.history));
    if p.more {
        let id = d.id.as_deref().unwrap_or_default();
        let _ = write!(
            out,
            "<p><a href=\"/console/records?provisioned_product={}\">All its records</a></p>",
            PathPart(id)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_names_and_messages_are_escaped() {
        let page = ProductPage {
            detail: sc::ProvisionedProductDetail {
                name: Some("<x>".into()),
                id: Some("pp-1".into()),
                status: Some("TAINTED".into()),
                status_message: Some("<script>bad()</script>".into()),
                last_successful_provisioning_record_id: Some("rec-\"1".into()),
                ..Default::default()
            },
            history: Vec::new(),
            more: true,
            outputs: vec![("k<".into(), "<img src=x>".into(), "&d".into())],
        };
        let html = render(&page);
        assert!(
            !html.contains("<script>") && !html.contains("<img"),
            "{html}"
        );
        assert!(html.contains("&lt;script&gt;bad()&lt;/script&gt;"));
        assert!(html.contains("<td>k&lt;</td><td>&lt;img src=x&gt;</td><td>&amp;d</td>"));
        assert!(html.contains("href=\"/console/records/rec-%221\""));
        assert!(html.contains("href=\"/console/records?provisioned_product=pp-1\""));
    }
}
