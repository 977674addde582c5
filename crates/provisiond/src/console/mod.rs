//! The web console at `/console/` on the API's port: server-rendered pages of what is
//! provisioned, what is running, what is stuck and the engine's log, for a browser signed in
//! with an access key (`session`). Every page reads through the domain with the signed-in
//! key's `RequestContext`, so it sees what that key's API calls would; the actions (fail,
//! retry) are `repair`'s, audited, for admin keys only. `router` maps requests to pages,
//! `html` escapes every user value, `events` streams a running record's log.

mod assets;
mod audit_log;
mod dead_letters;
mod events;
pub mod form;
pub mod html;
mod overview;
mod page;
mod portfolios;
mod proton_resources;
mod provisioned_product;
mod record;
mod records;
mod router;
pub mod session;

use crate::auth::KeyRing;
use crate::crypto::ServerKey;
use crate::store::Store;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

pub use router::handle;

/// What the console reads with.
pub struct Console {
    /// The store.
    pub store: Arc<dyn Store>,
    /// Access keys: sign-in and each request's session.
    pub keys: Arc<KeyRing>,
    /// The server key (a retried record's new workflow token).
    pub server_key: Arc<ServerKey>,
    /// The in-process engine's status (`serve --engine`), shown on the overview.
    pub engine_status: OnceLock<Arc<provisiond_engine::terraform::Status>>,
    /// This replica's data directory: the built-in engine's logs are under it.
    pub data_dir: PathBuf,
    /// Work in progress longer than this is flagged stuck (`serve --stuck-after`).
    pub stuck_after_ms: i64,
}

/// What a page shows when it is in progress longer than this by default: 1 hour.
pub const DEFAULT_STUCK_AFTER_MS: i64 = 3600 * 1000;
