//! Work in flight: every record in progress and every Proton deployment under way, noted in
//! the transaction that starts it and forgotten in the one that settles it, oldest first across
//! every account, so an operator (and `serve --record-timeout`) finds what is stuck by reading
//! what is in flight, not every record ever made.
//!
//! An entry is a [`Kind::InFlight`] document of the global scope whose id is the record's or
//! deployment's id (both are unique across accounts) and whose body says where it lives and
//! when it started. The noted document stays the truth: a reader loads it and checks it is
//! still in progress, so a stale entry (one left by a path that settled without forgetting) is
//! skipped, never wrong, and [`forget`] removes it.

use crate::store::{self, transact, Kind, Mode, Store, StoreError, Tx};
use serde::{Deserialize, Serialize};

/// What kind of work an entry notes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Work {
    /// A Service Catalog record (`rec-…`), in the store as [`Kind::Record`].
    Record,
    /// A Proton deployment (a UUID), in the store as [`Kind::ProtonDeployment`].
    Deployment,
}

/// One piece of work in flight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The record's or deployment's id.
    #[serde(skip)]
    pub id: String,
    /// What it is.
    pub work: Work,
    /// Its store scope, `<account>/<region>`.
    pub scope: String,
    /// When it started, epoch milliseconds.
    pub started_ms: i64,
}

impl Entry {
    /// The account the work belongs to.
    pub fn account(&self) -> &str {
        self.scope.split('/').next().unwrap_or_default()
    }
}

/// Notes that `id` started at `started_ms`, in the transaction that starts it (again is no
/// error and keeps the first start).
pub fn note(
    tx: &mut dyn Tx,
    work: Work,
    scope: &str,
    id: &str,
    started_ms: i64,
) -> Result<(), StoreError> {
    let entry = Entry {
        id: id.to_string(),
        work,
        scope: scope.to_string(),
        started_ms,
    };
    store::add(tx, Kind::InFlight, "", id, "", &entry)
}

/// Forgets `id`, in the transaction that settles it (no error when it was not noted).
pub fn forget(tx: &mut dyn Tx, id: &str) -> Result<(), StoreError> {
    tx.discard(Kind::InFlight, "", id)
}

/// The entry of `id`, if it is noted.
pub fn find(tx: &mut dyn Tx, id: &str) -> Result<Option<Entry>, StoreError> {
    Ok(
        store::get::<Entry>(tx, Kind::InFlight, "", id)?.map(|mut e| {
            e.id = id.to_string();
            e
        }),
    )
}

/// Up to `limit` entries noted after the one with sequence number `after`, in the order they
/// were noted (which is the order they started), with their sequence numbers.
pub fn oldest(
    tx: &mut dyn Tx,
    after: Option<i64>,
    limit: usize,
) -> Result<Vec<(i64, Entry)>, StoreError> {
    tx.list(Kind::InFlight, "", "", after, limit)?
        .into_iter()
        .map(|row| {
            let mut entry: Entry = serde_json::from_slice(&row.body)
                .map_err(|e| StoreError::new(format!("in-flight entry {}: {e}", row.id)))?;
            entry.id = row.id;
            Ok((row.seq, entry))
        })
        .collect()
}

/// Every entry that started before `before_ms`, oldest first: the candidates for "stuck".
pub fn started_before(store: &dyn Store, before_ms: i64) -> Result<Vec<Entry>, StoreError> {
    let mut found = Vec::new();
    let mut after = None;
    loop {
        let page = transact(store, Mode::Read, |tx| oldest(tx, after, PAGE))?;
        let ended = page.len() < PAGE;
        after = page.last().map(|(seq, _)| *seq).or(after);
        found.extend(
            page.into_iter()
                .map(|(_, e)| e)
                .filter(|e| e.started_ms < before_ms),
        );
        if ended {
            return Ok(found);
        }
    }
}

/// Entries read per transaction.
const PAGE: usize = 500;

/// How the work in flight of a database made before this module existed is found: one page of
/// `(scope, id, started_ms)` of one kind's documents still in progress.
pub type Backfill = fn(&mut dyn Tx, &str, Option<i64>) -> Result<Page, StoreError>;

/// A page of a [`Backfill`]: the work in progress found, and the cursor to go on from.
pub type Page = (Vec<(String, i64)>, Option<i64>);

const BUILT: &str = "built/in-flight";

/// Notes, once per database, the work in progress stored before entries were kept: for each
/// `(work, kind, backfill)`, every scope holding documents of `kind` is paged through. A marker
/// says it was done; several replicas doing it together write the same entries.
pub fn build_missing(
    store: &dyn Store,
    backfills: &[(Work, Kind, Backfill)],
) -> Result<(), StoreError> {
    if transact(store, Mode::Read, |tx| tx.get(Kind::Index, "", BUILT))?.is_some() {
        return Ok(());
    }
    let mut noted = 0usize;
    for (work, kind, page) in backfills {
        let scopes = transact(store, Mode::Read, |tx| tx.scopes(*kind))?;
        for scope in &scopes {
            let mut after = None;
            loop {
                let (found, next) = transact(store, Mode::Read, |tx| page(tx, scope, after))?;
                transact(store, Mode::Write, |tx| {
                    for (id, started_ms) in &found {
                        note(tx, *work, scope, id, *started_ms)?;
                    }
                    Ok(())
                })?;
                noted += found.len();
                match next {
                    Some(n) => after = Some(n),
                    None => break,
                }
            }
        }
    }
    transact(store, Mode::Write, |tx| {
        tx.insert(Kind::Index, "", BUILT, "built", b"1").map(drop)
    })?;
    if noted > 0 {
        tracing::info!(entries = noted, "noted the work in progress stored before");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::SqliteStore;

    #[test]
    fn entries_are_listed_in_start_order_found_by_id_and_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("db")).unwrap();
        transact(&store, Mode::Write, |tx| {
            note(tx, Work::Record, "111111111111/us-east-1", "rec-a", 10)?;
            note(tx, Work::Deployment, "222222222222/eu-west-1", "d-b", 20)?;
            note(tx, Work::Record, "111111111111/us-east-1", "rec-c", 30)?;
            // A second note keeps the first start.
            note(tx, Work::Record, "111111111111/us-east-1", "rec-a", 99)
        })
        .unwrap();
        let before_25 = started_before(&store, 25).unwrap();
        assert_eq!(
            before_25.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
            ["rec-a", "d-b"]
        );
        assert_eq!(before_25[1].account(), "222222222222");
        assert_eq!(before_25[1].work, Work::Deployment);
        transact(&store, Mode::Write, |tx| forget(tx, "rec-a")).unwrap();
        let found = transact(&store, Mode::Read, |tx| {
            Ok::<_, StoreError>((find(tx, "rec-a")?, find(tx, "rec-c")?))
        })
        .unwrap();
        assert_eq!(found.0, None);
        assert_eq!(found.1.unwrap().started_ms, 30);
        assert_eq!(started_before(&store, 1000).unwrap().len(), 2);
    }
}
