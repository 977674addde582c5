//! Workflow tokens: what an engine receives with each task and must send back with its Notify
//! call. A token is the standard base64 of a ChaCha20-Poly1305-sealed payload (account, region,
//! record, provisioned product, operation, issue time, generation) under a key derived from the server key,
//! so it cannot be forged, altered, or moved to another record or account. It fits the model's
//! `WorkflowToken` constraint (`[0-9A-Za-z+\/=]+`, at most 20000 characters).

use crate::crypto::{Purpose, ServerKey};
use serde::{Deserialize, Serialize};

/// Binds sealed tokens to this format; a future format uses another label.
const CONTEXT: &[u8] = b"workflow-token/v1";

pub use provisiond_formats::task::EngineOperation;

/// What a token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkflowClaims {
    /// The account that owns the record.
    #[serde(rename = "a")]
    pub account: String,
    /// The region of the record.
    #[serde(rename = "g")]
    pub region: String,
    /// The record (`rec-…`).
    #[serde(rename = "r")]
    pub record_id: String,
    /// The provisioned product (`pp-…`).
    #[serde(rename = "p")]
    pub provisioned_product_id: String,
    /// The operation the engine performs.
    #[serde(rename = "o")]
    pub operation: EngineOperation,
    /// When the token was issued, epoch milliseconds.
    #[serde(rename = "t")]
    pub issued_ms: i64,
    /// Which of the record's tokens this is: 0 for the first, one more for each token an
    /// operator's `admin record-retry` issued since; only the record's latest opens it.
    #[serde(rename = "n", default, skip_serializing_if = "is_first")]
    pub generation: u32,
}

fn is_first(generation: &u32) -> bool {
    *generation == 0
}

/// The token does not open: forged, altered, truncated, or sealed under another server key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidToken;

/// Seals `claims` into a token.
pub fn issue(key: &ServerKey, claims: &WorkflowClaims) -> String {
    let payload = serde_json::to_vec(claims).expect("claims encode");
    key.seal(Purpose::WorkflowToken, CONTEXT, &payload)
}

/// Opens a token; never says why one does not open.
pub fn open(key: &ServerKey, token: &str) -> Result<WorkflowClaims, InvalidToken> {
    let payload = key
        .open(Purpose::WorkflowToken, CONTEXT, token)
        .map_err(|_| InvalidToken)?;
    serde_json::from_slice(&payload).map_err(|_| InvalidToken)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    fn claims() -> WorkflowClaims {
        WorkflowClaims {
            account: "123456789012".into(),
            region: "us-east-1".into(),
            record_id: "rec-abcdefghijklm".into(),
            provisioned_product_id: "pp-abcdefghijklm".into(),
            operation: EngineOperation::Provision,
            issued_ms: 1_795_000_000_000,
            generation: 0,
        }
    }

    #[test]
    fn tokens_round_trip_and_fit_the_model_constraint() {
        let key = ServerKey::generate();
        let token = issue(&key, &claims());
        assert_eq!(open(&key, &token), Ok(claims()));
        assert!(token.len() <= 20_000);
        assert!(
            token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b)),
            "{token}"
        );
        assert_ne!(
            issue(&key, &claims()),
            token,
            "each token has its own nonce"
        );
    }

    #[test]
    fn forged_altered_or_foreign_tokens_do_not_open() {
        let key = ServerKey::generate();
        let token = issue(&key, &claims());
        assert_eq!(open(&ServerKey::generate(), &token), Err(InvalidToken));
        let mut raw = base64::engine::general_purpose::STANDARD
            .decode(&token)
            .unwrap();
        let last = raw.len() - 1;
        raw[last] ^= 1;
        let altered = base64::engine::general_purpose::STANDARD.encode(raw);
        assert_eq!(open(&key, &altered), Err(InvalidToken));
        assert_eq!(open(&key, "QUJD"), Err(InvalidToken));
        assert_eq!(open(&key, &token[..token.len() - 4]), Err(InvalidToken));
        // A secret sealed for another purpose is no token.
        let other = key.seal(
            Purpose::AccessKeySecret,
            CONTEXT,
            &serde_json::to_vec(&claims()).unwrap(),
        );
        assert_eq!(open(&key, &other), Err(InvalidToken));
    }
}
