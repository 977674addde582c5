//! Idempotency tokens: the first answer to `(operation, token)` in a scope is stored in the same
//! transaction as the change it describes, and every later call with that token gets it again.

use crate::store::{self, Kind, Tx};
use provisiond_model::AwsError;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Replays the answer remembered for `token`, or runs `f` and remembers its answer. Runs inside
/// the caller's write transaction, so the answer and its effects commit together.
///
/// The token is claimed first, by inserting its document before `f` runs: of two concurrent
/// calls with one token, only one insert can succeed, and the other transaction (waiting on
/// it, or run again by the store) then finds and replays the first one's answer. So a token
/// has one effect however many replicas see it at once.
pub fn remember<T: Serialize + DeserializeOwned>(
    tx: &mut dyn Tx,
    scope: &str,
    operation: &str,
    token: &str,
    f: impl FnOnce(&mut dyn Tx) -> Result<T, AwsError>,
) -> Result<T, AwsError> {
    let id = format!("{operation}/{token}");
    if !tx.insert(Kind::Idempotency, scope, &id, "", b"null")? {
        return store::get::<T>(tx, Kind::Idempotency, scope, &id)?.ok_or_else(|| {
            store::StoreError::new(format!("the idempotency token {id} has no answer")).into()
        });
    }
    match f(tx) {
        Ok(answer) => {
            store::put(tx, Kind::Idempotency, scope, &id, "", &answer)?;
            Ok(answer)
        }
        Err(e) => {
            // The caller rolls its transaction back; this keeps the token free even if not.
            tx.delete(Kind::Idempotency, scope, &id)?;
            Err(e)
        }
    }
}
