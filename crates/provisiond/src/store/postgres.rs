//! The PostgreSQL store, for several replicas on one database (`serve --database-url`).
//!
//! Concurrency is PostgreSQL's: a write transaction runs at READ COMMITTED. `get_for_update`
//! takes the document's row lock (`FOR UPDATE`), so racers on one document queue; `get` reads
//! without a lock (so writers reading one shared document, a product say, do not queue) and
//! remembers the document's version: a later `put` or `delete` of it applies only if the
//! version is unchanged, else the transaction is run again; a document found absent (by a
//! read, or left out of a whole listing of its parent) is created by an insert that reruns the
//! transaction if a racer created it first. Either way a read-modify-write never loses an
//! update. `claim_messages` uses `FOR UPDATE SKIP LOCKED`, so two claimers
//! never take one message. Read transactions see one snapshot (REPEATABLE READ, READ ONLY).
//! A transaction that meets a serialization failure, a deadlock or a unique violation from a
//! race is run again (bounded); a database that cannot be reached answers `unavailable` within
//! the connect timeout. `wake_waiters` is a `NOTIFY` sent once the transaction has committed,
//! in a statement of its own (PostgreSQL serializes the commits of transactions that notify,
//! fsync included, so a notifying write would queue every other behind it); every replica's
//! listener gets it, and the [`Wakeups`] fallback interval covers one lost across a reconnect.
//!
//! Every statement is meant to be served by one index, and the schema leaves the planner no
//! other choice for point lookups, since a young table has no statistics to choose by: the
//! unique key is the only index whose leading columns a lookup matches, and a message, whose
//! id alone is unique, has its scope and queue checked with `IS NOT DISTINCT FROM` (the same
//! test for these NOT NULL columns, but no index condition), not offered to the claim index.
//!
//! Transactions go through [`pg_conn`](super::pg_conn)'s pipelined connections: `BEGIN` is
//! sent with the first statement, and writes whose answer the caller does not need (a `put`,
//! an `enqueue`) wait to go out with the next statement that is awaited, or with `COMMIT`. A
//! deferred write that finds the document changed fails in PostgreSQL itself (function
//! `provisiond_conflict_unless`, SQLSTATE 40001), so the transaction aborts and runs again,
//! however many statements were sent behind it. A document a call requires (its access key,
//! [`Store::requiring`]) is asked for with the `BEGIN` of the call's first transaction, in a
//! statement that fails when it is gone (function `provisiond_require`, SQLSTATE
//! [`REQUIREMENT_UNMET`]), so the check costs no round trip and nothing commits without it.
//! Migrations and the listener use the same connections, one each.

use super::pg_conn::{
    is_conflict, is_unreachable, store_error, Answer, Conn, Deferred, Error as PgError, Flushed,
    Last, OwnedParam, Params, Row as PgRow,
};
use super::workers::Workers;
use super::{
    set_requirement, Body, Kind, Mode, QueuedMessage, Required, Requirement, Row, Store,
    StoreError, StoreThreadWork, StoredObject, Tx, Wakeups, WriterWork,
};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// The versioned schema. Each entry runs once, in order, in the transaction that records it,
/// while the migrating process holds [`MIGRATION_LOCK`].
const MIGRATIONS: &[&str] = &[
    // 1: documents, queue messages, objects, and sharded document counts.
    r#"CREATE TABLE documents (
        seq    BIGSERIAL PRIMARY KEY,
        kind   TEXT NOT NULL,
        scope  TEXT NOT NULL,
        id     TEXT COLLATE "C" NOT NULL,
        parent TEXT COLLATE "C" NOT NULL DEFAULT '',
        body   BYTEA NOT NULL,
        UNIQUE (kind, scope, id)
    );
    CREATE INDEX documents_by_parent ON documents (kind, scope, parent, seq);
    CREATE TABLE queue_messages (
        seq              BIGSERIAL PRIMARY KEY,
        scope            TEXT NOT NULL,
        queue            TEXT NOT NULL,
        message_id       TEXT NOT NULL UNIQUE,
        body             TEXT NOT NULL,
        sent_ms          BIGINT NOT NULL,
        visible_at_ms    BIGINT NOT NULL,
        receive_count    BIGINT NOT NULL DEFAULT 0,
        first_receive_ms BIGINT,
        receipt          TEXT NOT NULL DEFAULT '',
        attributes       TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX queue_messages_by_visibility ON queue_messages (scope, queue, visible_at_ms, seq);
    CREATE TABLE objects (
        scope      TEXT NOT NULL,
        bucket     TEXT NOT NULL,
        key        TEXT COLLATE "C" NOT NULL,
        body       BYTEA NOT NULL,
        etag       TEXT NOT NULL,
        created_ms BIGINT NOT NULL,
        PRIMARY KEY (scope, bucket, key)
    );
    -- Counts per (kind, scope, parent), kept by triggers in one of 16 slots per key chosen by
    -- the connection, so concurrent writers under one parent rarely wait on one row.
    CREATE TABLE document_counts (
        kind   TEXT NOT NULL,
        scope  TEXT NOT NULL,
        parent TEXT COLLATE "C" NOT NULL,
        slot   SMALLINT NOT NULL,
        n      BIGINT NOT NULL,
        PRIMARY KEY (kind, scope, parent, slot)
    );
    CREATE FUNCTION documents_count(k TEXT, s TEXT, p TEXT, delta BIGINT) RETURNS VOID
    LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO document_counts (kind, scope, parent, slot, n)
            VALUES (k, s, p, pg_backend_pid() % 16, delta)
            ON CONFLICT (kind, scope, parent, slot) DO UPDATE SET n = document_counts.n + delta;
    END $$;
    CREATE FUNCTION documents_counted() RETURNS TRIGGER LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'INSERT' THEN
            PERFORM documents_count(NEW.kind, NEW.scope, NEW.parent, 1);
        ELSIF TG_OP = 'DELETE' THEN
            PERFORM documents_count(OLD.kind, OLD.scope, OLD.parent, -1);
        ELSIF OLD.parent IS DISTINCT FROM NEW.parent THEN
            PERFORM documents_count(OLD.kind, OLD.scope, OLD.parent, -1);
            PERFORM documents_count(NEW.kind, NEW.scope, NEW.parent, 1);
        END IF;
        RETURN NULL;
    END $$;
    CREATE TRIGGER documents_counted AFTER INSERT OR DELETE OR UPDATE OF parent ON documents
        FOR EACH ROW EXECUTE FUNCTION documents_counted();"#,
    // 2: a version per document, so a write transaction reads without locking and a write of
    // what it read checks that nobody changed it meanwhile; counts kept only when a parent
    // really changes.
    r#"ALTER TABLE documents ADD COLUMN version BIGINT NOT NULL DEFAULT 0;
    DROP TRIGGER documents_counted ON documents;
    CREATE TRIGGER documents_counted AFTER INSERT OR DELETE ON documents
        FOR EACH ROW EXECUTE FUNCTION documents_counted();
    CREATE TRIGGER documents_recounted AFTER UPDATE OF parent ON documents
        FOR EACH ROW WHEN (OLD.parent IS DISTINCT FROM NEW.parent)
        EXECUTE FUNCTION documents_counted();"#,
    // 3: listings by parent lead with the parent, so that the only index whose leading columns
    // a point lookup (kind, scope, id) matches is the unique key. With (kind, scope, parent,
    // seq), a planner without statistics (a young table: autovacuum has not analyzed it yet)
    // costed the two alike and chose this one, reading every document of the kind in the
    // scope to find one.
    r#"DROP INDEX documents_by_parent;
    CREATE INDEX documents_by_parent ON documents (parent, kind, scope, seq);"#,
    // 4: a write sent without waiting for its answer (pipelined) fails in the database when it
    // finds the document changed, so the transaction aborts rather than commit without it.
    r#"CREATE FUNCTION provisiond_conflict_unless(applied BOOLEAN) RETURNS VOID
    LANGUAGE plpgsql AS $$
    BEGIN
        IF NOT applied THEN
            RAISE EXCEPTION 'a document changed under the transaction'
                USING ERRCODE = 'serialization_failure';
        END IF;
    END $$;"#,
    // 5: a document a call requires, asked for with the first statement of its transaction:
    // its absence aborts the transaction, however many statements were sent behind it.
    r#"CREATE FUNCTION provisiond_require(present BOOLEAN) RETURNS VOID
    LANGUAGE plpgsql AS $$
    BEGIN
        IF NOT present THEN
            RAISE EXCEPTION 'a document the call requires is gone'
                USING ERRCODE = 'PD001';
        END IF;
    END $$;"#,
    // 6: counts kept only for the kinds that are counted (`Kind::COUNTED`), so an audit entry
    // or a note of work in flight costs no trigger call and no count update.
    r#"DROP TRIGGER documents_counted ON documents;
    DROP TRIGGER documents_recounted ON documents;
    DELETE FROM document_counts WHERE kind NOT IN ('provisioned-product', 'test');
    CREATE TRIGGER documents_counted_on_insert AFTER INSERT ON documents
        FOR EACH ROW WHEN (NEW.kind IN ('provisioned-product', 'test'))
        EXECUTE FUNCTION documents_counted();
    CREATE TRIGGER documents_counted_on_delete AFTER DELETE ON documents
        FOR EACH ROW WHEN (OLD.kind IN ('provisioned-product', 'test'))
        EXECUTE FUNCTION documents_counted();
    CREATE TRIGGER documents_recounted AFTER UPDATE OF parent ON documents
        FOR EACH ROW WHEN (OLD.parent IS DISTINCT FROM NEW.parent
            AND NEW.kind IN ('provisioned-product', 'test'))
        EXECUTE FUNCTION documents_counted();"#,
];

/// The SQLSTATE of `provisiond_require` when the document is gone (class `PD`: provisiond's own).
pub const REQUIREMENT_UNMET: &str = "PD001";

/// The schema version this build brings a database to.
pub const SCHEMA_VERSION: usize = MIGRATIONS.len();

/// The advisory lock a process holds while it migrates, so replicas starting together
/// migrate once.
const MIGRATION_LOCK: i64 = 0x7072_6f76_6973_696f; // "provisio"

/// The channel `wake_waiters` notifies.
const WAKE_CHANNEL: &str = "provisiond_wake";
/// What `wake_waiters` sends after a commit.
const WAKE_STATEMENT: &str = "NOTIFY provisiond_wake";

/// Most connections one store handle opens unless told otherwise: four per core of this
/// machine, within 4 to 64 (see `docs/decisions.md`, "Connections per replica").
pub fn default_connections() -> usize {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    (4 * cores).clamp(4, 64)
}
/// How long a connection attempt may take before the database counts as unavailable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a connection to the database may be silent before TCP keepalive probes it, how far
/// apart the probes go, and how many unanswered probes end it (see `config_of`).
const KEEPALIVE_IDLE: Duration = Duration::from_secs(15);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(5);
const KEEPALIVE_RETRIES: u32 = 3;
/// How long a call waits for a free connection of the pool, counted from when its work was
/// queued for the store's threads (see [`QUEUED_AT`]).
const CHECKOUT_TIMEOUT: Duration = Duration::from_secs(5);
/// How often a transaction is run again after conflicts before the call fails.
const MAX_ATTEMPTS: u32 = 20;
/// How long a long poller sleeps at most before it looks again (a lost notification).
const FALLBACK_POLL: Duration = Duration::from_secs(1);

std::thread_local! {
    /// When the work running on this store thread was queued, until its first checkout: the
    /// time it waited for a thread counts against [`CHECKOUT_TIMEOUT`], so a call still answers
    /// within it when every connection (and so every thread) is stuck, as on a database that
    /// stopped answering.
    static QUEUED_AT: std::cell::Cell<Option<Instant>> = const { std::cell::Cell::new(None) };
}

/// A store on a PostgreSQL database.
pub struct PostgresStore {
    config: tokio_postgres::Config,
    /// Most connections the pool opens.
    max_connections: usize,
    pool: Mutex<Pool>,
    returned: Condvar,
    wakeups: Arc<Wakeups>,
    closing: Arc<AtomicBool>,
    listener: Option<std::thread::JoinHandle<()>>,
    /// Told of every write transaction that commits (`Store::observe_commits`).
    observer: Mutex<Option<super::CommitObserver>>,
    /// Threads that run requests' work (`Store::run_on_store_thread`), one per connection of
    /// the pool, started with the first piece of work (a store opened by a command that
    /// serves nothing starts none).
    workers: std::sync::OnceLock<Option<Workers>>,
}

struct Pool {
    idle: Vec<Conn>,
    open: usize,
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user@host:port/db`), applies the
    /// migrations it lacks, and starts listening for wake-ups.
    pub fn open(url: &str) -> Result<PostgresStore, StoreError> {
        Self::open_with(url, default_connections())
    }

    /// [`PostgresStore::open`], with at most `max_connections` (at least 1) in its pool.
    pub fn open_with(url: &str, max_connections: usize) -> Result<PostgresStore, StoreError> {
        let max_connections = max_connections.max(1);
        let config = config_of(url)?;
        migrate(&config)?;
        let wakeups = Arc::new(Wakeups::new(FALLBACK_POLL));
        let closing = Arc::new(AtomicBool::new(false));
        let listener = {
            let (config, wakeups, closing) = (config.clone(), wakeups.clone(), closing.clone());
            std::thread::Builder::new()
                .name("store-listener".into())
                .spawn(move || listen(config, wakeups, closing))
                .map_err(|e| StoreError::new(format!("starting the listener: {e}")))?
        };
        Ok(PostgresStore {
            config,
            max_connections,
            pool: Mutex::new(Pool {
                idle: Vec::new(),
                open: 0,
            }),
            returned: Condvar::new(),
            wakeups,
            closing,
            listener: Some(listener),
            observer: Mutex::new(None),
            workers: std::sync::OnceLock::new(),
        })
    }

    /// The threads that run requests' work, started now if this is the first piece; `None`
    /// when they could not be started (the work then runs where the caller would run it).
    fn workers(&self) -> Option<&Workers> {
        self.workers
            .get_or_init(|| {
                Workers::start(self.max_connections, "store-worker")
                    .inspect_err(|e| tracing::error!(error = %e, "starting the store's threads"))
                    .ok()
            })
            .as_ref()
    }

    fn checkout(&self) -> Result<Conn, StoreError> {
        let since = QUEUED_AT.with(|at| at.take()).unwrap_or_else(Instant::now);
        let deadline = since + CHECKOUT_TIMEOUT;
        let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            while let Some(conn) = pool.idle.pop() {
                if !conn.is_closed() {
                    return Ok(conn);
                }
                pool.open -= 1;
            }
            if pool.open < self.max_connections {
                pool.open += 1;
                drop(pool);
                return Conn::connect(&self.config).inspect_err(|_| {
                    self.pool.lock().unwrap_or_else(|p| p.into_inner()).open -= 1;
                    self.returned.notify_one();
                });
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(StoreError::unavailable(
                    "every connection to the database is busy",
                ));
            }
            pool = self
                .returned
                .wait_timeout(pool, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    fn checkin(&self, mut conn: Option<Conn>) {
        // A batch that failed leaves its transaction block open (the database skipped the
        // `COMMIT` behind the failure): it ends here, and a connection that cannot end it is
        // given up, so the pool only holds connections outside any transaction.
        if let Some(c) = conn.as_mut() {
            if c.in_transaction() && !c.is_closed() && c.simple("ROLLBACK").is_err() {
                conn = None;
            }
        }
        let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
        match conn {
            Some(conn) if !conn.is_closed() => pool.idle.push(conn),
            _ => pool.open -= 1,
        }
        drop(pool);
        self.returned.notify_one();
    }

    /// One attempt: `Ok(true)` when done, `Ok(false)` when it met a conflict and must run again.
    /// `locking`: every document read in a write transaction is locked, as a transaction
    /// that already met a conflict runs, so that racers on one document queue rather than
    /// retry without end.
    fn attempt(
        &self,
        conn: &mut Conn,
        mode: Mode,
        locking: bool,
        body: &mut Body<'_>,
    ) -> Result<bool, StoreError> {
        if super::requirement() == Requirement::Unmet {
            return Err(unmet());
        }
        let begin = match mode {
            Mode::Write => "BEGIN ISOLATION LEVEL READ COMMITTED",
            Mode::Read => "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
        };
        let mut tx = PgTx {
            conn,
            mode,
            begin: Some(begin),
            deferred: Vec::new(),
            failure: None,
            locking: locking && mode == Mode::Write,
            changed: false,
            absent: Default::default(),
            read: Default::default(),
            locked: Default::default(),
            listed_whole: Default::default(),
            wakes: false,
            asks: false,
            ahead: HashMap::new(),
        };
        let began = std::time::Instant::now();
        let kept = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| body(&mut tx)));
        let committing =
            matches!(kept, Ok(true)) && tx.failure.is_none() && !tx.changed && mode == Mode::Write;
        let finish = if committing { "COMMIT" } else { "ROLLBACK" };
        // What was deferred goes out with the COMMIT, and a wake-up right behind it, outside
        // the transaction; a ROLLBACK drops it. A transaction that sent nothing ends as it is.
        let finished = tx.finish(committing);
        let failure = tx.failure.take();
        let changed = tx.changed;
        if changed && failure.is_none() {
            return finished.map(|()| false).map_err(|e| store_error(&e));
        }
        if let Some(e) = &failure {
            if is_conflict(e) {
                return Ok(false);
            }
            if is_unreachable(e) {
                return Err(store_error(e));
            }
        }
        if let Err(e) = finished {
            // After a failed statement the finishing one was skipped; the failure says it all.
            if failure.is_none() {
                if finish == "COMMIT" && is_conflict(&e) {
                    return Ok(false);
                }
                return Err(store_error(&e));
            }
        }
        if let Some(e) = &failure {
            // A statement failed, so nothing was kept (a COMMIT behind it rolls back): a write
            // whose body asked to keep it must not be told it was.
            if mode == Mode::Write && matches!(kept, Ok(true)) {
                return Err(failure_of(e));
            }
        }
        if finish == "COMMIT" && failure.is_none() {
            let observer = self
                .observer
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            if let Some(observe) = observer {
                observe(super::Commit {
                    duration: began.elapsed(),
                    transactions: 1,
                });
            }
        }
        match kept {
            Ok(_) => Ok(true),
            Err(_) => Err(StoreError::new("the transaction panicked")),
        }
    }
}

fn config_of(url: &str) -> Result<tokio_postgres::Config, StoreError> {
    let mut config: tokio_postgres::Config = url.parse().map_err(|e| {
        StoreError::new(format!(
            "the database URL {} is not valid: {e}",
            redact(url)
        ))
    })?;
    config.connect_timeout(CONNECT_TIMEOUT);
    config.application_name("provisiond");
    // A database that vanishes without closing its connections (its host gone, a network
    // partition) is found within about half a minute, rather than a statement waiting for its
    // answer for ever: TCP keepalive probes an idle connection, and sent data left unacknowledged
    // ends it. The URL's own settings of these, as libpq names them, win.
    let given = |name: &str| url.contains(&format!("{name}="));
    if !given("keepalives_idle") {
        config.keepalives_idle(KEEPALIVE_IDLE);
    }
    if !given("keepalives_interval") {
        config.keepalives_interval(KEEPALIVE_INTERVAL);
    }
    if !given("keepalives_retries") {
        config.keepalives_retries(KEEPALIVE_RETRIES);
    }
    match config.get_tcp_user_timeout().copied() {
        // In milliseconds, as libpq reads it (the parser took the number for seconds).
        Some(parsed) => {
            config.tcp_user_timeout(Duration::from_millis(parsed.as_secs()));
        }
        None if !given("tcp_user_timeout") => {
            config.tcp_user_timeout(KEEPALIVE_IDLE + KEEPALIVE_INTERVAL * KEEPALIVE_RETRIES);
        }
        None => {}
    }
    Ok(config)
}

/// Queues `work` for the store's threads, noting when ([`QUEUED_AT`]).
fn queue_work(workers: &Workers, work: StoreThreadWork) {
    let queued = Instant::now();
    workers.submit(Box::new(move || {
        QUEUED_AT.with(|at| at.set(Some(queued)));
        work();
        QUEUED_AT.with(|at| at.set(None));
    }));
}

/// Applies the migrations the database lacks, holding [`MIGRATION_LOCK`].
fn migrate(config: &tokio_postgres::Config) -> Result<(), StoreError> {
    let mut conn = Conn::connect(config)?;
    let conn = &mut conn;
    let fail = |e: PgError| store_error(&e);
    conn.query_opt("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .map_err(fail)?;
    let outcome = (|| {
        conn.simple(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_ms BIGINT NOT NULL)",
        )
        .map_err(fail)?;
        let current: i64 = conn
            .query_opt(
                "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
                &[],
            )
            .map_err(fail)?
            .map_or(0, |row| row.get(0));
        if current > MIGRATIONS.len() as i64 {
            return Err(StoreError::new(format!(
                "the database has schema version {current}, newer than this provisiond knows ({})",
                MIGRATIONS.len()
            )));
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
            let applied = (|| {
                conn.simple("BEGIN")?;
                conn.simple(sql)?;
                conn.query_opt(
                    "INSERT INTO schema_migrations (version, applied_ms) VALUES ($1, $2)",
                    &[&(i as i64 + 1), &crate::time::now_ms()],
                )?;
                conn.simple("COMMIT")
            })();
            if let Err(e) = applied {
                let _ = conn.simple("ROLLBACK");
                return Err(fail(e));
            }
            tracing::info!(version = i + 1, "database migrated");
        }
        Ok(())
    })();
    let _ = conn.query_opt("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK]);
    outcome
}

/// `url` without its password, for messages and logs.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// Runs `sql` (statements without parameters, outside a transaction) on the database at
/// `url`, on a connection of its own: what the benchmark's scratch databases need.
pub fn run_outside_transaction(url: &str, sql: &str) -> Result<(), StoreError> {
    Conn::connect(&config_of(url)?)?
        .simple(sql)
        .map_err(|e| store_error(&e))
}

/// Applies the migrations the database at `url` lacks, and nothing else (`provisiond migrate`).
pub fn migrate_only(url: &str) -> Result<(), StoreError> {
    migrate(&config_of(url)?)
}

/// The listener thread: `LISTEN`s on [`WAKE_CHANNEL`] and moves the wake-ups on for every
/// notification; after losing the connection it wakes everyone (a notification may be lost)
/// and connects again.
fn listen(config: tokio_postgres::Config, wakeups: Arc<Wakeups>, closing: Arc<AtomicBool>) {
    while !closing.load(Ordering::Acquire) {
        let mut conn = match Conn::connect(&config) {
            Ok(conn) => conn,
            Err(_) => {
                std::thread::sleep(Duration::from_millis(250));
                continue;
            }
        };
        if conn.simple(&format!("LISTEN {WAKE_CHANNEL}")).is_err() {
            continue;
        }
        // Whatever was committed while this listener was away is looked at again.
        wakeups.notify();
        while !closing.load(Ordering::Acquire) {
            match conn.notified(Duration::from_millis(200)) {
                Ok(true) => wakeups.notify(),
                Ok(false) => {}
                Err(_) => break,
            }
        }
        wakeups.notify();
    }
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        self.closing.store(true, Ordering::Release);
        if let Some(listener) = self.listener.take() {
            let _ = listener.join();
        }
    }
}

impl Store for PostgresStore {
    fn run(&self, mode: Mode, body: &mut Body<'_>) -> Result<(), StoreError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut conn = self.checkout()?;
            let outcome = self.attempt(&mut conn, mode, attempt > 1, body);
            self.checkin(Some(conn));
            match outcome {
                Ok(true) => return Ok(()),
                Ok(false) if attempt < MAX_ATTEMPTS => {
                    // Back off a little, more each time, with jitter, so the racers spread out.
                    let micros =
                        200 * u64::from(attempt) + u64::from(crate::ids::random_u32() % 1000);
                    std::thread::sleep(Duration::from_micros(micros));
                }
                Ok(false) => {
                    return Err(StoreError::new(format!(
                        "the transaction still conflicted after {MAX_ATTEMPTS} attempts"
                    )))
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn wakeups(&self) -> &Arc<Wakeups> {
        &self.wakeups
    }

    /// The transactions of `work` commit as they go, so it runs on a store thread like any
    /// other work and is told its commit succeeded once it is over.
    fn run_on_writer(&self, work: WriterWork) -> Result<(), WriterWork> {
        match self.workers() {
            Some(workers) => {
                queue_work(workers, Box::new(move || work()(Ok(()))));
                Ok(())
            }
            None => Err(work),
        }
    }

    fn run_on_store_thread(&self, work: StoreThreadWork) -> Result<(), StoreThreadWork> {
        match self.workers() {
            Some(workers) => {
                queue_work(workers, work);
                Ok(())
            }
            None => Err(work),
        }
    }

    fn observe_commits(&self, observer: super::CommitObserver) {
        *self.observer.lock().unwrap_or_else(|p| p.into_inner()) = Some(observer);
    }

    /// One statement outside a transaction block (one round trip, not three).
    fn exists(&self, kind: Kind, scope: &str, id: &str) -> Result<bool, StoreError> {
        let mut conn = self.checkout()?;
        let found = conn.query_opt(DOCUMENT_EXISTS, &[&kind.as_str(), &scope, &id]);
        self.checkin(Some(conn));
        found.map(|row| row.is_some()).map_err(|e| store_error(&e))
    }

    /// Asks with the `BEGIN` of `work`'s first transaction that sends a statement (see
    /// `PgTx::send`); when none did, `work` wrote nothing, and the document is looked up alone.
    fn requiring(
        &self,
        required: &Required<'_>,
        work: &mut dyn FnMut(),
    ) -> Result<bool, StoreError> {
        struct Restore(Requirement);
        impl Drop for Restore {
            fn drop(&mut self) {
                set_requirement(std::mem::take(&mut self.0));
            }
        }
        let pending = Requirement::Pending(
            required.kind,
            required.scope.to_string(),
            required.id.to_string(),
        );
        let _restore = Restore(set_requirement(pending));
        work();
        match super::requirement() {
            Requirement::Held => Ok(true),
            Requirement::Unmet => Ok(false),
            Requirement::Pending(..) | Requirement::None => {
                self.exists(required.kind, required.scope, required.id)
            }
        }
    }
}

/// A transaction on one connection. The first failed statement is kept in `failure`: it
/// decides whether the transaction is run again (a conflict) or fails.
struct PgTx<'c> {
    conn: &'c mut Conn,
    mode: Mode,
    /// The `BEGIN` still to send, with the first statement.
    begin: Option<&'static str>,
    /// Writes not sent yet: they go out ahead of the next statement sent.
    deferred: Vec<Deferred>,
    failure: Option<PgError>,
    /// Every read locks what it reads (`FOR UPDATE`): the transaction runs again after a
    /// conflict.
    locking: bool,
    /// A document read without a lock was changed by another transaction before this one
    /// wrote it: the transaction is run again.
    changed: bool,
    /// Documents this transaction found absent: a `put` of one must create it, and runs the
    /// transaction again if a concurrent one created it first.
    absent: std::collections::HashSet<DocKey>,
    /// Documents read without a lock, with the version read: a write of one checks it.
    read: HashMap<DocKey, i64>,
    /// Documents read with their row lock and found: nobody else changes or deletes them
    /// before this transaction ends, so a `put` of one updates it without looking.
    locked: std::collections::HashSet<DocKey>,
    /// The parents (kind, scope, parent) this transaction listed whole, from the start: a
    /// document under one that it did not see was absent, and a `put` creating it must not
    /// overwrite one a concurrent transaction created meanwhile.
    listed_whole: std::collections::HashSet<DocKey>,
    /// `wake_waiters` was called: a `NOTIFY` follows the commit.
    wakes: bool,
    /// The flush being sent carries the call's requirement, first of its deferred statements.
    asks: bool,
    /// Documents `Tx::lock_ahead` asked to lock: the position of the lock among the deferred
    /// statements, then what it read.
    ahead: HashMap<DocKey, Ahead>,
}

/// A lock read ahead (`Tx::lock_ahead`).
enum Ahead {
    /// Deferred, at this position among the statements not sent yet.
    Sent(usize),
    /// Answered with the document's body, now locked (no row leaves nothing to keep).
    Read(Vec<u8>),
}

/// The failure of a transaction whose work a call required a document that is gone.
fn unmet() -> StoreError {
    StoreError::new("a document the call requires is gone")
}

fn is_requirement_unmet(e: &PgError) -> bool {
    e.code().is_some_and(|c| c.code() == REQUIREMENT_UNMET)
}

/// What a statement's failure tells the caller.
fn failure_of(e: &PgError) -> StoreError {
    if is_requirement_unmet(e) {
        unmet()
    } else {
        store_error(e)
    }
}

type DocKey = (Kind, String, String);

/// The parameters of a deferred write of a whole document ($1 to $5).
fn document_params(
    kind: Kind,
    scope: &str,
    id: &str,
    parent: &str,
    body: &[u8],
) -> Vec<OwnedParam> {
    vec![
        Box::new(kind.as_str().to_string()),
        Box::new(scope.to_string()),
        Box::new(id.to_string()),
        Box::new(parent.to_string()),
        Box::new(body.to_vec()),
    ]
}

fn doc_key(kind: Kind, scope: &str, id: &str) -> DocKey {
    (kind, scope.to_string(), id.to_string())
}

impl PgTx<'_> {
    fn fail(&mut self, e: PgError) -> StoreError {
        let error = failure_of(&e);
        if self.failure.is_none() {
            self.failure = Some(e);
        }
        error
    }

    /// Sends what is deferred (behind a `BEGIN` not sent yet, and the call's requirement with
    /// it) and `last`, in one round trip.
    fn send<'p>(
        &mut self,
        last: impl FnOnce(&mut Conn) -> Result<Last<'p>, PgError>,
    ) -> Result<Answer, StoreError> {
        if self.failure.is_some() {
            return Err(StoreError::new("the transaction already failed"));
        }
        let last = match last(self.conn) {
            Ok(last) => last,
            Err(e) => return Err(self.fail(e)),
        };
        let deferred = self.take_deferred()?;
        let asks = self.asks;
        let mut flushed = self.conn.flush(self.begin.take(), &deferred, last);
        if asks {
            self.answered(flushed.deferred.remove(0).map(drop))?;
        }
        self.keep_locked_ahead(&mut flushed);
        if let Err(e) = flushed.deferred_failure() {
            return Err(self.fail(e));
        }
        flushed.last.map_err(|e| self.fail(e))
    }

    /// What is deferred, taken to be sent; when the `BEGIN` goes with it, the requirement of the
    /// call on this thread not asked yet goes first (`asks`).
    fn take_deferred(&mut self) -> Result<Vec<Deferred>, StoreError> {
        let mut deferred = std::mem::take(&mut self.deferred);
        if self.begin.is_some() {
            if let Requirement::Pending(kind, scope, id) = super::requirement() {
                let params: Vec<OwnedParam> = vec![
                    Box::new(kind.as_str().to_string()),
                    Box::new(scope),
                    Box::new(id),
                ];
                match self.conn.defer(REQUIRE_DOCUMENT, params) {
                    Ok(require) => deferred.insert(0, require),
                    Err(e) => return Err(self.fail(e)),
                }
                self.asks = true;
            }
        }
        Ok(deferred)
    }

    /// Keeps what the locks read ahead (`Tx::lock_ahead`) in this flush found, as a locking read
    /// would have; a document written since it was asked for is left to be read again.
    fn keep_locked_ahead(&mut self, flushed: &mut Flushed) {
        let sent: Vec<(DocKey, usize)> = self
            .ahead
            .iter()
            .filter_map(|(key, ahead)| match ahead {
                Ahead::Sent(at) => Some((key.clone(), *at)),
                Ahead::Read(_) => None,
            })
            .collect();
        for (key, at) in sent {
            let Some(slot) = flushed.deferred.get_mut(at) else {
                self.ahead.remove(&key);
                continue;
            };
            if slot.is_err() {
                // Left where it is, for the flush's failure.
                self.ahead.remove(&key);
                continue;
            }
            let Ok(Answer::Rows(rows)) = std::mem::replace(slot, Ok(Answer::Done)) else {
                self.ahead.remove(&key);
                continue;
            };
            // No row: absent, or locked by another transaction and skipped; the read asks.
            let Some(body) = rows.first().map(|r| r.get::<Vec<u8>>(0)) else {
                self.ahead.remove(&key);
                continue;
            };
            self.read.remove(&key);
            self.absent.remove(&key);
            self.locked.insert(key.clone());
            self.ahead.insert(key, Ahead::Read(body));
        }
    }

    /// A write of a document forgets what was read of it ahead.
    fn written(&mut self, kind: Kind, scope: &str, id: &str) {
        if !self.ahead.is_empty() {
            self.ahead.remove(&doc_key(kind, scope, id));
        }
    }

    /// Notes what the requirement sent in this transaction's first round trip answered. A
    /// statement that did not reach the database leaves it to be asked again.
    fn answered(&mut self, answer: Result<(), PgError>) -> Result<(), StoreError> {
        self.asks = false;
        match answer {
            Ok(()) => {
                set_requirement(Requirement::Held);
                Ok(())
            }
            Err(e) => {
                if is_requirement_unmet(&e) {
                    set_requirement(Requirement::Unmet);
                }
                Err(self.fail(e))
            }
        }
    }

    fn query(&mut self, sql: &'static str, params: &Params<'_>) -> Result<Vec<PgRow>, StoreError> {
        match self.send(|conn| Ok(Last::Query(conn.statement(sql)?, params)))? {
            Answer::Rows(rows) => Ok(rows),
            _ => unreachable!("a query answers rows"),
        }
    }

    fn execute(&mut self, sql: &'static str, params: &Params<'_>) -> Result<u64, StoreError> {
        match self.send(|conn| Ok(Last::Execute(conn.statement(sql)?, params)))? {
            Answer::Count(n) => Ok(n),
            _ => unreachable!("an execution answers a count"),
        }
    }

    /// A write whose answer the caller does not need, sent with the next statement: it must
    /// fail in PostgreSQL when it cannot apply (see the module's documentation).
    fn defer(&mut self, sql: &'static str, params: Vec<OwnedParam>) -> Result<(), StoreError> {
        if self.failure.is_some() {
            return Err(StoreError::new("the transaction already failed"));
        }
        // A read transaction ends in a ROLLBACK, which would drop the write unseen.
        if self.mode == Mode::Read {
            return Err(StoreError::new("a read transaction cannot write"));
        }
        match self.conn.defer(sql, params) {
            Ok(deferred) => {
                self.deferred.push(deferred);
                Ok(())
            }
            Err(e) => Err(self.fail(e)),
        }
    }

    /// Ends the transaction: with `commit`, sends what is deferred and `COMMIT` (a wake-up
    /// behind it when asked for); else a `ROLLBACK`, if anything was sent. A failure of a
    /// deferred write is kept in `failure`; the answer is the finishing statement's own.
    fn finish(&mut self, commit: bool) -> Result<(), PgError> {
        if self.begin.is_some() {
            // Nothing was sent: there is no transaction to end, and nothing deferred is kept.
            if !commit || self.deferred.is_empty() {
                return Ok(());
            }
        }
        if !commit {
            return self.conn.simple("ROLLBACK");
        }
        let Ok(deferred) = self.take_deferred() else {
            // Kept in `failure`; nothing was sent.
            return Ok(());
        };
        let after = self.wakes.then_some(WAKE_STATEMENT);
        let mut flushed =
            self.conn
                .flush(self.begin.take(), &deferred, Last::Finish("COMMIT", after));
        if self.asks {
            // Its failure is kept in `failure`; the database skipped the COMMIT behind it.
            let _ = self.answered(flushed.deferred.remove(0).map(drop));
        }
        if let Err(e) = flushed.deferred_failure() {
            if self.failure.is_none() {
                self.failure = Some(e);
            }
        }
        flushed.last.map(drop)
    }

    /// The body of a document by `sql`, which selects its body and version. In a write
    /// transaction, what was read is remembered: absent (a `put` must create it), or its
    /// version unless `locked`.
    fn body_of(
        &mut self,
        sql: &'static str,
        kind: Kind,
        scope: &str,
        id: &str,
        locked: bool,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let row = self
            .query(sql, &[&kind.as_str(), &scope, &id])?
            .first()
            .map(|r| (r.get::<Vec<u8>>(0), r.get::<i64>(1)));
        if self.mode == Mode::Write {
            let key = doc_key(kind, scope, id);
            match &row {
                None => {
                    self.read.remove(&key);
                    self.locked.remove(&key);
                    self.absent.insert(key);
                }
                Some(_) if locked => {
                    self.read.remove(&key);
                    self.locked.insert(key);
                }
                Some((_, version)) => {
                    // A version read earlier stands: the write must match what was read first.
                    self.read.entry(key).or_insert(*version);
                }
            }
        }
        Ok(row.map(|(body, _)| body))
    }

    /// `Tx::list` (`newest` false, `from` = after) and `Tx::list_newest` (`from` = before).
    fn list_rows(
        &mut self,
        kind: Kind,
        scope: &str,
        parent: &str,
        from: Option<i64>,
        newest: bool,
        limit: usize,
    ) -> Result<Vec<Row>, StoreError> {
        let from_start = from.is_none();
        let sql = match (newest, self.locking) {
            (false, true) => {
                "SELECT seq, id, body, version FROM documents
                 WHERE kind = $1 AND scope = $2 AND parent = $3 AND seq > $4
                 ORDER BY seq LIMIT $5 FOR UPDATE"
            }
            (false, false) => {
                "SELECT seq, id, body, version FROM documents
                 WHERE kind = $1 AND scope = $2 AND parent = $3 AND seq > $4
                 ORDER BY seq LIMIT $5"
            }
            (true, true) => {
                "SELECT seq, id, body, version FROM documents
                 WHERE kind = $1 AND scope = $2 AND parent = $3 AND seq < $4
                 ORDER BY seq DESC LIMIT $5 FOR UPDATE"
            }
            (true, false) => {
                "SELECT seq, id, body, version FROM documents
                 WHERE kind = $1 AND scope = $2 AND parent = $3 AND seq < $4
                 ORDER BY seq DESC LIMIT $5"
            }
        };
        let from = from.unwrap_or(if newest { i64::MAX } else { i64::MIN });
        let rows = self.query(
            sql,
            &[&kind.as_str(), &scope, &parent, &from, &(limit as i64)],
        )?;
        let rows: Vec<Row> = rows
            .iter()
            .map(|r| {
                let row = Row {
                    seq: r.get(0),
                    id: r.get(1),
                    body: r.get(2),
                };
                if self.mode == Mode::Write {
                    // Listed is read: a write of a listed document checks its version too.
                    self.read
                        .entry(doc_key(kind, scope, &row.id))
                        .or_insert(r.get(3));
                }
                row
            })
            .collect();
        if self.mode == Mode::Write && from_start && rows.len() < limit {
            self.listed_whole.insert(doc_key(kind, scope, parent));
        }
        Ok(rows)
    }

    /// Notes that a write meant to apply to a version read without a lock matched nothing:
    /// another transaction changed the document, so this one runs again.
    fn changed(&mut self) -> StoreError {
        self.changed = true;
        StoreError::new("a document changed under the transaction; it runs again")
    }
}

fn message_row(r: &PgRow) -> QueuedMessage {
    QueuedMessage {
        message_id: r.get(0),
        queue: r.get(1),
        body: r.get(2),
        sent_ms: r.get(3),
        visible_at_ms: r.get(4),
        receive_count: r.get(5),
        first_receive_ms: r.get(6),
        receipt: r.get(7),
        attributes: r.get(8),
    }
}

macro_rules! messages_sql {
    ($rest:literal) => {
        concat!(
            "SELECT message_id, queue, body, sent_ms, visible_at_ms, receive_count, first_receive_ms, receipt, attributes FROM queue_messages ",
            $rest
        )
    };
}

// The point statements, each served by the unique key it names (`POINT_STATEMENTS`).
const GET_DOCUMENT: &str =
    "SELECT body, version FROM documents WHERE kind = $1 AND scope = $2 AND id = $3";
const LOCK_DOCUMENT: &str =
    "SELECT body, version FROM documents WHERE kind = $1 AND scope = $2 AND id = $3 FOR UPDATE";
/// [`LOCK_DOCUMENT`] ahead of its read (`Tx::lock_ahead`): it never waits, so a lock asked for
/// early cannot deadlock with one taken in another order; a row another transaction holds is
/// skipped, and the read then takes its lock in turn.
const LOCK_AHEAD: &str = "SELECT body, version FROM documents WHERE kind = $1 AND scope = $2 AND id = $3 FOR UPDATE SKIP LOCKED";
const DOCUMENT_EXISTS: &str = "SELECT 1 FROM documents WHERE kind = $1 AND scope = $2 AND id = $3";
/// Fails with [`REQUIREMENT_UNMET`] when the document is gone.
const REQUIRE_DOCUMENT: &str = "SELECT provisiond_require(EXISTS (
         SELECT 1 FROM documents WHERE kind = $1 AND scope = $2 AND id = $3))";
const CREATE_DOCUMENT: &str =
    "INSERT INTO documents (kind, scope, id, parent, body) VALUES ($1, $2, $3, $4, $5)";
const UPDATE_DOCUMENT: &str = "UPDATE documents SET parent = $4, body = $5, version = version + 1
     WHERE kind = $1 AND scope = $2 AND id = $3";
/// An update of the version read, failing (SQLSTATE 40001) when the document is at another.
const UPDATE_DOCUMENT_AT_VERSION: &str = "WITH written AS (
         UPDATE documents SET parent = $4, body = $5, version = version + 1
         WHERE kind = $1 AND scope = $2 AND id = $3 AND version = $6 RETURNING 1)
     SELECT provisiond_conflict_unless(EXISTS (SELECT 1 FROM written))";
const DELETE_DOCUMENT_AT_VERSION: &str =
    "DELETE FROM documents WHERE kind = $1 AND scope = $2 AND id = $3 AND version = $4";
const GET_MESSAGE: &str = messages_sql!(
    "WHERE message_id = $3 AND scope IS NOT DISTINCT FROM $1 AND queue IS NOT DISTINCT FROM $2"
);
const LOCK_MESSAGE: &str = messages_sql!(
    "WHERE message_id = $3 AND scope IS NOT DISTINCT FROM $1 AND queue IS NOT DISTINCT FROM $2 FOR UPDATE"
);
const DELETE_MESSAGE: &str = "DELETE FROM queue_messages WHERE message_id = $3 AND scope IS NOT DISTINCT FROM $1 AND queue IS NOT DISTINCT FROM $2";
/// [`DELETE_MESSAGE`] from any of the queues `$2` (an array).
const DISCARD_MESSAGE: &str = "DELETE FROM queue_messages WHERE message_id = $3 AND scope IS NOT DISTINCT FROM $1 AND queue = ANY($2)";

/// Every scope holding a document of kind `$1`, in order: one step of the unique key
/// `(kind, scope, id)` per scope, from each scope to the next, rather than a read of every
/// document of the kind (PostgreSQL has no skip scan before version 18).
pub const SCOPES_OF_KIND: &str = "WITH RECURSIVE scopes(scope) AS (
        SELECT MIN(scope) FROM documents WHERE kind = $1
        UNION ALL
        SELECT (SELECT MIN(d.scope) FROM documents d WHERE d.kind = $1 AND d.scope > scopes.scope)
        FROM scopes WHERE scopes.scope IS NOT NULL
    )
    SELECT scope FROM scopes WHERE scope IS NOT NULL";

/// The visible messages of a queue in the order they became visible: one range of
/// `queue_messages_by_visibility`, read in its order, whatever else the table holds.
const CLAIM_MESSAGES: &str = messages_sql!(
    "WHERE scope = $1 AND queue = $2 AND visible_at_ms <= $3 ORDER BY visible_at_ms, seq LIMIT $4 FOR UPDATE SKIP LOCKED"
);
/// [`CLAIM_MESSAGES`] without the locks, for a read transaction.
const PEEK_MESSAGES: &str = messages_sql!(
    "WHERE scope = $1 AND queue = $2 AND visible_at_ms <= $3 ORDER BY visible_at_ms, seq LIMIT $4"
);

/// Point statements with example arguments and the index that must serve them, whatever the
/// planner knows of the table (a test holds the schema to it, and holds each to a plan
/// without a sort: the claims' order is the index's).
pub const POINT_STATEMENTS: &[(&str, &str, &str)] = &[
    (
        GET_DOCUMENT,
        "'test', 's', 'doc-1'",
        "documents_kind_scope_id_key",
    ),
    (
        LOCK_DOCUMENT,
        "'test', 's', 'doc-1'",
        "documents_kind_scope_id_key",
    ),
    (
        DOCUMENT_EXISTS,
        "'test', 's', 'doc-1'",
        "documents_kind_scope_id_key",
    ),
    (
        REQUIRE_DOCUMENT,
        "'test', 's', 'doc-1'",
        "documents_kind_scope_id_key",
    ),
    (
        DELETE_DOCUMENT_AT_VERSION,
        "'test', 's', 'doc-1', 0",
        "documents_kind_scope_id_key",
    ),
    (
        GET_MESSAGE,
        "'s', 'q', 'm-1'",
        "queue_messages_message_id_key",
    ),
    (
        LOCK_MESSAGE,
        "'s', 'q', 'm-1'",
        "queue_messages_message_id_key",
    ),
    (
        DELETE_MESSAGE,
        "'s', 'q', 'm-1'",
        "queue_messages_message_id_key",
    ),
    (
        CLAIM_MESSAGES,
        "'s', 'q', 1000, 10",
        "queue_messages_by_visibility",
    ),
    (
        PEEK_MESSAGES,
        "'s', 'q', 1000, 10",
        "queue_messages_by_visibility",
    ),
];

impl Tx for PgTx<'_> {
    fn list(
        &mut self,
        kind: Kind,
        scope: &str,
        parent: &str,
        after: Option<i64>,
        limit: usize,
    ) -> Result<Vec<Row>, StoreError> {
        self.list_rows(kind, scope, parent, after, false, limit)
    }

    fn list_newest(
        &mut self,
        kind: Kind,
        scope: &str,
        parent: &str,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<Row>, StoreError> {
        self.list_rows(kind, scope, parent, before, true, limit)
    }

    fn scopes(&mut self, kind: Kind) -> Result<Vec<String>, StoreError> {
        let rows = self.query(SCOPES_OF_KIND, &[&kind.as_str()])?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    fn get(&mut self, kind: Kind, scope: &str, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        // No lock: in a write transaction the version read is checked by a later write of the
        // document. (Locking every read made every writer reading one shared document, the
        // product of a provision say, wait for the others; a shared lock upgraded to write
        // deadlocked racers.) A transaction run again after a conflict locks, so it ends.
        if self.locking {
            return self.get_for_update(kind, scope, id);
        }
        self.body_of(GET_DOCUMENT, kind, scope, id, false)
    }

    fn get_for_update(
        &mut self,
        kind: Kind,
        scope: &str,
        id: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        match self.mode {
            Mode::Write => {
                // Read ahead and answered: locked since, so still what the database holds.
                if let Some(Ahead::Read(body)) = self.ahead.remove(&doc_key(kind, scope, id)) {
                    return Ok(Some(body));
                }
                self.body_of(LOCK_DOCUMENT, kind, scope, id, true)
            }
            Mode::Read => self.get(kind, scope, id),
        }
    }

    fn lock_ahead(&mut self, kind: Kind, scope: &str, id: &str) -> Result<(), StoreError> {
        let key = doc_key(kind, scope, id);
        if self.mode == Mode::Read
            || self.failure.is_some()
            || self.ahead.contains_key(&key)
            || self.locked.contains(&key)
            || self.absent.contains(&key)
        {
            return Ok(());
        }
        let params: Vec<OwnedParam> = vec![
            Box::new(kind.as_str().to_string()),
            Box::new(scope.to_string()),
            Box::new(id.to_string()),
        ];
        match self.conn.defer_query(LOCK_AHEAD, params) {
            Ok(lock) => {
                self.ahead.insert(key, Ahead::Sent(self.deferred.len()));
                self.deferred.push(lock);
                Ok(())
            }
            Err(e) => Err(self.fail(e)),
        }
    }

    fn insert(
        &mut self,
        kind: Kind,
        scope: &str,
        id: &str,
        parent: &str,
        body: &[u8],
    ) -> Result<bool, StoreError> {
        self.written(kind, scope, id);
        self.absent
            .remove(&(kind, scope.to_string(), id.to_string()));
        let n = self.execute(
            "INSERT INTO documents (kind, scope, id, parent, body) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (kind, scope, id) DO NOTHING",
            &[&kind.as_str(), &scope, &id, &parent, &body],
        )?;
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
        self.written(kind, scope, id);
        // A document this transaction found absent is created by a plain insert, which fails
        // if a concurrent transaction created it meanwhile: then this one runs again and sees
        // it, rather than overwriting what it never read (a lock on a row that did not exist
        // protected nothing). Otherwise an update, else such an insert.
        // A document read without a lock is updated only at the version read: else it changed
        // meanwhile and the transaction runs again.
        // Those three writes are deferred: each fails in PostgreSQL if it cannot apply.
        let key = doc_key(kind, scope, id);
        let owned = |version: Option<i64>| -> Vec<OwnedParam> {
            let mut params = document_params(kind, scope, id, parent, body);
            params.extend(version.map(|v| Box::new(v) as OwnedParam));
            params
        };
        if self.absent.contains(&key) {
            return self.create(kind, scope, id, parent, body);
        }
        if let Some(version) = self.read.remove(&key) {
            return self.defer(UPDATE_DOCUMENT_AT_VERSION, owned(Some(version)));
        }
        if self.locked.contains(&key) {
            return self.defer(UPDATE_DOCUMENT, owned(None));
        }
        let updated = if self
            .listed_whole
            .iter()
            .any(|(k, s, _)| *k == kind && s == scope)
        {
            // Not read, but perhaps left out of a whole listing as absent: create it, and if
            // it exists after all, under a parent that was listed whole, it appeared since the
            // listing and the transaction runs again. Elsewhere it was never seen: replaced.
            let created = self.execute(
                "INSERT INTO documents (kind, scope, id, parent, body) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (kind, scope, id) DO NOTHING",
                &[&kind.as_str(), &scope, &id, &parent, &body],
            )?;
            if created == 1 {
                return Ok(());
            }
            let existing: Option<String> = self
                .query(
                    "SELECT parent FROM documents WHERE kind = $1 AND scope = $2 AND id = $3",
                    &[&kind.as_str(), &scope, &id],
                )?
                .first()
                .map(|r| r.get(0));
            if let Some(existing) = existing {
                if self.listed_whole.contains(&doc_key(kind, scope, &existing)) {
                    return Err(self.changed());
                }
            }
            self.execute(
                UPDATE_DOCUMENT,
                &[&kind.as_str(), &scope, &id, &parent, &body],
            )?
        } else {
            self.execute(
                UPDATE_DOCUMENT,
                &[&kind.as_str(), &scope, &id, &parent, &body],
            )?
        };
        if updated == 0 {
            // Absent a moment ago: a racer creating it first fails this insert (a conflict).
            return self.create(kind, scope, id, parent, body);
        }
        Ok(())
    }

    fn delete(&mut self, kind: Kind, scope: &str, id: &str) -> Result<bool, StoreError> {
        self.written(kind, scope, id);
        let key = doc_key(kind, scope, id);
        self.locked.remove(&key);
        if let Some(version) = self.read.remove(&key) {
            // Read without a lock: deleted only as read, else it changed meanwhile.
            let n = self.execute(
                DELETE_DOCUMENT_AT_VERSION,
                &[&kind.as_str(), &scope, &id, &version],
            )?;
            if n == 0 {
                return Err(self.changed());
            }
            return Ok(true);
        }
        let n = self.execute(
            "DELETE FROM documents WHERE kind = $1 AND scope = $2 AND id = $3",
            &[&kind.as_str(), &scope, &id],
        )?;
        Ok(n == 1)
    }

    fn create(
        &mut self,
        kind: Kind,
        scope: &str,
        id: &str,
        parent: &str,
        body: &[u8],
    ) -> Result<(), StoreError> {
        self.written(kind, scope, id);
        // Deferred: present after all, it fails as a unique violation, a conflict.
        let key = doc_key(kind, scope, id);
        self.absent.remove(&key);
        self.defer(
            CREATE_DOCUMENT,
            document_params(kind, scope, id, parent, body),
        )?;
        self.locked.insert(key);
        Ok(())
    }

    fn add(
        &mut self,
        kind: Kind,
        scope: &str,
        id: &str,
        parent: &str,
        body: &[u8],
    ) -> Result<(), StoreError> {
        self.written(kind, scope, id);
        self.absent.remove(&doc_key(kind, scope, id));
        self.defer(
            "INSERT INTO documents (kind, scope, id, parent, body) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (kind, scope, id) DO NOTHING",
            document_params(kind, scope, id, parent, body),
        )
    }

    fn discard(&mut self, kind: Kind, scope: &str, id: &str) -> Result<(), StoreError> {
        self.written(kind, scope, id);
        let key = doc_key(kind, scope, id);
        if self.read.contains_key(&key) {
            // Read without a lock: its delete checks the version, and must hear the answer.
            return self.delete(kind, scope, id).map(drop);
        }
        self.locked.remove(&key);
        self.absent.insert(key);
        self.defer(
            "DELETE FROM documents WHERE kind = $1 AND scope = $2 AND id = $3",
            vec![
                Box::new(kind.as_str().to_string()),
                Box::new(scope.to_string()),
                Box::new(id.to_string()),
            ],
        )
    }

    fn count(&mut self, kind: Kind, scope: &str, parent: &str) -> Result<u64, StoreError> {
        if !kind.is_counted() {
            return Err(StoreError::uncounted(kind));
        }
        let rows = self.query(
            "SELECT COALESCE(SUM(n), 0)::BIGINT FROM document_counts WHERE kind = $1 AND scope = $2 AND parent = $3",
            &[&kind.as_str(), &scope, &parent],
        )?;
        Ok(rows.first().map_or(0, |r| r.get::<i64>(0)).max(0) as u64)
    }

    fn enqueue(&mut self, scope: &str, m: &QueuedMessage) -> Result<(), StoreError> {
        // Deferred: an insert of a new message id, which only a unique violation (a conflict)
        // could refuse.
        let m = m.clone();
        self.defer(
            "INSERT INTO queue_messages (scope, queue, message_id, body, sent_ms, visible_at_ms, receive_count, first_receive_ms, receipt, attributes)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            vec![
                Box::new(scope.to_string()),
                Box::new(m.queue),
                Box::new(m.message_id),
                Box::new(m.body),
                Box::new(m.sent_ms),
                Box::new(m.visible_at_ms),
                Box::new(m.receive_count),
                Box::new(m.first_receive_ms),
                Box::new(m.receipt),
                Box::new(m.attributes),
            ],
        )
    }

    fn claim_messages(
        &mut self,
        scope: &str,
        queue: &str,
        now_ms: i64,
        limit: usize,
    ) -> Result<Vec<QueuedMessage>, StoreError> {
        let sql = match self.mode {
            Mode::Write => CLAIM_MESSAGES,
            Mode::Read => PEEK_MESSAGES,
        };
        let rows = self.query(sql, &[&scope, &queue, &now_ms, &(limit as i64)])?;
        Ok(rows.iter().map(message_row).collect())
    }

    fn message(
        &mut self,
        scope: &str,
        queue: &str,
        message_id: &str,
    ) -> Result<Option<QueuedMessage>, StoreError> {
        let sql = match self.mode {
            Mode::Write => LOCK_MESSAGE,
            Mode::Read => GET_MESSAGE,
        };
        let rows = self.query(sql, &[&scope, &queue, &message_id])?;
        Ok(rows.first().map(message_row))
    }

    fn update_message(&mut self, scope: &str, m: &QueuedMessage) -> Result<bool, StoreError> {
        let n = self.execute(
            "UPDATE queue_messages SET queue = $3, visible_at_ms = $4, receive_count = $5, first_receive_ms = $6, receipt = $7
             WHERE message_id = $2 AND scope IS NOT DISTINCT FROM $1",
            &[&scope, &m.message_id, &m.queue, &m.visible_at_ms, &m.receive_count, &m.first_receive_ms, &m.receipt],
        )?;
        Ok(n == 1)
    }

    fn delete_message(
        &mut self,
        scope: &str,
        queue: &str,
        message_id: &str,
    ) -> Result<bool, StoreError> {
        let n = self.execute(DELETE_MESSAGE, &[&scope, &queue, &message_id])?;
        Ok(n == 1)
    }

    fn discard_message(
        &mut self,
        scope: &str,
        queues: &[&str],
        message_id: &str,
    ) -> Result<(), StoreError> {
        let queues: Vec<String> = queues.iter().map(|q| q.to_string()).collect();
        self.defer(
            DISCARD_MESSAGE,
            vec![
                Box::new(scope.to_string()),
                Box::new(queues),
                Box::new(message_id.to_string()),
            ],
        )
    }

    fn purge_messages(&mut self, scope: &str, queue: &str) -> Result<u64, StoreError> {
        self.execute(
            "DELETE FROM queue_messages WHERE scope = $1 AND queue = $2",
            &[&scope, &queue],
        )
    }

    fn queue_counts(
        &mut self,
        scope: &str,
        queue: &str,
        now_ms: i64,
    ) -> Result<(i64, i64), StoreError> {
        let rows = self.query(
            "SELECT COUNT(*) FILTER (WHERE visible_at_ms <= $3), COUNT(*) FILTER (WHERE visible_at_ms > $3)
             FROM queue_messages WHERE scope = $1 AND queue = $2",
            &[&scope, &queue, &now_ms],
        )?;
        Ok(rows.first().map_or((0, 0), |r| (r.get(0), r.get(1))))
    }

    fn next_visible_at(
        &mut self,
        scope: &str,
        queue: &str,
        now_ms: i64,
    ) -> Result<Option<i64>, StoreError> {
        let rows = self.query(
            "SELECT MIN(visible_at_ms) FROM queue_messages WHERE scope = $1 AND queue = $2 AND visible_at_ms > $3",
            &[&scope, &queue, &now_ms],
        )?;
        Ok(rows.first().and_then(|r| r.get(0)))
    }

    fn wake_waiters(&mut self) -> Result<(), StoreError> {
        // Sent after the commit (see `PostgresStore::attempt`).
        if self.mode == Mode::Write {
            self.wakes = true;
        }
        Ok(())
    }

    fn put_object(
        &mut self,
        scope: &str,
        bucket: &str,
        o: &StoredObject,
    ) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO objects (scope, bucket, key, body, etag, created_ms) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (scope, bucket, key) DO UPDATE SET body = excluded.body, etag = excluded.etag, created_ms = excluded.created_ms",
            &[&scope, &bucket, &o.key, &o.body, &o.etag, &o.created_ms],
        )?;
        Ok(())
    }

    fn insert_object(
        &mut self,
        scope: &str,
        bucket: &str,
        o: &StoredObject,
    ) -> Result<bool, StoreError> {
        let inserted = self.execute(
            "INSERT INTO objects (scope, bucket, key, body, etag, created_ms) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (scope, bucket, key) DO NOTHING",
            &[&scope, &bucket, &o.key, &o.body, &o.etag, &o.created_ms],
        )?;
        Ok(inserted == 1)
    }

    fn get_object(
        &mut self,
        scope: &str,
        bucket: &str,
        key: &str,
    ) -> Result<Option<StoredObject>, StoreError> {
        let rows = self.query(
            "SELECT key, body, etag, created_ms FROM objects WHERE scope = $1 AND bucket = $2 AND key = $3",
            &[&scope, &bucket, &key],
        )?;
        Ok(rows.first().map(|r| {
            let body: Vec<u8> = r.get(1);
            StoredObject {
                key: r.get(0),
                size: body.len() as i64,
                body,
                etag: r.get(2),
                created_ms: r.get(3),
            }
        }))
    }

    fn delete_object(&mut self, scope: &str, bucket: &str, key: &str) -> Result<bool, StoreError> {
        let n = self.execute(
            "DELETE FROM objects WHERE scope = $1 AND bucket = $2 AND key = $3",
            &[&scope, &bucket, &key],
        )?;
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
        let rows = self.query(
            "SELECT key, octet_length(body)::BIGINT, etag, created_ms FROM objects
             WHERE scope = $1 AND bucket = $2 AND key > $3 AND starts_with(key, $4)
             ORDER BY key LIMIT $5",
            &[&scope, &bucket, &start_after, &prefix, &(limit as i64)],
        )?;
        Ok(rows
            .iter()
            .map(|r| StoredObject {
                key: r.get(0),
                body: Vec::new(),
                size: r.get(1),
                etag: r.get(2),
                created_ms: r.get(3),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::{config_of, MIGRATIONS};

    /// An integer socket option of `stream`.
    fn option(stream: &std::net::TcpStream, level: libc::c_int, name: libc::c_int) -> i32 {
        use std::os::fd::AsRawFd;
        let mut value: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: a valid socket descriptor, and a c_int with its size to be written.
        let got = unsafe {
            libc::getsockopt(
                stream.as_raw_fd(),
                level,
                name,
                (&mut value as *mut libc::c_int).cast(),
                &mut len,
            )
        };
        assert_eq!(got, 0, "{}", std::io::Error::last_os_error());
        value
    }

    #[test]
    fn connections_find_a_vanished_database_by_keepalive_unless_the_url_says_otherwise() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let settings = |url: &str| {
            let stream = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
            super::super::pg_conn::keep_alive(&stream, &config_of(url).unwrap()).unwrap();
            [
                option(&stream, libc::SOL_SOCKET, libc::SO_KEEPALIVE),
                option(&stream, libc::IPPROTO_TCP, libc::TCP_KEEPIDLE),
                option(&stream, libc::IPPROTO_TCP, libc::TCP_KEEPINTVL),
                option(&stream, libc::IPPROTO_TCP, libc::TCP_KEEPCNT),
                option(&stream, libc::IPPROTO_TCP, libc::TCP_USER_TIMEOUT),
            ]
        };
        assert_eq!(
            settings("postgres://u@127.0.0.1:5432/db"),
            [1, 15, 5, 3, 30_000],
            "probed after 15 s of silence, given up after three unanswered probes 5 s apart"
        );
        assert_eq!(
            settings("postgres://u@127.0.0.1:5432/db?keepalives_idle=60&keepalives_interval=10&keepalives_retries=2&tcp_user_timeout=90000"),
            [1, 60, 10, 2, 90_000],
            "the URL's settings win"
        );
        assert_eq!(
            settings("postgres://u@127.0.0.1:5432/db?keepalives=0")[0],
            0,
            "and may turn keepalive off"
        );
    }

    #[test]
    fn counts_are_kept_for_the_counted_kinds_only() {
        crate::store::conformance::assert_triggers_count_the_counted_kinds(
            MIGRATIONS.last().unwrap(),
            4,
        );
    }
}
