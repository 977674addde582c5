//! The audit log: who changed what, when, and how it ended, for every write call and every
//! operator action, written in the transaction of the change it describes (so an entry exists
//! exactly when the change does) and kept for a retention the operator sets.
//!
//! An entry is a [`Kind::Audit`] document of the global scope whose id is the request id (or
//! the operator action's id); entries are listed in the order they were written.

use crate::store::{self, transact, Kind, Mode, Store, StoreError, Tx};
use serde::{Deserialize, Serialize};

/// The principal an operator's `admin` command acts as.
pub const OPERATOR: &str = "operator";
/// The principal provisiond's own background work (`serve --record-timeout`) acts as.
pub const PROVISIOND: &str = "provisiond";
/// The outcome of a change that took effect.
pub const OK: &str = "OK";

/// One audited change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Entry {
    /// The request id, or the id of an operator action.
    #[serde(skip)]
    pub id: String,
    /// When, epoch milliseconds.
    pub time_ms: i64,
    /// The account whose resources changed.
    pub account: String,
    /// Who changed them: the caller's principal ARN, [`OPERATOR`] or [`PROVISIOND`].
    pub principal: String,
    /// The caller's access key id; none for an operator or provisiond itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<String>,
    /// The OS user who ran an operator's `admin` command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_user: Option<String>,
    /// The service (`servicecatalog`, `proton`, `sqs`, `admin`).
    pub service: String,
    /// The operation (`ProvisionProduct`, `record-fail`, …).
    pub operation: String,
    /// The ids of the resources changed.
    pub resources: Vec<String>,
    /// [`OK`], or the error code the call was refused with.
    pub outcome: String,
}

impl Entry {
    /// The entry as one line of `admin audit` output.
    pub fn to_json(&self) -> serde_json::Value {
        let mut value = serde_json::to_value(self).expect("entries serialize");
        let object = value.as_object_mut().expect("an entry is an object");
        object.remove("TimeMs");
        object.insert(
            "Time".into(),
            crate::time::format_iso8601(self.time_ms).into(),
        );
        object.insert("RequestId".into(), self.id.clone().into());
        value
    }
}

/// Writes `entry` in `tx`, the transaction of the change it describes; a second entry of the
/// same id (a call whose work took several transactions) adds its resources to the first.
pub fn write(tx: &mut dyn Tx, entry: &Entry) -> Result<(), StoreError> {
    write_entry(tx, entry, false)
}

/// [`write`]; `first`: no transaction of this call has written its entry before (the request
/// id is new), so it is created without asking whether it exists.
fn write_entry(tx: &mut dyn Tx, entry: &Entry, first: bool) -> Result<(), StoreError> {
    if first {
        return store::create(tx, Kind::Audit, "", &entry.id, "", entry);
    }
    if store::insert(tx, Kind::Audit, "", &entry.id, "", entry)? {
        return Ok(());
    }
    let Some(mut first) = store::get_for_update::<Entry>(tx, Kind::Audit, "", &entry.id)? else {
        return Ok(());
    };
    for resource in &entry.resources {
        if !first.resources.contains(resource) {
            first.resources.push(resource.clone());
        }
    }
    store::put(tx, Kind::Audit, "", &entry.id, "", &first)
}

/// Ends the audit of a call, in a transaction of its own after the call: a call that wrote
/// nothing (refused, or a repeat) gets its entry now, and one refused after an earlier
/// transaction of it committed keeps that entry with the refusal as its outcome.
pub fn finish(store: &dyn Store, entry: &Entry) -> Result<(), StoreError> {
    transact(store, Mode::Write, |tx| {
        if store::insert(tx, Kind::Audit, "", &entry.id, "", entry)? || entry.outcome == OK {
            return Ok(());
        }
        if let Some(mut first) = store::get_for_update::<Entry>(tx, Kind::Audit, "", &entry.id)? {
            first.outcome = entry.outcome.clone();
            store::put(tx, Kind::Audit, "", &entry.id, "", &first)?;
        }
        Ok(())
    })
}

/// The audit of one write call, as the store's write observer: each transaction the call
/// commits writes the call's entry with what it changed (see `store::observe`).
pub struct CallAudit {
    /// The call's entry, without resources, outcome [`OK`].
    entry: Entry,
    /// Whether a transaction of the call wrote the entry.
    wrote: std::sync::atomic::AtomicBool,
}

impl CallAudit {
    /// The audit of the call `entry` describes.
    pub fn new(entry: Entry) -> CallAudit {
        CallAudit {
            entry,
            wrote: false.into(),
        }
    }

    /// Ends it once the call answered `outcome` ([`OK`] or an error code): a successful call
    /// whose change wrote its entry needs nothing more; otherwise see [`finish`].
    pub fn end(&self, store: &dyn Store, outcome: &str) -> Result<(), StoreError> {
        if outcome == OK && self.wrote.load(std::sync::atomic::Ordering::Relaxed) {
            return Ok(());
        }
        let entry = Entry {
            outcome: outcome.to_string(),
            ..self.entry.clone()
        };
        finish(store, &entry)
    }
}

/// Runs `call`, a write call that `entry` describes (outcome [`OK`], no resources yet): each
/// transaction it commits writes the entry with what it changed, and a call that changed
/// nothing or failed leaves an entry of its own with its outcome after it.
pub fn audited<R>(
    store: &dyn Store,
    entry: Entry,
    call: impl FnOnce() -> Result<R, provisiond_model::AwsError>,
) -> Result<R, provisiond_model::AwsError> {
    let request_id = entry.id.clone();
    let audit = std::sync::Arc::new(CallAudit::new(entry));
    let result = store::observe::observing_writes(audit.clone(), call);
    if store::requirement_unmet() {
        // The call's key was gone (`auth::KeyRing::while_key_exists`): it is refused as if it
        // had never run, and leaves no entry.
        return result;
    }
    let outcome = match &result {
        Ok(_) => OK,
        Err(e) => e.code,
    };
    if let Err(e) = audit.end(store, outcome) {
        tracing::error!(request_id, error = %e, "writing the audit entry");
    }
    result
}

impl store::observe::WriteObserver for CallAudit {
    fn before_commit(&self, tx: &mut dyn Tx, written: &[String]) -> Result<(), StoreError> {
        let entry = Entry {
            resources: written.to_vec(),
            ..self.entry.clone()
        };
        // Set before the commit: a transaction run again after a conflict writes as a second.
        let first = !self.wrote.swap(true, std::sync::atomic::Ordering::Relaxed);
        write_entry(tx, &entry, first)
    }
}

/// What `admin audit` prints.
#[derive(Debug, Default, Clone)]
pub struct Filter {
    /// Only entries written at or after this time, epoch milliseconds.
    pub since_ms: Option<i64>,
    /// Only entries of this account.
    pub account: Option<String>,
    /// Only entries of this operation.
    pub operation: Option<String>,
}

impl Filter {
    fn admits(&self, entry: &Entry) -> bool {
        self.account.as_ref().is_none_or(|a| *a == entry.account)
            && self
                .operation
                .as_ref()
                .is_none_or(|o| *o == entry.operation)
    }
}

/// Entries read per transaction.
const PAGE: usize = 500;

/// How far out of time order entries may be written: an entry carries its call's start time
/// but is written when the call's change commits, so a slow call's entry follows quicker ones.
const ORDER_SLACK_MS: i64 = 3_600_000;

/// The entries `filter` admits, in the order they were written. Entries are read newest first
/// and the reading stops at the first one older than `since_ms` by more than the order slack,
/// so a short `--since` reads little.
pub fn entries(store: &dyn Store, filter: &Filter) -> Result<Vec<Entry>, StoreError> {
    let mut found = Vec::new();
    let mut before = None;
    'pages: loop {
        let rows = transact(store, Mode::Read, |tx| {
            tx.list_newest(Kind::Audit, "", "", before, PAGE)
        })?;
        let ended = rows.len() < PAGE;
        for row in rows {
            before = Some(row.seq);
            let mut entry: Entry = serde_json::from_slice(&row.body)
                .map_err(|e| StoreError::new(format!("audit entry {}: {e}", row.id)))?;
            entry.id = row.id;
            if filter
                .since_ms
                .is_some_and(|since| entry.time_ms < since - ORDER_SLACK_MS)
            {
                break 'pages;
            }
            if filter.admits(&entry) && filter.since_ms.is_none_or(|since| entry.time_ms >= since) {
                found.push(entry);
            }
        }
        if ended {
            break;
        }
    }
    found.reverse();
    Ok(found)
}

/// Deletes the entries written before `cutoff_ms`, oldest first; how many went.
pub fn sweep(store: &dyn Store, cutoff_ms: i64) -> Result<usize, StoreError> {
    let mut removed = 0;
    loop {
        let (gone, more) = transact(store, Mode::Write, |tx| {
            let rows = tx.list(Kind::Audit, "", "", None, PAGE)?;
            let full = rows.len() == PAGE;
            let mut gone = 0;
            for row in rows {
                let entry: Entry = serde_json::from_slice(&row.body)
                    .map_err(|e| StoreError::new(format!("audit entry {}: {e}", row.id)))?;
                if entry.time_ms >= cutoff_ms {
                    return Ok((gone, false));
                }
                tx.delete(Kind::Audit, "", &row.id)?;
                gone += 1;
            }
            Ok((gone, full))
        })?;
        removed += gone;
        if !more {
            return Ok(removed);
        }
    }
}

/// The OS user running this process, for an operator's entries.
pub fn os_user() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| format!("uid {}", uid()))
}

/// The process's user id, read from `/proc` (no `libc` call needed).
fn uid() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|l| l.split_whitespace().next().map(str::to_string))
        })
        .unwrap_or_else(|| "unknown".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::SqliteStore;

    fn entry(id: &str, time_ms: i64, account: &str, operation: &str) -> Entry {
        Entry {
            id: id.into(),
            time_ms,
            account: account.into(),
            principal: OPERATOR.into(),
            access_key_id: None,
            os_user: Some("ops".into()),
            service: "admin".into(),
            operation: operation.into(),
            resources: vec![format!("rec-{id}")],
            outcome: OK.into(),
        }
    }

    #[test]
    fn entries_are_filtered_merged_by_id_and_swept_by_age() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("db")).unwrap();
        transact(&store, Mode::Write, |tx| {
            write(tx, &entry("a", 10, "111111111111", "record-fail"))?;
            write(tx, &entry("b", 20, "222222222222", "record-retry"))?;
            write(tx, &entry("c", 30, "111111111111", "record-retry"))?;
            // The same request again: its resources join the first entry.
            let mut more = entry("a", 11, "111111111111", "record-fail");
            more.resources = vec!["pp-x".into()];
            write(tx, &more)
        })
        .unwrap();
        // A call refused after one of its transactions committed keeps that entry, with the
        // refusal as its outcome; one that wrote nothing gets an entry of its own.
        let mut refused = entry("a", 12, "111111111111", "record-fail");
        refused.resources.clear();
        refused.outcome = "ConflictException".into();
        finish(&store, &refused).unwrap();
        let mut repeat = entry("d", 13, "333333333333", "record-fail");
        repeat.resources.clear();
        finish(&store, &repeat).unwrap();
        finish(&store, &entry("a", 14, "111111111111", "record-fail")).unwrap();

        let all = entries(&store, &Filter::default()).unwrap();
        assert_eq!(
            all.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
            ["a", "b", "c", "d"]
        );
        assert_eq!(all[0].resources, ["rec-a", "pp-x"]);
        assert_eq!(all[0].outcome, "ConflictException");
        assert_eq!((all[3].outcome.as_str(), all[3].resources.len()), (OK, 0));
        let filter = Filter {
            since_ms: Some(15),
            account: Some("111111111111".into()),
            operation: None,
        };
        let recent = entries(&store, &filter).unwrap();
        assert_eq!(recent.len(), 1);
        assert_eq!(recent[0].id, "c");
        let json = recent[0].to_json();
        assert_eq!(json["RequestId"], "c");
        assert_eq!(json["Time"], "1970-01-01T00:00:00.030Z");
        assert!(json.get("TimeMs").is_none());

        assert_eq!(sweep(&store, 25).unwrap(), 2);
        assert_eq!(entries(&store, &Filter::default()).unwrap().len(), 2);
    }
}
