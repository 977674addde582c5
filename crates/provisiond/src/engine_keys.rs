//! The keys of the in-process engine (`serve --engine`): one per account, so every account's
//! tasks are served, including accounts whose first key is made while the server runs. The
//! server makes them as `admin create-key` would (principal
//! `arn:aws:iam::<account>:role/provisiond-builtin-engine`, not an admin), keeps their secrets
//! in memory only and hands them to the engine, which stays an ordinary client of the public
//! API. Each replica's keys carry its name in the principal's path
//! (`role/provisiond-builtin-engine/<replica>`), and a replica holds the lease
//! `engine-replica/<replica>` while it runs: at start a replica deletes the engine keys of
//! replicas whose lease has lapsed (an earlier run, a replica that died), never a live one's,
//! and at shutdown its own.

use crate::auth;
use crate::crypto::ServerKey;
use crate::store::{lease, Store};
use provisiond_sigv4::Credentials;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// The role name of the in-process engine's keys.
pub const ENGINE_ROLE: &str = "provisiond-builtin-engine";

/// How often new accounts are looked for.
pub const SCAN_INTERVAL: Duration = Duration::from_millis(250);

/// How long a replica's lease lasts unless renewed; renewed every third of it.
const REPLICA_LEASE_MS: i64 = 30_000;

/// The replica an engine key belongs to: `Some("")` for a key of a version before replicas,
/// `None` for a key that is not an engine key.
fn replica_of(principal: &str) -> Option<&str> {
    let role = principal.split_once(":role/")?.1;
    let rest = role.strip_prefix(ENGINE_ROLE)?;
    match rest.strip_prefix('/') {
        Some(replica) => Some(replica),
        None => rest.is_empty().then_some(""),
    }
}

fn lease_name(replica: &str) -> String {
    format!("engine-replica/{replica}")
}

/// Keeps `sender` holding one engine key per account until dropped.
pub struct EngineKeys {
    store: Arc<dyn Store>,
    /// This replica's name (in its keys' principals) and its lease's holder.
    replica: String,
    renewed_ms: i64,
    server_key: Arc<ServerKey>,
    region: String,
    made: Vec<String>,
    accounts: BTreeSet<String>,
    sender: watch::Sender<Vec<Credentials>>,
}

impl EngineKeys {
    /// Deletes engine keys an earlier run left, and returns the provider with the receiver the
    /// engine reads its keys from.
    pub fn start(
        store: Arc<dyn Store>,
        server_key: Arc<ServerKey>,
        region: &str,
    ) -> Result<(EngineKeys, watch::Receiver<Vec<Credentials>>), String> {
        let replica = crate::ids::uuid();
        let now = crate::time::now_ms();
        let failed = |e: crate::store::StoreError| e.to_string();
        lease::try_take(
            store.as_ref(),
            &lease_name(&replica),
            &replica,
            now,
            REPLICA_LEASE_MS,
        )
        .map_err(failed)?;
        for key in auth::list_keys(store.as_ref(), None).map_err(failed)? {
            let Some(owner) = replica_of(&key.principal) else {
                continue;
            };
            let alive = !owner.is_empty()
                && lease::is_held(store.as_ref(), &lease_name(owner), now).map_err(failed)?;
            if !alive {
                auth::delete_key(store.as_ref(), &key.access_key_id).map_err(failed)?;
            }
        }
        let (sender, receiver) = watch::channel(Vec::new());
        Ok((
            EngineKeys {
                store,
                replica,
                renewed_ms: now,
                server_key,
                region: region.to_string(),
                made: Vec::new(),
                accounts: BTreeSet::new(),
                sender,
            },
            receiver,
        ))
    }

    /// Makes a key for every account that has none yet; returns how many it made.
    pub fn refresh(&mut self) -> Result<usize, String> {
        let now = crate::time::now_ms();
        if now - self.renewed_ms >= REPLICA_LEASE_MS / 3 {
            lease::try_take(
                self.store.as_ref(),
                &lease_name(&self.replica),
                &self.replica,
                now,
                REPLICA_LEASE_MS,
            )
            .map_err(|e| e.to_string())?;
            self.renewed_ms = now;
        }
        let known: BTreeSet<String> = auth::list_keys(self.store.as_ref(), None)
            .map_err(|e| e.to_string())?
            .into_iter()
            .map(|k| k.account)
            .collect();
        let mut made = Vec::new();
        for account in known.difference(&self.accounts) {
            let principal = format!("arn:aws:iam::{account}:role/{ENGINE_ROLE}/{}", self.replica);
            let key = auth::create_key(
                self.store.as_ref(),
                &self.server_key,
                account,
                &principal,
                false,
            )
            .map_err(|e| e.to_string())?;
            tracing::info!(%account, access_key_id = %key.access_key_id, "engine: serving the account");
            self.made.push(key.access_key_id.clone());
            made.push((
                account.clone(),
                Credentials {
                    access_key_id: key.access_key_id,
                    secret: Arc::new(key.secret.into()),
                    region: self.region.clone(),
                },
            ));
        }
        let n = made.len();
        if n > 0 {
            for (account, _) in &made {
                self.accounts.insert(account.clone());
            }
            self.sender.send_modify(|all| {
                all.extend(made.into_iter().map(|(_, c)| c));
            });
        }
        Ok(n)
    }

    /// Looks for new accounts every [`SCAN_INTERVAL`] until the future is dropped.
    pub async fn keep_up(this: Arc<tokio::sync::Mutex<EngineKeys>>) {
        loop {
            {
                let mut keys = this.lock().await;
                let refreshed = tokio::task::block_in_place(|| keys.refresh());
                if let Err(e) = refreshed {
                    tracing::warn!("engine: looking for new accounts: {e}");
                }
            }
            tokio::time::sleep(SCAN_INTERVAL).await;
        }
    }

    /// Deletes the keys this run made (at shutdown).
    pub fn retire(&mut self) {
        for id in self.made.drain(..) {
            if let Err(e) = auth::delete_key(self.store.as_ref(), &id) {
                tracing::warn!(access_key_id = %id, "engine: deleting its key: {e}");
            }
        }
        let name = lease_name(&self.replica);
        if let Err(e) = lease::release(self.store.as_ref(), &name, &self.replica) {
            tracing::warn!("engine: giving up its replica lease: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_account_gets_one_engine_key_and_stale_ones_go() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> =
            Arc::new(crate::store::sqlite::SqliteStore::open(&dir.path().join("db")).unwrap());
        let server_key = Arc::new(ServerKey::generate());
        let make = |account: &str, role: &str| {
            auth::create_key(
                store.as_ref(),
                &server_key,
                account,
                &format!("arn:aws:iam::{account}:role/{role}"),
                false,
            )
            .unwrap()
        };
        make("111111111111", "dev");
        let stale = make("111111111111", ENGINE_ROLE);
        let lapsed = make("111111111111", &format!("{ENGINE_ROLE}/gone"));
        // Another replica, running: its lease is held, so its key stays.
        let now = crate::time::now_ms();
        assert!(lease::try_take(store.as_ref(), &lease_name("live"), "live", now, 60_000).unwrap());
        let live = make("111111111111", &format!("{ENGINE_ROLE}/live"));
        let (mut keys, receiver) =
            EngineKeys::start(store.clone(), server_key.clone(), "us-east-1").unwrap();
        let ids = |account: Option<&str>| -> Vec<String> {
            auth::list_keys(store.as_ref(), account)
                .unwrap()
                .into_iter()
                .map(|k| k.access_key_id)
                .collect()
        };
        assert!(
            !ids(None).contains(&stale.access_key_id),
            "left by an earlier version"
        );
        assert!(
            !ids(None).contains(&lapsed.access_key_id),
            "left by a replica whose lease lapsed"
        );
        assert!(
            ids(None).contains(&live.access_key_id),
            "another running replica's key is kept"
        );
        assert_eq!(keys.refresh().unwrap(), 1);
        assert_eq!(keys.refresh().unwrap(), 0, "one key per account");
        make("222222222222", "ci");
        assert_eq!(keys.refresh().unwrap(), 1, "an account made while running");
        let given: Vec<String> = receiver
            .borrow()
            .iter()
            .map(|c| c.access_key_id.clone())
            .collect();
        assert_eq!(given.len(), 2);
        for id in &given {
            assert!(ids(None).contains(id));
        }
        keys.retire();
        let left = ids(None);
        assert_eq!(left.len(), 3, "only this replica's own keys are retired");
        assert!(left.contains(&live.access_key_id));
        assert!(
            !lease::is_held(
                store.as_ref(),
                &lease_name(&keys.replica),
                crate::time::now_ms()
            )
            .unwrap(),
            "and its lease is given up"
        );
    }
}
