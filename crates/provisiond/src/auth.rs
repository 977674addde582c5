//! Accounts, access keys and the identities they carry. A key belongs to one account (12 digits)
//! and one principal ARN of that account; its secret is stored sealed under the server key. The
//! `KeyRing` answers "who signs with this key?" for every request, caching what it has opened.

use crate::crypto::{Purpose, Secret, ServerKey};
use crate::store::{self, transact, Kind, Mode, Store, StoreError};
use provisiond_model::{AwsError, CommonError};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// Who made a request: resolved from the access key that signed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The access key id that signed the request.
    pub access_key_id: String,
    /// The 12-digit account the key belongs to.
    pub account: String,
    /// The principal ARN (`arn:aws:iam::<account>:role/<name>` or `:user/<name>`).
    pub principal: String,
    /// Whether the principal administers the account's catalog.
    pub admin: bool,
}

#[derive(Debug, Serialize, Deserialize)]
struct StoredKey {
    account: String,
    principal: String,
    admin: bool,
    /// The secret access key sealed under the server key, bound to the access key id.
    secret_sealed: String,
    created_ms: i64,
}

/// A key just made: the only moment its secret is shown.
#[derive(Debug)]
pub struct NewKey {
    /// The access key id.
    pub access_key_id: String,
    /// The secret access key.
    pub secret: Secret,
    /// The key's account.
    pub account: String,
    /// The key's principal ARN.
    pub principal: String,
}

/// Checks that `account` is 12 digits.
pub fn check_account(account: &str) -> Result<(), String> {
    if account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(format!("account {account:?} is not 12 digits"))
    }
}

/// Checks that `principal` is an IAM role or user ARN of `account`.
pub fn check_principal(account: &str, principal: &str) -> Result<(), String> {
    let parts: Vec<&str> = principal.splitn(6, ':').collect();
    let [arn, partition, service, region, arn_account, resource] = parts[..] else {
        return Err(format!(
            "principal {principal:?} is not an ARN (arn:aws:iam::<account>:role/<name>)"
        ));
    };
    if arn != "arn"
        || !matches!(partition, "aws" | "aws-cn" | "aws-us-gov")
        || service != "iam"
        || !region.is_empty()
    {
        return Err(format!(
            "principal {principal:?} is not an IAM ARN (arn:aws:iam::<account>:role/<name>)"
        ));
    }
    check_account(arn_account).map_err(|e| format!("principal {principal:?}: {e}"))?;
    if arn_account != account {
        return Err(format!(
            "principal {principal:?} belongs to account {arn_account}, not {account}"
        ));
    }
    let name = resource
        .strip_prefix("role/")
        .or_else(|| resource.strip_prefix("user/"))
        .ok_or_else(|| format!("principal {principal:?} names neither a role/ nor a user/"))?;
    let valid = |c: char| c.is_ascii_alphanumeric() || "+=,.@_-/".contains(c);
    if name.is_empty() || name.ends_with('/') || !name.chars().all(valid) || name.len() > 512 {
        return Err(format!("principal {principal:?} has an invalid name"));
    }
    Ok(())
}

/// Makes a new key for `principal` of `account`. Both must already be checked.
pub fn create_key(
    store: &dyn Store,
    server_key: &ServerKey,
    account: &str,
    principal: &str,
    admin: bool,
) -> Result<NewKey, StoreError> {
    let access_key_id = crate::ids::access_key_id();
    let secret = Secret::new(crate::ids::secret_access_key());
    let stored = StoredKey {
        account: account.to_string(),
        principal: principal.to_string(),
        admin,
        secret_sealed: server_key.seal(
            Purpose::AccessKeySecret,
            access_key_id.as_bytes(),
            secret.expose().as_bytes(),
        ),
        created_ms: crate::time::now_ms(),
    };
    let created = transact(store, Mode::Write, |tx| {
        store::insert(tx, Kind::AccessKey, "", &access_key_id, "", &stored)
    })?;
    if !created {
        return Err(StoreError::new(format!(
            "access key id {access_key_id} collided"
        )));
    }
    Ok(NewKey {
        access_key_id,
        secret,
        account: account.to_string(),
        principal: principal.to_string(),
    })
}

/// What `admin list-keys` shows of a key: never its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    /// The access key id.
    pub access_key_id: String,
    /// Its account.
    pub account: String,
    /// Its principal ARN.
    pub principal: String,
    /// Whether the principal administers the account's catalog.
    pub admin: bool,
    /// When it was made (milliseconds since the epoch).
    pub created_ms: i64,
}

/// Every key, or those of `account`, in the order they were made.
pub fn list_keys(store: &dyn Store, account: Option<&str>) -> Result<Vec<KeyInfo>, StoreError> {
    let mut keys = Vec::new();
    let mut after = None;
    loop {
        let rows = transact(store, Mode::Read, |tx| {
            tx.list(Kind::AccessKey, "", "", after, 1000)
        })?;
        let Some(last) = rows.last() else {
            return Ok(keys);
        };
        after = Some(last.seq);
        for row in rows {
            let stored: StoredKey = serde_json::from_slice(&row.body)
                .map_err(|e| StoreError::new(format!("access key {}: {e}", row.id)))?;
            if account.is_none_or(|a| a == stored.account) {
                keys.push(KeyInfo {
                    access_key_id: row.id,
                    account: stored.account,
                    principal: stored.principal,
                    admin: stored.admin,
                    created_ms: stored.created_ms,
                });
            }
        }
    }
}

/// Deletes a key; `false` when there is none of that id. A running server refuses it from its
/// next request on ([`KeyRing::still_exists`]).
pub fn delete_key(store: &dyn Store, access_key_id: &str) -> Result<bool, StoreError> {
    transact(store, Mode::Write, |tx| {
        tx.delete(Kind::AccessKey, "", access_key_id)
    })
}

/// Whether any access key exists yet (a newcomer's server has none).
/// Why [`check_server_key`] refused.
pub enum KeyCheck {
    /// The database's secrets are sealed under another key.
    Mismatch,
    /// The store failed.
    Store(StoreError),
}

/// Checks that `key` is the key this store's secrets are sealed under, recording it for a
/// store that has none yet (so the first server to open a database decides, and a replica
/// started with another key file is refused before it answers anything).
pub fn check_server_key(store: &dyn Store, key: &ServerKey) -> Result<(), KeyCheck> {
    const ID: &str = "server-key";
    const CONTEXT: &[u8] = b"server-key-check";
    let sealed = key.seal(Purpose::KeyCheck, CONTEXT, b"provisiond");
    let recorded = transact(store, Mode::Write, |tx| {
        tx.insert(Kind::ServerKeyCheck, "", ID, "", sealed.as_bytes())?;
        tx.get(Kind::ServerKeyCheck, "", ID)
    })
    .map_err(KeyCheck::Store)?
    .unwrap_or_default();
    let recorded = String::from_utf8_lossy(&recorded);
    match key.open(Purpose::KeyCheck, CONTEXT, &recorded) {
        Ok(plain) if plain == b"provisiond" => Ok(()),
        _ => Err(KeyCheck::Mismatch),
    }
}

pub fn any_key_exists(store: &dyn Store) -> Result<bool, StoreError> {
    transact(store, Mode::Read, |tx| {
        Ok(!tx.list(Kind::AccessKey, "", "", None, 1)?.is_empty())
    })
}

/// A known key: its identity and opened secret.
#[derive(Debug)]
pub struct KnownKey {
    /// Who signs with this key.
    pub identity: Identity,
    /// The secret access key, with the signing keys lately derived from it.
    pub secret: provisiond_sigv4::signing::SigningSecret,
}

/// The answer to a request signed with an unknown or deleted key.
pub fn revoked_key() -> AwsError {
    CommonError::UnrecognizedClientException
        .with("The security token included in the request is invalid.")
}

/// Resolves access key ids to identities and secrets. Keys found are cached; keys not found are
/// looked up again each time, so a key made by `admin create-key` works at once.
pub struct KeyRing {
    store: Arc<dyn Store>,
    server_key: Arc<ServerKey>,
    cache: RwLock<HashMap<String, Arc<KnownKey>>>,
}

impl KeyRing {
    /// A key ring over `store`, opening secrets with `server_key`.
    pub fn new(store: Arc<dyn Store>, server_key: Arc<ServerKey>) -> Self {
        KeyRing {
            store,
            server_key,
            cache: RwLock::new(HashMap::new()),
        }
    }

    /// The key that signed a request: from the cache, else read from the store (here when its
    /// reads are local, else on a blocking thread); `UnrecognizedClientException` when there is
    /// none.
    pub async fn signing_key(
        self: &Arc<Self>,
        access_key_id: &str,
    ) -> Result<Arc<KnownKey>, AwsError> {
        if let Some(known) = self.cached(access_key_id) {
            return Ok(known);
        }
        if self.store.local_reads() {
            return self.lookup(access_key_id)?.ok_or_else(revoked_key);
        }
        let keys = self.clone();
        let key_id = access_key_id.to_string();
        tokio::task::spawn_blocking(move || keys.lookup(&key_id))
            .await
            .map_err(|e| CommonError::InternalFailure.with(format!("key lookup panicked: {e}")))??
            .ok_or_else(revoked_key)
    }

    /// The cached key, without touching the store.
    pub fn cached(&self, access_key_id: &str) -> Option<Arc<KnownKey>> {
        self.cache
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(access_key_id)
            .cloned()
    }

    /// Whether the key is still in the store, read in the request's own store work (a blocking
    /// thread or the writer), so a key deleted by `admin delete-key` in another process is
    /// refused from the next request on, cached or not. A deleted key leaves the cache.
    pub fn still_exists(&self, access_key_id: &str) -> Result<bool, StoreError> {
        // Nothing to run: the store looks the key up alone.
        Ok(self.while_key_exists(access_key_id, || ())?.is_some())
    }

    /// Runs `call`, made with a key whose signature was checked with a possibly cached copy,
    /// and keeps what it wrote only if the key is still in the store: `None` when it was deleted
    /// (by `admin delete-key` in another process, say), and the key leaves the cache. The store
    /// may ask with the call's first statement rather than before it ([`store::requiring`]).
    pub fn while_key_exists<R>(
        &self,
        access_key_id: &str,
        call: impl FnOnce() -> R,
    ) -> Result<Option<R>, StoreError> {
        let required = store::Required {
            kind: Kind::AccessKey,
            scope: "",
            id: access_key_id,
        };
        let outcome = store::requiring(self.store.as_ref(), required, call)?;
        if outcome.is_none() {
            self.cache
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .remove(access_key_id);
        }
        Ok(outcome)
    }

    /// The key, from the cache or the store; `None` when it does not exist.
    pub fn lookup(&self, access_key_id: &str) -> Result<Option<Arc<KnownKey>>, StoreError> {
        if let Some(known) = self.cached(access_key_id) {
            return Ok(Some(known));
        }
        let stored: Option<StoredKey> = transact(self.store.as_ref(), Mode::Read, |tx| {
            store::get(tx, Kind::AccessKey, "", access_key_id)
        })?;
        let Some(stored) = stored else {
            return Ok(None);
        };
        let secret = self
            .server_key
            .open(
                Purpose::AccessKeySecret,
                access_key_id.as_bytes(),
                &stored.secret_sealed,
            )
            .map_err(|_| {
                StoreError::new(format!(
                    "the secret of access key {access_key_id} does not open with this server key"
                ))
            })?;
        let secret = Secret::new(
            String::from_utf8(secret)
                .map_err(|_| StoreError::new("a stored secret is not UTF-8"))?,
        );
        let known = Arc::new(KnownKey {
            identity: Identity {
                access_key_id: access_key_id.to_string(),
                account: stored.account,
                principal: stored.principal,
                admin: stored.admin,
            },
            secret: provisiond_sigv4::signing::SigningSecret::new(secret),
        });
        self.cache
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(access_key_id.to_string(), known.clone());
        Ok(Some(known))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn principals_must_be_iam_arns_of_the_account() {
        assert!(check_account("123456789012").is_ok());
        assert!(check_account("12345678901").is_err());
        assert!(check_account("12345678901a").is_err());
        let ok = |p| check_principal("123456789012", p);
        assert!(ok("arn:aws:iam::123456789012:role/dev").is_ok());
        assert!(ok("arn:aws:iam::123456789012:user/path/alice").is_ok());
        assert!(ok("arn:aws:iam::210987654321:role/dev")
            .unwrap_err()
            .contains("belongs to account 210987654321"));
        assert!(ok("arn:aws:s3:::bucket").is_err());
        assert!(ok("arn:aws:iam::123456789012:group/dev").is_err());
        assert!(ok("not-an-arn").is_err());
        assert!(ok("arn:aws:iam::123456789012:role/").is_err());
    }

    #[test]
    fn keys_resolve_to_their_identity_and_secret() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> =
            Arc::new(crate::store::sqlite::SqliteStore::open(&dir.path().join("db")).unwrap());
        let server_key = Arc::new(ServerKey::generate());
        assert!(!any_key_exists(store.as_ref()).unwrap());
        let key = create_key(
            store.as_ref(),
            &server_key,
            "123456789012",
            "arn:aws:iam::123456789012:role/dev",
            false,
        )
        .unwrap();
        assert!(any_key_exists(store.as_ref()).unwrap());
        let ring = KeyRing::new(store.clone(), server_key);
        let known = ring.lookup(&key.access_key_id).unwrap().unwrap();
        assert_eq!(known.identity.account, "123456789012");
        assert_eq!(known.secret.expose(), key.secret.expose());
        assert!(ring.lookup("AKIANOTAKEY").unwrap().is_none());
        // The stored document holds no plain secret.
        let raw = transact(store.as_ref(), Mode::Read, |tx| {
            tx.get(Kind::AccessKey, "", &key.access_key_id)
        })
        .unwrap()
        .unwrap();
        assert!(!String::from_utf8_lossy(&raw).contains(key.secret.expose()));
    }

    #[test]
    fn keys_are_listed_without_secrets_and_a_deleted_key_is_refused_though_cached() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> =
            Arc::new(crate::store::sqlite::SqliteStore::open(&dir.path().join("db")).unwrap());
        let server_key = Arc::new(ServerKey::generate());
        let make = |account: &str, admin| {
            create_key(
                store.as_ref(),
                &server_key,
                account,
                &format!("arn:aws:iam::{account}:role/r"),
                admin,
            )
            .unwrap()
        };
        let (a, b, c) = (
            make("111111111111", true),
            make("222222222222", false),
            make("111111111111", false),
        );
        let all = list_keys(store.as_ref(), None).unwrap();
        let ids: Vec<&str> = all.iter().map(|k| k.access_key_id.as_str()).collect();
        assert_eq!(ids, [&a.access_key_id, &b.access_key_id, &c.access_key_id]);
        assert!(all[0].admin && !all[1].admin);
        let ones = list_keys(store.as_ref(), Some("111111111111")).unwrap();
        assert_eq!(ones.len(), 2);
        assert!(!format!("{all:?}").contains(a.secret.expose()));

        let ring = KeyRing::new(store.clone(), server_key.clone());
        assert!(ring.lookup(&b.access_key_id).unwrap().is_some());
        assert!(ring.cached(&b.access_key_id).is_some());
        assert!(ring.still_exists(&b.access_key_id).unwrap());
        // Deleted through another store on the same file, as `admin delete-key` does.
        let other = crate::store::sqlite::SqliteStore::open(&dir.path().join("db")).unwrap();
        assert!(delete_key(&other, &b.access_key_id).unwrap());
        assert!(!delete_key(&other, &b.access_key_id).unwrap());
        assert!(!ring.still_exists(&b.access_key_id).unwrap());
        assert!(ring.cached(&b.access_key_id).is_none(), "it left the cache");
        assert!(ring.lookup(&b.access_key_id).unwrap().is_none());
        assert_eq!(list_keys(store.as_ref(), None).unwrap().len(), 2);
    }
}
