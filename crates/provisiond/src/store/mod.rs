//! The store: one small document interface that every domain module writes through, with an
//! embedded SQLite implementation (`sqlite`) and a conformance suite (`conformance`) that any
//! implementation (PostgreSQL next) must pass.
//!
//! A document is `(kind, scope, id) → JSON body`, with an optional `parent` for listing the
//! children of something in creation order. Scopes are `"<account>/<region>"` for regional
//! resources, `"<account>"` for account-wide ones and `""` for global ones. Unique names and
//! idempotency tokens are documents too (their key is the id), so uniqueness is enforced by the
//! primary key and needs no index concept. The store holds no business rule.

mod checkpoint;
pub mod conformance;
pub mod index;
pub mod lease;
pub mod observe;
mod pg_conn;
pub mod postgres;
pub mod sqlite;
pub mod wakeups;
mod workers;

pub use wakeups::Wakeups;

use provisiond_model::{AwsError, CommonError};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// The kinds of document. The string is what the table stores; never rename one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// An access key (global scope, id = access key id).
    AccessKey,
    /// A Service Catalog portfolio.
    Portfolio,
    /// A principal associated with a portfolio (parent = the portfolio id).
    PortfolioPrincipal,
    /// A Service Catalog product.
    Product,
    /// A product version (parent = the product id).
    Artifact,
    /// A product in a portfolio, listed from the portfolio (parent = the portfolio id).
    PortfolioProduct,
    /// A product in a portfolio, listed from the product (parent = the product id).
    ProductPortfolio,
    /// A constraint (parent = the portfolio id).
    Constraint,
    /// A provisioned product.
    ProvisionedProduct,
    /// A live provisioned product's name (id = the name, body = the product's id).
    ProvisionedProductName,
    /// A record (parent = the provisioned product id).
    Record,
    /// An S3 bucket (scope = the account, id = the bucket name).
    Bucket,
    /// A provisioned product plan.
    Plan,
    /// A Proton repository (id = `<provider>:<name>`).
    ProtonRepository,
    /// A Proton template (id = `<kind>/<name>`).
    ProtonTemplate,
    /// A Proton template version (id = `<kind>/<name>/<major>.<minor>`, parent = `<kind>/<name>`).
    ProtonTemplateVersion,
    /// A Proton environment (id = the name).
    ProtonEnvironment,
    /// A Proton service (id = the name).
    ProtonService,
    /// A Proton service instance (id = `<service>/<instance>`, parent = the service).
    ProtonServiceInstance,
    /// A Proton component (id = the name).
    ProtonComponent,
    /// A Proton deployment (id = the deployment id).
    ProtonDeployment,
    /// A deployment bundle waiting to be committed to its git repository (global scope,
    /// id = `<account>/<region>/<deployment id>`).
    ProtonDelivery,
    /// The tags of a Proton resource (id = the resource's ARN).
    ProtonTags,
    /// Proton account settings (one document per account and region).
    ProtonSettings,
    /// A remembered answer to an idempotent call (id = `<operation>/<token>`).
    Idempotency,
    /// A dead-letter redrive (id = the task handle, parent = the source queue).
    QueueMoveTask,
    /// Which server key this database's secrets are sealed under (global, id `server-key`).
    ServerKeyCheck,
    /// A lease: who holds a named piece of background work until when (id = its name).
    Lease,
    /// An entry of a secondary index (`store::index`): parent = `<kind>/<index>/<value>`,
    /// body = the indexed document's id; also which indexes are built (global scope).
    Index,
    /// A record or deployment in progress (global scope, id = its id; `in_flight`).
    InFlight,
    /// An entry of the audit log (global scope, id = the request id or operator action id;
    /// `audit`).
    Audit,
    /// A console sign-in (global scope, id = the SHA-256 of its cookie's value; `console::session`).
    ConsoleSession,
    /// A document used only by the conformance suite.
    Test,
}

impl Kind {
    /// The kinds whose documents the store counts ([`Tx::count`]): the counts of these, and of
    /// no other, are kept on every insert, delete and move between parents, so a document of
    /// another kind (an audit entry, work in flight) costs no count update. The schemas list
    /// them by name in their count triggers; a kind added here needs a migration that adds it
    /// there and counts what is stored.
    pub const COUNTED: &'static [Kind] = &[Kind::ProvisionedProduct, Kind::Test];

    /// Whether the store keeps counts of this kind ([`Kind::COUNTED`]).
    pub fn is_counted(self) -> bool {
        Kind::COUNTED.contains(&self)
    }

    /// The stored name of the kind.
    pub const fn as_str(self) -> &'static str {
        match self {
            Kind::AccessKey => "access-key",
            Kind::Portfolio => "portfolio",
            Kind::PortfolioPrincipal => "portfolio-principal",
            Kind::Product => "product",
            Kind::Artifact => "provisioning-artifact",
            Kind::PortfolioProduct => "portfolio-product",
            Kind::ProductPortfolio => "product-portfolio",
            Kind::Constraint => "constraint",
            Kind::ProvisionedProduct => "provisioned-product",
            Kind::ProvisionedProductName => "provisioned-product-name",
            Kind::Record => "record",
            Kind::Bucket => "bucket",
            Kind::Plan => "plan",
            Kind::ProtonRepository => "proton-repository",
            Kind::ProtonTemplate => "proton-template",
            Kind::ProtonTemplateVersion => "proton-template-version",
            Kind::ProtonEnvironment => "proton-environment",
            Kind::ProtonService => "proton-service",
            Kind::ProtonServiceInstance => "proton-service-instance",
            Kind::ProtonComponent => "proton-component",
            Kind::ProtonDeployment => "proton-deployment",
            Kind::ProtonDelivery => "proton-delivery",
            Kind::ProtonTags => "proton-tags",
            Kind::ProtonSettings => "proton-settings",
            Kind::Idempotency => "idempotency",
            Kind::QueueMoveTask => "queue-move-task",
            Kind::Lease => "lease",
            Kind::ServerKeyCheck => "server-key-check",
            Kind::Index => "index",
            Kind::InFlight => "in-flight",
            Kind::Audit => "audit",
            Kind::ConsoleSession => "console-session",
            Kind::Test => "test",
        }
    }
}

/// A failure of the store itself: I/O, corruption, a conflict past its retries (a failure), or
/// a database that cannot be reached now (unavailable: the caller may retry).
#[derive(Debug)]
pub struct StoreError {
    message: String,
    unavailable: bool,
}

impl StoreError {
    /// A failure, described by `message` (for the log, never for the caller).
    pub fn new(message: impl Into<String>) -> StoreError {
        StoreError {
            message: message.into(),
            unavailable: false,
        }
    }

    /// The database cannot be reached now; the same call may succeed later.
    pub fn unavailable(message: impl Into<String>) -> StoreError {
        StoreError {
            message: message.into(),
            unavailable: true,
        }
    }

    /// A count asked of a kind the store does not count ([`Kind::COUNTED`]).
    pub fn uncounted(kind: Kind) -> StoreError {
        StoreError::new(format!(
            "documents of kind {} are not counted",
            kind.as_str()
        ))
    }

    /// Whether the database could not be reached (rather than failing an operation).
    pub fn is_unavailable(&self) -> bool {
        self.unavailable
    }

    /// What went wrong.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = if self.unavailable {
            "store unavailable"
        } else {
            "store error"
        };
        write!(f, "{what}: {}", self.message)
    }
}

impl std::error::Error for StoreError {}

impl From<StoreError> for AwsError {
    /// Store failures answer `InternalFailure`, an unreachable database `ServiceUnavailable`
    /// (both retried by the AWS SDKs); the cause goes to the log, never to the caller.
    #[track_caller]
    fn from(e: StoreError) -> Self {
        let at = std::panic::Location::caller();
        if e.unavailable {
            tracing::warn!(error = %e, at = %at, "store unavailable");
            return CommonError::ServiceUnavailable
                .with("The server's database is unavailable; retry the request.");
        }
        tracing::error!(error = %e, at = %at, "store failure");
        CommonError::InternalFailure.with("The server failed to process the request; see its log.")
    }
}

/// A listed document.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Insertion order; stable across updates; the page cursor.
    pub seq: i64,
    /// The document's id.
    pub id: String,
    /// The JSON body.
    pub body: Vec<u8>,
}

/// A message of a queue, as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedMessage {
    /// The message id (a UUID).
    pub message_id: String,
    /// The queue it is in.
    pub queue: String,
    /// The body, as sent.
    pub body: String,
    /// When it was sent, epoch milliseconds.
    pub sent_ms: i64,
    /// When it becomes (or became) visible to receivers, epoch milliseconds.
    pub visible_at_ms: i64,
    /// How often it has been received.
    pub receive_count: i64,
    /// When it was first received, epoch milliseconds.
    pub first_receive_ms: Option<i64>,
    /// The nonce of the latest receipt handle; empty before the first receive.
    pub receipt: String,
    /// The message attributes as the queue layer encodes them (JSON text); empty for none.
    pub attributes: String,
}

/// An object of the object store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredObject {
    /// The object's key in its bucket.
    pub key: String,
    /// The bytes (empty in listings).
    pub body: Vec<u8>,
    /// The size in bytes.
    pub size: i64,
    /// The entity tag (hex MD5 of the body).
    pub etag: String,
    /// When it was written, epoch milliseconds.
    pub created_ms: i64,
}

/// Whether a transaction may write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Reads only; may run beside other readers.
    Read,
    /// Reads and writes; serialized with other writers.
    Write,
}

/// What a transaction can do. All calls see the transaction's own earlier writes.
pub trait Tx {
    /// The body of a document.
    fn get(&mut self, kind: Kind, scope: &str, id: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Whether a document exists: what `get` says, which a store may answer without reading
    /// the body (SQLite: from its unique key alone).
    fn exists(&mut self, kind: Kind, scope: &str, id: &str) -> Result<bool, StoreError> {
        self.get(kind, scope, id).map(|body| body.is_some())
    }
    /// The body of a document, held against every other writer until this transaction ends:
    /// what a read-modify-write reads. A concurrent writer of the same document waits, or one
    /// of the two transactions is run again (see [`Store::run`]); never is an update lost.
    fn get_for_update(
        &mut self,
        kind: Kind,
        scope: &str,
        id: &str,
    ) -> Result<Option<Vec<u8>>, StoreError>;
    /// Creates a document; `false` (and no change) when one with this key exists.
    fn insert(
        &mut self,
        kind: Kind,
        scope: &str,
        id: &str,
        parent: &str,
        body: &[u8],
    ) -> Result<bool, StoreError>;
    /// Creates or replaces a document; a replaced document keeps its place in lists.
    fn put(
        &mut self,
        kind: Kind,
        scope: &str,
        id: &str,
        parent: &str,
        body: &[u8],
    ) -> Result<(), StoreError>;
    /// Removes a document; `false` when there was none.
    fn delete(&mut self, kind: Kind, scope: &str, id: &str) -> Result<bool, StoreError>;

    // The quiet writes: the caller does not learn what they found, so a networked store can
    // send them with the next statement instead of waiting for each one's answer.

    /// Creates a document that this transaction knows to be absent (its id is new); one found
    /// present after all fails the transaction (a networked store runs it again, as after any
    /// conflict), at the latest when it commits.
    fn create(
        &mut self,
        kind: Kind,
        scope: &str,
        id: &str,
        parent: &str,
        body: &[u8],
    ) -> Result<(), StoreError> {
        if self.insert(kind, scope, id, parent, body)? {
            Ok(())
        } else {
            Err(StoreError::new(format!(
                "the {} document {id} exists already",
                kind.as_str()
            )))
        }
    }
    /// Creates a document unless one with this key exists, which is kept as it is.
    fn add(
        &mut self,
        kind: Kind,
        scope: &str,
        id: &str,
        parent: &str,
        body: &[u8],
    ) -> Result<(), StoreError> {
        self.insert(kind, scope, id, parent, body).map(drop)
    }
    /// Removes a document if there is one.
    fn discard(&mut self, kind: Kind, scope: &str, id: &str) -> Result<(), StoreError> {
        self.delete(kind, scope, id).map(drop)
    }
    /// Announces that this transaction will read the document with `get_for_update` once it
    /// has done something else first: a store whose statements are round trips sends the lock
    /// with the next statement it sends, and the read then costs none. Nothing the transaction
    /// sees changes (a write of the document in between drops what was read ahead). The
    /// default does nothing.
    fn lock_ahead(&mut self, kind: Kind, scope: &str, id: &str) -> Result<(), StoreError> {
        let _ = (kind, scope, id);
        Ok(())
    }
    /// Up to `limit` documents of `kind` in `scope` under `parent`, in insertion order, after
    /// the one with sequence number `after` (from the start when `None`).
    fn list(
        &mut self,
        kind: Kind,
        scope: &str,
        parent: &str,
        after: Option<i64>,
        limit: usize,
    ) -> Result<Vec<Row>, StoreError>;

    /// [`Tx::list`] newest first: up to `limit` documents before the one with sequence number
    /// `before` (from the newest when `None`).
    fn list_newest(
        &mut self,
        kind: Kind,
        scope: &str,
        parent: &str,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<Row>, StoreError>;
    /// Every scope holding a document of `kind` (for work over all accounts, such as building
    /// an index over documents written before it existed).
    fn scopes(&mut self, kind: Kind) -> Result<Vec<String>, StoreError>;

    /// How many documents of `kind` in `scope` are under `parent`; `kind` is one the store
    /// counts ([`Kind::COUNTED`]), any other is refused with an error.
    fn count(&mut self, kind: Kind, scope: &str, parent: &str) -> Result<u64, StoreError>;

    /// Adds a message to its queue in `scope`.
    fn enqueue(&mut self, scope: &str, message: &QueuedMessage) -> Result<(), StoreError>;
    /// Claims up to `limit` messages of `queue` visible at `now_ms`, in the order they became
    /// visible (then the order they were sent): they are held for this transaction, and a
    /// concurrent claim skips them rather than taking them too. The caller makes them
    /// invisible (or moves them) with `update_message`. Its cost is that of the messages
    /// returned, however many others the queue holds, visible or not (one range of the
    /// visibility index, read in order).
    fn claim_messages(
        &mut self,
        scope: &str,
        queue: &str,
        now_ms: i64,
        limit: usize,
    ) -> Result<Vec<QueuedMessage>, StoreError>;
    /// One message of `queue`, visible or not.
    fn message(
        &mut self,
        scope: &str,
        queue: &str,
        message_id: &str,
    ) -> Result<Option<QueuedMessage>, StoreError>;
    /// Replaces the mutable fields of a message (queue, visibility, receive count and times,
    /// receipt) with those of `message`; `false` when it no longer exists.
    fn update_message(&mut self, scope: &str, message: &QueuedMessage) -> Result<bool, StoreError>;
    /// Removes a message; `false` when there was none.
    fn delete_message(
        &mut self,
        scope: &str,
        queue: &str,
        message_id: &str,
    ) -> Result<bool, StoreError>;
    /// Removes the message `message_id` from whichever of `queues` holds it (a task's queue and
    /// its dead-letter queue), without saying whether one did: a store whose statements are
    /// round trips sends it, as one statement, with the next statement.
    fn discard_message(
        &mut self,
        scope: &str,
        queues: &[&str],
        message_id: &str,
    ) -> Result<(), StoreError> {
        for queue in queues {
            self.delete_message(scope, queue, message_id)?;
        }
        Ok(())
    }
    /// Removes every message of `queue`; returns how many there were.
    fn purge_messages(&mut self, scope: &str, queue: &str) -> Result<u64, StoreError>;
    /// How many messages of `queue` are visible and how many are not, at `now_ms`.
    fn queue_counts(
        &mut self,
        scope: &str,
        queue: &str,
        now_ms: i64,
    ) -> Result<(i64, i64), StoreError>;
    /// The earliest time after `now_ms` at which a message of `queue` becomes visible.
    fn next_visible_at(
        &mut self,
        scope: &str,
        queue: &str,
        now_ms: i64,
    ) -> Result<Option<i64>, StoreError>;

    /// Wakes every waiter on this database's [`Wakeups`], in every process, once this
    /// transaction commits (never if it rolls back): a message may have become available.
    fn wake_waiters(&mut self) -> Result<(), StoreError>;

    /// Writes (or replaces) an object.
    fn put_object(
        &mut self,
        scope: &str,
        bucket: &str,
        object: &StoredObject,
    ) -> Result<(), StoreError>;
    /// Writes an object only if `bucket` has none under its key (S3's `If-None-Match: *`);
    /// `false`, and nothing written, when one is there. Of racers creating one key, one wins.
    fn insert_object(
        &mut self,
        scope: &str,
        bucket: &str,
        object: &StoredObject,
    ) -> Result<bool, StoreError>;
    /// Reads an object with its body.
    fn get_object(
        &mut self,
        scope: &str,
        bucket: &str,
        key: &str,
    ) -> Result<Option<StoredObject>, StoreError>;
    /// Removes an object; `false` when there was none.
    fn delete_object(&mut self, scope: &str, bucket: &str, key: &str) -> Result<bool, StoreError>;
    /// Up to `limit` objects of `bucket` whose key starts with `prefix`, in key order, after
    /// `start_after`; bodies are left empty.
    fn list_objects(
        &mut self,
        scope: &str,
        bucket: &str,
        prefix: &str,
        start_after: &str,
        limit: usize,
    ) -> Result<Vec<StoredObject>, StoreError>;
}

/// The body of a transaction. It is `Send` because an implementation may run it on a thread of
/// its own (the SQLite store runs every write on its writer thread) while the caller waits.
pub type Body<'a> = dyn FnMut(&mut dyn Tx) -> bool + Send + 'a;

/// What runs after the commit of a [`WriterWork`]'s transactions, told whether it succeeded.
pub type AfterCommit = Box<dyn FnOnce(Result<(), StoreError>) + Send>;

/// A short piece of work handed to a store's writer (see [`Store::run_on_writer`]): it runs
/// there, and returns what to do once the commit that carries its transactions is over.
pub type WriterWork = Box<dyn FnOnce() -> AfterCommit + Send>;

/// A request's work for a store's own threads (see [`Store::run_on_store_thread`]).
pub type StoreThreadWork = Box<dyn FnOnce() + Send>;

/// One durable commit of write transactions, as a store reports it to its [`CommitObserver`].
#[derive(Debug, Clone, Copy)]
pub struct Commit {
    /// From the first write transaction's begin to the commit being durable.
    pub duration: std::time::Duration,
    /// How many write transactions it carried (a group commit carries several).
    pub transactions: usize,
}

/// Told of every durable commit of a store (see [`Store::observe_commits`]). It runs on the
/// committing thread, so it must be cheap and must not touch the store.
pub type CommitObserver = std::sync::Arc<dyn Fn(Commit) + Send + Sync>;

/// A place that keeps documents durably: a write transaction that returns is on disk.
pub trait Store: Send + Sync + 'static {
    /// Runs `body` in one transaction. It commits when `body` returns `true` (write mode) and
    /// rolls back otherwise. An implementation may run `body` again after a conflict with a
    /// concurrent transaction (a bounded number of times; then it fails), so `body` must not
    /// have effects outside the transaction.
    fn run(&self, mode: Mode, body: &mut Body<'_>) -> Result<(), StoreError>;

    /// The wake-ups of this database: a long poller waits here for a commit that called
    /// [`Tx::wake_waiters`], in this process or another.
    fn wakeups(&self) -> &std::sync::Arc<Wakeups>;

    /// Runs `work` on this store's writer, when it has one, instead of a thread that would only
    /// wait there: the transactions `work` runs join the writer's current group, see its
    /// uncommitted writes, and are durable only when the [`AfterCommit`] that `work` returns is
    /// called with `Ok`. `work` must not block (no network, no long waits) and must leave every
    /// effect outside the store to [`after_commit`] or its `AfterCommit`. A store without a
    /// writer hands `work` back.
    fn run_on_writer(&self, work: WriterWork) -> Result<(), WriterWork> {
        Err(work)
    }

    /// Runs `work`, a request's work that opens its own transactions and never waits for
    /// anything but the store, on a thread of the store's own when it keeps some for that: a
    /// store whose transactions are network round trips (PostgreSQL) keeps as many as it has
    /// connections, so the request waits for the database there, not on a thread of the
    /// runtime's blocking pool that would then wait again for a connection. A store without
    /// such threads hands `work` back.
    fn run_on_store_thread(&self, work: StoreThreadWork) -> Result<(), StoreThreadWork> {
        Err(work)
    }

    /// Tells `observer` of every durable commit from now on (replacing an earlier observer).
    fn observe_commits(&self, observer: CommitObserver);

    /// Whether a read transaction is local and short (microseconds, no network, never waiting
    /// for a writer), so a read may run on the async runtime's own threads.
    fn local_reads(&self) -> bool {
        false
    }

    /// Runs `work` so that the read transactions it opens on this store share one snapshot,
    /// taken at its first read, where the store can do that cheaply (SQLite: one WAL read lock
    /// for a request's key check and its operation's reads together). Write transactions are
    /// not affected. The default runs `work` as it is.
    fn in_one_snapshot(&self, work: &mut dyn FnMut()) {
        work()
    }

    /// Whether a document exists, as committed now: what a read transaction of one `get`
    /// answers, which a store may answer in one statement (a per-request check).
    fn exists(&self, kind: Kind, scope: &str, id: &str) -> Result<bool, StoreError> {
        let mut found = Ok(false);
        self.run(Mode::Read, &mut |tx| {
            found = tx.exists(kind, scope, id);
            found.is_ok()
        })?;
        found
    }

    /// Runs `work`, whose writes stand only if the document `required` exists: `Ok(false)`
    /// when it does not, and then nothing `work` wrote is committed (see [`requiring`]). The
    /// default looks first and runs `work` only when the document is there; a store whose
    /// statements are network round trips asks instead with the first statement of `work`'s
    /// first transaction, so the check costs no round trip of its own.
    fn requiring(
        &self,
        required: &Required<'_>,
        work: &mut dyn FnMut(),
    ) -> Result<bool, StoreError> {
        if !self.exists(required.kind, required.scope, required.id)? {
            return Ok(false);
        }
        work();
        Ok(true)
    }
}

/// A document that a call's work requires to exist (a request's access key): [`requiring`].
#[derive(Debug, Clone, Copy)]
pub struct Required<'a> {
    /// Its kind.
    pub kind: Kind,
    /// Its scope.
    pub scope: &'a str,
    /// Its id.
    pub id: &'a str,
}

/// Runs `call` only if the document `required` exists, and keeps what it wrote only if so:
/// `None` when the document is gone, with `call`'s outcome dropped. Where the store asks with
/// the call's first statement, `call` runs before the answer is known; once the document is
/// known to be gone, every transaction `call` opens after that fails without committing.
pub fn requiring<R>(
    store: &dyn Store,
    required: Required<'_>,
    call: impl FnOnce() -> R,
) -> Result<Option<R>, StoreError> {
    let mut call = Some(call);
    let mut out = None;
    let held = store.requiring(&required, &mut || {
        if let Some(call) = call.take() {
            out = Some(call());
        }
    })?;
    Ok(if held { out } else { None })
}

/// Where this thread's [`requiring`] stands, for a store that asks with the first statement of a
/// transaction (PostgreSQL).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) enum Requirement {
    /// No call on this thread requires anything.
    #[default]
    None,
    /// To ask with the first statement sent: (kind, scope, id).
    Pending(Kind, String, String),
    /// Asked: the document was there.
    Held,
    /// Asked: the document is gone; no transaction may commit until the call is over.
    Unmet,
}

thread_local! {
    static REQUIREMENT: std::cell::RefCell<Requirement> = const { std::cell::RefCell::new(Requirement::None) };
}

/// Replaces this thread's requirement, returning the one it had.
pub(crate) fn set_requirement(requirement: Requirement) -> Requirement {
    REQUIREMENT.with(|r| r.replace(requirement))
}

/// This thread's requirement.
pub(crate) fn requirement() -> Requirement {
    REQUIREMENT.with(|r| r.borrow().clone())
}

/// Whether the call running on this thread was found, by its store, to require a document that
/// is gone (see [`requiring`]): whatever it did is void, and it leaves no trace of its own.
pub fn requirement_unmet() -> bool {
    REQUIREMENT.with(|r| *r.borrow() == Requirement::Unmet)
}

/// An effect outside the store (waking long pollers, say) that must follow a commit.
pub type Effect = Box<dyn FnOnce() + Send>;

thread_local! {
    /// While work runs on a store's writer: the effects it asked for, held until its commit.
    static DEFERRED: std::cell::RefCell<Option<Vec<Effect>>> = const { std::cell::RefCell::new(None) };
}

/// Runs `effect` once what this thread has written so far is committed: at once, since a
/// write transaction that returned is committed, except inside work on a store's writer
/// (`Store::run_on_writer`), whose transactions commit with their group later. There the effect
/// waits for that commit, and is dropped if the commit fails.
pub fn after_commit(effect: impl FnOnce() + Send + 'static) {
    let effect: Effect = Box::new(effect);
    let pending = DEFERRED.with(|deferred| match deferred.borrow_mut().as_mut() {
        Some(held) => {
            held.push(effect);
            None
        }
        None => Some(effect),
    });
    if let Some(effect) = pending {
        effect();
    }
}

/// Runs `work` holding back the effects it asks for through [`after_commit`], and returns them
/// beside its result: for a store's writer, which runs them after the commit.
pub fn holding_effects<R>(work: impl FnOnce() -> R) -> (R, Vec<Effect>) {
    let outer = DEFERRED.with(|deferred| deferred.borrow_mut().replace(Vec::new()));
    let result = work();
    let held = DEFERRED.with(|deferred| std::mem::replace(&mut *deferred.borrow_mut(), outer));
    (result, held.unwrap_or_default())
}

thread_local! {
    /// Set while a read-only operation runs on this thread (`reading_only`).
    static READING_ONLY: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `work`, a read-only operation, refusing any write transaction it opens: an operation
/// run inline on the async runtime must never wait for a commit.
pub fn reading_only<R>(work: impl FnOnce() -> R) -> R {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            READING_ONLY.with(|r| r.set(self.0));
        }
    }
    let _restore = Restore(READING_ONLY.with(|r| r.replace(true)));
    work()
}

/// Runs `f` with its reads of `store` in one snapshot (see [`Store::in_one_snapshot`]).
pub fn in_one_snapshot<R>(store: &dyn Store, f: impl FnOnce() -> R) -> R {
    let mut f = Some(f);
    let mut out = None;
    store.in_one_snapshot(&mut || {
        if let Some(f) = f.take() {
            out = Some(f());
        }
    });
    out.expect("in_one_snapshot runs its work")
}

/// Runs `f` in one transaction of `store`: it commits if `f` returns `Ok` (in write mode) and
/// rolls back if it returns `Err`, which is passed on.
pub fn transact<R: Send, E: From<StoreError> + Send>(
    store: &dyn Store,
    mode: Mode,
    mut f: impl FnMut(&mut dyn Tx) -> Result<R, E> + Send,
) -> Result<R, E> {
    if mode == Mode::Write && READING_ONLY.with(|r| r.get()) {
        return Err(E::from(StoreError::new(
            "a read-only operation tried to write (see served::Runs::Inline)",
        )));
    }
    let mut out = None;
    // A write of a call being observed (`observe::observing_writes`, set on this thread) goes
    // through a recording transaction, and the observer writes before the commit.
    let observer = (mode == Mode::Write).then(observe::current).flatten();
    store.run(mode, &mut |tx| {
        let result = match &observer {
            None => f(tx),
            Some(observer) => {
                let mut recording = observe::Recording {
                    inner: tx,
                    written: Vec::new(),
                };
                match f(&mut recording) {
                    Ok(value) => observer
                        .before_commit(recording.inner, &recording.written)
                        .map(|()| value)
                        .map_err(E::from),
                    Err(e) => Err(e),
                }
            }
        };
        let commit = result.is_ok();
        out = Some(result);
        commit
    })?;
    out.expect("Store::run calls the body at least once")
}

/// Reads a document as `T`.
pub fn get<T: DeserializeOwned>(
    tx: &mut dyn Tx,
    kind: Kind,
    scope: &str,
    id: &str,
) -> Result<Option<T>, StoreError> {
    match tx.get(kind, scope, id)? {
        Some(body) => decode(kind, &body).map(Some),
        None => Ok(None),
    }
}

/// Reads a document as `T` for a read-modify-write (see [`Tx::get_for_update`]).
pub fn get_for_update<T: DeserializeOwned>(
    tx: &mut dyn Tx,
    kind: Kind,
    scope: &str,
    id: &str,
) -> Result<Option<T>, StoreError> {
    match tx.get_for_update(kind, scope, id)? {
        Some(body) => decode(kind, &body).map(Some),
        None => Ok(None),
    }
}

/// Writes a document from `T`.
pub fn put<T: Serialize>(
    tx: &mut dyn Tx,
    kind: Kind,
    scope: &str,
    id: &str,
    parent: &str,
    value: &T,
) -> Result<(), StoreError> {
    tx.put(kind, scope, id, parent, &encode(value)?)
}

/// Creates a document from `T`; `false` when the key is taken.
pub fn insert<T: Serialize>(
    tx: &mut dyn Tx,
    kind: Kind,
    scope: &str,
    id: &str,
    parent: &str,
    value: &T,
) -> Result<bool, StoreError> {
    tx.insert(kind, scope, id, parent, &encode(value)?)
}

/// Creates a document from `T` whose id is new (see [`Tx::create`]).
pub fn create<T: Serialize>(
    tx: &mut dyn Tx,
    kind: Kind,
    scope: &str,
    id: &str,
    parent: &str,
    value: &T,
) -> Result<(), StoreError> {
    tx.create(kind, scope, id, parent, &encode(value)?)
}

/// Creates a document from `T` unless the key is taken (see [`Tx::add`]).
pub fn add<T: Serialize>(
    tx: &mut dyn Tx,
    kind: Kind,
    scope: &str,
    id: &str,
    parent: &str,
    value: &T,
) -> Result<(), StoreError> {
    tx.add(kind, scope, id, parent, &encode(value)?)
}

/// Lists documents as `(seq, T)`.
pub fn list<T: DeserializeOwned>(
    tx: &mut dyn Tx,
    kind: Kind,
    scope: &str,
    parent: &str,
    after: Option<i64>,
    limit: usize,
) -> Result<Vec<(i64, T)>, StoreError> {
    tx.list(kind, scope, parent, after, limit)?
        .into_iter()
        .map(|row| Ok((row.seq, decode(kind, &row.body)?)))
        .collect()
}

/// Every document under `parent`, in list order, read a page at a time: for lists whose
/// length the domain bounds (a portfolio's constraints, a product's versions), never cut short.
pub fn list_all<T: DeserializeOwned>(
    tx: &mut dyn Tx,
    kind: Kind,
    scope: &str,
    parent: &str,
) -> Result<Vec<T>, StoreError> {
    const PAGE: usize = 500;
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let rows = tx.list(kind, scope, parent, after, PAGE)?;
        let ended = rows.len() < PAGE;
        after = rows.last().map(|row| row.seq).or(after);
        for row in rows {
            out.push(decode(kind, &row.body)?);
        }
        if ended {
            return Ok(out);
        }
    }
}

/// Lists documents as `(seq, T)`, newest first (see [`Tx::list_newest`]).
pub fn list_newest<T: DeserializeOwned>(
    tx: &mut dyn Tx,
    kind: Kind,
    scope: &str,
    parent: &str,
    before: Option<i64>,
    limit: usize,
) -> Result<Vec<(i64, T)>, StoreError> {
    tx.list_newest(kind, scope, parent, before, limit)?
        .into_iter()
        .map(|row| Ok((row.seq, decode(kind, &row.body)?)))
        .collect()
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(|e| StoreError::new(format!("encoding a document: {e}")))
}

fn decode<T: DeserializeOwned>(kind: Kind, body: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(body)
        .map_err(|e| StoreError::new(format!("a stored {} does not decode: {e}", kind.as_str())))
}
