//! Codecs turn bodies into shapes and back. JSON (awsJson 1.0 and 1.1 share it) is here; the
//! Smithy RPC v2 CBOR codec will sit beside it.

use super::json_type::JsonType;
use super::validate::Path;
use super::{AwsError, CommonError};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// A wire encoding of shapes.
pub trait Codec {
    /// Reads a shape; a body that is not of the shape's types is a `SerializationException`.
    fn decode<T: DeserializeOwned + JsonType>(body: &[u8]) -> Result<T, AwsError>;
    /// Writes a shape.
    fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, AwsError>;
    /// The body of an operation without an output shape.
    fn empty() -> Vec<u8>;
}

/// awsJson 1.0 / 1.1 bodies.
pub struct Json;

impl Codec for Json {
    fn decode<T: DeserializeOwned + JsonType>(body: &[u8]) -> Result<T, AwsError> {
        let body = if body.iter().all(u8::is_ascii_whitespace) {
            b"{}".as_slice()
        } else {
            body
        };
        // Syntax errors of serde_json name a line and column, never the text found there.
        let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
            CommonError::SerializationException
                .with(format!("The request body is not valid JSON: {e}"))
        })?;
        T::check_json(&value, &Path::ROOT).map_err(|m| m.into_error())?;
        // Once the types are checked the conversion cannot fail; if it ever did, its message
        // (which may quote the value) is not sent.
        T::deserialize(value).map_err(|_| {
            CommonError::SerializationException
                .with("The request body does not match the operation's input shape")
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
