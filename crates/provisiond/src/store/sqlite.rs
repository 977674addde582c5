//! The embedded store: one SQLite file in WAL mode with `synchronous=FULL`, so an acknowledged
//! write survives a crash. One connection writes (`BEGIN IMMEDIATE`, serialized in-process by a
//! mutex and across processes by SQLite's lock with a busy timeout); a few more read beside it.

use super::{Kind, Mode, Row, Store, StoreError, Tx};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

/// The versioned schema. Each entry runs once, in order, inside the transaction that records it.
const MIGRATIONS: &[&str] = &[
    // 1: documents with their list order.
    "CREATE TABLE documents (
        seq    INTEGER PRIMARY KEY AUTOINCREMENT,
        kind   TEXT NOT NULL,
        scope  TEXT NOT NULL,
        id     TEXT NOT NULL,
        parent TEXT NOT NULL DEFAULT '',
        body   BLOB NOT NULL,
        UNIQUE (kind, scope, id)
    );
    CREATE INDEX documents_by_parent ON documents (kind, scope, parent, seq);",
];

const READERS: usize = 4;

/// A store in one SQLite file.
pub struct SqliteStore {
    writer: Mutex<Connection>,
    readers: Vec<Mutex<Connection>>,
}

fn err(e: rusqlite::Error) -> StoreError {
    StoreError(e.to_string())
}

fn open_connection(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path).map_err(err)?;
    conn.busy_timeout(Duration::from_secs(10)).map_err(err)?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(err)?;
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(err)?;
    conn.pragma_update(None, "foreign_keys", "ON")
        .map_err(err)?;
    Ok(conn)
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let mut writer = open_connection(path)?;
        migrate(&mut writer)?;
        let readers = (0..READERS)
            .map(|_| open_connection(path).map(Mutex::new))
            .collect::<Result<_, _>>()?;
        Ok(SqliteStore {
            writer: Mutex::new(writer),
            readers,
        })
    }

    fn reader(&self) -> std::sync::MutexGuard<'_, Connection> {
        for r in &self.readers {
            if let Ok(guard) = r.try_lock() {
                return guard;
            }
        }
        let i = (crate::time::now_ms() as usize) % self.readers.len();
        self.readers[i].lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Applies the migrations this database has not seen yet.
fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_ms INTEGER NOT NULL)",
    )
    .map_err(err)?;
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(err)?;
    let current: i64 = tx
        .query_row(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
            [],
            |r| r.get(0),
        )
        .map_err(err)?;
    if current > MIGRATIONS.len() as i64 {
        return Err(StoreError(format!(
            "the database has schema version {current}, newer than this provisiond knows ({})",
            MIGRATIONS.len()
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        tx.execute_batch(sql).map_err(err)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_ms) VALUES (?1, ?2)",
            params![i as i64 + 1, crate::time::now_ms()],
        )
        .map_err(err)?;
    }
    tx.commit().map_err(err)
}

struct SqliteTx<'c> {
    conn: &'c Connection,
}

impl Tx for SqliteTx<'_> {
    fn get(&mut self, kind: Kind, scope: &str, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.conn
            .prepare_cached("SELECT body FROM documents WHERE kind = ?1 AND scope = ?2 AND id = ?3")
            .map_err(err)?
            .query_row(params![kind.as_str(), scope, id], |r| r.get(0))
            .optional()
            .map_err(err)
    }

    fn insert(
        &mut self,
        kind: Kind,
        scope: &str,
        id: &str,
        parent: &str,
        body: &[u8],
    ) -> Result<bool, StoreError> {
        let n = self
            .conn
            .prepare_cached(
                "INSERT INTO documents (kind, scope, id, parent, body) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (kind, scope, id) DO NOTHING",
            )
            .map_err(err)?
            .execute(params![kind.as_str(), scope, id, parent, body])
            .map_err(err)?;
        Ok(n == 1)
    }

    fn put(
        &mut self,
        kind: Kind,
        scope: &str,
        id: &str,
        parent: &str,
        body: &[u8],
    ) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "INSERT INTO documents (kind, scope, id, parent, body) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (kind, scope, id) DO UPDATE SET parent = excluded.parent, body = excluded.body",
            )
            .map_err(err)?
            .execute(params![kind.as_str(), scope, id, parent, body])
            .map_err(err)?;
        Ok(())
    }

    fn delete(&mut self, kind: Kind, scope: &str, id: &str) -> Result<bool, StoreError> {
        let n = self
            .conn
            .prepare_cached("DELETE FROM documents WHERE kind = ?1 AND scope = ?2 AND id = ?3")
            .map_err(err)?
            .execute(params![kind.as_str(), scope, id])
            .map_err(err)?;
        Ok(n == 1)
    }

    fn list(
        &mut self,
        kind: Kind,
        scope: &str,
        parent: &str,
        after: Option<i64>,
        limit: usize,
    ) -> Result<Vec<Row>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT seq, id, body FROM documents
                 WHERE kind = ?1 AND scope = ?2 AND parent = ?3 AND seq > ?4
                 ORDER BY seq LIMIT ?5",
            )
            .map_err(err)?;
        let rows = stmt
            .query_map(
                params![
                    kind.as_str(),
                    scope,
                    parent,
                    after.unwrap_or(i64::MIN),
                    limit as i64
                ],
                |r| {
                    Ok(Row {
                        seq: r.get(0)?,
                        id: r.get(1)?,
                        body: r.get(2)?,
                    })
                },
            )
            .map_err(err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }
}

impl Store for SqliteStore {
    fn run(&self, mode: Mode, body: &mut dyn FnMut(&mut dyn Tx) -> bool) -> Result<(), StoreError> {
        match mode {
            Mode::Write => {
                let mut conn = self.writer.lock().unwrap_or_else(|p| p.into_inner());
                let tx = conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .map_err(err)?;
                let commit = body(&mut SqliteTx { conn: &tx });
                if commit {
                    tx.commit().map_err(err)
                } else {
                    tx.rollback().map_err(err)
                }
            }
            Mode::Read => {
                let mut conn = self.reader();
                let tx = conn
                    .transaction_with_behavior(TransactionBehavior::Deferred)
                    .map_err(err)?;
                body(&mut SqliteTx { conn: &tx });
                tx.rollback().map_err(err)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_passes_the_conformance_suite() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("test.db")).unwrap();
        crate::store::conformance::run_all(&store);
    }

    #[test]
    fn reopening_keeps_data_and_applies_no_migration_twice() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("test.db");
        {
            let store = SqliteStore::open(&path).unwrap();
            crate::store::transact::<_, StoreError>(&store, Mode::Write, |tx| {
                tx.put(Kind::Test, "s", "a", "", b"{}")
            })
            .unwrap();
        }
        let store = SqliteStore::open(&path).unwrap();
        let got = crate::store::transact::<_, StoreError>(&store, Mode::Read, |tx| {
            tx.get(Kind::Test, "s", "a")
        })
        .unwrap();
        assert_eq!(got.as_deref(), Some(&b"{}"[..]));
        let conn = Connection::open(&path).unwrap();
        let versions: i64 = conn
            .query_row("SELECT COUNT(*) FROM schema_migrations", [], |r| r.get(0))
            .unwrap();
        assert_eq!(versions, MIGRATIONS.len() as i64);
    }
}
