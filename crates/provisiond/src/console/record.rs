//! The record page: a timeline (created, task enqueued, received, settled), the parameters
//! (sensitive ones masked), outputs, errors, the built-in engine's log of the run (followed
//! live through `events` while it runs), and, for a record in progress, the actions fail and
//! retry, which are `repair`'s, audited, for admin keys only.

use super::html::{self, badge, csrf_field, when, PathPart, Text, Viewer};
use super::overview::task_text;
use super::page::Reply;
use super::Console;
use crate::catalog::provisioning::{self, Record};
use crate::catalog::{self, product};
use crate::context::RequestContext;
use crate::queue::TaskState;
use crate::repair::{self, Actor, RepairError};
use crate::store::{transact, Mode};
use provisiond_model::servicecatalog::ErrorCode;
use provisiond_model::{AwsError, CommonError};
use std::collections::BTreeSet;
use std::fmt::Write;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// The most of a log the page shows at first: its last 256 KiB.
const LOG_TAIL: u64 = 256 << 10;
/// The longest reason a fail action takes.
const REASON_LIMIT: usize = 2048;
/// What a sensitive parameter shows instead of its value.
pub const MASK: &str = "•••••• (sensitive)";

/// What the record page shows.
pub struct RecordPage {
    /// The record.
    pub record: Record,
    /// Its product's name.
    pub product_name: Option<String>,
    /// The names of its version's sensitive variables.
    pub sensitive: BTreeSet<String>,
    /// Where its engine task stands.
    pub task: TaskState,
    /// The built-in engine's log of the run, when it ran on this replica.
    pub log: Option<LogTail>,
    /// Whether the viewer may fail or retry it (an admin key, the record in progress).
    pub can_act: bool,
    /// What the last action did (`?done=`).
    pub notice: Option<&'static str>,
}

/// The end of a log file, cut at a line's end.
pub struct LogTail {
    /// The lines.
    pub text: String,
    /// The byte offset just past them, where following starts.
    pub offset: u64,
    /// Whether earlier lines were left out.
    pub cut: bool,
}

/// Reads up to `LOG_TAIL` bytes from the end of `path`, ending after its last complete line.
pub fn read_tail(path: &Path) -> std::io::Result<Option<LogTail>> {
    let mut file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let len = file.metadata()?.len();
    let start = len.saturating_sub(LOG_TAIL);
    file.seek(SeekFrom::Start(start))?;
    let mut bytes = Vec::with_capacity((len - start) as usize);
    file.take(LOG_TAIL).read_to_end(&mut bytes)?;
    let mut from = 0;
    if start > 0 {
        from = bytes
            .iter()
            .position(|b| *b == b'\n')
            .map_or(bytes.len(), |at| at + 1);
    }
    let end = bytes
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(from, |at| at + 1)
        .max(from);
    Ok(Some(LogTail {
        text: String::from_utf8_lossy(&bytes[from..end]).into_owned(),
        offset: start + end as u64,
        cut: start > 0,
    }))
}

/// Reads the record page of `id` for `ctx`'s key.
pub fn gather(console: &Console, ctx: &RequestContext, id: &str) -> Result<RecordPage, AwsError> {
    let scope = ctx.scope();
    let (record, product_name, sensitive, task) = transact(ctx.store.as_ref(), Mode::Read, |tx| {
        let record = provisioning::get_record(tx, &scope, id)?;
        let product_name = product::get(tx, &scope, &record.product_id)
            .ok()
            .map(|p| p.name);
        let sensitive: BTreeSet<String> =
            product::get_artifact(tx, &scope, &record.product_id, &record.artifact_id)
                .map(|a| {
                    a.variables
                        .into_iter()
                        .filter(|v| v.sensitive)
                        .map(|v| v.name)
                        .collect()
                })
                .unwrap_or_default();
        let task = catalog::repair::task_state(tx, &scope, &record)?;
        Ok::<_, AwsError>((record, product_name, sensitive, task))
    })?;
    let log = read_tail(&provisiond_engine::terraform::log_path(
        &console.data_dir,
        id,
    ))
    .map_err(|e| CommonError::InternalFailure.with(format!("reading the engine log: {e}")))?;
    Ok(RecordPage {
        can_act: ctx.identity.admin && record.status.in_progress(),
        record,
        product_name,
        sensitive,
        task,
        log,
        notice: None,
    })
}

/// The record page.
pub fn page(
    console: &Console,
    ctx: &RequestContext,
    viewer: &Viewer<'_>,
    id: &str,
    query: &[(String, String)],
) -> Result<Reply, AwsError> {
    let mut page = gather(console, ctx, id)?;
    page.notice = match super::form::get(query, "done") {
        Some("failed") => Some("The record was failed; its engine task is gone."),
        Some("retried") => {
            Some("The record's task was given back to its engine with a new workflow token.")
        }
        _ => None,
    };
    let title = format!("Record {}", page.record.id);
    Ok(Reply::html(
        200,
        html::page(
            &title,
            Some(viewer),
            "/console/records",
            &render(&page, viewer.csrf),
        ),
    ))
}

/// Fails or retries the record `id` (`action`), as `admin record-fail` / `record-retry` do.
pub fn act(
    console: &Console,
    ctx: &RequestContext,
    viewer: &Viewer<'_>,
    id: &str,
    action: &str,
    form: &[(String, String)],
) -> Result<Reply, AwsError> {
    ctx.require_admin(&format!("console:record-{action}"))?;
    let actor = Actor::console(&ctx.identity, &ctx.scope());
    let store = ctx.store.as_ref();
    let done = match action {
        "fail" => {
            let reason = super::form::get(form, "reason").unwrap_or_default().trim();
            if reason.is_empty() || reason.chars().count() > REASON_LIMIT {
                return Err(ErrorCode::InvalidParametersException.with(format!(
                    "A reason of 1 to {REASON_LIMIT} characters is required to fail a record."
                )));
            }
            repair::fail(store, id, reason, &actor, "record-fail", ctx.now_ms).map(|_| "failed")
        }
        _ => repair::retry(store, &console.server_key, id, &actor, ctx.now_ms).map(|_| "retried"),
    };
    let _ = viewer;
    match done {
        Ok(done) => Ok(Reply::redirect(format!(
            "/console/records/{}?done={done}",
            PathPart(id)
        ))),
        Err(RepairError::NotInProgress(_)) => {
            Err(ErrorCode::InvalidParametersException
                .with(format!("Record {id} is not in progress.")))
        }
        Err(RepairError::Refused(e)) => Err(e),
        Err(RepairError::Store(e)) => Err(e.into()),
    }
}

/// The record page's HTML.
pub fn render(p: &RecordPage, csrf: &str) -> String {
    let r = &p.record;
    let mut out = String::new();
    if let Some(notice) = p.notice {
        let _ = write!(
            out,
            "<p class=\"notice\" role=\"status\">{}</p>",
            Text(notice)
        );
    }
    let _ = write!(
        out,
        "<dl class=\"facts\" id=\"record\"><dt>Status</dt><dd id=\"record-status\">{}</dd>\
         <dt>Type</dt><dd>{}</dd><dt>Provisioned product</dt><dd>\
         <a href=\"/console/provisioned-products/{}\">{}</a> ({})</dd>\
         <dt>Product</dt><dd>{} ({})</dd><dt>Version</dt><dd>{}</dd>\
         <dt>Requested by</dt><dd>{}</dd><dt>Created</dt><dd>{}</dd><dt>Updated</dt><dd>{}</dd></dl>",
        badge(r.status.as_str()),
        Text(r.record_type.as_str()),
        PathPart(&r.provisioned_product_id),
        Text(&r.provisioned_product_name),
        Text(&r.provisioned_product_id),
        Text(p.product_name.as_deref().unwrap_or("")),
        Text(&r.product_id),
        Text(&r.artifact_id),
        Text(r.owner_principal.as_deref().unwrap_or("")),
        when(r.created_ms),
        when(r.updated_ms),
    );

    out.push_str("<h2>Timeline</h2><ol class=\"timeline\" id=\"timeline\">");
    let step = |out: &mut String, ms: Option<i64>, text: &str| {
        let time = ms
            .map(|ms| format!("<time>{}</time>", when(ms)))
            .unwrap_or_default();
        let _ = write!(out, "<li>{time}{}</li>", Text(text));
    };
    step(
        &mut out,
        Some(r.created_ms),
        &format!("Created: {}", r.record_type.as_str()),
    );
    if let Some((queue, _)) = &r.task {
        step(
            &mut out,
            Some(r.created_ms),
            &format!("Engine task enqueued on {queue}"),
        );
    }
    match p.task {
        TaskState::Gone if r.status.in_progress() => {
            step(&mut out, None, "Its engine task is gone")
        }
        TaskState::Gone => {}
        state => step(&mut out, None, &format!("Engine task {}", task_text(state))),
    }
    if !r.status.in_progress() {
        step(
            &mut out,
            Some(r.updated_ms),
            &format!("Notified and settled: {}", r.status.as_str()),
        );
    }
    out.push_str("</ol>");

    if p.can_act {
        let _ = write!(
            out,
            "<h2>Actions</h2><div class=\"actions\">\
             <form method=\"post\" action=\"/console/records/{id}/fail\" id=\"fail-form\">{csrf}\
             <label>Reason <input name=\"reason\" required maxlength=\"{REASON_LIMIT}\" \
             placeholder=\"why it is failed\"></label><button type=\"submit\">Fail</button></form>\
             <form method=\"post\" action=\"/console/records/{id}/retry\" id=\"retry-form\">{csrf}\
             <button type=\"submit\">Retry with a new token</button></form></div>",
            id = PathPart(&r.id),
            csrf = csrf_field(csrf),
        );
    }

    out.push_str("<h2>Parameters</h2>");
    table(
        &mut out,
        "parameters",
        &["Key", "Value"],
        r.parameters.iter().map(|(k, v)| {
            let shown = if p.sensitive.contains(k) {
                MASK
            } else {
                v.as_str()
            };
            vec![k.clone(), shown.to_string()]
        }),
    );
    out.push_str("<h2>Outputs</h2>");
    table(
        &mut out,
        "outputs",
        &["Key", "Value", "Description"],
        r.outputs.iter().map(|o| {
            vec![
                o.key.clone(),
                o.value.clone().unwrap_or_default(),
                o.description.clone().unwrap_or_default(),
            ]
        }),
    );
    if !r.errors.is_empty() {
        out.push_str("<h2>Errors</h2>");
        table(
            &mut out,
            "errors",
            &["Code", "Description"],
            r.errors.iter().map(|(c, d)| vec![c.clone(), d.clone()]),
        );
    }

    out.push_str("<h2>Engine log</h2>");
    match &p.log {
        None => out.push_str(
            "<p class=\"muted\" id=\"no-log\">No log of the built-in engine on this replica: an \
             external engine ran it, or another replica's engine did.</p>",
        ),
        Some(log) => {
            if log.cut {
                out.push_str("<p class=\"muted\">Its last 256 KiB:</p>");
            }
            let follow = if r.status.in_progress() {
                format!(
                    " data-events=\"/console/records/{}/events?from={}\"",
                    PathPart(&r.id),
                    log.offset
                )
            } else {
                String::new()
            };
            let _ = write!(
                out,
                "<p class=\"muted\" id=\"log-state\">{}</p><pre class=\"log\" id=\"engine-log\"{follow}>{}</pre>",
                if r.status.in_progress() { "running" } else { "finished" },
                Text(&log.text)
            );
        }
    }
    out
}

/// A table of text cells, or a line saying there is nothing.
fn table(out: &mut String, id: &str, heads: &[&str], rows: impl Iterator<Item = Vec<String>>) {
    let mut body = String::new();
    for row in rows {
        body.push_str("<tr>");
        for cell in row {
            let _ = write!(body, "<td>{}</td>", Text(&cell));
        }
        body.push_str("</tr>");
    }
    if body.is_empty() {
        out.push_str("<p class=\"muted\">None.</p>");
        return;
    }
    let _ = write!(out, "<div class=\"table\"><table id=\"{id}\"><thead><tr>");
    for head in heads {
        let _ = write!(out, "<th>{head}</th>");
    }
    let _ = write!(out, "</tr></thead><tbody>{body}</tbody></table></div>");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::status::{RecordStatus, RecordType};

    fn hostile_record() -> Record {
        let x = "<script>alert(1)</script>";
        Record {
            id: "rec-<i>".into(),
            provisioned_product_id: "pp-\"x".into(),
            provisioned_product_name: x.into(),
            product_type: "TERRAFORM_OPEN_SOURCE".into(),
            record_type: RecordType::Provision,
            status: RecordStatus::InProgress,
            created_ms: 1_700_000_000_000,
            updated_ms: 1_700_000_000_000,
            product_id: "prod-1".into(),
            artifact_id: "pa-1".into(),
            path_id: "lpv2-1".into(),
            launch_role_arn: None,
            parameters: vec![
                ("name".into(), x.into()),
                ("password".into(), "hunter2-secret".into()),
            ],
            tags: vec![],
            errors: vec![("ENGINE".into(), x.into())],
            outputs: vec![provisioning::Output {
                key: "url".into(),
                value: Some(x.into()),
                description: Some("<b>d</b>".into()),
            }],
            ignore_errors: false,
            task: Some(("Queue<".into(), "m-1".into())),
            accepted_tokens: vec![],
            token_generation: 0,
            owner_principal: Some("arn:aws:iam::111122223333:role/<dev>".into()),
            plan_id: None,
        }
    }

    #[test]
    fn every_user_value_is_escaped_and_sensitive_parameters_are_masked() {
        let page = RecordPage {
            record: hostile_record(),
            product_name: Some("<u>product</u>".into()),
            sensitive: BTreeSet::from(["password".to_string()]),
            task: TaskState::Received(1),
            log: Some(LogTail {
                text: "line <script>x</script>\n".into(),
                offset: 24,
                cut: false,
            }),
            can_act: true,
            notice: None,
        };
        let html = render(&page, "csrf-token");
        assert!(!html.contains("<script>"), "{html}");
        assert!(
            !html.contains("<b>d</b>")
                && !html.contains("<u>product")
                && !html.contains("role/<dev>")
        );
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(
            !html.contains("hunter2-secret"),
            "a sensitive value never reaches the page"
        );
        assert!(html.contains(&Text(MASK).to_string()));
        assert!(
            html.contains("line &lt;script&gt;x&lt;/script&gt;"),
            "log lines are escaped"
        );
        assert!(html.contains("data-events=\"/console/records/rec-%3Ci%3E/events?from=24\""));
        assert!(html.contains("action=\"/console/records/rec-%3Ci%3E/fail\""));
        assert_eq!(
            html.matches("name=\"csrf\" value=\"csrf-token\"").count(),
            2,
            "each form carries it"
        );
        assert!(html.contains("href=\"/console/provisioned-products/pp-%22x\""));
        assert!(html.contains("Engine task received once"));
    }

    #[test]
    fn a_settled_record_is_not_followed_and_has_no_actions() {
        let mut record = hostile_record();
        record.status = RecordStatus::Succeeded;
        let page = RecordPage {
            record,
            product_name: None,
            sensitive: BTreeSet::new(),
            task: TaskState::Gone,
            log: None,
            can_act: false,
            notice: Some("done"),
        };
        let html = render(&page, "t");
        assert!(!html.contains("data-events") && !html.contains("fail-form"));
        assert!(html.contains("Notified and settled: SUCCEEDED"));
        assert!(html.contains("id=\"no-log\""));
    }

    #[test]
    fn a_log_tail_ends_at_a_complete_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rec.log");
        assert!(read_tail(&path).unwrap().is_none());
        std::fs::write(&path, "one\ntwo\npart").unwrap();
        let tail = read_tail(&path).unwrap().unwrap();
        assert_eq!(
            (tail.text.as_str(), tail.offset, tail.cut),
            ("one\ntwo\n", 8, false)
        );
        let long = "x".repeat(100) + "\n";
        std::fs::write(&path, long.repeat(3000)).unwrap();
        let tail = read_tail(&path).unwrap().unwrap();
        assert!(tail.cut && tail.text.starts_with('x') && tail.offset == 303_000);
        assert_eq!(tail.text.len() % 101, 0, "whole lines only");
    }
}
