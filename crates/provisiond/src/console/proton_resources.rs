//! The Proton page: the key's environments, service instances and components, each with its
//! status, status message and newest deployments (status, message, when, and the git commit
//! that delivered it to the pipeline), read through `ListEnvironments`,
//! `ListServiceInstances`, `ListComponents` and the deployments of each resource.

use super::html::{self, age, badge, when, Text, Viewer};
use super::page::Reply;
use crate::context::RequestContext;
use crate::proton::{self, deployment::Delivered};
use crate::store::{transact, Mode};
use provisiond_model::proton as pr;
use provisiond_model::AwsError;
use std::fmt::Write;

/// Resources of each kind the page lists at most.
const LISTED: i32 = 100;
/// Deployments shown per resource, newest first.
const DEPLOYMENTS: usize = 10;

/// A deployable resource as the page shows it.
pub struct Resource {
    /// `environment`, `service instance` or `component`.
    pub kind: &'static str,
    /// Its name (`env`, `service/instance`).
    pub name: String,
    /// Its deployment status.
    pub status: String,
    /// Its deployment status message.
    pub message: String,
    /// Its newest deployments.
    pub deployments: Vec<DeploymentRow>,
}

/// One deployment of a resource.
pub struct DeploymentRow {
    /// Its id.
    pub id: String,
    /// Its status.
    pub status: String,
    /// Its status message.
    pub message: String,
    /// When it started.
    pub created_ms: i64,
    /// When it ended.
    pub completed_ms: Option<i64>,
    /// The commit that delivered it.
    pub delivered: Option<Delivered>,
}

/// A resource as its list call gives it.
struct Listed {
    kind: &'static str,
    name: String,
    arn: Option<String>,
    status: Option<String>,
    message: Option<String>,
}

/// Reads the page for `ctx`'s key.
pub fn gather(ctx: &RequestContext) -> Result<Vec<Resource>, AwsError> {
    let mut found: Vec<Listed> = Vec::new();
    let environments = proton::environment::list(
        ctx,
        pr::ListEnvironmentsInput {
            max_results: Some(LISTED),
            ..Default::default()
        },
    )?;
    for e in environments.environments.unwrap_or_default() {
        found.push(Listed {
            kind: "environment",
            name: e.name.unwrap_or_default(),
            arn: e.arn,
            status: e.deployment_status,
            message: e.deployment_status_message,
        });
    }
    let instances = proton::instance_list::list(
        ctx,
        pr::ListServiceInstancesInput {
            max_results: Some(LISTED),
            ..Default::default()
        },
    )?;
    for i in instances.service_instances.unwrap_or_default() {
        found.push(Listed {
            kind: "service instance",
            name: format!(
                "{}/{}",
                i.service_name.unwrap_or_default(),
                i.name.unwrap_or_default()
            ),
            arn: i.arn,
            status: i.deployment_status,
            message: i.deployment_status_message,
        });
    }
    let components = proton::component::list(
        ctx,
        pr::ListComponentsInput {
            max_results: Some(LISTED),
            ..Default::default()
        },
    )?;
    for c in components.components.unwrap_or_default() {
        found.push(Listed {
            kind: "component",
            name: c.name.unwrap_or_default(),
            arn: c.arn,
            status: c.deployment_status,
            message: c.deployment_status_message,
        });
    }
    let scope = ctx.scope();
    let mut resources = Vec::new();
    for Listed {
        kind,
        name,
        arn,
        status,
        message,
    } in found
    {
        let mut deployments = match &arn {
            Some(arn) => transact(ctx.store.as_ref(), Mode::Read, |tx| {
                proton::deployment::of_target(tx, &scope, arn)
            })?,
            None => Vec::new(),
        };
        deployments.sort_by_key(|d| std::cmp::Reverse(d.created_ms));
        deployments.truncate(DEPLOYMENTS);
        resources.push(Resource {
            kind,
            name,
            status: status.unwrap_or_default(),
            message: message.unwrap_or_default(),
            deployments: deployments
                .into_iter()
                .map(|d| DeploymentRow {
                    status: d.status.as_str().to_string(),
                    message: d.status_message.unwrap_or_default(),
                    id: d.id,
                    created_ms: d.created_ms,
                    completed_ms: d.completed_ms,
                    delivered: d.delivered,
                })
                .collect(),
        });
    }
    Ok(resources)
}

/// The Proton page.
pub fn page(ctx: &RequestContext, viewer: &Viewer<'_>) -> Result<Reply, AwsError> {
    let resources = gather(ctx)?;
    Ok(Reply::html(
        200,
        html::page(
            "Proton",
            Some(viewer),
            "/console/proton",
            &render(&resources, ctx.now_ms),
        ),
    ))
}

/// The page's HTML.
pub fn render(resources: &[Resource], now_ms: i64) -> String {
    let mut out = String::new();
    if resources.is_empty() {
        out.push_str("<p class=\"muted\" id=\"no-proton\">No environments, service instances or components.</p>");
        return out;
    }
    for r in resources {
        let _ = write!(
            out,
            "<section class=\"proton-resource\"><h2>{} <span class=\"muted\">{}</span></h2>\
             <p>{} {}</p>",
            Text(&r.name),
            r.kind,
            badge(&r.status),
            Text(&r.message)
        );
        if r.deployments.is_empty() {
            out.push_str("<p class=\"muted\">No deployments.</p></section>");
            continue;
        }
        out.push_str(
            "<div class=\"table\"><table class=\"deployments\"><thead><tr><th>Deployment</th>\
             <th>Status</th><th>Message</th><th>Started</th><th>Took</th><th>Git commit</th>\
             </tr></thead><tbody>",
        );
        for d in &r.deployments {
            let took = match d.completed_ms {
                Some(end) => age(end - d.created_ms),
                None => format!("{} so far", age(now_ms - d.created_ms)),
            };
            let commit = match &d.delivered {
                Some(c) => format!(
                    "<code title=\"{}\">{}</code> <span class=\"muted\">{} {}</span>",
                    Text(&c.commit),
                    Text(c.commit.get(..12).unwrap_or(&c.commit)),
                    Text(&c.repository),
                    Text(&c.branch)
                ),
                None => "<span class=\"muted\">not committed</span>".into(),
            };
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{took}</td><td>{commit}</td></tr>",
                Text(&d.id),
                badge(&d.status),
                Text(&d.message),
                when(d.created_ms),
            );
        }
        out.push_str("</tbody></table></div></section>");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_status_messages_and_commits_are_escaped() {
        let resources = vec![Resource {
            kind: "environment",
            name: "<env>".into(),
            status: "FAILED".into(),
            message: "<script>x()</script>".into(),
            deployments: vec![DeploymentRow {
                id: "d-1".into(),
                status: "FAILED".into(),
                message: "pipeline said <b>no</b>".into(),
                created_ms: 1_700_000_000_000,
                completed_ms: Some(1_700_000_065_000),
                delivered: Some(Delivered {
                    repository: "acme/<r>".into(),
                    branch: "main".into(),
                    commit: "0123456789abcdef0123456789abcdef01234567".into(),
                }),
            }],
        }];
        let html = render(&resources, 1_700_000_100_000);
        assert!(!html.contains("<env>") && !html.contains("<script>") && !html.contains("<b>no"));
        assert!(html.contains("&lt;script&gt;x()&lt;/script&gt;"));
        assert!(html.contains(
            "<code title=\"0123456789abcdef0123456789abcdef01234567\">0123456789ab</code>"
        ));
        assert!(html.contains("acme/&lt;r&gt; main"));
        assert!(html.contains("1m 5s"));
    }
}
