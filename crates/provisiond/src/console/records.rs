//! The records page: the account's records, newest first, read through `ListRecordHistory`
//! (by product or provisioned product when asked), narrowed by status and age, each linking
//! to its record page.

use super::html::{self, age, badge, when, PathPart, Text, Viewer};
use super::page::Reply;
use crate::catalog::provisioning;
use crate::context::RequestContext;
use provisiond_model::servicecatalog as sc;
use provisiond_model::AwsError;
use std::fmt::Write;

/// Rows a page shows.
const ROWS: usize = 50;
/// Pages of `ListRecordHistory` one page of the console reads at most while narrowing.
const PAGES_READ: usize = 20;

/// The filters of the records page, from its query string.
#[derive(Debug, Default, Clone)]
pub struct Filters {
    /// A record status (`IN_PROGRESS`, `FAILED`, …).
    pub status: String,
    /// A product id.
    pub product: String,
    /// A provisioned product id.
    pub provisioned_product: String,
    /// Only records older than this many minutes.
    pub older_than_minutes: Option<i64>,
    /// Where the page starts (a `ListRecordHistory` page token).
    pub from: Option<String>,
}

impl Filters {
    fn of(query: &[(String, String)]) -> Filters {
        let get = |name| {
            super::form::get(query, name)
                .unwrap_or_default()
                .trim()
                .to_string()
        };
        Filters {
            status: get("status"),
            product: get("product"),
            provisioned_product: get("provisioned_product"),
            older_than_minutes: get("older_than").parse().ok().filter(|m: &i64| *m >= 0),
            from: Some(get("from")).filter(|f| !f.is_empty()),
        }
    }

    fn query_without_from(&self) -> String {
        let mut q = String::new();
        for (name, value) in [
            ("status", self.status.as_str()),
            ("product", &self.product),
            ("provisioned_product", &self.provisioned_product),
        ] {
            if !value.is_empty() {
                let _ = write!(q, "{name}={}&", PathPart(value));
            }
        }
        if let Some(m) = self.older_than_minutes {
            let _ = write!(q, "older_than={m}&");
        }
        q
    }
}

/// One row.
pub struct Row {
    /// The record.
    pub detail: sc::RecordDetail,
    /// Its age, epoch milliseconds since it was made.
    pub age_ms: i64,
}

/// Reads a page of records for `ctx`'s key: the rows and where the next page starts.
pub fn gather(
    ctx: &RequestContext,
    filters: &Filters,
) -> Result<(Vec<Row>, Option<String>), AwsError> {
    let search_filter = if !filters.provisioned_product.is_empty() {
        Some(("provisionedproduct", filters.provisioned_product.clone()))
    } else if !filters.product.is_empty() {
        Some(("product", filters.product.clone()))
    } else {
        None
    };
    let mut rows = Vec::new();
    let mut token = filters.from.clone();
    for _ in 0..PAGES_READ {
        let page = provisioning::record_history(
            ctx,
            sc::ListRecordHistoryInput {
                access_level_filter: ctx.identity.admin.then(|| sc::AccessLevelFilter {
                    key: Some("Account".into()),
                    value: Some("self".into()),
                }),
                search_filter: search_filter.as_ref().map(|(k, v)| {
                    sc::ListRecordHistorySearchFilter {
                        key: Some(k.to_string()),
                        value: Some(v.clone()),
                    }
                }),
                page_size: Some(ROWS as i32),
                page_token: token.take(),
                ..Default::default()
            },
        )?;
        for detail in page.record_details.unwrap_or_default() {
            let created = detail.created_time.map_or(0, |t| (t.0 * 1000.0) as i64);
            let age_ms = ctx.now_ms - created;
            let status_ok = filters.status.is_empty()
                || detail.status.as_deref() == Some(filters.status.as_str());
            let age_ok = filters
                .older_than_minutes
                .is_none_or(|m| age_ms >= m * 60_000);
            if status_ok && age_ok {
                rows.push(Row { detail, age_ms });
            }
        }
        token = page.next_page_token;
        if token.is_none() || rows.len() >= ROWS {
            break;
        }
    }
    Ok((rows, token))
}

/// The records page.
pub fn page(
    ctx: &RequestContext,
    viewer: &Viewer<'_>,
    query: &[(String, String)],
) -> Result<Reply, AwsError> {
    let filters = Filters::of(query);
    let (rows, next) = gather(ctx, &filters)?;
    Ok(Reply::html(
        200,
        html::page(
            "Records",
            Some(viewer),
            "/console/records",
            &render(&filters, &rows, next.as_deref()),
        ),
    ))
}

const STATUSES: &[&str] = &[
    "CREATED",
    "IN_PROGRESS",
    "IN_PROGRESS_IN_ERROR",
    "SUCCEEDED",
    "FAILED",
];

/// The records page's HTML.
pub fn render(filters: &Filters, rows: &[Row], next: Option<&str>) -> String {
    let mut out = String::new();
    out.push_str("<form class=\"filters\" method=\"get\" action=\"/console/records\"><label>Status <select name=\"status\"><option value=\"\">any</option>");
    for status in STATUSES {
        let selected = if filters.status == *status {
            " selected"
        } else {
            ""
        };
        let _ = write!(out, "<option{selected}>{status}</option>");
    }
    let _ = write!(
        out,
        "</select></label><label>Product id <input name=\"product\" value=\"{}\"></label>\
         <label>Provisioned product id <input name=\"provisioned_product\" value=\"{}\"></label>\
         <label>Older than (minutes) <input name=\"older_than\" inputmode=\"numeric\" value=\"{}\"></label>\
         <button type=\"submit\">Filter</button></form>",
        Text(&filters.product),
        Text(&filters.provisioned_product),
        filters.older_than_minutes.map(|m| m.to_string()).unwrap_or_default(),
    );
    out.push_str(&table(rows));
    if let Some(next) = next {
        let href = format!(
            "/console/records?{}from={}",
            filters.query_without_from(),
            PathPart(next)
        );
        let _ = write!(
            out,
            "<p><a href=\"{}\" id=\"next-page\">Older records</a></p>",
            Text(&href)
        );
    }
    out
}

/// The table of `rows` (each linking to its record page), or a line saying none match.
pub fn table(rows: &[Row]) -> String {
    let mut out = String::new();
    if rows.is_empty() {
        out.push_str("<p class=\"muted\" id=\"no-records\">No records match.</p>");
    } else {
        out.push_str(
            "<div class=\"table\"><table id=\"records\"><thead><tr><th>Record</th><th>Type</th>\
             <th>Status</th><th>Provisioned product</th><th>Created</th><th>Age</th></tr></thead><tbody>",
        );
        for row in rows {
            let d = &row.detail;
            let id = d.record_id.as_deref().unwrap_or_default();
            let created = d.created_time.map_or(0, |t| (t.0 * 1000.0) as i64);
            let _ = write!(
                out,
                "<tr><td><a href=\"/console/records/{}\">{}</a></td><td>{}</td><td>{}</td>\
                 <td><a href=\"/console/provisioned-products/{}\">{}</a> <span class=\"muted\">{}</span></td>\
                 <td>{}</td><td>{}</td></tr>",
                PathPart(id),
                Text(id),
                Text(d.record_type.as_deref().unwrap_or_default()),
                badge(d.status.as_deref().unwrap_or_default()),
                PathPart(d.provisioned_product_id.as_deref().unwrap_or_default()),
                Text(d.provisioned_product_name.as_deref().unwrap_or_default()),
                Text(d.provisioned_product_id.as_deref().unwrap_or_default()),
                when(created),
                age(row.age_ms),
            );
        }
        out.push_str("</tbody></table></div>");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use provisiond_model::runtime::Timestamp;

    #[test]
    fn names_and_filters_are_escaped() {
        let filters = Filters {
            status: "FAILED".into(),
            product: "\"><script>".into(),
            provisioned_product: String::new(),
            older_than_minutes: Some(5),
            from: None,
        };
        let rows = vec![Row {
            detail: sc::RecordDetail {
                record_id: Some("rec-1".into()),
                provisioned_product_name: Some("<svg onload=alert(1)>".into()),
                status: Some("FAILED".into()),
                created_time: Some(Timestamp::from_millis(1_700_000_000_000)),
                record_type: Some("PROVISION_PRODUCT".into()),
                provisioned_product_id: Some("pp-1".into()),
                ..Default::default()
            },
            age_ms: 60_000,
        }];
        let html = render(&filters, &rows, Some("tok&en"));
        assert!(
            !html.contains("<svg") && !html.contains("\"><script>"),
            "{html}"
        );
        assert!(html.contains("&lt;svg onload=alert(1)&gt;"));
        assert!(html.contains("value=\"&quot;&gt;&lt;script&gt;\""));
        assert!(html.contains("<option selected>FAILED</option>"));
        assert!(html.contains("href=\"/console/records?status=FAILED&amp;product=%22%3E%3Cscript%3E&amp;older_than=5&amp;from=tok%26en\""));
    }
}
