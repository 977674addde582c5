//! What a scrape reads from the store: the work in progress (records and Proton deployments)
//! by account, type and status with the oldest one's age, and the engine tasks of every
//! account's queues (waiting, in flight, dead-lettered) with the oldest one's age. It reads
//! what is in flight and the queues' counts, never every record stored, so a scrape costs what
//! is under way, not what the store holds.

use super::{Labels, Seconds};
use crate::queue::{self, TaskState};
use crate::repair;
use crate::store::{transact, Kind, Mode, Store, StoreError};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::collections::BTreeMap;

/// The gauges a scrape refills.
pub struct Gauges {
    work: Family<Labels<3>, Gauge>,
    work_oldest: Family<Labels<2>, Seconds>,
    tasks: Family<Labels<3>, Gauge>,
    tasks_oldest: Family<Labels<2>, Seconds>,
}

impl Gauges {
    /// Registers the gauges in `registry`.
    pub fn register(registry: &mut Registry) -> Gauges {
        let gauges = Gauges {
            work: Family::default(),
            work_oldest: Family::default(),
            tasks: Family::default(),
            tasks_oldest: Family::default(),
        };
        registry.register(
            "work_in_progress",
            "Records and Proton deployments in progress, by account, type (record, deployment) \
             and status",
            gauges.work.clone(),
        );
        registry.register(
            "work_in_progress_oldest_age_seconds",
            "Age of the oldest record or Proton deployment in progress, by account and type",
            gauges.work_oldest.clone(),
        );
        registry.register(
            "engine_tasks",
            "Engine tasks in each account's queues, by account, queue and state (visible: \
             waiting to be received; in_flight: received, invisible; dead_lettered: in the \
             queue's dead-letter queue)",
            gauges.tasks.clone(),
        );
        registry.register(
            "engine_task_oldest_age_seconds",
            "Age of the oldest engine task of a record in progress, by account and queue",
            gauges.tasks_oldest.clone(),
        );
        gauges
    }

    /// Reads the store and replaces every gauge's series with what it holds at `now_ms`.
    pub fn refresh(&self, store: &dyn Store, now_ms: i64) -> Result<(), StoreError> {
        let underway = repair::stuck(store, 0, None, now_ms).map_err(|e| match e {
            repair::RepairError::Store(e) => e,
            other => StoreError::new(other.to_string()),
        })?;
        let counts = queue_counts(store, now_ms)?;

        let mut work: BTreeMap<Labels<3>, i64> = BTreeMap::new();
        let mut work_oldest: BTreeMap<Labels<2>, i64> = BTreeMap::new();
        let mut tasks_oldest: BTreeMap<Labels<2>, i64> = BTreeMap::new();
        for u in &underway {
            let account = u.entry.account().to_string();
            let kind = match u.entry.work {
                crate::in_flight::Work::Record => "record",
                crate::in_flight::Work::Deployment => "deployment",
            };
            let age_ms = (now_ms - u.entry.started_ms).max(0);
            *work
                .entry([
                    ("account", account.clone()),
                    ("type", kind.to_string()),
                    ("status", u.status.to_string()),
                ])
                .or_default() += 1;
            let oldest = work_oldest
                .entry([("account", account.clone()), ("type", kind.to_string())])
                .or_default();
            *oldest = (*oldest).max(age_ms);
            if let Some((Some(queue), state)) = &u.task {
                if *state != TaskState::Gone {
                    let oldest = tasks_oldest
                        .entry([("account", account), ("queue", queue.clone())])
                        .or_default();
                    *oldest = (*oldest).max(age_ms);
                }
            }
        }

        self.work.clear();
        for (labels, n) in work {
            self.work.get_or_create(&labels).set(n);
        }
        self.work_oldest.clear();
        for (labels, ms) in work_oldest {
            self.work_oldest
                .get_or_create(&labels)
                .set(ms as f64 / 1000.0);
        }
        self.tasks.clear();
        for (labels, n) in counts {
            self.tasks.get_or_create(&labels).set(n);
        }
        self.tasks_oldest.clear();
        for (labels, ms) in tasks_oldest {
            self.tasks_oldest
                .get_or_create(&labels)
                .set(ms as f64 / 1000.0);
        }
        Ok(())
    }
}

/// Every engine work queue of every account that has made a record: its visible and in-flight
/// messages, and the messages of its dead-letter queue (over the account's regions).
fn queue_counts(store: &dyn Store, now_ms: i64) -> Result<BTreeMap<Labels<3>, i64>, StoreError> {
    let scopes = transact(store, Mode::Read, |tx| tx.scopes(Kind::Record))?;
    let mut counts = BTreeMap::new();
    for scope in scopes {
        let account = scope.split('/').next().unwrap_or_default().to_string();
        let found = transact(store, Mode::Read, |tx| {
            queue::task_counts(tx, &scope, now_ms)
        })?;
        for queue in found {
            for (state, n) in [
                ("visible", queue.visible),
                ("in_flight", queue.in_flight),
                ("dead_lettered", queue.dead_lettered),
            ] {
                *counts
                    .entry([
                        ("account", account.clone()),
                        ("queue", queue.queue.clone()),
                        ("state", state.to_string()),
                    ])
                    .or_default() += n;
            }
        }
    }
    Ok(counts)
}
