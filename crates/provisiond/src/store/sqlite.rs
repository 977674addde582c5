//! The embedded store: one SQLite file in WAL mode with `synchronous=FULL`, so an acknowledged
//! write survives a crash. One thread owns the writer connection and commits the write
//! transactions handed to it in groups (see [`writer_loop`]); a few connections read beside it.
//! Across processes, SQLite's own lock (with a busy timeout) serializes writers. Every write
//! transaction is serializable, so a read-modify-write needs no lock of its own
//! (`get_for_update` is `get`, `claim_messages` a plain query). Store handles on one file in
//! one process share their [`Wakeups`]; other processes' commits are seen at the fallback poll.

use super::checkpoint::Checkpointer;
use super::{
    AfterCommit, Body, Kind, Mode, QueuedMessage, Row, Store, StoreError, StoredObject, Tx,
    Wakeups, WriterWork,
};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use std::collections::HashMap;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, Weak};
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
    // 2: queue messages, found by visibility.
    "CREATE TABLE queue_messages (
        seq              INTEGER PRIMARY KEY AUTOINCREMENT,
        scope            TEXT NOT NULL,
        queue            TEXT NOT NULL,
        message_id       TEXT NOT NULL UNIQUE,
        body             TEXT NOT NULL,
        sent_ms          INTEGER NOT NULL,
        visible_at_ms    INTEGER NOT NULL,
        receive_count    INTEGER NOT NULL DEFAULT 0,
        first_receive_ms INTEGER,
        receipt          TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX queue_messages_by_visibility ON queue_messages (scope, queue, visible_at_ms, seq);",
    // 3: the object store (artifact copies, template bundles, rendered deployments).
    "CREATE TABLE objects (
        scope      TEXT NOT NULL,
        bucket     TEXT NOT NULL,
        key        TEXT NOT NULL,
        body       BLOB NOT NULL,
        etag       TEXT NOT NULL,
        created_ms INTEGER NOT NULL,
        PRIMARY KEY (scope, bucket, key)
    );",
    // 4: document counts per (kind, scope, parent), kept by triggers so `count` costs the same
    // at a million documents as at ten.
    "CREATE TABLE document_counts (
        kind   TEXT NOT NULL,
        scope  TEXT NOT NULL,
        parent TEXT NOT NULL,
        n      INTEGER NOT NULL,
        PRIMARY KEY (kind, scope, parent)
    ) WITHOUT ROWID;
    INSERT INTO document_counts (kind, scope, parent, n)
        SELECT kind, scope, parent, COUNT(*) FROM documents GROUP BY kind, scope, parent;
    CREATE TRIGGER documents_counted_on_insert AFTER INSERT ON documents BEGIN
        INSERT INTO document_counts (kind, scope, parent, n) VALUES (NEW.kind, NEW.scope, NEW.parent, 1)
            ON CONFLICT (kind, scope, parent) DO UPDATE SET n = n + 1;
    END;
    CREATE TRIGGER documents_counted_on_delete AFTER DELETE ON documents BEGIN
        UPDATE document_counts SET n = n - 1
            WHERE kind = OLD.kind AND scope = OLD.scope AND parent = OLD.parent;
    END;
    CREATE TRIGGER documents_counted_on_move AFTER UPDATE OF parent ON documents
        WHEN OLD.parent IS NOT NEW.parent BEGIN
        UPDATE document_counts SET n = n - 1
            WHERE kind = OLD.kind AND scope = OLD.scope AND parent = OLD.parent;
        INSERT INTO document_counts (kind, scope, parent, n) VALUES (NEW.kind, NEW.scope, NEW.parent, 1)
            ON CONFLICT (kind, scope, parent) DO UPDATE SET n = n + 1;
    END;",
    // 5: message attributes, kept with their message.
    "ALTER TABLE queue_messages ADD COLUMN attributes TEXT NOT NULL DEFAULT '';",
    // 6: counts kept only for the kinds that are counted (`Kind::COUNTED`), so an audit entry
    // or a note of work in flight costs no count update.
    "DROP TRIGGER documents_counted_on_insert;
    DROP TRIGGER documents_counted_on_delete;
    DROP TRIGGER documents_counted_on_move;
    DELETE FROM document_counts WHERE kind NOT IN ('provisioned-product', 'test');
    CREATE TRIGGER documents_counted_on_insert AFTER INSERT ON documents
        WHEN NEW.kind IN ('provisioned-product', 'test') BEGIN
        INSERT INTO document_counts (kind, scope, parent, n) VALUES (NEW.kind, NEW.scope, NEW.parent, 1)
            ON CONFLICT (kind, scope, parent) DO UPDATE SET n = n + 1;
    END;
    CREATE TRIGGER documents_counted_on_delete AFTER DELETE ON documents
        WHEN OLD.kind IN ('provisioned-product', 'test') BEGIN
        UPDATE document_counts SET n = n - 1
            WHERE kind = OLD.kind AND scope = OLD.scope AND parent = OLD.parent;
    END;
    CREATE TRIGGER documents_counted_on_move AFTER UPDATE OF parent ON documents
        WHEN OLD.parent IS NOT NEW.parent AND NEW.kind IN ('provisioned-product', 'test') BEGIN
        UPDATE document_counts SET n = n - 1
            WHERE kind = OLD.kind AND scope = OLD.scope AND parent = OLD.parent;
        INSERT INTO document_counts (kind, scope, parent, n) VALUES (NEW.kind, NEW.scope, NEW.parent, 1)
            ON CONFLICT (kind, scope, parent) DO UPDATE SET n = n + 1;
    END;",
];

/// Every scope holding a document of kind `?1`, in order: one step of the unique key
/// `(kind, scope, id)` per scope, from each scope to the next, rather than a read of every
/// document of the kind.
const SCOPES_OF_KIND: &str = "WITH RECURSIVE scopes(scope) AS (
        SELECT MIN(scope) FROM documents WHERE kind = ?1
        UNION ALL
        SELECT (SELECT MIN(d.scope) FROM documents d WHERE d.kind = ?1 AND d.scope > scopes.scope)
        FROM scopes WHERE scopes.scope IS NOT NULL
    )
    SELECT scope FROM scopes WHERE scope IS NOT NULL";

/// The visible messages of a queue in the order they became visible: one range of
/// `queue_messages_by_visibility`, read in its order, whatever else the table holds.
fn claim_sql() -> String {
    format!(
        "SELECT {MESSAGE_COLUMNS} FROM queue_messages
         WHERE scope = ?1 AND queue = ?2 AND visible_at_ms <= ?3
         ORDER BY visible_at_ms, seq LIMIT ?4"
    )
}

const MESSAGE_COLUMNS: &str =
    "message_id, queue, body, sent_ms, visible_at_ms, receive_count, first_receive_ms, receipt, attributes";

fn message_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<QueuedMessage> {
    Ok(QueuedMessage {
        message_id: r.get(0)?,
        queue: r.get(1)?,
        body: r.get(2)?,
        sent_ms: r.get(3)?,
        visible_at_ms: r.get(4)?,
        receive_count: r.get(5)?,
        first_receive_ms: r.get(6)?,
        receipt: r.get(7)?,
        attributes: r.get(8)?,
    })
}

const READERS: usize = 4;

/// How long a long poller sleeps at most before it looks again: the bound on how late it sees
/// a commit made by another process (an `admin` command), which cannot wake it.
const FALLBACK_POLL: Duration = Duration::from_secs(1);

/// The wake-ups of every SQLite file open in this process, so that two handles on one file
/// wake each other's waiters.
static WAKEUPS: Mutex<Option<HashMap<PathBuf, Weak<Wakeups>>>> = Mutex::new(None);

fn wakeups_of(path: &Path) -> Arc<Wakeups> {
    let key = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    let mut all = WAKEUPS.lock().unwrap_or_else(|p| p.into_inner());
    let all = all.get_or_insert_with(HashMap::new);
    all.retain(|_, w| w.strong_count() > 0);
    if let Some(existing) = all.get(&key).and_then(Weak::upgrade) {
        return existing;
    }
    let fresh = Arc::new(Wakeups::new(FALLBACK_POLL));
    all.insert(key, Arc::downgrade(&fresh));
    fresh
}

/// Most write transactions one group commit carries.
pub const MAX_GROUP: usize = 64;

/// A store in one SQLite file.
pub struct SqliteStore {
    /// Write transactions waiting for the writer thread.
    queue: Arc<WriteQueue>,
    writer: Option<std::thread::JoinHandle<()>>,
    readers: Vec<Mutex<Connection>>,
}

/// The hand-off between callers and the writer thread.
struct WriteQueue {
    state: Mutex<QueueState>,
    /// Raised when a job arrives or the store closes.
    arrived: Condvar,
    /// Notified after a group commit in which a kept write called `wake_waiters`.
    wakeups: Arc<Wakeups>,
    /// Told of every group commit (`Store::observe_commits`).
    observer: Mutex<Option<super::CommitObserver>>,
}

struct QueueState {
    jobs: VecDeque<Job>,
    closing: bool,
}

/// What the writer thread is handed.
enum Job {
    /// One write transaction: the caller's body, and where the caller waits for its outcome.
    Transaction {
        body: BodyPtr,
        done: Arc<Completion>,
    },
    /// Work that runs on the writer itself (see `Store::run_on_writer`).
    Work(WriterWork),
}

/// What a group member leaves to do once the group's commit is over.
enum Pending {
    /// A caller waiting in `SqliteStore::write`, with its transaction's outcome so far.
    Caller(Arc<Completion>, Result<(), StoreError>),
    /// A `WriterWork`'s continuation (`None` when the work panicked: dropping it answers), and
    /// the effects it asked to follow the commit (`store::after_commit`).
    Work(Option<AfterCommit>, Vec<super::Effect>),
}

thread_local! {
    /// Set on a writer thread while it runs a `WriterWork`: the connection of the open group,
    /// and the queue that identifies the store, so the work's transactions run inline.
    static ON_WRITER: std::cell::Cell<(*const Connection, *const WriteQueue)> =
        const { std::cell::Cell::new((std::ptr::null(), std::ptr::null())) };
    /// Set on a writer thread when a kept member of the open group called `wake_waiters`.
    static GROUP_WAKES: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    /// Set while a thread runs work in one snapshot (`Store::in_one_snapshot`): the reader
    /// connection holding the open read transaction, and the queue that identifies the store.
    static SNAPSHOT: std::cell::Cell<(*const Connection, *const WriteQueue)> =
        const { std::cell::Cell::new((std::ptr::null(), std::ptr::null())) };
}

/// The caller's transaction body, lent to the writer thread.
///
/// The body borrows from the caller's stack, so its lifetime is erased here. That is sound
/// because the caller blocks in [`SqliteStore::write`] until the writer thread has reported the
/// job's outcome through its [`Completion`], and the writer never touches the body after that;
/// the body is `Send` (see [`Body`]).
struct BodyPtr(*mut Body<'static>);

// SAFETY: the pointee is `Send` and is used by one thread at a time (see `BodyPtr`).
unsafe impl Send for BodyPtr {}

/// Where a caller waits for its job's outcome.
struct Completion {
    outcome: Mutex<Option<Result<(), StoreError>>>,
    ready: Condvar,
}

impl Completion {
    fn finish(&self, outcome: Result<(), StoreError>) {
        *self.outcome.lock().unwrap_or_else(|p| p.into_inner()) = Some(outcome);
        self.ready.notify_one();
    }

    fn wait(&self) -> Result<(), StoreError> {
        let mut outcome = self.outcome.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(outcome) = outcome.take() {
                return outcome;
            }
            outcome = self.ready.wait(outcome).unwrap_or_else(|p| p.into_inner());
        }
    }
}

/// The writer thread: takes every waiting job (up to [`MAX_GROUP`]), runs each inside a
/// `SAVEPOINT` of one SQLite transaction (so a body that fails rolls back alone), commits the
/// group with one fsync, and only then tells each caller its outcome. So an acknowledged write
/// is always on disk, writers under load share fsyncs, and the transaction bodies run back to
/// back on one thread instead of passing a lock from thread to thread.
/// After each commit it tells `checkpoints`, whose thread copies the log into the database
/// file, so the checkpoint a commit runs itself now and then has little left to copy.
fn writer_loop(conn: Connection, queue: Arc<WriteQueue>, checkpoints: Checkpointer) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    loop {
        {
            let mut state = queue.state.lock().unwrap_or_else(|p| p.into_inner());
            while state.jobs.is_empty() {
                if state.closing {
                    return;
                }
                state = queue.arrived.wait(state).unwrap_or_else(|p| p.into_inner());
            }
            let n = state.jobs.len().min(MAX_GROUP);
            group.extend(state.jobs.drain(..n));
        }
        if commit_group(&conn, &queue, &mut group) {
            checkpoints.committed();
        }
    }
}

/// Runs and commits one group, then reports every member's outcome (see [`writer_loop`]).
/// Jobs that arrive while the group's bodies run join it (up to [`MAX_GROUP`]): they would
/// otherwise wait for this commit and then pay for one of their own.
/// Whether it committed.
fn commit_group(conn: &Connection, queue: &WriteQueue, group: &mut Vec<Job>) -> bool {
    let began = std::time::Instant::now();
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        let reason = e.to_string();
        tracing::error!(error = %reason, "the store could not begin a write group");
        for job in group.drain(..) {
            match job {
                Job::Transaction { done, .. } => done.finish(Err(StoreError::new(reason.clone()))),
                // Unrun work is dropped: its caller learns that nothing happened.
                Job::Work(_) => {}
            }
        }
        return false;
    }
    let mut pending: Vec<Pending> = Vec::with_capacity(group.len());
    loop {
        for job in group.drain(..) {
            pending.push(match job {
                Job::Transaction { body, done } => {
                    // SAFETY: the caller is blocked until this job is finished (see `BodyPtr`).
                    let outcome = in_savepoint(conn, Mode::Write, unsafe { &mut *body.0 });
                    Pending::Caller(done, outcome)
                }
                Job::Work(work) => {
                    ON_WRITER.with(|w| w.set((conn as *const Connection, queue as *const _)));
                    let (after, effects) = super::holding_effects(|| {
                        std::panic::catch_unwind(std::panic::AssertUnwindSafe(work))
                    });
                    ON_WRITER.with(|w| w.set((std::ptr::null(), std::ptr::null())));
                    Pending::Work(after.ok(), effects)
                }
            });
        }
        let mut state = queue.state.lock().unwrap_or_else(|p| p.into_inner());
        let n = state
            .jobs
            .len()
            .min(MAX_GROUP.saturating_sub(pending.len()));
        if n == 0 {
            break;
        }
        group.extend(state.jobs.drain(..n));
    }
    let committed = conn.execute_batch("COMMIT").map_err(|e| {
        let _ = conn.execute_batch("ROLLBACK");
        e.to_string()
    });
    if GROUP_WAKES.with(|w| w.replace(false)) && committed.is_ok() {
        queue.wakeups.notify();
    }
    if committed.is_ok() {
        let observer = queue
            .observer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some(observe) = observer {
            observe(super::Commit {
                duration: began.elapsed(),
                transactions: pending.len(),
            });
        }
    }
    let failed = |reason: &str| {
        StoreError::new(format!(
            "the commit failed, nothing of this transaction was written: {reason}"
        ))
    };
    for member in pending {
        match (member, &committed) {
            (Pending::Caller(done, outcome), Ok(())) => done.finish(outcome),
            (Pending::Caller(done, outcome), Err(reason)) => {
                done.finish(outcome.and(Err(failed(reason))))
            }
            (Pending::Work(after, effects), Ok(())) => {
                // What committed, even of work that then panicked, has its effects.
                for effect in effects {
                    effect();
                }
                if let Some(after) = after {
                    after(Ok(()));
                }
            }
            (Pending::Work(Some(after), _), Err(reason)) => after(Err(failed(reason))),
            (Pending::Work(None, _), Err(_)) => {}
        }
    }
    committed.is_ok()
}

/// Runs one transaction of a group inside its own savepoint: a write is kept when its body
/// returns `true` and rolled back alone when it returns `false` or panics; a read is always
/// rolled back.
fn in_savepoint(conn: &Connection, mode: Mode, body: &mut Body<'_>) -> Result<(), StoreError> {
    let step = |sql: &str| step(conn, sql);
    step("SAVEPOINT member")?;
    let mut wakes = false;
    let kept = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        body(&mut SqliteTx {
            conn,
            wakes: &mut wakes,
        })
    }));
    if !(mode == Mode::Write && matches!(kept, Ok(true))) {
        step("ROLLBACK TO member")?;
    } else if wakes {
        GROUP_WAKES.with(|w| w.set(true));
    }
    step("RELEASE member")?;
    match kept {
        Ok(_) => Ok(()),
        Err(_) => Err(StoreError::new("the transaction panicked")),
    }
}

fn err(e: rusqlite::Error) -> StoreError {
    StoreError::new(e.to_string())
}

/// Runs one statement without parameters or rows (`BEGIN`, `ROLLBACK`), prepared once per
/// connection rather than parsed on every call.
fn step(conn: &Connection, sql: &str) -> Result<(), StoreError> {
    conn.prepare_cached(sql)
        .and_then(|mut statement| statement.execute([]))
        .map(drop)
        .map_err(err)
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
    // Savepoint (sub-)journals and temporary indexes stay in memory: every member of a group
    // commit runs in a savepoint, and its page copies need never reach a file.
    conn.pragma_update(None, "temp_store", "MEMORY")
        .map_err(err)?;
    Ok(conn)
}

/// How much of the database file the writer maps (`PRAGMA mmap_size`), to read its pages
/// without a `pread` each (the log's pages still are read so). A write touches pages all over
/// the file (ids are random) and the writer, which every write waits for, would otherwise miss
/// its small cache often. Address space, not memory: only the pages read are resident, and they
/// are the kernel's page cache. The readers keep `pread` and their own caches: mapped, they
/// measured slower (`BENCHMARKS.md`).
const WRITER_MMAP_BYTES: i64 = 256 << 20;

/// Pages of log after which a commit checkpoints by itself (`PRAGMA wal_autocheckpoint`,
/// SQLite's default, said here because it was measured): the checkpoint thread copies the log
/// as it grows; the commit's own checkpoint copies the rest, fsyncs the database file and lets
/// the log start over. A longer log (4,000 pages) took the writer's share of checkpointing from
/// 8% to 2% of its time under Notify, but made reads 15 to 30% dearer in CPU, since a reader
/// looks up each page it reads in the log's index first (`BENCHMARKS.md`).
const AUTOCHECKPOINT_PAGES: i64 = 1_000;

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`, brings its schema up to date and
    /// starts the writer thread.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let mut writer = open_connection(path)?;
        migrate(&mut writer)?;
        writer
            .pragma_update(None, "wal_autocheckpoint", AUTOCHECKPOINT_PAGES)
            .map_err(err)?;
        writer
            .pragma_update(None, "mmap_size", WRITER_MMAP_BYTES)
            .map_err(err)?;
        // Checkpoints run on a thread of their own (`checkpoint.rs`); the writer's own
        // (SQLite's automatic one, at `AUTOCHECKPOINT_PAGES` of log) finds little left to copy, and still
        // starts the log over, which a checkpoint beside a writer that never pauses cannot.
        let checkpoints = Checkpointer::start(open_connection(path)?)
            .map_err(|e| StoreError::new(format!("starting the checkpoint thread: {e}")))?;
        let readers = (0..READERS)
            .map(|_| {
                let reader = open_connection(path)?;
                // A reader never writes: SQLite refuses it if a read body tries.
                reader
                    .pragma_update(None, "query_only", true)
                    .map_err(err)?;
                Ok(Mutex::new(reader))
            })
            .collect::<Result<_, StoreError>>()?;
        let queue = Arc::new(WriteQueue {
            state: Mutex::new(QueueState {
                jobs: VecDeque::new(),
                closing: false,
            }),
            arrived: Condvar::new(),
            wakeups: wakeups_of(path),
            observer: Mutex::new(None),
        });
        let for_writer = queue.clone();
        let writer = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || writer_loop(writer, for_writer, checkpoints))
            .map_err(|e| StoreError::new(format!("starting the writer thread: {e}")))?;
        Ok(SqliteStore {
            queue,
            writer: Some(writer),
            readers,
        })
    }

    /// One write transaction: handed to the writer thread, which commits it with whatever
    /// other writes wait meanwhile; returns once that commit is on disk (or failed).
    fn write(&self, body: &mut Body<'_>) -> Result<(), StoreError> {
        let done = Arc::new(Completion {
            outcome: Mutex::new(None),
            ready: Condvar::new(),
        });
        // SAFETY: only the lifetime is erased; this function does not return before the writer
        // thread has finished with the body (`done.wait()` below), see `BodyPtr`.
        let body: *mut Body<'static> = unsafe {
            std::mem::transmute::<*mut Body<'_>, *mut Body<'static>>(body as *mut Body<'_>)
        };
        let job = Job::Transaction {
            body: BodyPtr(body),
            done: done.clone(),
        };
        if self.submit(job).is_err() {
            return Err(StoreError::new("the store is closed"));
        }
        done.wait()
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

impl SqliteStore {
    fn submit(&self, job: Job) -> Result<(), Job> {
        {
            let mut state = self.queue.state.lock().unwrap_or_else(|p| p.into_inner());
            if state.closing {
                return Err(job);
            }
            state.jobs.push_back(job);
        }
        self.queue.arrived.notify_one();
        Ok(())
    }
}

impl Drop for SqliteStore {
    /// Lets the writer thread finish the jobs already handed to it, then stops it.
    fn drop(&mut self) {
        self.queue
            .state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .closing = true;
        self.queue.arrived.notify_one();
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
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
        return Err(StoreError::new(format!(
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
    /// Whether the transaction asked to wake waiters once it commits.
    wakes: &'c mut bool,
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

    /// From the unique key (kind, scope, id) alone: the row and its body are not read.
    fn exists(&mut self, kind: Kind, scope: &str, id: &str) -> Result<bool, StoreError> {
        self.conn
            .prepare_cached("SELECT 1 FROM documents WHERE kind = ?1 AND scope = ?2 AND id = ?3")
            .map_err(err)?
            .query_row(params![kind.as_str(), scope, id], |_| Ok(()))
            .optional()
            .map(|found| found.is_some())
            .map_err(err)
    }

    fn get_for_update(
        &mut self,
        kind: Kind,
        scope: &str,
        id: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        // Write transactions run one at a time: what this one read, nobody changes under it.
        self.get(kind, scope, id)
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
        // Most puts replace a document's body under the same parent: an UPDATE of the body alone
        // finds it through the unique index and touches no other index (SQLite maintains an
        // index whenever its column is assigned, even to the same value). Then a move to
        // another parent; then an insert.
        let step = |sql: &str| -> Result<usize, StoreError> {
            self.conn
                .prepare_cached(sql)
                .map_err(err)?
                .execute(params![kind.as_str(), scope, id, parent, body])
                .map_err(err)
        };
        if step("UPDATE documents SET body = ?5 WHERE kind = ?1 AND scope = ?2 AND id = ?3 AND parent = ?4")? == 0
            && step("UPDATE documents SET parent = ?4, body = ?5 WHERE kind = ?1 AND scope = ?2 AND id = ?3")? == 0
        {
            self.insert(kind, scope, id, parent, body)?;
        }
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

    fn count(&mut self, kind: Kind, scope: &str, parent: &str) -> Result<u64, StoreError> {
        if !kind.is_counted() {
            return Err(StoreError::uncounted(kind));
        }
        self.conn
            .prepare_cached(
                "SELECT n FROM document_counts WHERE kind = ?1 AND scope = ?2 AND parent = ?3",
            )
            .map_err(err)?
            .query_row(params![kind.as_str(), scope, parent], |r| {
                r.get::<_, i64>(0)
            })
            .optional()
            .map(|n| n.unwrap_or(0).max(0) as u64)
            .map_err(err)
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

    fn list_newest(
        &mut self,
        kind: Kind,
        scope: &str,
        parent: &str,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<Row>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT seq, id, body FROM documents
                 WHERE kind = ?1 AND scope = ?2 AND parent = ?3 AND seq < ?4
                 ORDER BY seq DESC LIMIT ?5",
            )
            .map_err(err)?;
        let rows = stmt
            .query_map(
                params![
                    kind.as_str(),
                    scope,
                    parent,
                    before.unwrap_or(i64::MAX),
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

    fn scopes(&mut self, kind: Kind) -> Result<Vec<String>, StoreError> {
        let mut stmt = self.conn.prepare_cached(SCOPES_OF_KIND).map_err(err)?;
        let rows = stmt
            .query_map(params![kind.as_str()], |r| r.get(0))
            .map_err(err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }

    fn enqueue(&mut self, scope: &str, m: &QueuedMessage) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "INSERT INTO queue_messages (scope, queue, message_id, body, sent_ms, visible_at_ms, receive_count, first_receive_ms, receipt, attributes)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )
            .map_err(err)?
            .execute(params![
                scope,
                m.queue,
                m.message_id,
                m.body,
                m.sent_ms,
                m.visible_at_ms,
                m.receive_count,
                m.first_receive_ms,
                m.receipt,
                m.attributes
            ])
            .map_err(err)?;
        Ok(())
    }

    fn claim_messages(
        &mut self,
        scope: &str,
        queue: &str,
        now_ms: i64,
        limit: usize,
    ) -> Result<Vec<QueuedMessage>, StoreError> {
        let mut stmt = self.conn.prepare_cached(&claim_sql()).map_err(err)?;
        let rows = stmt
            .query_map(params![scope, queue, now_ms, limit as i64], message_row)
            .map_err(err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }

    fn message(
        &mut self,
        scope: &str,
        queue: &str,
        message_id: &str,
    ) -> Result<Option<QueuedMessage>, StoreError> {
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS} FROM queue_messages WHERE scope = ?1 AND queue = ?2 AND message_id = ?3"
        );
        self.conn
            .prepare_cached(&sql)
            .map_err(err)?
            .query_row(params![scope, queue, message_id], message_row)
            .optional()
            .map_err(err)
    }

    fn update_message(&mut self, scope: &str, m: &QueuedMessage) -> Result<bool, StoreError> {
        let n = self
            .conn
            .prepare_cached(
                "UPDATE queue_messages SET queue = ?3, visible_at_ms = ?4, receive_count = ?5, first_receive_ms = ?6, receipt = ?7
                 WHERE scope = ?1 AND message_id = ?2",
            )
            .map_err(err)?
            .execute(params![
                scope,
                m.message_id,
                m.queue,
                m.visible_at_ms,
                m.receive_count,
                m.first_receive_ms,
                m.receipt
            ])
            .map_err(err)?;
        Ok(n == 1)
    }

    fn delete_message(
        &mut self,
        scope: &str,
        queue: &str,
        message_id: &str,
    ) -> Result<bool, StoreError> {
        let n = self
            .conn
            .prepare_cached(
                "DELETE FROM queue_messages WHERE scope = ?1 AND queue = ?2 AND message_id = ?3",
            )
            .map_err(err)?
            .execute(params![scope, queue, message_id])
            .map_err(err)?;
        Ok(n == 1)
    }

    /// One statement whichever of `queues` holds the message (its id alone is unique).
    fn discard_message(
        &mut self,
        scope: &str,
        queues: &[&str],
        message_id: &str,
    ) -> Result<(), StoreError> {
        if queues.is_empty() {
            return Ok(());
        }
        let listed: Vec<String> = (0..queues.len()).map(|i| format!("?{}", i + 3)).collect();
        let sql = format!(
            "DELETE FROM queue_messages WHERE message_id = ?1 AND scope = ?2 AND queue IN ({})",
            listed.join(", ")
        );
        let mut values: Vec<&dyn rusqlite::ToSql> = vec![&message_id, &scope];
        values.extend(queues.iter().map(|q| q as &dyn rusqlite::ToSql));
        self.conn
            .prepare_cached(&sql)
            .map_err(err)?
            .execute(values.as_slice())
            .map_err(err)?;
        Ok(())
    }

    fn purge_messages(&mut self, scope: &str, queue: &str) -> Result<u64, StoreError> {
        let n = self
            .conn
            .prepare_cached("DELETE FROM queue_messages WHERE scope = ?1 AND queue = ?2")
            .map_err(err)?
            .execute(params![scope, queue])
            .map_err(err)?;
        Ok(n as u64)
    }

    fn queue_counts(
        &mut self,
        scope: &str,
        queue: &str,
        now_ms: i64,
    ) -> Result<(i64, i64), StoreError> {
        self.conn
            .prepare_cached(
                "SELECT COALESCE(SUM(visible_at_ms <= ?3), 0), COALESCE(SUM(visible_at_ms > ?3), 0)
                 FROM queue_messages WHERE scope = ?1 AND queue = ?2",
            )
            .map_err(err)?
            .query_row(params![scope, queue, now_ms], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .map_err(err)
    }

    fn next_visible_at(
        &mut self,
        scope: &str,
        queue: &str,
        now_ms: i64,
    ) -> Result<Option<i64>, StoreError> {
        self.conn
            .prepare_cached(
                "SELECT MIN(visible_at_ms) FROM queue_messages WHERE scope = ?1 AND queue = ?2 AND visible_at_ms > ?3",
            )
            .map_err(err)?
            .query_row(params![scope, queue, now_ms], |r| r.get(0))
            .map_err(err)
    }

    fn wake_waiters(&mut self) -> Result<(), StoreError> {
        *self.wakes = true;
        Ok(())
    }

    fn put_object(
        &mut self,
        scope: &str,
        bucket: &str,
        o: &StoredObject,
    ) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "INSERT INTO objects (scope, bucket, key, body, etag, created_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (scope, bucket, key) DO UPDATE SET body = excluded.body, etag = excluded.etag, created_ms = excluded.created_ms",
            )
            .map_err(err)?
            .execute(params![scope, bucket, o.key, o.body, o.etag, o.created_ms])
            .map_err(err)?;
        Ok(())
    }

    fn insert_object(
        &mut self,
        scope: &str,
        bucket: &str,
        o: &StoredObject,
    ) -> Result<bool, StoreError> {
        let inserted = self
            .conn
            .prepare_cached(
                "INSERT INTO objects (scope, bucket, key, body, etag, created_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (scope, bucket, key) DO NOTHING",
            )
            .map_err(err)?
            .execute(params![scope, bucket, o.key, o.body, o.etag, o.created_ms])
            .map_err(err)?;
        Ok(inserted == 1)
    }

    fn get_object(
        &mut self,
        scope: &str,
        bucket: &str,
        key: &str,
    ) -> Result<Option<StoredObject>, StoreError> {
        self.conn
            .prepare_cached("SELECT key, body, etag, created_ms FROM objects WHERE scope = ?1 AND bucket = ?2 AND key = ?3")
            .map_err(err)?
            .query_row(params![scope, bucket, key], |r| {
                let body: Vec<u8> = r.get(1)?;
                Ok(StoredObject {
                    key: r.get(0)?,
                    size: body.len() as i64,
                    body,
                    etag: r.get(2)?,
                    created_ms: r.get(3)?,
                })
            })
            .optional()
            .map_err(err)
    }

    fn delete_object(&mut self, scope: &str, bucket: &str, key: &str) -> Result<bool, StoreError> {
        let n = self
            .conn
            .prepare_cached("DELETE FROM objects WHERE scope = ?1 AND bucket = ?2 AND key = ?3")
            .map_err(err)?
            .execute(params![scope, bucket, key])
            .map_err(err)?;
        Ok(n == 1)
    }

    fn list_objects(
        &mut self,
        scope: &str,
        bucket: &str,
        prefix: &str,
        start_after: &str,
        limit: usize,
    ) -> Result<Vec<StoredObject>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT key, length(body), etag, created_ms FROM objects
                 WHERE scope = ?1 AND bucket = ?2 AND key > ?3 AND substr(key, 1, length(?4)) = ?4
                 ORDER BY key LIMIT ?5",
            )
            .map_err(err)?;
        let rows = stmt
            .query_map(
                params![scope, bucket, start_after, prefix, limit as i64],
                |r| {
                    Ok(StoredObject {
                        key: r.get(0)?,
                        body: Vec::new(),
                        size: r.get(1)?,
                        etag: r.get(2)?,
                        created_ms: r.get(3)?,
                    })
                },
            )
            .map_err(err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }
}

impl Store for SqliteStore {
    fn run(&self, mode: Mode, body: &mut Body<'_>) -> Result<(), StoreError> {
        let (conn, queue) = ON_WRITER.with(|w| w.get());
        if !conn.is_null() && std::ptr::eq(queue, Arc::as_ptr(&self.queue)) {
            // SAFETY: set only while this store's writer thread runs a `WriterWork` on that
            // connection, which outlives the work.
            let conn = unsafe { &*conn };
            return in_savepoint(conn, mode, body);
        }
        match mode {
            Mode::Write => self.write(body),
            Mode::Read => {
                let (snapshot, queue) = SNAPSHOT.with(|s| s.get());
                if !snapshot.is_null() && std::ptr::eq(queue, Arc::as_ptr(&self.queue)) {
                    // SAFETY: set only while `in_one_snapshot` holds that connection's guard,
                    // and cleared before the guard goes.
                    let conn = unsafe { &*snapshot };
                    body(&mut SqliteTx {
                        conn,
                        wakes: &mut false,
                    });
                    return Ok(());
                }
                let conn = self.reader();
                step(&conn, "BEGIN DEFERRED")?;
                // A read never commits, so it wakes nobody.
                body(&mut SqliteTx {
                    conn: &conn,
                    wakes: &mut false,
                });
                step(&conn, "ROLLBACK")
            }
        }
    }

    /// One read transaction on one reader connection for all of `work`'s reads: a request's
    /// key check and its operation's reads take the WAL read lock once, not once each. Work on
    /// the writer, or already in a snapshot, runs as it is.
    fn in_one_snapshot(&self, work: &mut dyn FnMut()) {
        let on_writer = !ON_WRITER.with(|w| w.get()).0.is_null();
        if on_writer || !SNAPSHOT.with(|s| s.get()).0.is_null() {
            return work();
        }
        let conn = self.reader();
        if step(&conn, "BEGIN DEFERRED").is_err() {
            drop(conn);
            return work();
        }
        /// Ends the snapshot however `work` ends, a panic included.
        struct End<'a>(&'a Connection);
        impl Drop for End<'_> {
            fn drop(&mut self) {
                SNAPSHOT.with(|s| s.set((std::ptr::null(), std::ptr::null())));
                if let Err(e) = step(self.0, "ROLLBACK") {
                    tracing::error!(error = %e, "ending a read snapshot failed");
                }
            }
        }
        let end = End(&conn);
        SNAPSHOT.with(|s| s.set((end.0 as *const Connection, Arc::as_ptr(&self.queue))));
        work();
    }

    fn wakeups(&self) -> &Arc<Wakeups> {
        &self.queue.wakeups
    }

    fn observe_commits(&self, observer: super::CommitObserver) {
        *self
            .queue
            .observer
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(observer);
    }

    /// WAL readers never wait for the writer, and a read is a few page lookups.
    fn local_reads(&self) -> bool {
        true
    }

    fn run_on_writer(&self, work: WriterWork) -> Result<(), WriterWork> {
        self.submit(Job::Work(work)).map_err(|job| match job {
            Job::Work(work) => work,
            Job::Transaction { .. } => unreachable!("submitted work comes back as work"),
        })
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
    fn a_claim_reads_one_range_of_the_visibility_index_in_its_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("test.db");
        drop(SqliteStore::open(&path).unwrap());
        let conn = rusqlite::Connection::open(&path).unwrap();
        let plan: Vec<String> = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {}", claim_sql()))
            .unwrap()
            .query_map(params!["s", "q", 1000, 10], |r| r.get(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let plan = plan.join("\n");
        assert!(
            plan.contains("USING INDEX queue_messages_by_visibility (scope=? AND queue=? AND visible_at_ms<?)"),
            "{plan}"
        );
        // A sort would read every visible message of the queue to return the first few.
        assert!(!plan.contains("TEMP B-TREE"), "{plan}");
    }

    #[test]
    fn listing_the_scopes_of_a_kind_steps_from_scope_to_scope() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("test.db");
        let store = SqliteStore::open(&path).unwrap();
        crate::store::conformance::fill_three_scopes(&store);
        drop(store);
        let conn = rusqlite::Connection::open(&path).unwrap();
        let mut stmt = conn.prepare(SCOPES_OF_KIND).unwrap();
        let scopes: Vec<String> = stmt
            .query_map(params![Kind::Test.as_str()], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(scopes, ["scope-0", "scope-1", "scope-2"]);
        // The work done (SQLite's own count of its virtual machine's steps) follows the number
        // of scopes: reading the 3,000 documents would take several steps each.
        let steps = stmt.get_status(rusqlite::StatementStatus::VmStep);
        assert!(steps < 500, "{steps} steps for 3 scopes");
    }

    #[test]
    fn counts_are_kept_for_the_counted_kinds_only() {
        crate::store::conformance::assert_triggers_count_the_counted_kinds(
            MIGRATIONS.last().unwrap(),
            4,
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("test.db");
        let store = SqliteStore::open(&path).unwrap();
        crate::store::transact::<_, StoreError>(&store, Mode::Write, |tx| {
            tx.put(Kind::Audit, "", "a", "", b"{}")?;
            tx.put(Kind::Test, "", "t", "", b"{}")
        })
        .unwrap();
        drop(store);
        let kinds: Vec<String> = rusqlite::Connection::open(&path)
            .unwrap()
            .prepare("SELECT kind FROM document_counts ORDER BY kind")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(kinds, ["test"], "an audit entry costs no count update");
    }

    #[test]
    fn reads_in_one_snapshot_share_one_read_transaction() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("test.db")).unwrap();
        let read = |store: &SqliteStore| {
            crate::store::transact::<_, StoreError>(store, Mode::Read, |tx| {
                tx.get(Kind::Test, "s", "a")
            })
            .unwrap()
        };
        let write = |store: &SqliteStore, body: &'static [u8]| {
            crate::store::transact::<_, StoreError>(store, Mode::Write, |tx| {
                tx.put(Kind::Test, "s", "a", "", body)
            })
            .unwrap()
        };
        write(&store, b"before");
        let (first, second) = crate::store::in_one_snapshot(&store, || {
            let first = read(&store);
            // A write committed meanwhile (by the writer thread) is not in this snapshot.
            write(&store, b"after");
            (first, read(&store))
        });
        assert_eq!(first, Some(b"before".to_vec()));
        assert_eq!(
            second,
            Some(b"before".to_vec()),
            "both reads saw one snapshot"
        );
        assert_eq!(read(&store), Some(b"after".to_vec()));
    }

    #[test]
    fn the_log_is_checkpointed_while_writes_go_on() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("test.db");
        let store = SqliteStore::open(&path).unwrap();
        let body = vec![b'x'; 8192];
        // 16 MiB of documents, one transaction each, four times the log a commit lets grow
        // before it checkpoints by itself.
        for i in 0..2048 {
            crate::store::transact::<_, StoreError>(&store, Mode::Write, |tx| {
                tx.put(Kind::Test, "s", &format!("doc-{}", i % 1024), "", &body)
            })
            .unwrap();
        }
        let wal = std::fs::metadata(dir.path().join("test.db-wal"))
            .unwrap()
            .len();
        let bound = (AUTOCHECKPOINT_PAGES as u64 + 256) * 4096;
        assert!(wal < bound, "the log holds {wal} bytes, more than {bound}");
        // Before the store is closed (its last checkpoint): the documents reached the file.
        let db = std::fs::metadata(&path).unwrap().len();
        assert!(
            db > 4 << 20,
            "the documents reached the database file ({db} bytes)"
        );
    }

    #[test]
    fn readers_refuse_writes() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("test.db")).unwrap();
        let mut wrote = None;
        store
            .run(Mode::Read, &mut |tx| {
                wrote = Some(tx.put(Kind::Test, "s", "a", "", b"x"));
                false
            })
            .unwrap();
        assert!(wrote.unwrap().is_err(), "a read transaction cannot write");
    }

    #[test]
    fn sqlite_passes_the_concurrency_suite_on_two_handles_of_one_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("test.db");
        let a: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).unwrap());
        let b: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).unwrap());
        crate::store::conformance::run_concurrent(a, b);
    }

    #[test]
    fn concurrent_writers_share_commits_and_fail_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("test.db");
        let store = std::sync::Arc::new(SqliteStore::open(&path).unwrap());
        let threads: Vec<_> = (0..16)
            .map(|t| {
                let store = store.clone();
                std::thread::spawn(move || {
                    for i in 0..50 {
                        let id = format!("{t}-{i}");
                        let result = crate::store::transact::<_, StoreError>(
                            store.as_ref(),
                            Mode::Write,
                            |tx| {
                                tx.put(Kind::Test, "s", &id, "", b"{}")?;
                                if i % 10 == 9 {
                                    return Err(StoreError::new("refused"));
                                }
                                Ok(())
                            },
                        );
                        assert_eq!(result.is_ok(), i % 10 != 9);
                        // An acknowledged write is visible to every reader at once.
                        let seen = crate::store::transact::<_, StoreError>(
                            store.as_ref(),
                            Mode::Read,
                            |tx| tx.get(Kind::Test, "s", &id),
                        )
                        .unwrap();
                        assert_eq!(seen.is_some(), i % 10 != 9, "{id}");
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let count = crate::store::transact::<_, StoreError>(store.as_ref(), Mode::Read, |tx| {
            tx.count(Kind::Test, "s", "")
        })
        .unwrap();
        assert_eq!(
            count,
            16 * 45,
            "every refused transaction rolled back alone"
        );
        drop(store);
        let reopened = SqliteStore::open(&path).unwrap();
        let count = crate::store::transact::<_, StoreError>(&reopened, Mode::Read, |tx| {
            tx.count(Kind::Test, "s", "")
        })
        .unwrap();
        assert_eq!(count, 16 * 45, "and every acknowledged one is on disk");
    }

    #[test]
    fn a_panicking_transaction_rolls_back_alone_and_the_writer_carries_on() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("test.db")).unwrap();
        let result = crate::store::transact::<(), StoreError>(&store, Mode::Write, |tx| {
            tx.put(Kind::Test, "s", "lost", "", b"{}")?;
            panic!("a bug in a transaction body");
        });
        let error = result.expect_err("the panic is an error");
        assert!(error.message().contains("panicked"), "{error}");
        crate::store::transact::<_, StoreError>(&store, Mode::Write, |tx| {
            tx.put(Kind::Test, "s", "kept", "", b"{}")
        })
        .expect("the writer thread still runs");
        let (lost, kept) = crate::store::transact::<_, StoreError>(&store, Mode::Read, |tx| {
            Ok((
                tx.get(Kind::Test, "s", "lost")?,
                tx.get(Kind::Test, "s", "kept")?,
            ))
        })
        .unwrap();
        assert_eq!((lost, kept.is_some()), (None, true));
    }

    /// Runs `work` on the store's writer and waits for its `AfterCommit`.
    fn on_writer<T: Send + 'static>(
        store: &SqliteStore,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<(T, Result<(), StoreError>), std::sync::mpsc::RecvError> {
        let (send, receive) = std::sync::mpsc::channel();
        let work: WriterWork = Box::new(move || {
            let value = work();
            Box::new(move |committed| {
                let _ = send.send((value, committed));
            })
        });
        assert!(
            store.run_on_writer(work).is_ok(),
            "the SQLite store has a writer"
        );
        receive.recv()
    }

    #[test]
    fn work_on_the_writer_commits_with_its_group_and_hears_of_it_after() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("test.db");
        let store = Arc::new(SqliteStore::open(&path).unwrap());
        let inner = store.clone();
        let (seen, committed) = on_writer(&store, move || {
            let store = inner.as_ref();
            let write = crate::store::transact::<_, StoreError>(store, Mode::Write, |tx| {
                tx.put(Kind::Test, "s", "kept", "", b"1")
            });
            let refused = crate::store::transact::<(), StoreError>(store, Mode::Write, |tx| {
                tx.put(Kind::Test, "s", "refused", "", b"2")?;
                Err(StoreError::new("refused"))
            });
            // Its own reads see its writes; another connection does not, before the commit.
            let own = crate::store::transact::<_, StoreError>(store, Mode::Read, |tx| {
                Ok((
                    tx.get(Kind::Test, "s", "kept")?,
                    tx.get(Kind::Test, "s", "refused")?,
                ))
            });
            let other = Connection::open(&path)
                .unwrap()
                .query_row(
                    "SELECT COUNT(*) FROM documents WHERE kind = 'test'",
                    [],
                    |r| r.get::<_, i64>(0),
                )
                .unwrap();
            (write.is_ok(), refused.is_err(), own.unwrap(), other)
        })
        .unwrap();
        assert!(committed.is_ok());
        assert_eq!(seen, (true, true, (Some(b"1".to_vec()), None), 0));
        let after = crate::store::transact::<_, StoreError>(store.as_ref(), Mode::Read, |tx| {
            Ok((
                tx.get(Kind::Test, "s", "kept")?,
                tx.get(Kind::Test, "s", "refused")?,
            ))
        })
        .unwrap();
        assert_eq!(
            after,
            (Some(b"1".to_vec()), None),
            "committed when it was told so"
        );
    }

    #[test]
    fn effects_asked_for_on_the_writer_follow_the_commit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("test.db");
        let store = Arc::new(SqliteStore::open(&path).unwrap());
        let visible_to_the_effect = Arc::new(Mutex::new(None));
        let (inner, seen, p) = (store.clone(), visible_to_the_effect.clone(), path.clone());
        let probe = visible_to_the_effect.clone();
        let (ran_early, committed) = on_writer(&store, move || {
            crate::store::transact::<_, StoreError>(inner.as_ref(), Mode::Write, |tx| {
                tx.put(Kind::Test, "s", "a", "", b"1")
            })
            .unwrap();
            crate::store::after_commit(move || {
                let count: i64 = Connection::open(&p)
                    .unwrap()
                    .query_row(
                        "SELECT COUNT(*) FROM documents WHERE kind = 'test'",
                        [],
                        |r| r.get(0),
                    )
                    .unwrap();
                *seen.lock().unwrap() = Some(count);
            });
            let ran_early = probe.lock().unwrap().is_some();
            ran_early
        })
        .unwrap();
        assert!(committed.is_ok());
        assert!(!ran_early, "the effect waited for the commit");
        assert_eq!(
            *visible_to_the_effect.lock().unwrap(),
            Some(1),
            "and saw it"
        );

        // Outside work on the writer, a write has committed when it returns: the effect runs at once.
        let ran = Arc::new(Mutex::new(false));
        let r = ran.clone();
        crate::store::after_commit(move || *r.lock().unwrap() = true);
        assert!(*ran.lock().unwrap());
    }

    #[test]
    fn work_that_panics_on_the_writer_is_dropped_alone() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(&dir.path().join("test.db")).unwrap());
        let inner = store.clone();
        let outcome = on_writer(&store, move || {
            crate::store::transact::<_, StoreError>(inner.as_ref(), Mode::Write, |tx| {
                tx.put(Kind::Test, "s", "before-the-panic", "", b"1")
            })
            .unwrap();
            panic!("a bug in work on the writer");
        });
        assert!(
            outcome.is_err(),
            "its AfterCommit never runs: the answer channel closes"
        );
        let inner = store.clone();
        let (_, committed) = on_writer(&store, move || {
            crate::store::transact::<_, StoreError>(inner.as_ref(), Mode::Write, |tx| {
                tx.put(Kind::Test, "s", "next", "", b"1")
            })
            .unwrap()
        })
        .unwrap();
        assert!(committed.is_ok(), "the writer carries on");
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
