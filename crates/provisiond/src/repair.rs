//! Stuck work, across services and accounts: what `admin records --stuck-for` lists, what
//! `admin record-fail` / `record-retry` do to one record or deployment found by its id alone,
//! and what `serve --record-timeout` does by itself. Each action changes its record or
//! deployment and writes its audit entry in one transaction; the remedies themselves live
//! with their domain (`catalog::repair`, `proton::repair`).

use crate::audit;
use crate::catalog;
use crate::catalog::provisioning::Record;
use crate::crypto::ServerKey;
use crate::in_flight::{self, Entry, Work};
use crate::proton;
use crate::queue::TaskState;
use crate::store::{self, transact, Kind, Mode, Store, StoreError, Tx};
use crate::time::format_iso8601;
use provisiond_model::AwsError;
use serde_json::{json, Value};

/// Why an action did not happen.
#[derive(Debug)]
pub enum RepairError {
    /// Nothing of that id is in progress.
    NotInProgress(String),
    /// The domain refused (the record is settled, its product is gone, …).
    Refused(AwsError),
    /// The store failed.
    Store(StoreError),
}

impl std::fmt::Display for RepairError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotInProgress(id) => write!(
                f,
                "no record or deployment {id:?} is in progress (see `provisiond admin records --stuck-for 0s`)"
            ),
            Self::Refused(e) => write!(f, "{}: {}", e.code, e.message),
            Self::Store(e) => write!(f, "{e}"),
        }
    }
}

impl From<AwsError> for RepairError {
    fn from(e: AwsError) -> Self {
        Self::Refused(e)
    }
}

impl From<StoreError> for RepairError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

/// Who acts: an operator at the command line, provisiond itself, or an admin key in the
/// console.
#[derive(Debug, Clone)]
pub struct Actor {
    /// [`audit::OPERATOR`], [`audit::PROVISIOND`], or the console key's principal ARN.
    pub principal: String,
    /// The console key's access key id.
    pub access_key_id: Option<String>,
    /// The OS user of an operator.
    pub os_user: Option<String>,
    /// Where the action came from, as the audit entry's service: `admin` or `console`.
    pub service: &'static str,
    /// The only scope (`<account>/<region>`) it may act in; any when `None`.
    pub within: Option<String>,
}

impl Actor {
    /// The operator running this `admin` command.
    pub fn operator() -> Actor {
        Actor {
            principal: audit::OPERATOR.to_string(),
            access_key_id: None,
            os_user: Some(audit::os_user()),
            service: "admin",
            within: None,
        }
    }

    /// provisiond's own background work.
    pub fn provisiond() -> Actor {
        Actor {
            principal: audit::PROVISIOND.to_string(),
            access_key_id: None,
            os_user: None,
            service: "admin",
            within: None,
        }
    }

    /// An admin key signed in to the console, acting within its account and region.
    pub fn console(identity: &crate::auth::Identity, scope: &str) -> Actor {
        Actor {
            principal: identity.principal.clone(),
            access_key_id: Some(identity.access_key_id.clone()),
            os_user: None,
            service: "console",
            within: Some(scope.to_string()),
        }
    }

    fn audit(
        &self,
        tx: &mut dyn Tx,
        entry: &Entry,
        operation: &str,
        resources: Vec<String>,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        audit::write(
            tx,
            &audit::Entry {
                id: crate::ids::uuid(),
                time_ms: now_ms,
                account: entry.account().to_string(),
                principal: self.principal.clone(),
                access_key_id: self.access_key_id.clone(),
                os_user: self.os_user.clone(),
                service: self.service.into(),
                operation: operation.into(),
                resources,
                outcome: audit::OK.into(),
            },
        )
    }
}

fn region(entry: &Entry) -> &str {
    entry.scope.split_once('/').map_or("", |(_, r)| r)
}

/// One piece of work in progress, as `admin records` lists it and metrics count it.
#[derive(Debug, Clone)]
pub struct Underway {
    /// Where it is noted in flight (its id, account, start).
    pub entry: Entry,
    /// Its status: a record's or a deployment's.
    pub status: &'static str,
    /// A record's engine task: the queue it was sent to and where it stands there; `None` for
    /// a Proton deployment.
    pub task: Option<(Option<String>, TaskState)>,
    /// The whole `admin records` line.
    pub line: Value,
}

/// The work in progress that started more than `older_than_ms` before `now_ms`, of `account`
/// or every account, oldest first.
pub fn stuck(
    store: &dyn Store,
    older_than_ms: i64,
    account: Option<&str>,
    now_ms: i64,
) -> Result<Vec<Underway>, RepairError> {
    let mut found = Vec::new();
    for entry in in_flight::started_before(store, now_ms - older_than_ms + 1)? {
        if account.is_some_and(|a| a != entry.account()) {
            continue;
        }
        if let Some(underway) =
            transact(store, Mode::Read, |tx| describe(tx, entry.clone(), now_ms))?
        {
            found.push(underway);
        }
    }
    Ok(found)
}

/// One line of `admin records`; none when the work has ended meanwhile.
fn describe(tx: &mut dyn Tx, entry: Entry, now_ms: i64) -> Result<Option<Underway>, RepairError> {
    let common = json!({
        "Id": entry.id,
        "Account": entry.account(),
        "Region": region(&entry),
        "Started": format_iso8601(entry.started_ms),
        "AgeSeconds": (now_ms - entry.started_ms) / 1000,
    });
    let (status, task, mut line) = match entry.work {
        Work::Record => {
            let Some(record) = store::get::<Record>(tx, Kind::Record, &entry.scope, &entry.id)?
            else {
                return Ok(None);
            };
            if record.status != catalog::status::RecordStatus::InProgress {
                return Ok(None);
            }
            let state = catalog::repair::task_state(tx, &entry.scope, &record)?;
            let queue = record.task.as_ref().map(|(queue, _)| queue.clone());
            let mut task = json!({ "State": state.name() });
            if let TaskState::Received(n) = state {
                task["ReceiveCount"] = n.into();
            }
            if let Some(queue) = &queue {
                task["Queue"] = queue.as_str().into();
            }
            let line = json!({
                "Type": "RECORD",
                "Status": record.status.as_str(),
                "RecordType": record.record_type.as_str(),
                "ProvisionedProductId": record.provisioned_product_id,
                "ProvisionedProductName": record.provisioned_product_name,
                "Task": task,
            });
            (record.status.as_str(), Some((queue, state)), line)
        }
        Work::Deployment => {
            let Ok(deployment) = proton::deployment::load(tx, &entry.scope, &entry.id) else {
                return Ok(None);
            };
            if deployment.is_final() {
                return Ok(None);
            }
            let delivery = proton::repair::delivery_state(tx, &entry.scope, &entry.id)?;
            let line = json!({
                "Type": "DEPLOYMENT",
                "Status": deployment.status.as_str(),
                "TargetArn": deployment.target_arn,
                "Delivery": delivery,
            });
            (deployment.status.as_str(), None, line)
        }
    };
    let object = line.as_object_mut().expect("an object");
    for (key, value) in common.as_object().expect("an object") {
        object.insert(key.clone(), value.clone());
    }
    Ok(Some(Underway {
        entry,
        status,
        task,
        line,
    }))
}

/// What an action on `record` changed, named as the audit log names resources.
fn record_resources(record: &Record) -> Vec<String> {
    vec![
        format!("{}/{}", Kind::Record.as_str(), record.id),
        format!(
            "{}/{}",
            Kind::ProvisionedProduct.as_str(),
            record.provisioned_product_id
        ),
    ]
}

/// The work `id` in progress, if `actor` may act on it.
fn in_flight_entry(store: &dyn Store, id: &str, actor: &Actor) -> Result<Entry, RepairError> {
    transact(store, Mode::Read, |tx| in_flight::find(tx, id))?
        .filter(|entry| {
            actor
                .within
                .as_ref()
                .is_none_or(|scope| *scope == entry.scope)
        })
        .ok_or_else(|| RepairError::NotInProgress(id.to_string()))
}

/// Fails the record or deployment `id` with `reason` (see `catalog::repair::fail` and
/// `proton::repair::fail`), audited as `operation`; the JSON line saying what it became.
pub fn fail(
    store: &dyn Store,
    id: &str,
    reason: &str,
    actor: &Actor,
    operation: &str,
    now_ms: i64,
) -> Result<Value, RepairError> {
    let entry = in_flight_entry(store, id, actor)?;
    transact(store, Mode::Write, |tx| {
        let (line, resources) = match entry.work {
            Work::Record => {
                let record = catalog::repair::fail(tx, &entry.scope, id, reason, now_ms)?;
                let line = json!({
                    "Id": id,
                    "Type": "RECORD",
                    "Status": record.status.as_str(),
                    "ProvisionedProductId": record.provisioned_product_id,
                });
                (line, record_resources(&record))
            }
            Work::Deployment => {
                let deployment = proton::repair::fail(tx, &entry.scope, id, reason, now_ms)?;
                let line = json!({
                    "Id": id,
                    "Type": "DEPLOYMENT",
                    "Status": deployment.status.as_str(),
                    "TargetArn": deployment.target_arn,
                });
                let resources = vec![
                    format!("{}/{id}", Kind::ProtonDeployment.as_str()),
                    deployment.target_arn.clone(),
                ];
                (line, resources)
            }
        };
        actor.audit(tx, &entry, operation, resources, now_ms)?;
        Ok::<_, RepairError>(line)
    })
}

/// Gives the record `id` back to its engine under a fresh workflow token (see
/// `catalog::repair::retry`), audited; a Proton deployment has no task to give back.
pub fn retry(
    store: &dyn Store,
    key: &ServerKey,
    id: &str,
    actor: &Actor,
    now_ms: i64,
) -> Result<Value, RepairError> {
    let entry = in_flight_entry(store, id, actor)?;
    if entry.work == Work::Deployment {
        return Err(RepairError::Refused(
            provisiond_model::proton::ErrorCode::ValidationException.with(format!(
                "Deployment {id} is delivered to a self-managed pipeline, which provisiond does not \
                 hand work to: re-run the pipeline, or fail the deployment with record-fail and \
                 deploy again."
            )),
        ));
    }
    transact(store, Mode::Write, |tx| {
        let record = catalog::repair::retry(tx, key, &entry.scope, id, now_ms)?;
        let resources = record_resources(&record);
        actor.audit(tx, &entry, "record-retry", resources, now_ms)?;
        let (queue, message_id) = record.task.clone().unwrap_or_default();
        Ok::<_, RepairError>(json!({
            "Id": id,
            "Type": "RECORD",
            "Status": record.status.as_str(),
            "Task": {"State": "WAITING", "Queue": queue, "MessageId": message_id},
        }))
    })
}

/// The lease one replica holds while it times records out, so two never fail the same one.
const TIMEOUT_LEASE: &str = "record-timeout";

/// Fails every record and deployment in progress for longer than `timeout_ms`, if this
/// `holder` gets the timeout lease; how many it failed.
pub fn time_out(
    store: &dyn Store,
    holder: &str,
    timeout_ms: i64,
    now_ms: i64,
) -> Result<usize, RepairError> {
    if !store::lease::try_take(store, TIMEOUT_LEASE, holder, now_ms, 60_000)? {
        return Ok(0);
    }
    let actor = Actor::provisiond();
    let reason = format!(
        "provisiond timed this out: it was in progress for longer than the server's record \
         timeout of {} seconds.",
        timeout_ms / 1000
    );
    let mut failed = 0;
    for entry in in_flight::started_before(store, now_ms - timeout_ms)? {
        match fail(store, &entry.id, &reason, &actor, "record-timeout", now_ms) {
            Ok(_) => {
                tracing::warn!(id = %entry.id, account = entry.account(), "timed out work in progress");
                failed += 1;
            }
            // Settled meanwhile, or a stale entry: nothing to time out.
            Err(RepairError::Refused(_)) | Err(RepairError::NotInProgress(_)) => {
                transact(store, Mode::Write, |tx| stale(tx, &entry))?;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(failed)
}

/// Forgets `entry` if what it notes is no longer in progress.
fn stale(tx: &mut dyn Tx, entry: &Entry) -> Result<(), StoreError> {
    let ended = match entry.work {
        Work::Record => store::get::<Record>(tx, Kind::Record, &entry.scope, &entry.id)?
            .is_none_or(|r| r.status != catalog::status::RecordStatus::InProgress),
        Work::Deployment => store::get::<proton::deployment::Deployment>(
            tx,
            Kind::ProtonDeployment,
            &entry.scope,
            &entry.id,
        )?
        .is_none_or(|d| d.is_final()),
    };
    if ended {
        in_flight::forget(tx, &entry.id)?;
    }
    Ok(())
}
