//! Idempotency tokens: the first answer to `(operation, token)` in a scope is stored in the same
//! transaction as the change it describes, and every later call with that token gets it again.

use crate::store::{self, Kind, Tx};
use provisiond_model::AwsError;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Replays the answer remembered for `token`, or runs `f` and remembers its answer. Runs inside
/// the caller's write transaction, so the answer and its effects commit together.
pub fn remember<T: Serialize + DeserializeOwned>(
    tx: &mut dyn Tx,
    scope: &str,
    operation: &str,
    token: &str,
    f: impl FnOnce(&mut dyn Tx) -> Result<T, AwsError>,
) -> Result<T, AwsError> {
    let id = format!("{operation}/{token}");
    if let Some(previous) = store::get::<T>(tx, Kind::Idempotency, scope, &id)? {
        return Ok(previous);
    }
    let answer = f(tx)?;
    store::put(tx, Kind::Idempotency, scope, &id, "", &answer)?;
    Ok(answer)
}
