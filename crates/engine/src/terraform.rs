//! The built-in Terraform engine (SPEC §9): an ordinary client of the public API that
//! long-polls the TerraformOS queues, downloads each task's artifact over S3, runs `terraform`
//! in a working directory per provisioned product (its local state kept there and reused by
//! updates and the terminate), and reports with the public Notify calls.
//!
//! One task at a time per provisioned product, `workers` at a time in all. Every run's full
//! log goes to `<data dir>/engine/logs/<record id>.log` (`provisiond admin logs`). A task
//! redelivered after a crash runs again: terraform converges, and SPEC §5.3 absorbs a second
//! Notify. Retries of one Notify reuse its idempotency token.

use crate::client::{Api, CallError, Client, Credentials};
use provisiond_formats::task::{queue_name, EngineOperation, TaskMessage};
use provisiond_model::servicecatalog as sc;
use provisiond_model::sqs;
use serde::de::IgnoredAny;
use serde_json::Value;
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The tag Service Catalog's reference engine puts on every resource group: its value is the
/// provisioned product id.
pub const TRACER_TAG: &str = "SERVICE_CATALOG_TERRAFORM_INTEGRATION-DO_NOT_DELETE";

/// How much of a failing command's standard error becomes the `FailureReason`.
pub const FAILURE_REASON_CHARS: usize = 2048;

/// How long a received task stays invisible to other receivers, by default; the engine
/// extends it every third of that while the task runs.
pub const DEFAULT_VISIBILITY_SECS: u64 = 900;

/// What the engine needs.
#[derive(Debug, Clone)]
pub struct Config {
    /// `http://host:port` of provisiond.
    pub endpoint: String,
    /// One key per account whose tasks the engine runs; the list may grow while the engine
    /// runs (`serve --engine` adds a key for every new account), and the engine serves each
    /// key from the moment it appears.
    pub credentials: tokio::sync::watch::Receiver<Vec<Credentials>>,
    /// Where working directories and logs live.
    pub data_dir: PathBuf,
    /// How many tasks run at once.
    pub workers: usize,
    /// The terraform executable.
    pub terraform: PathBuf,
    /// Seconds a received task stays invisible to every other receiver; extended every third
    /// of that while terraform runs, so a long run is never started twice.
    pub visibility_secs: u64,
    /// Proton repositories (registered name → local git repository) whose deployment commits
    /// the engine applies.
    pub git_repositories: std::collections::BTreeMap<String, PathBuf>,
    /// Turns `true` when the engine is to stop: pollers end their long polls and return, and
    /// `run` returns once they have.
    pub stop: tokio::sync::watch::Receiver<bool>,
}

/// Resolves when `stop` turns (or already is) `true`, or its sender is gone.
pub(crate) async fn stopped(stop: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// What the engine is doing, for `GET /health` and its log.
#[derive(Default)]
pub struct Status {
    inner: Mutex<StatusInner>,
    /// Told of every run that ends (`Status::on_run_end`).
    run_observer: std::sync::OnceLock<RunObserver>,
}

impl std::fmt::Debug for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Status")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

/// What one run of the engine worked on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunOf {
    /// A Service Catalog record's task.
    Record,
    /// A Proton deployment.
    Deployment,
}

/// How one run of the engine ended: what it ran, whether terraform succeeded, how long it took
/// from receipt to its outcome being reported.
#[derive(Debug, Clone, Copy)]
pub struct RunEnd {
    pub of: RunOf,
    pub succeeded: bool,
    pub duration: Duration,
}

/// Told of every run's end (metrics).
pub type RunObserver = Arc<dyn Fn(RunEnd) + Send + Sync>;

#[derive(Debug, Default, Clone, serde::Serialize)]
pub(crate) struct StatusInner {
    pub(crate) polling: bool,
    pub(crate) accounts: usize,
    pub(crate) running: usize,
    pub(crate) succeeded: u64,
    pub(crate) failed: u64,
    pub(crate) last_error: Option<String>,
}

impl Status {
    /// The status as JSON.
    pub fn snapshot(&self) -> Value {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner()).clone();
        serde_json::to_value(inner).unwrap_or(Value::Null)
    }

    pub(crate) fn update(&self, f: impl FnOnce(&mut StatusInner)) {
        f(&mut self.inner.lock().unwrap_or_else(|p| p.into_inner()));
    }

    /// How many tasks run now.
    pub fn running(&self) -> usize {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).running
    }

    /// Tells `observer` of every run that ends from now on (once; a second call is ignored).
    pub fn on_run_end(&self, observer: RunObserver) {
        let _ = self.run_observer.set(observer);
    }

    /// Counts a run that ended (it no longer runs) and tells the observer.
    pub(crate) fn run_ended(&self, end: RunEnd) {
        self.update(|s| {
            s.running -= 1;
            if end.succeeded {
                s.succeeded += 1;
            } else {
                s.failed += 1;
            }
        });
        if let Some(observe) = self.run_observer.get() {
            observe(end);
        }
    }
}

/// The working directory of a provisioned product.
pub fn workspace(data_dir: &Path, provisioned_product_id: &str) -> PathBuf {
    data_dir
        .join("engine")
        .join("terraform")
        .join(sanitize(provisioned_product_id))
}

/// The log file of a record (or Proton deployment).
pub fn log_path(data_dir: &Path, id: &str) -> PathBuf {
    data_dir
        .join("engine")
        .join("logs")
        .join(format!("{}.log", sanitize(id)))
}

pub(crate) fn sanitize(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The terraform executable's version line: a missing or broken binary is a start-up error.
pub fn check_terraform(terraform: &Path) -> Result<String, String> {
    let out = Command::new(terraform)
        .arg("version")
        .env("CHECKPOINT_DISABLE", "1")
        .output()
        .map_err(|e| {
            format!(
                "--terraform {}: cannot run it ({e}); install terraform or give its path",
                terraform.display()
            )
        })?;
    let text = String::from_utf8_lossy(&out.stdout);
    let version = text.lines().next().unwrap_or_default().trim().to_string();
    if !out.status.success() || !version.starts_with("Terraform v") {
        return Err(format!(
            "--terraform {}: `version` did not answer like terraform ({}): {}",
            terraform.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(version)
}

/// Runs the engine until its future is dropped (which stops every poller it started).
pub async fn run(config: Config, status: Arc<Status>) {
    let workers = Arc::new(tokio::sync::Semaphore::new(config.workers.max(1)));
    let locks: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>> = Arc::default();
    let mut tasks = tokio::task::JoinSet::new();
    if !config.git_repositories.is_empty() {
        tasks.spawn(crate::proton::watch(
            config.clone(),
            config.credentials.clone(),
            status.clone(),
        ));
    }
    let mut accounts = config.credentials.clone();
    let mut serving: std::collections::HashSet<String> = std::collections::HashSet::new();
    let mut stop = config.stop.clone();
    status.update(|s| s.polling = true);
    loop {
        let current: Vec<Credentials> = accounts.borrow_and_update().clone();
        for credentials in current {
            if !serving.insert(credentials.access_key_id.clone()) {
                continue;
            }
            let client = match Client::new(&config.endpoint, credentials.clone()) {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!("engine: {e}");
                    continue;
                }
            };
            for operation in EngineOperation::ALL {
                let queue_name = queue_name("TERRAFORM_OPEN_SOURCE", operation)
                    .expect("TERRAFORM_OPEN_SOURCE products have engine queues");
                tasks.spawn(poll(
                    client.clone(),
                    queue_name,
                    config.clone(),
                    status.clone(),
                    workers.clone(),
                    locks.clone(),
                ));
            }
            tracing::info!(
                access_key_id = %credentials.access_key_id,
                workers = config.workers,
                accounts = serving.len(),
                "engine terraform: polling the TerraformOS queues"
            );
        }
        let n = serving.len();
        status.update(|s| s.accounts = n);
        tokio::select! {
            changed = accounts.changed() => if changed.is_err() {
                // No more accounts will come: serve those there are until stopped.
                stopped(&mut stop).await;
                break;
            },
            _ = stopped(&mut stop) => break,
        }
    }
    // Every poller sees the stop and returns.
    while tasks.join_next().await.is_some() {}
    status.update(|s| s.polling = false);
    tracing::info!("engine terraform: stopped polling");
}

async fn poll(
    client: Client,
    queue_name: String,
    config: Config,
    status: Arc<Status>,
    workers: Arc<tokio::sync::Semaphore>,
    locks: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
) {
    let mut queue_url = None;
    let mut stop = config.stop.clone();
    loop {
        if *stop.borrow() {
            return;
        }
        let url = match &queue_url {
            Some(url) => url,
            None => {
                let request = sqs::GetQueueUrlRequest {
                    queue_name: Some(queue_name.clone()),
                    ..Default::default()
                };
                let answer: Result<sqs::GetQueueUrlResult, _> = client
                    .call(Api::Sqs, "GetQueueUrl", &request, Duration::from_secs(10))
                    .await;
                match answer {
                    Ok(found) => queue_url.insert(found.queue_url.unwrap_or_default()),
                    Err(e) if e.code == "UnrecognizedClientException" => {
                        tracing::info!(queue = %queue_name, "engine: the key was deleted; this poller stops");
                        return;
                    }
                    Err(e) => {
                        status.update(|s| s.last_error = Some(e.to_string()));
                        tracing::warn!(queue = %queue_name, "engine: {e}; retrying");
                        tokio::select! {
                            _ = tokio::time::sleep(Duration::from_secs(2)) => continue,
                            _ = stopped(&mut stop) => return,
                        }
                    }
                }
            }
        };
        // Long-poll only while a worker is free, but hold none while polling: with fewer
        // workers than queues, a held worker left another queue unpolled for a whole long poll.
        match workers.acquire().await {
            Ok(free) => drop(free),
            Err(_) => return,
        }
        let request = sqs::ReceiveMessageRequest {
            queue_url: Some(url.clone()),
            max_number_of_messages: Some(1),
            wait_time_seconds: Some(20),
            visibility_timeout: Some(visibility_timeout(config.visibility_secs)),
            ..Default::default()
        };
        let receive = client.call::<_, sqs::ReceiveMessageResult>(
            Api::Sqs,
            "ReceiveMessage",
            &request,
            Duration::from_secs(40),
        );
        let received = tokio::select! {
            received = receive => received,
            _ = stopped(&mut stop) => return,
        };
        let messages = match received {
            Ok(answer) => answer.messages.unwrap_or_default(),
            Err(e) if e.code == "UnrecognizedClientException" => {
                tracing::info!(queue = %queue_name, "engine: the key was deleted; this poller stops");
                return;
            }
            Err(e) => {
                status.update(|s| s.last_error = Some(e.to_string()));
                tracing::warn!(queue = %queue_name, "engine: receiving: {e}; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(2)) => continue,
                    _ = stopped(&mut stop) => return,
                }
            }
        };
        let Some(message) = messages.into_iter().next() else {
            continue;
        };
        let permit = match workers.clone().acquire_owned().await {
            Ok(p) => p,
            Err(_) => return,
        };
        let task = Task {
            client: client.clone(),
            queue_url: url.clone(),
            config: config.clone(),
            status: status.clone(),
            locks: locks.clone(),
        };
        tokio::spawn(async move {
            task.handle(message).await;
            drop(permit);
        });
    }
}

struct Task {
    client: Client,
    queue_url: String,
    config: Config,
    status: Arc<Status>,
    locks: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
}

/// How a terraform run ended.
pub(crate) struct Outcome {
    /// `None` on success, else the failure reason.
    pub(crate) failure: Option<String>,
    /// `terraform output -json`, as Service Catalog outputs.
    pub(crate) outputs: Vec<(String, String)>,
}

impl Task {
    async fn handle(self, message: sqs::Message) {
        let receipt = message.receipt_handle.unwrap_or_default();
        let body: TaskMessage = match message.body.as_deref().map(serde_json::from_str) {
            Some(Ok(task)) => task,
            _ => {
                tracing::warn!("engine: a message that is not a task body was left on its queue");
                return;
            }
        };
        let record = body.record_id.clone();
        let pp = body.provisioned_product_id.clone();
        let operation = body.operation;
        let lock = {
            let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
            locks.entry(pp.clone()).or_default().clone()
        };
        let _one_per_product = lock.lock().await;
        let began = std::time::Instant::now();
        self.status.update(|s| s.running += 1);
        tracing::info!(record = %record, provisioned_product = %pp, ?operation, "engine: received");
        // However long terraform runs, the task stays invisible to every other receiver (this
        // replica's or another's), so it never runs twice at once.
        let heartbeat = tokio::spawn(keep_invisible(
            self.client.clone(),
            self.queue_url.clone(),
            receipt.clone(),
            self.config.visibility_secs,
        ));
        let outcome = self.execute(&body).await;
        heartbeat.abort();
        let succeeded = outcome.failure.is_none();
        if let Some(failure) = &outcome.failure {
            let reason = provisiond_model::runtime::cut(failure.trim(), 500).into_owned();
            self.status
                .update(|s| s.last_error = Some(format!("{record}: {reason}")));
        }
        let notified = self.notify(&body, &outcome).await;
        self.status.run_ended(RunEnd {
            of: RunOf::Record,
            succeeded,
            duration: began.elapsed(),
        });
        match notified {
            Ok(()) => {
                tracing::info!(record = %record, status = if succeeded { "SUCCEEDED" } else { "FAILED" }, "engine: notified");
                let request = sqs::DeleteMessageRequest {
                    queue_url: Some(self.queue_url.clone()),
                    receipt_handle: Some(receipt),
                };
                let deleted = self
                    .client
                    .call::<_, IgnoredAny>(
                        Api::Sqs,
                        "DeleteMessage",
                        &request,
                        Duration::from_secs(10),
                    )
                    .await;
                if let Err(e) = deleted {
                    tracing::warn!(record = %record, "engine: deleting the task: {e}");
                }
            }
            Err(e) => {
                self.status.update(|s| s.last_error = Some(e.to_string()));
                tracing::warn!(record = %record, "engine: notify failed, the task will be redelivered: {e}");
            }
        }
    }

    async fn execute(&self, body: &TaskMessage) -> Outcome {
        let pp = body.provisioned_product_id.as_str();
        let workspace = workspace(&self.config.data_dir, pp);
        let log = log_path(&self.config.data_dir, &body.record_id);
        let artifact_path = body
            .artifact
            .as_ref()
            .map(|artifact| artifact.path.clone())
            .unwrap_or_default();
        let artifact = if body.operation == EngineOperation::Terminate {
            None
        } else {
            let Some((bucket, key)) = body.artifact.as_ref().and_then(|a| a.bucket_and_key())
            else {
                return failed(format!(
                    "the task's artifact path {artifact_path:?} is not s3://bucket/key"
                ));
            };
            match self.client.get_object(bucket, key).await {
                Ok(bytes) => Some(bytes),
                Err(e) => return failed(format!("downloading {artifact_path}: {e}")),
            }
        };
        let parameters: Vec<(String, String)> = body
            .parameters
            .iter()
            .flatten()
            .map(|p| (p.key.clone(), p.value.clone()))
            .collect();
        // The product's state as the last run left it, wherever that run was.
        let shared =
            match crate::shared_state::fetch(&self.client, &crate::shared_state::product_key(pp))
                .await
            {
                Ok(shared) => shared,
                Err(e) => return failed(format!("reading the engine's shared state: {e}")),
            };
        let terraform = self.config.terraform.clone();
        let record = body.record_id.clone();
        let workspace_after = workspace.clone();
        let run = move || {
            if let Some(shared) = &shared {
                if let Err(e) = crate::shared_state::unpack(&workspace, shared) {
                    return failed(e);
                }
            }
            run_in(
                artifact,
                &artifact_path,
                &terraform,
                &workspace,
                &log,
                &record,
                &parameters,
            )
        };
        let outcome = tokio::task::spawn_blocking(run)
            .await
            .unwrap_or_else(|e| failed(format!("the terraform run panicked: {e}")));
        // Whatever the run did to the state (a failed apply may have changed it too) is saved
        // for the next run, on any replica.
        let packed =
            match tokio::task::spawn_blocking(move || crate::shared_state::pack(&workspace_after))
                .await
            {
                Ok(Ok(packed)) => packed,
                Ok(Err(e)) => return failed(format!("packing the engine's state: {e}")),
                Err(e) => return failed(format!("packing the engine's state panicked: {e}")),
            };
        if let Err(e) =
            crate::shared_state::save(&self.client, &crate::shared_state::product_key(pp), packed)
                .await
        {
            return failed(format!(
                "terraform ran, but its state could not be saved for the next run: {e}"
            ));
        }
        outcome
    }

    async fn notify(&self, body: &TaskMessage, outcome: &Outcome) -> Result<(), CallError> {
        let status = if outcome.failure.is_some() {
            "FAILED"
        } else {
            "SUCCEEDED"
        };
        let report = Report {
            workflow_token: body.token.clone(),
            record_id: body.record_id.clone(),
            status: status.to_string(),
            failure_reason: outcome.failure.clone(),
            idempotency_token: crate::random_token(),
            outputs: record_outputs(&outcome.outputs),
        };
        let call = body.operation.notify_operation();
        let input = match body.operation {
            EngineOperation::Provision => {
                serde_json::to_value(report.provision(&body.provisioned_product_id))
            }
            EngineOperation::Update => serde_json::to_value(report.update()),
            EngineOperation::Terminate => serde_json::to_value(report.terminate()),
        }
        .expect("model shapes serialize");
        let record = body.record_id.as_str();
        let mut delay = Duration::from_millis(200);
        for attempt in 1..=5 {
            match self
                .client
                .call::<_, IgnoredAny>(Api::ServiceCatalog, call, &input, Duration::from_secs(30))
                .await
            {
                Ok(_) => return Ok(()),
                Err(e) if e.is_retryable() && attempt < 5 => {
                    tracing::warn!(record = %record, "engine: notify attempt {attempt}: {e}");
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
                Err(e) => return Err(e),
            }
        }
        unreachable!("the last attempt returns")
    }
}

/// Extends a running task's visibility to `secs` every third of `secs`, until aborted.
async fn keep_invisible(client: Client, queue_url: String, receipt: String, secs: u64) {
    let every = Duration::from_secs_f64(secs as f64 / 3.0);
    loop {
        tokio::time::sleep(every).await;
        let request = sqs::ChangeMessageVisibilityRequest {
            queue_url: Some(queue_url.clone()),
            receipt_handle: Some(receipt.clone()),
            visibility_timeout: Some(visibility_timeout(secs)),
        };
        let extended = client
            .call::<_, IgnoredAny>(
                Api::Sqs,
                "ChangeMessageVisibility",
                &request,
                Duration::from_secs(10),
            )
            .await;
        if let Err(e) = extended {
            tracing::warn!("engine: extending a running task's visibility: {e}");
        }
    }
}

/// One run: apply the artifact's module, or destroy when there is none (a terminate).
fn run_in(
    artifact: Option<Vec<u8>>,
    artifact_path: &str,
    terraform: &Path,
    workspace: &Path,
    log: &Path,
    record: &str,
    parameters: &[(String, String)],
) -> Outcome {
    match artifact {
        Some(bytes) => match provisiond_formats::bundle::read(&bytes).map_err(|e| {
            format!(
                "the artifact {artifact_path} cannot be unpacked ({e}); publish a new version \
                 of the product with a .tar.gz of the Terraform module"
            )
        }) {
            Ok(files) => apply(terraform, workspace, log, record, files, Some(parameters)),
            Err(e) => failed(e),
        },
        None => destroy(terraform, workspace, log, record),
    }
}

/// A visibility timeout in the model's type (SQS allows at most 12 hours).
fn visibility_timeout(secs: u64) -> i32 {
    i32::try_from(secs).unwrap_or(i32::MAX)
}

/// What every Notify call of a run says; each operation's input takes its part of it.
struct Report {
    workflow_token: String,
    record_id: String,
    status: String,
    failure_reason: Option<String>,
    idempotency_token: String,
    outputs: Vec<sc::RecordOutput>,
}

impl Report {
    fn provision(
        self,
        provisioned_product_id: &str,
    ) -> sc::NotifyProvisionProductEngineWorkflowResultInput {
        sc::NotifyProvisionProductEngineWorkflowResultInput {
            workflow_token: Some(self.workflow_token),
            record_id: Some(self.record_id),
            status: Some(self.status),
            failure_reason: self.failure_reason,
            resource_identifier: Some(sc::EngineWorkflowResourceIdentifier {
                unique_tag: Some(sc::UniqueTagResourceIdentifier {
                    key: Some(TRACER_TAG.to_string()),
                    value: Some(provisioned_product_id.to_string()),
                }),
            }),
            outputs: Some(self.outputs),
            idempotency_token: Some(self.idempotency_token),
        }
    }

    fn update(self) -> sc::NotifyUpdateProvisionedProductEngineWorkflowResultInput {
        sc::NotifyUpdateProvisionedProductEngineWorkflowResultInput {
            workflow_token: Some(self.workflow_token),
            record_id: Some(self.record_id),
            status: Some(self.status),
            failure_reason: self.failure_reason,
            outputs: Some(self.outputs),
            idempotency_token: Some(self.idempotency_token),
        }
    }

    fn terminate(self) -> sc::NotifyTerminateProvisionedProductEngineWorkflowResultInput {
        sc::NotifyTerminateProvisionedProductEngineWorkflowResultInput {
            workflow_token: Some(self.workflow_token),
            record_id: Some(self.record_id),
            status: Some(self.status),
            failure_reason: self.failure_reason,
            idempotency_token: Some(self.idempotency_token),
        }
    }
}

fn record_outputs(outputs: &[(String, String)]) -> Vec<sc::RecordOutput> {
    outputs
        .iter()
        .map(|(key, value)| sc::RecordOutput {
            output_key: Some(key.clone()),
            output_value: Some(value.clone()),
            description: None,
        })
        .collect()
}

pub(crate) fn failed(reason: String) -> Outcome {
    Outcome {
        failure: Some(tail(&reason, FAILURE_REASON_CHARS)),
        outputs: Vec::new(),
    }
}

/// The last `n` characters of `text`.
pub fn tail(text: &str, n: usize) -> String {
    let count = text.chars().count();
    text.chars().skip(count.saturating_sub(n)).collect()
}

/// Where a working directory keeps a copy of the configuration and variables of its last
/// successful apply: a terminate destroys with them, even after a failed update changed the
/// working files.
pub(crate) const APPLIED: &str = ".provisiond-applied";

/// Files the engine keeps in a working directory between runs: terraform's state and plugins,
/// and the last applied configuration.
const KEPT: [&str; 5] = [
    "terraform.tfstate",
    "terraform.tfstate.backup",
    ".terraform",
    ".terraform.lock.hcl",
    APPLIED,
];

/// Removes everything but [`KEPT`] from `workspace`.
fn clear(workspace: &Path) -> Result<(), String> {
    for entry in std::fs::read_dir(workspace).map_err(|e| e.to_string())? {
        let entry = entry.map_err(|e| e.to_string())?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if KEPT.contains(&name.as_str()) {
            continue;
        }
        let path = entry.path();
        let removed = if path.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        removed.map_err(|e| format!("clearing {}: {e}", path.display()))?;
    }
    Ok(())
}

/// Copies the files of `from` (all but [`KEPT`]) into `to`, recursively.
fn copy_tree(from: &Path, to: &Path) -> Result<(), String> {
    std::fs::create_dir_all(to).map_err(|e| e.to_string())?;
    for entry in std::fs::read_dir(from).map_err(|e| e.to_string())? {
        let entry = entry.map_err(|e| e.to_string())?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if KEPT.contains(&name.as_str()) {
            continue;
        }
        let target = to.join(&name);
        if entry.path().is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target).map_err(|e| format!("copying {name}: {e}"))?;
        }
    }
    Ok(())
}

/// The parameters as a tfvars file: each value decoded from JSON text where it parses (so
/// lists, maps, numbers and booleans reach terraform typed), else the string itself.
pub fn tfvars(parameters: &[(String, String)]) -> Value {
    Value::Object(
        parameters
            .iter()
            .map(|(k, v)| {
                let value =
                    serde_json::from_str::<Value>(v).unwrap_or_else(|_| Value::String(v.clone()));
                (k.clone(), value)
            })
            .collect(),
    )
}

/// `terraform output -json` as Service Catalog outputs: strings as they are, other values as
/// JSON text, sensitive ones as `(sensitive value)`.
pub fn outputs_from_json(text: &str) -> Vec<(String, String)> {
    let Ok(Value::Object(map)) = serde_json::from_str::<Value>(text) else {
        return Vec::new();
    };
    map.into_iter()
        .map(|(name, o)| {
            let value = if o["sensitive"].as_bool() == Some(true) {
                "(sensitive value)".to_string()
            } else {
                match &o["value"] {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                }
            };
            (name, value)
        })
        .collect()
}

/// Writes `files` (and `parameters` as `provisiond.auto.tfvars.json`, when given) into
/// `workspace`, then runs init, apply and output. `id` names the run in the log lines.
pub(crate) fn apply(
    terraform: &Path,
    workspace: &Path,
    log: &Path,
    id: &str,
    files: provisiond_formats::bundle::Files,
    parameters: Option<&[(String, String)]>,
) -> Outcome {
    let record = id;
    let prepared = (|| -> Result<(), String> {
        std::fs::create_dir_all(workspace)
            .map_err(|e| format!("creating {}: {e}", workspace.display()))?;
        clear(workspace)?;
        for (path, bytes) in files {
            let target = workspace.join(&path);
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
            }
            std::fs::write(&target, bytes).map_err(|e| format!("writing {path}: {e}"))?;
        }
        match parameters {
            Some(parameters) => {
                let vars =
                    serde_json::to_vec_pretty(&tfvars(parameters)).expect("JSON values serialize");
                std::fs::write(workspace.join("provisiond.auto.tfvars.json"), vars)
                    .map_err(|e| e.to_string())
            }
            None => Ok(()),
        }
    })();
    if let Err(e) = prepared {
        return failed(e);
    }
    for (step, args) in [
        ("init", vec!["init", "-input=false", "-no-color"]),
        (
            "apply",
            vec!["apply", "-auto-approve", "-input=false", "-no-color"],
        ),
    ] {
        tracing::info!(record = %record, "engine: terraform {step}");
        if let Err(reason) = terraform_run(terraform, workspace, log, &args) {
            return failed(reason);
        }
    }
    let applied = workspace.join(APPLIED);
    let _ = std::fs::remove_dir_all(&applied);
    if let Err(e) = copy_tree(workspace, &applied) {
        return failed(format!("keeping the applied configuration: {e}"));
    }
    match terraform_run(terraform, workspace, log, &["output", "-json", "-no-color"]) {
        Ok(stdout) => Outcome {
            failure: None,
            outputs: outputs_from_json(&stdout),
        },
        Err(reason) => failed(reason),
    }
}

/// Destroys what the working directory's state holds, with the last applied configuration.
pub(crate) fn destroy(terraform: &Path, workspace: &Path, log: &Path, record: &str) -> Outcome {
    if !workspace.join("terraform.tfstate").exists() {
        append_log(
            log,
            "no terraform state for this provisioned product: nothing to destroy\n",
        );
        let _ = std::fs::remove_dir_all(workspace);
        return Outcome {
            failure: None,
            outputs: Vec::new(),
        };
    }
    let applied = workspace.join(APPLIED);
    if applied.is_dir() {
        if let Err(e) = clear(workspace).and_then(|_| copy_tree(&applied, workspace)) {
            return failed(format!("restoring the applied configuration: {e}"));
        }
    }
    for (step, args) in [
        ("init", vec!["init", "-input=false", "-no-color"]),
        (
            "destroy",
            vec!["destroy", "-auto-approve", "-input=false", "-no-color"],
        ),
    ] {
        tracing::info!(record = %record, "engine: terraform {step}");
        if let Err(reason) = terraform_run(terraform, workspace, log, &args) {
            return failed(reason);
        }
    }
    let _ = std::fs::remove_dir_all(workspace);
    Outcome {
        failure: None,
        outputs: Vec::new(),
    }
}

fn append_log(log: &Path, text: &str) {
    if let Some(parent) = log.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    if let Ok(mut file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
    {
        let _ = file.write_all(text.as_bytes());
    }
}

/// Asks the kernel to send the child SIGTERM when the thread that started it ends, so a
/// terraform run does not outlive a stopped provisiond (terraform stops cleanly on SIGTERM and
/// the task is redelivered after its visibility timeout).
fn stop_with_this_process(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl(PR_SET_PDEATHSIG) is async-signal-safe and touches no memory of ours.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
}

/// Runs one terraform command in `workspace`, appending everything it prints to `log`;
/// its standard output, or the tail of its standard error when it fails.
fn terraform_run(
    terraform: &Path,
    workspace: &Path,
    log: &Path,
    args: &[&str],
) -> Result<String, String> {
    append_log(log, &format!("$ terraform {}\n", args.join(" ")));
    let mut command = Command::new(terraform);
    command
        .args(args)
        .current_dir(workspace)
        .env("TF_IN_AUTOMATION", "1")
        .env("TF_INPUT", "0")
        .env("CHECKPOINT_DISABLE", "1");
    stop_with_this_process(&mut command);
    let out = command
        .output()
        .map_err(|e| format!("running {}: {e}", terraform.display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    append_log(log, &stdout);
    append_log(log, &stderr);
    append_log(
        log,
        &format!("[exit {}]\n\n", out.status.code().unwrap_or(-1)),
    );
    if out.status.success() {
        Ok(stdout)
    } else if stderr.trim().is_empty() {
        Err(format!("terraform {} failed with {}", args[0], out.status))
    } else {
        Err(stderr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parameters_and_outputs_convert_like_the_reference_engine() {
        let vars = tfvars(&[
            ("name".into(), "bucket".into()),
            ("size".into(), "3".into()),
            ("tags".into(), r#"{"a":"b"}"#.into()),
        ]);
        assert_eq!(
            vars,
            json!({"name": "bucket", "size": 3, "tags": {"a": "b"}})
        );
        let outputs = outputs_from_json(
            r#"{"a":{"sensitive":false,"type":"string","value":"x"},
                "b":{"sensitive":false,"type":"number","value":4},
                "c":{"sensitive":true,"type":"string","value":"secret"}}"#,
        );
        assert_eq!(
            outputs,
            [
                ("a".to_string(), "x".to_string()),
                ("b".to_string(), "4".to_string()),
                ("c".to_string(), "(sensitive value)".to_string())
            ]
        );
        assert_eq!(tail("abcdef", 3), "def");
        assert_eq!(tail("ab", 3), "ab");
    }
}
