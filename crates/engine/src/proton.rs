//! The built-in engine's Proton side (SPEC §9): it watches the git repositories it is given
//! (`--git-repository NAME=PATH`) for the deployment commits provisiond makes, applies each one
//! with terraform in a working directory per resource (local state kept there), and reports
//! with `NotifyResourceDeploymentStatusChange`: `IN_PROGRESS`, then `SUCCEEDED` with the outputs
//! or `FAILED` with the error. A commit whose metadata says `isResourceDeleted: true` is
//! destroyed instead.
//!
//! Commits are found by their `Proton-Deployment-Id:` trailer and handled in branch order, one
//! at a time. Before applying, the engine asks `GetDeployment` whether the deployment is still
//! in progress, so a commit seen again after a restart (or a cancelled deployment) is skipped,
//! and claims it in the shared object store, so that of several engines mapping one repository
//! (replicas on one database) exactly one runs it. A resource's terraform state travels through
//! that store too ([`crate::shared_state`]), so its next deployment may run on any engine.
//! The last commit handled per branch is remembered under the engine's data directory.

use crate::client::{Api, Client};
use crate::shared_state;
use crate::terraform::{self, Config, Outcome, Status, FAILURE_REASON_CHARS};
use provisiond_formats::bundle::Files;
use provisiond_formats::repository::{NestedResources, METADATA_FILE};
use provisiond_model::proton as pr;
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

/// How often the repositories are looked at.
pub const SCAN_INTERVAL: Duration = Duration::from_millis(250);

/// Proton allows at most this many outputs per notify.
const MAX_OUTPUTS: usize = 50;

/// A deployment commit found on a branch.
#[derive(Debug, Clone)]
struct Job {
    repository: PathBuf,
    commit: String,
    folder: String,
    deployment_id: String,
}

/// Watches the configured repositories until the process ends.
pub async fn watch(
    config: Config,
    accounts: tokio::sync::watch::Receiver<Vec<crate::client::Credentials>>,
    status: Arc<Status>,
) {
    tracing::info!(
        repositories = config.git_repositories.len(),
        "engine terraform: watching Proton repositories"
    );
    loop {
        for (name, path) in config.git_repositories.clone() {
            let cursor_dir = config
                .data_dir
                .join("engine")
                .join("proton")
                .join("cursors");
            let scan = {
                let (path, name, cursor_dir) = (path.clone(), name.clone(), cursor_dir.clone());
                tokio::task::spawn_blocking(move || scan(&path, &name, &cursor_dir)).await
            };
            let branches = match scan {
                Ok(Ok(found)) => found,
                Ok(Err(e)) => {
                    tracing::warn!(repository = %name, "engine: reading the repository: {e}");
                    continue;
                }
                Err(_) => continue,
            };
            // The keys known now: accounts may have been added since the last scan.
            let clients: Vec<Client> = accounts
                .borrow()
                .iter()
                .filter_map(|c| Client::new(&config.endpoint, c.clone()).ok())
                .collect();
            for (branch, jobs) in branches {
                for job in jobs {
                    if handle(&config, &clients, &status, &job).await == Seen::Later {
                        break;
                    }
                    let cursor = cursor_file(&cursor_dir, &name, &branch);
                    if let Some(parent) = cursor.parent() {
                        let _ = std::fs::create_dir_all(parent);
                    }
                    if let Err(e) = std::fs::write(&cursor, &job.commit) {
                        tracing::warn!("engine: remembering commit {}: {e}", job.commit);
                    }
                }
            }
        }
        let mut stop = config.stop.clone();
        tokio::select! {
            _ = tokio::time::sleep(SCAN_INTERVAL) => {}
            _ = crate::terraform::stopped(&mut stop) => return,
        }
    }
}

fn cursor_file(dir: &Path, repository: &str, branch: &str) -> PathBuf {
    dir.join(terraform::sanitize(repository))
        .join(terraform::sanitize(branch))
}

/// The deployment commits of every branch after the last one handled, oldest first.
fn scan(repo: &Path, name: &str, cursor_dir: &Path) -> Result<Vec<(String, Vec<Job>)>, String> {
    let refs = git(
        repo,
        &[
            "for-each-ref",
            "--format=%(refname:short) %(objectname)",
            "refs/heads",
        ],
    )?;
    let mut out = Vec::new();
    for line in refs.lines() {
        let Some((branch, tip)) = line.split_once(' ') else {
            continue;
        };
        let last = std::fs::read_to_string(cursor_file(cursor_dir, name, branch))
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty());
        if last.as_deref() == Some(tip) {
            continue;
        }
        let range = match &last {
            Some(last) if git(repo, &["merge-base", "--is-ancestor", last, tip]).is_ok() => {
                format!("{last}..{tip}")
            }
            _ => tip.to_string(),
        };
        let listed = git(
            repo,
            &["log", "--reverse", "--format=%H%x1f%s%x1f%b%x1e", &range],
        )?;
        let mut jobs = Vec::new();
        for entry in listed.split('\u{1e}') {
            let mut parts = entry.trim_start_matches('\n').splitn(3, '\u{1f}');
            let (Some(commit), Some(subject), Some(body)) =
                (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let Some(folder) = subject.strip_prefix("Update requested for Proton - ") else {
                continue;
            };
            let Some(deployment_id) = body
                .lines()
                .find_map(|l| l.trim().strip_prefix("Proton-Deployment-Id:"))
                .map(|id| id.trim().to_string())
            else {
                continue;
            };
            jobs.push(Job {
                repository: repo.to_path_buf(),
                commit: commit.trim().to_string(),
                folder: folder.trim().to_string(),
                deployment_id,
            });
        }
        if jobs.is_empty() {
            // Nothing of provisiond's on this stretch; remember the tip all the same.
            let cursor = cursor_file(cursor_dir, name, branch);
            if let Some(parent) = cursor.parent() {
                let _ = std::fs::create_dir_all(parent);
            }
            let _ = std::fs::write(cursor, tip);
        }
        out.push((branch.to_string(), jobs));
    }
    Ok(out)
}

/// The files of `folder` at `commit`, relative to the folder, without the folders of other
/// resources nested in it (an environment's service instances and components).
fn files_at(repo: &Path, commit: &str, folder: &str) -> Result<Files, String> {
    let listed = git(
        repo,
        &[
            "ls-tree",
            "-r",
            "--name-only",
            commit,
            "--",
            &format!("{folder}/"),
        ],
    )?;
    let paths: Vec<&str> = listed.lines().filter(|l| !l.is_empty()).collect();
    let nested = NestedResources::below(folder, &paths);
    let mut files = Files::new();
    for path in paths.into_iter().filter(|p| !nested.holds(p)) {
        let out = Command::new("git")
            .arg("-C")
            .arg(repo)
            .args(["show", &format!("{commit}:{path}")])
            .output()
            .map_err(|e| format!("running git: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "git show {path}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        let relative = path.strip_prefix(&format!("{folder}/")).unwrap_or(path);
        files.insert(relative.to_string(), out.stdout);
    }
    Ok(files)
}

/// What became of a deployment commit the engine looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    /// Run, or not to be run by this engine: the branch's cursor moves past it.
    Done,
    /// To be looked at again on the next scan: the cursor stays before it.
    Later,
}

/// Handles one deployment commit: `Seen::Later` when it must be looked at again (the server
/// did not answer whether it is still to be done, or its claim), else `Seen::Done`.
async fn handle(config: &Config, clients: &[Client], status: &Arc<Status>, job: &Job) -> Seen {
    let id = &job.deployment_id;
    // Which account's deployment is it, and is it still to be done?
    let mut found = None;
    let mut unanswered = false;
    for client in clients {
        let request = pr::GetDeploymentInput {
            id: Some(id.clone()),
            ..Default::default()
        };
        let answer: Result<pr::GetDeploymentOutput, _> = client
            .call(
                Api::Proton,
                "GetDeployment",
                &request,
                Duration::from_secs(10),
            )
            .await;
        match answer {
            Ok(answer) => {
                found = Some((client.clone(), answer.deployment.unwrap_or_default()));
                break;
            }
            Err(e) => unanswered |= e.is_retryable(),
        }
    }
    let Some((client, deployment)) = found else {
        if unanswered {
            tracing::warn!(deployment = %id, "engine: the server did not answer GetDeployment; looked at again later");
            return Seen::Later;
        }
        tracing::warn!(deployment = %id, "engine: no configured key can see this deployment; skipped");
        return Seen::Done;
    };
    let state = deployment.deployment_status.as_deref().unwrap_or_default();
    if state != "IN_PROGRESS" && state != "DELETE_IN_PROGRESS" {
        tracing::info!(deployment = %id, %state, "engine: deployment already ended; skipped");
        return Seen::Done;
    }
    let arn = deployment.target_arn.unwrap_or_default();
    // Every engine mapping the repository sees this commit: the one whose claim lands first
    // runs it, the others pass it by.
    let holder = serde_json::to_string(&Claim {
        engine: config.data_dir.display().to_string(),
        pid: std::process::id(),
        claimed_at: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0),
    })
    .expect("claims serialize");
    match shared_state::claim(&client, id, &holder).await {
        Ok(true) => {}
        Ok(false) => {
            tracing::info!(deployment = %id, "engine: another engine has claimed this deployment; skipped");
            return Seen::Done;
        }
        Err(e) => {
            // Unclaimed, nothing ran: the commit is looked at again on the next scan.
            tracing::warn!(deployment = %id, "engine: claiming the deployment: {e}");
            return Seen::Later;
        }
    }
    let (repo, commit, folder) = (
        job.repository.clone(),
        job.commit.clone(),
        job.folder.clone(),
    );
    let files = match tokio::task::spawn_blocking(move || files_at(&repo, &commit, &folder)).await {
        Ok(Ok(files)) => files,
        Ok(Err(e)) => {
            report(
                &client,
                &arn,
                id,
                &terraform::failed(format!("reading the deployment commit: {e}")),
            )
            .await;
            return Seen::Done;
        }
        Err(e) => {
            tracing::warn!(deployment = %id, "engine: {e}");
            return Seen::Done;
        }
    };
    let is_delete = files
        .get(METADATA_FILE)
        .and_then(|bytes| serde_json::from_slice::<Metadata>(bytes).ok())
        .is_some_and(|metadata| metadata.is_resource_deleted);
    tracing::info!(deployment = %id, resource = %arn, delete = is_delete, "engine: received");
    let began = std::time::Instant::now();
    status.update(|s| s.running += 1);
    let in_progress = pr::NotifyResourceDeploymentStatusChangeInput {
        resource_arn: Some(arn.clone()),
        deployment_id: Some(id.clone()),
        status: Some("IN_PROGRESS".to_string()),
        ..Default::default()
    };
    let started = client
        .call::<_, IgnoredAny>(
            Api::Proton,
            "NotifyResourceDeploymentStatusChange",
            &in_progress,
            Duration::from_secs(10),
        )
        .await;
    if let Err(e) = started {
        tracing::warn!(deployment = %id, "engine: reporting IN_PROGRESS: {e}");
    }
    let workspace = config
        .data_dir
        .join("engine")
        .join("proton")
        .join("workspaces")
        .join(terraform::sanitize(&arn));
    let log = terraform::log_path(&config.data_dir, id);
    let terraform_bin = config.terraform.clone();
    let run_id = id.clone();
    let outcome = run_with_shared_state(&client, &arn, workspace, move |workspace| {
        if is_delete {
            terraform::destroy(&terraform_bin, workspace, &log, &run_id)
        } else {
            terraform::apply(&terraform_bin, workspace, &log, &run_id, files, None)
        }
    })
    .await;
    let ok = outcome.failure.is_none();
    report(&client, &arn, id, &outcome).await;
    status.run_ended(terraform::RunEnd {
        of: terraform::RunOf::Deployment,
        succeeded: ok,
        duration: began.elapsed(),
    });
    Seen::Done
}

/// Runs `run` in `workspace` with the resource's state as the last run left it, on whichever
/// engine that was, and saves what the run leaves before the outcome is reported, so the
/// resource's next deployment starts from it wherever it runs.
async fn run_with_shared_state(
    client: &Client,
    arn: &str,
    workspace: PathBuf,
    run: impl FnOnce(&Path) -> Outcome + Send + 'static,
) -> Outcome {
    let key = shared_state::proton_key(arn);
    let shared = match shared_state::fetch(client, &key).await {
        Ok(shared) => shared,
        Err(e) => return terraform::failed(format!("reading the engine's shared state: {e}")),
    };
    let ran = tokio::task::spawn_blocking(move || {
        if let Some(shared) = &shared {
            if let Err(e) = shared_state::unpack(&workspace, shared) {
                return (terraform::failed(e), None);
            }
        }
        let outcome = run(&workspace);
        (outcome, Some(shared_state::pack(&workspace)))
    })
    .await;
    let (outcome, packed) = match ran {
        Ok((outcome, Some(Ok(packed)))) => (outcome, packed),
        Ok((outcome, None)) => return outcome,
        Ok((_, Some(Err(e)))) => {
            return terraform::failed(format!("packing the engine's state: {e}"))
        }
        Err(e) => return terraform::failed(format!("the terraform run panicked: {e}")),
    };
    if let Err(e) = shared_state::save(client, &key, packed).await {
        return terraform::failed(format!(
            "terraform ran, but its state could not be saved for the next run: {e}"
        ));
    }
    outcome
}

/// Reports the outcome, retrying transport failures.
async fn report(client: &Client, arn: &str, id: &str, outcome: &Outcome) {
    let mut input = pr::NotifyResourceDeploymentStatusChangeInput {
        resource_arn: Some(arn.to_string()),
        deployment_id: Some(id.to_string()),
        ..Default::default()
    };
    match &outcome.failure {
        None => {
            input.status = Some("SUCCEEDED".to_string());
            let outputs = outcome
                .outputs
                .iter()
                .filter(|(k, v)| !k.is_empty() && !v.is_empty())
                .take(MAX_OUTPUTS)
                .map(|(k, v)| pr::Output {
                    key: Some(terraform::tail(k, 1024)),
                    value_string: Some(terraform::tail(v, 1024)),
                })
                .collect();
            input.outputs = Some(outputs);
        }
        Some(reason) => {
            input.status = Some("FAILED".to_string());
            input.status_message = Some(terraform::tail(reason, FAILURE_REASON_CHARS));
        }
    }
    let status = input.status.clone().unwrap_or_default();
    let mut delay = Duration::from_millis(200);
    for attempt in 1..=5 {
        match client
            .call::<_, IgnoredAny>(
                Api::Proton,
                "NotifyResourceDeploymentStatusChange",
                &input,
                Duration::from_secs(30),
            )
            .await
        {
            Ok(_) => {
                tracing::info!(deployment = %id, %status, "engine: notified");
                return;
            }
            Err(e) if e.is_retryable() && attempt < 5 => {
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
            Err(e) => {
                tracing::warn!(deployment = %id, "engine: notify failed: {e}");
                return;
            }
        }
    }
}

fn git(repo: &Path, args: &[&str]) -> Result<String, String> {
    provisiond_formats::repository::git(repo, args, None, &[])
}

/// The part of a deployment's metadata the engine reads.
#[derive(Deserialize)]
struct Metadata {
    /// `true` when the deployment deletes the resource: destroy instead of apply.
    #[serde(rename = "isResourceDeleted", default)]
    is_resource_deleted: bool,
}

/// Who claimed a deployment, kept with the claim for an operator reading the object store.
#[derive(Serialize)]
struct Claim {
    /// The claiming engine's data directory.
    engine: String,
    /// Its process.
    pid: u32,
    /// When, epoch milliseconds.
    #[serde(rename = "claimedAt")]
    claimed_at: u64,
}
