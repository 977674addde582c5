//! AWS Signature Version 4, the part both sides need: the canonical request (`canonical`), the
//! string to sign and key derivation (`signing`), SigV4's dates (`date`), and signing a
//! request as a client does (`sign`). The server's verification (the `Authorization` header,
//! scope, skew and constant-time comparison) lives in `provisiond::protocol::sigv4`; this crate
//! knows no AWS error codes, so clients such as the built-in engine can use it alone.

pub mod canonical;
pub mod date;
pub mod sign;
pub mod signing;

pub use sign::{sign, Credentials};

use std::fmt;
use zeroize::Zeroizing;

/// How the service canonicalises paths: S3 uses the path as sent, every other service
/// percent-encodes it once more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathStyle {
    /// Encode the path again (all services but S3).
    DoubleEncoded,
    /// Use the path as sent (S3).
    AsSent,
}

/// A secret string: zeroed when dropped, `[redacted]` when printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    /// Wraps `value`.
    pub fn new(value: String) -> Self {
        Secret(Zeroizing::new(value))
    }

    /// The secret itself; use only where it is needed (signing, sealing).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}
