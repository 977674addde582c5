//! The hand-written runtime of the generated code: errors, validation rules and messages,
//! codecs and the small value types the shapes use.

mod codec;
mod error;
mod json_type;
mod validate;

pub use codec::{Codec, Json};
pub use error::{unknown_operation, AwsError, CommonError};
pub use json_type::{check_member, expect_object, json_type_name, JsonType, TypeMismatch};
pub use validate::{
    check, cut, LengthRule, NumberRule, Path, Pattern, StringRule, Validate, Violations,
};

use serde::{Deserialize, Serialize};

/// What the model's metadata says about a service.
#[derive(Debug, Clone, Copy)]
pub struct ServiceInfo {
    /// The `X-Amz-Target` prefix, e.g. `AWS242ServiceCatalogService`.
    pub target_prefix: &'static str,
    /// The SigV4 signing name (credential scope service), e.g. `servicecatalog`.
    pub signing_name: &'static str,
    /// `1.0` or `1.1`: the `application/x-amz-json-*` version.
    pub json_version: &'static str,
    /// The API version, e.g. `2015-12-10`.
    pub api_version: &'static str,
}

/// A point in time; on the JSON wire, epoch seconds as a number (fractions allowed).
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(pub f64);

impl Timestamp {
    /// From milliseconds since the epoch.
    pub fn from_millis(ms: i64) -> Self {
        Timestamp(ms as f64 / 1000.0)
    }
}

/// What a sensitive member prints as in `Debug`.
pub struct Redacted;

/// Stands in for sensitive values in generated `Debug` impls.
pub const REDACTED: Redacted = Redacted;

impl std::fmt::Debug for Redacted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("*** Sensitive Data Redacted ***")
    }
}
