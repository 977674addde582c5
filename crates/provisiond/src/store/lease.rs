//! Leases: one holder at a time for a named piece of background work (committing to a git
//! repository, say), across threads, processes and replicas, kept as a document so that the
//! store's own concurrency decides who wins. A lease expires, so a holder that dies frees it.

use super::{transact, Kind, Mode, Store, StoreError};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Lease {
    holder: String,
    until_ms: i64,
}

/// Takes lease `name` for `holder` until `now_ms + ttl_ms`, or renews it if `holder` has it;
/// `false` when another holder's lease has not expired.
pub fn try_take(
    store: &dyn Store,
    name: &str,
    holder: &str,
    now_ms: i64,
    ttl_ms: i64,
) -> Result<bool, StoreError> {
    transact(store, Mode::Write, |tx| {
        let current = super::get_for_update::<Lease>(tx, Kind::Lease, "", name)?;
        if let Some(lease) = current {
            if lease.holder != holder && lease.until_ms > now_ms {
                return Ok(false);
            }
        }
        let lease = Lease {
            holder: holder.to_string(),
            until_ms: now_ms + ttl_ms,
        };
        super::put(tx, Kind::Lease, "", name, "", &lease)?;
        Ok(true)
    })
}

/// Whether someone holds lease `name` at `now_ms`.
pub fn is_held(store: &dyn Store, name: &str, now_ms: i64) -> Result<bool, StoreError> {
    transact(store, Mode::Read, |tx| {
        Ok(super::get::<Lease>(tx, Kind::Lease, "", name)?.is_some_and(|l| l.until_ms > now_ms))
    })
}

/// Gives lease `name` up, if `holder` has it.
pub fn release(store: &dyn Store, name: &str, holder: &str) -> Result<(), StoreError> {
    transact(store, Mode::Write, |tx| {
        if let Some(lease) = super::get_for_update::<Lease>(tx, Kind::Lease, "", name)? {
            if lease.holder == holder {
                tx.delete(Kind::Lease, "", name)?;
            }
        }
        Ok(())
    })
}

/// A holder name no other thread, process or replica uses: the process id and a random part.
pub fn new_holder() -> String {
    format!("{}/{}", std::process::id(), crate::ids::uuid())
}
