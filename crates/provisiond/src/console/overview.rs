//! The overview page: the key's provisioned products by status, the work in progress with its
//! age (flagged past `serve --stuck-after`), the engine tasks of each queue, and the in-process
//! engine's state.

use super::html::{self, age, badge, PathPart, Text, Viewer};
use super::page::Reply;
use super::Console;
use crate::catalog::{self, provisioning::Record};
use crate::context::RequestContext;
use crate::in_flight::Work;
use crate::queue::{self, TaskCounts, TaskState};
use crate::repair;
use crate::store::{self, transact, Kind, Mode};
use provisiond_model::servicecatalog as sc;
use provisiond_model::AwsError;
use std::collections::BTreeMap;
use std::fmt::Write;

/// How many provisioned products the overview counts at most.
const COUNTED: usize = 1000;

/// What the overview shows.
pub struct Overview {
    /// Provisioned products by status.
    pub products: BTreeMap<String, usize>,
    /// Whether there were more than `COUNTED`.
    pub more_products: bool,
    /// Work in progress, oldest first.
    pub underway: Vec<Underway>,
    /// Each work queue that holds a task.
    pub queues: Vec<TaskCounts>,
    /// The in-process engine's state, when this replica runs one.
    pub engine: Option<serde_json::Value>,
    /// Past this age work is stuck.
    pub stuck_after_ms: i64,
}

/// One piece of work in progress.
pub struct Underway {
    /// A record's or deployment's id.
    pub id: String,
    /// Whether it is a record.
    pub record: bool,
    /// Its status.
    pub status: String,
    /// What it does: a record's type, a deployment's target.
    pub what: String,
    /// The provisioned product's name (records).
    pub name: String,
    /// Its age.
    pub age_ms: i64,
    /// Where its engine task stands (records).
    pub task: Option<TaskState>,
}

/// Reads the overview for `ctx`'s key.
pub fn gather(console: &Console, ctx: &RequestContext) -> Result<Overview, AwsError> {
    let admin = ctx.identity.admin;
    let mut products = BTreeMap::new();
    let mut counted = 0;
    let mut token = None;
    let mut more_products = false;
    loop {
        let page = catalog::provisioned_search::search(
            ctx,
            sc::SearchProvisionedProductsInput {
                access_level_filter: admin.then(|| sc::AccessLevelFilter {
                    key: Some("Account".into()),
                    value: Some("self".into()),
                }),
                page_size: Some(100),
                page_token: token.take(),
                ..Default::default()
            },
        )?;
        for pp in page.provisioned_products.unwrap_or_default() {
            counted += 1;
            *products.entry(pp.status.unwrap_or_default()).or_insert(0) += 1;
        }
        match page.next_page_token {
            Some(next) if counted < COUNTED => token = Some(next),
            Some(_) => {
                more_products = true;
                break;
            }
            None => break,
        }
    }

    let scope = ctx.scope();
    let account = ctx.identity.account.as_str();
    let found =
        repair::stuck(ctx.store.as_ref(), 0, Some(account), ctx.now_ms).map_err(|e| match e {
            repair::RepairError::Refused(e) => e,
            other => provisiond_model::CommonError::InternalFailure.with(other.to_string()),
        })?;
    let mut underway = Vec::new();
    for u in found.into_iter().filter(|u| u.entry.scope == scope) {
        let record = u.entry.work == Work::Record;
        if record && !admin {
            // A key that does not administer the account sees its own records, as
            // `ListRecordHistory` shows them by default.
            let owned = transact(ctx.store.as_ref(), Mode::Read, |tx| {
                store::get::<Record>(tx, Kind::Record, &scope, &u.entry.id)
            })?
            .is_some_and(|r| {
                r.owner_principal
                    .as_deref()
                    .is_none_or(|o| o == ctx.identity.principal)
            });
            if !owned {
                continue;
            }
        }
        let field = |name: &str| u.line[name].as_str().unwrap_or_default().to_string();
        underway.push(Underway {
            id: u.entry.id.clone(),
            record,
            status: u.status.to_string(),
            what: if record {
                field("RecordType")
            } else {
                field("TargetArn")
            },
            name: field("ProvisionedProductName"),
            age_ms: ctx.now_ms - u.entry.started_ms,
            task: u.task.map(|(_, state)| state),
        });
    }
    let queues = transact(ctx.store.as_ref(), Mode::Read, |tx| {
        queue::task_counts(tx, &scope, ctx.now_ms)
    })?
    .into_iter()
    .filter(|c| c.visible + c.in_flight + c.dead_lettered > 0)
    .collect();
    Ok(Overview {
        products,
        more_products,
        underway,
        queues,
        engine: console.engine_status.get().map(|s| s.snapshot()),
        stuck_after_ms: console.stuck_after_ms,
    })
}

/// The overview page.
pub fn page(
    console: &Console,
    ctx: &RequestContext,
    viewer: &Viewer<'_>,
) -> Result<Reply, AwsError> {
    let overview = gather(console, ctx)?;
    Ok(Reply::html(
        200,
        html::page("Overview", Some(viewer), "/console/", &render(&overview)),
    ))
}

/// A task's state as the pages say it.
pub fn task_text(state: TaskState) -> String {
    match state {
        TaskState::Waiting => "waiting for an engine".into(),
        TaskState::Received(1) => "received once".into(),
        TaskState::Received(n) => format!("received {n} times"),
        TaskState::DeadLettered => "dead-lettered".into(),
        TaskState::Gone => "no task".into(),
    }
}

/// The overview's HTML.
pub fn render(o: &Overview) -> String {
    let mut out = String::new();
    out.push_str("<h2>Provisioned products</h2>");
    if o.products.is_empty() {
        out.push_str("<p class=\"muted\">None yet.</p>");
    } else {
        out.push_str("<div class=\"cards\" id=\"products-by-status\">");
        for (status, n) in &o.products {
            let _ = write!(
                out,
                "<div class=\"card\"><div class=\"n\">{n}</div>{}</div>",
                badge(status)
            );
        }
        out.push_str("</div>");
        if o.more_products {
            let _ = write!(out, "<p class=\"muted\">The first {COUNTED} counted.</p>");
        }
    }

    let stuck = o
        .underway
        .iter()
        .filter(|u| u.age_ms > o.stuck_after_ms)
        .count();
    let _ = write!(
        out,
        "<h2>In progress</h2><p class=\"muted\">{} in progress, {stuck} stuck (in progress longer than {}).</p>",
        o.underway.len(),
        age(o.stuck_after_ms)
    );
    if !o.underway.is_empty() {
        out.push_str(
            "<div class=\"table\"><table id=\"in-progress\"><thead><tr><th>Id</th><th>Status</th>\
             <th>What</th><th>Name</th><th>Age</th><th>Engine task</th></tr></thead><tbody>",
        );
        for u in &o.underway {
            let link = if u.record {
                format!(
                    "<a href=\"/console/records/{}\">{}</a>",
                    PathPart(&u.id),
                    Text(&u.id)
                )
            } else {
                format!(
                    "{} <span class=\"muted\">(Proton deployment)</span>",
                    Text(&u.id)
                )
            };
            let flag = if u.age_ms > o.stuck_after_ms {
                " <span class=\"badge stuck\">stuck</span>"
            } else {
                ""
            };
            let _ = write!(
                out,
                "<tr><td>{link}</td><td>{}{flag}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                badge(&u.status),
                Text(&u.what),
                Text(&u.name),
                age(u.age_ms),
                u.task.map(task_text).unwrap_or_default(),
            );
        }
        out.push_str("</tbody></table></div>");
    }

    out.push_str("<h2>Engine tasks</h2>");
    if o.queues.is_empty() {
        out.push_str("<p class=\"muted\">No queue holds a task.</p>");
    } else {
        out.push_str(
            "<div class=\"table\"><table id=\"queues\"><thead><tr><th>Queue</th><th>Waiting</th>\
             <th>In flight</th><th>Dead-lettered</th></tr></thead><tbody>",
        );
        for q in &o.queues {
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                Text(&q.queue),
                q.visible,
                q.in_flight,
                q.dead_lettered
            );
        }
        out.push_str("</tbody></table></div>");
    }

    out.push_str("<h2>In-process engine</h2>");
    match o.engine.as_ref().and_then(|e| e.as_object()) {
        None => out.push_str(
            "<p class=\"muted\">This replica runs no engine (<code>serve --engine terraform</code> starts one).</p>",
        ),
        Some(fields) => {
            out.push_str("<dl class=\"facts\" id=\"engine\">");
            for (name, value) in fields {
                let value = match value {
                    serde_json::Value::String(s) => s.clone(),
                    serde_json::Value::Null => "none".into(),
                    other => other.to_string(),
                };
                let _ = write!(out, "<dt>{}</dt><dd>{}</dd>", Text(name), Text(&value));
            }
            out.push_str("</dl>");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_the_engines_error_are_escaped() {
        let overview = Overview {
            products: BTreeMap::from([("AVAILABLE".to_string(), 2)]),
            more_products: false,
            underway: vec![Underway {
                id: "rec-<x>".into(),
                record: true,
                status: "IN_PROGRESS".into(),
                what: "PROVISION_PRODUCT".into(),
                name: "<img src=x onerror=alert(1)>".into(),
                age_ms: 7_200_000,
                task: Some(TaskState::Received(2)),
            }],
            queues: vec![TaskCounts {
                queue: "q<".into(),
                visible: 1,
                in_flight: 0,
                dead_lettered: 3,
            }],
            engine: Some(serde_json::json!({"last_error": "<b>boom</b>", "running": 1})),
            stuck_after_ms: 3_600_000,
        };
        let html = render(&overview);
        assert!(!html.contains("<img"), "{html}");
        assert!(!html.contains("<b>boom"));
        assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;"));
        assert!(html.contains("&lt;b&gt;boom&lt;/b&gt;"));
        assert!(html.contains("href=\"/console/records/rec-%3Cx%3E\""));
        assert!(html.contains("badge stuck"), "two hours is past one");
        assert!(html.contains("received 2 times"));
        assert!(html.contains("q&lt;"));
    }
}
