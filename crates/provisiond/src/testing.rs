//! Fixtures for the domain's unit tests (compiled only for tests): a real SQLite store in a
//! temporary directory, a server key, and the request context of a caller of one account.

#![cfg(test)]

use crate::auth::Identity;
use crate::context::RequestContext;
use crate::crypto::ServerKey;
use crate::store::sqlite::SqliteStore;
use crate::store::Store;
use std::sync::Arc;

/// The account the fixture's callers belong to.
pub(crate) const ACCOUNT: &str = "123456789012";

/// A store and a key, torn down with the value.
pub(crate) struct Fixture {
    _dir: tempfile::TempDir,
    /// The store, a SQLite file in the temporary directory.
    pub(crate) store: Arc<dyn Store>,
    /// The server key.
    pub(crate) key: Arc<ServerKey>,
}

impl Fixture {
    /// A fresh store and key.
    pub(crate) fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("db")).unwrap());
        Fixture {
            _dir: dir,
            store,
            key: Arc::new(ServerKey::generate()),
        }
    }

    /// The context of a call in `us-east-1` by `role/<role>` of [`ACCOUNT`].
    pub(crate) fn ctx(&self, role: &str, admin: bool) -> RequestContext {
        RequestContext {
            request_id: "unit-test".into(),
            identity: Identity {
                access_key_id: "AKIAUNITTEST".into(),
                account: ACCOUNT.into(),
                principal: format!("arn:aws:iam::{ACCOUNT}:role/{role}"),
                admin,
            },
            region: "us-east-1".into(),
            now_ms: crate::time::now_ms(),
            store: self.store.clone(),
            server_key: self.key.clone(),
            host: "localhost".into(),
        }
    }
}
