//! The audit page (admin keys): the account's audit log, newest first, narrowed by how far back
//! and by operation, read through `audit::entries`.

use super::html::{self, when, Text, Viewer};
use super::page::Reply;
use crate::audit::{self, Entry, Filter};
use crate::context::RequestContext;
use provisiond_model::AwsError;
use std::fmt::Write;

/// The most entries the page shows.
const SHOWN: usize = 500;
/// How far back the page reads unless asked: one day.
const DEFAULT_SINCE: &str = "1d";

/// The page's filters: `since` as given (`1h`, `7d`) and an operation name.
pub struct AuditFilters {
    /// How far back, as given.
    pub since: String,
    /// Only this operation, when not empty.
    pub operation: String,
}

/// Reads the entries of `ctx`'s account that `filters` admit, newest first.
pub fn gather(ctx: &RequestContext, filters: &AuditFilters) -> Result<Vec<Entry>, AwsError> {
    let since_ms = crate::time::parse_duration(&filters.since).map_err(|e| {
        provisiond_model::CommonError::ValidationException.with(format!("since: {e}"))
    })?;
    let mut entries = audit::entries(
        ctx.store.as_ref(),
        &Filter {
            since_ms: Some(ctx.now_ms - since_ms),
            account: Some(ctx.identity.account.clone()),
            operation: Some(filters.operation.clone()).filter(|o| !o.is_empty()),
        },
    )?;
    entries.reverse();
    entries.truncate(SHOWN);
    Ok(entries)
}

/// The audit page.
pub fn page(
    ctx: &RequestContext,
    viewer: &Viewer<'_>,
    query: &[(String, String)],
) -> Result<Reply, AwsError> {
    ctx.require_admin("console:audit")?;
    let get = |name| {
        super::form::get(query, name)
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    let filters = AuditFilters {
        since: Some(get("since"))
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| DEFAULT_SINCE.into()),
        operation: get("operation"),
    };
    let entries = gather(ctx, &filters)?;
    Ok(Reply::html(
        200,
        html::page(
            "Audit",
            Some(viewer),
            "/console/audit",
            &render(&filters, &entries),
        ),
    ))
}

/// The page's HTML.
pub fn render(filters: &AuditFilters, entries: &[Entry]) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<form class=\"filters\" method=\"get\" action=\"/console/audit\">\
         <label>Since <input name=\"since\" value=\"{}\" placeholder=\"1h, 7d\"></label>\
         <label>Operation <input name=\"operation\" value=\"{}\" placeholder=\"ProvisionProduct\"></label>\
         <button type=\"submit\">Filter</button></form>",
        Text(&filters.since),
        Text(&filters.operation)
    );
    if entries.is_empty() {
        out.push_str("<p class=\"muted\" id=\"no-entries\">No entries.</p>");
        return out;
    }
    if entries.len() == SHOWN {
        let _ = write!(out, "<p class=\"muted\">The newest {SHOWN}.</p>");
    }
    out.push_str(
        "<div class=\"table\"><table id=\"audit\"><thead><tr><th>Time</th><th>Service</th>\
         <th>Operation</th><th>Principal</th><th>Access key</th><th>Resources</th><th>Outcome</th>\
         </tr></thead><tbody>",
    );
    for e in entries {
        let who = match &e.os_user {
            Some(user) => format!("{} ({})", e.principal, user),
            None => e.principal.clone(),
        };
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            when(e.time_ms),
            Text(&e.service),
            Text(&e.operation),
            Text(&who),
            Text(e.access_key_id.as_deref().unwrap_or("")),
            Text(&e.resources.join(" ")),
            html::badge(&e.outcome),
        );
    }
    out.push_str("</tbody></table></div>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn principals_resources_and_filters_are_escaped() {
        let entry = Entry {
            id: "r".into(),
            time_ms: 1_700_000_000_000,
            account: "111122223333".into(),
            principal: "arn:aws:iam::111122223333:role/<x>".into(),
            access_key_id: Some("AKIA<".into()),
            os_user: Some("<root>".into()),
            service: "admin".into(),
            operation: "record-fail".into(),
            resources: vec!["record/<r>".into()],
            outcome: "OK".into(),
        };
        let filters = AuditFilters {
            since: "\"><b>".into(),
            operation: String::new(),
        };
        let html = render(&filters, &[entry]);
        assert!(!html.contains("<x>") && !html.contains("<root>") && !html.contains("<r>"));
        assert!(!html.contains("\"><b>"), "{html}");
        assert!(html.contains("role/&lt;x&gt; (&lt;root&gt;)"));
        assert!(html.contains("record/&lt;r&gt;"));
    }
}
