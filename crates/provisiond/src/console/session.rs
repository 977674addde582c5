//! Console sessions: sign-in with an access key id and its secret (checked through SigV4's own
//! key derivation, compared in constant time), a random session id in an `HttpOnly`,
//! `SameSite=Strict` cookie whose hash names the stored session (so any replica knows it and a
//! read of the database yields no usable cookie), a CSRF token per session that every form
//! carries, expiry, and sign-out. The key is checked on every request: a deleted key ends its
//! sessions at once.

use crate::auth::{Identity, KeyRing};
use crate::store::{self, transact, Kind, Mode, Store, StoreError};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The session cookie's name.
pub const COOKIE: &str = "provisiond-console";
/// How long a session lasts: 8 hours.
pub const LIFETIME_MS: i64 = 8 * 3600 * 1000;

/// A signed-in browser.
#[derive(Debug, Clone)]
pub struct Session {
    /// The stored session's id (the hash of the cookie's value).
    pub id: String,
    /// The key it signed in with.
    pub identity: Identity,
    /// The region its views read.
    pub region: String,
    /// The token every form of this session carries.
    pub csrf: String,
    /// When it ends, epoch milliseconds.
    pub expires_ms: i64,
}

#[derive(Debug, Serialize, Deserialize)]
struct StoredSession {
    access_key_id: String,
    region: String,
    csrf: String,
    created_ms: i64,
    expires_ms: i64,
}

/// Why a sign-in was refused. One message for an unknown key and a wrong secret, so the page
/// does not tell which access key ids exist.
#[derive(Debug)]
pub enum SignInError {
    /// The key or its secret is wrong, or the region is not a region's name.
    Refused,
    /// The store failed.
    Store(StoreError),
}

impl From<StoreError> for SignInError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes).expect("the OS random source is available");
    hex::encode(bytes)
}

fn stored_id(cookie_value: &str) -> String {
    hex::encode(Sha256::digest(cookie_value.as_bytes()))
}

/// Whether `region` could be a region's name (`us-east-1`, `eu-central-2`, `local`).
pub fn plausible_region(region: &str) -> bool {
    !region.is_empty()
        && region.len() <= 32
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Signs in with `access_key_id` and `secret`: the new session and the cookie value that
/// names it. The secret is checked as SigV4 checks it, through the signing key it derives.
pub fn sign_in(
    store: &dyn Store,
    keys: &KeyRing,
    access_key_id: &str,
    secret: &str,
    region: &str,
    now_ms: i64,
) -> Result<(Session, String), SignInError> {
    if !plausible_region(region) || access_key_id.len() > 128 || secret.len() > 128 {
        return Err(SignInError::Refused);
    }
    let Some(known) = keys.lookup(access_key_id)? else {
        return Err(SignInError::Refused);
    };
    let date = crate::time::format_iso8601(now_ms)
        .get(..10)
        .unwrap_or_default()
        .replace('-', "");
    let expected =
        provisiond_sigv4::signing::signing_key(known.secret.expose(), &date, region, "console");
    let given = provisiond_sigv4::signing::signing_key(secret, &date, region, "console");
    if !bool::from(expected.ct_eq(&*given)) {
        return Err(SignInError::Refused);
    }
    let cookie = random_token();
    let stored = StoredSession {
        access_key_id: access_key_id.to_string(),
        region: region.to_string(),
        csrf: random_token(),
        created_ms: now_ms,
        expires_ms: now_ms + LIFETIME_MS,
    };
    let id = stored_id(&cookie);
    transact(store, Mode::Write, |tx| {
        store::put(tx, Kind::ConsoleSession, "", &id, "", &stored)
    })?;
    let session = Session {
        id,
        identity: known.identity.clone(),
        region: stored.region,
        csrf: stored.csrf,
        expires_ms: stored.expires_ms,
    };
    Ok((session, cookie))
}

/// The session a request's `Cookie` header names, if it is live and its key still exists; an
/// expired session is deleted.
pub fn current(
    store: &dyn Store,
    keys: &KeyRing,
    cookie_header: Option<&str>,
    now_ms: i64,
) -> Result<Option<Session>, StoreError> {
    let Some(value) = cookie_header.and_then(cookie_value) else {
        return Ok(None);
    };
    if value.len() != 64 {
        return Ok(None);
    }
    let id = stored_id(value);
    let stored: Option<StoredSession> = transact(store, Mode::Read, |tx| {
        store::get(tx, Kind::ConsoleSession, "", &id)
    })?;
    let Some(stored) = stored else {
        return Ok(None);
    };
    if stored.expires_ms <= now_ms {
        end(store, &id)?;
        return Ok(None);
    }
    if !keys.still_exists(&stored.access_key_id)? {
        end(store, &id)?;
        return Ok(None);
    }
    let Some(known) = keys.lookup(&stored.access_key_id)? else {
        return Ok(None);
    };
    Ok(Some(Session {
        id,
        identity: known.identity.clone(),
        region: stored.region,
        csrf: stored.csrf,
        expires_ms: stored.expires_ms,
    }))
}

/// Ends the session `id` (sign-out).
pub fn end(store: &dyn Store, id: &str) -> Result<(), StoreError> {
    transact(store, Mode::Write, |tx| {
        tx.delete(Kind::ConsoleSession, "", id).map(|_| ())
    })
}

/// Deletes the sessions that ended before `now_ms`; how many. Every session lives as long,
/// so they end in the order they were made and the sweep stops at the first live one.
pub fn sweep(store: &dyn Store, now_ms: i64) -> Result<usize, StoreError> {
    const PAGE: usize = 200;
    let mut removed = 0;
    loop {
        let (gone, more) = transact(store, Mode::Write, |tx| {
            let rows = tx.list(Kind::ConsoleSession, "", "", None, PAGE)?;
            let full = rows.len() == PAGE;
            let mut gone = 0;
            for row in rows {
                let ended = serde_json::from_slice::<StoredSession>(&row.body)
                    .map_or(true, |s| s.expires_ms <= now_ms);
                if !ended {
                    return Ok((gone, false));
                }
                tx.delete(Kind::ConsoleSession, "", &row.id)?;
                gone += 1;
            }
            Ok::<_, StoreError>((gone, full))
        })?;
        removed += gone;
        if !more {
            return Ok(removed);
        }
    }
}

/// Whether `given` is the session's CSRF token (constant time).
pub fn csrf_matches(session: &Session, given: Option<&str>) -> bool {
    given.is_some_and(|g| bool::from(g.as_bytes().ct_eq(session.csrf.as_bytes())))
}

/// The `Set-Cookie` value that keeps `value` for the session's life.
pub fn set_cookie(value: &str) -> String {
    format!(
        "{COOKIE}={value}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={}",
        LIFETIME_MS / 1000
    )
}

/// The `Set-Cookie` value that removes the cookie.
pub fn clear_cookie() -> String {
    format!("{COOKIE}=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// This console's cookie value in a `Cookie` header.
fn cookie_value(header: &str) -> Option<&str> {
    header.split(';').find_map(|part| {
        let (name, value) = part.trim().split_once('=')?;
        (name == COOKIE).then_some(value)
    })
}
