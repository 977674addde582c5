//! Codecs turn bodies into shapes and back. JSON (awsJson 1.0 and 1.1 share it) is here; the
//! Smithy RPC v2 CBOR codec will sit beside it.

use super::{AwsError, CommonError};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// A wire encoding of shapes.
pub trait Codec {
    /// Reads a shape; a body that is not of the shape's types is a `SerializationException`.
    fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, AwsError>;
    /// Writes a shape.
    fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, AwsError>;
    /// The body of an operation without an output shape.
    fn empty() -> Vec<u8>;
}

/// awsJson 1.0 / 1.1 bodies.
pub struct Json;

impl Codec for Json {
    fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, AwsError> {
        let body = if body.iter().all(u8::is_ascii_whitespace) {
            b"{}".as_slice()
        } else {
            body
        };
        serde_json::from_slice(body).map_err(|e| {
            let what = if e.is_syntax() || e.is_eof() {
                "The request body is not valid JSON"
            } else {
                "The request body does not match the operation's input shape"
            };
            CommonError::SerializationException.with(format!("{what}: {e}"))
        })
    }

    fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, AwsError> {
        serde_json::to_vec(value).map_err(|e| {
            CommonError::InternalFailure.with(format!("could not encode the response: {e}"))
        })
    }

    fn empty() -> Vec<u8> {
        b"{}".to_vec()
    }
}
