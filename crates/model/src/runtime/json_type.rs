//! The JSON type rules of awsJson: every member takes exactly the JSON type its shape says
//! (structure and map ← object, list ← array, string and blob ← string, integer and long ←
//! integral number in range, boolean ← boolean, timestamp ← number; `null` is an absent member).
//!
//! A body is parsed into a `serde_json::Value` and checked against the shape before it is turned
//! into the shape's type, because serde's derived structures also read JSON arrays. A mismatch
//! names the place and the two types, never the value, so sensitive members cannot leak.

use super::{AwsError, CommonError, Path, Timestamp};
use serde_json::Value;
use std::collections::BTreeMap;

/// A value of the wrong JSON type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeMismatch {
    /// Where, as `Outputs.1.member.OutputKey` (wire member names).
    pub path: String,
    /// The JSON type the shape wants, e.g. `an object`.
    pub expected: &'static str,
    /// The JSON type found.
    pub found: &'static str,
}

impl TypeMismatch {
    fn at(path: &Path<'_>, expected: &'static str, found: &Value) -> TypeMismatch {
        TypeMismatch {
            path: path.render(),
            expected,
            found: json_type_name(found),
        }
    }

    /// The `SerializationException` AWS answers for it.
    pub fn into_error(self) -> AwsError {
        let place = if self.path.is_empty() {
            "The request body".to_string()
        } else {
            format!("The value at '{}'", self.path)
        };
        CommonError::SerializationException.with(format!(
            "{place} must be {}, but is {}",
            self.expected, self.found
        ))
    }
}

/// The article and name of a JSON value's type, for messages.
pub fn json_type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_f64() => "a number with a fraction",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Implemented for every type a shape member can have (by generated code for structures).
pub trait JsonType {
    /// Whether `value` has this type's JSON type, all the way down.
    fn check_json(value: &Value, path: &Path<'_>) -> Result<(), TypeMismatch>;
}

/// Checks one member of a structure: `null` stands for an absent member.
pub fn check_member<T: JsonType>(value: &Value, path: &Path<'_>) -> Result<(), TypeMismatch> {
    if value.is_null() {
        Ok(())
    } else {
        T::check_json(value, path)
    }
}

/// The object of a structure, or the mismatch.
pub fn expect_object<'v>(
    value: &'v Value,
    path: &Path<'_>,
) -> Result<&'v serde_json::Map<String, Value>, TypeMismatch> {
    value
        .as_object()
        .ok_or_else(|| TypeMismatch::at(path, "an object", value))
}

impl JsonType for String {
    fn check_json(value: &Value, path: &Path<'_>) -> Result<(), TypeMismatch> {
        match value {
            Value::String(_) => Ok(()),
            other => Err(TypeMismatch::at(path, "a string", other)),
        }
    }
}

impl JsonType for bool {
    fn check_json(value: &Value, path: &Path<'_>) -> Result<(), TypeMismatch> {
        match value {
            Value::Bool(_) => Ok(()),
            other => Err(TypeMismatch::at(path, "a boolean", other)),
        }
    }
}

impl JsonType for i32 {
    fn check_json(value: &Value, path: &Path<'_>) -> Result<(), TypeMismatch> {
        match value.as_i64().map(i32::try_from) {
            Some(Ok(_)) => Ok(()),
            Some(Err(_)) => Err(TypeMismatch {
                path: path.render(),
                expected: "an integer from -2147483648 to 2147483647",
                found: "a number out of that range",
            }),
            None => Err(TypeMismatch::at(path, "an integer", value)),
        }
    }
}

impl JsonType for i64 {
    fn check_json(value: &Value, path: &Path<'_>) -> Result<(), TypeMismatch> {
        match value {
            Value::Number(n) if n.is_i64() => Ok(()),
            Value::Number(n) if n.is_u64() => Err(TypeMismatch {
                path: path.render(),
                expected: "an integer of at most 9223372036854775807",
                found: "a number out of that range",
            }),
            other => Err(TypeMismatch::at(path, "an integer", other)),
        }
    }
}

impl JsonType for Timestamp {
    fn check_json(value: &Value, path: &Path<'_>) -> Result<(), TypeMismatch> {
        match value {
            Value::Number(_) => Ok(()),
            other => Err(TypeMismatch::at(path, "a number of epoch seconds", other)),
        }
    }
}

impl<T: JsonType> JsonType for Vec<T> {
    fn check_json(value: &Value, path: &Path<'_>) -> Result<(), TypeMismatch> {
        let items = value
            .as_array()
            .ok_or_else(|| TypeMismatch::at(path, "an array", value))?;
        for (i, item) in items.iter().enumerate() {
            T::check_json(item, &path.index(i))?;
        }
        Ok(())
    }
}

impl<T: JsonType> JsonType for BTreeMap<String, T> {
    fn check_json(value: &Value, path: &Path<'_>) -> Result<(), TypeMismatch> {
        let entries = value
            .as_object()
            .ok_or_else(|| TypeMismatch::at(path, "an object", value))?;
        for (key, item) in entries {
            T::check_json(item, &path.key(key))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn scalars_take_only_their_own_type() {
        let root = Path::ROOT;
        let p = root.member("X");
        assert!(String::check_json(&json!("a"), &p).is_ok());
        assert!(String::check_json(&json!(1), &p).is_err());
        assert!(String::check_json(&json!(["a"]), &p).is_err());
        assert!(bool::check_json(&json!("true"), &p).is_err());
        assert!(i32::check_json(&json!(7), &p).is_ok());
        assert!(i32::check_json(&json!(7.5), &p).is_err());
        assert!(i32::check_json(&json!("7"), &p).is_err());
        assert!(i32::check_json(&json!(1u64 << 31), &p).is_err());
        assert!(i64::check_json(&json!(u64::MAX), &p).is_err());
        assert!(Timestamp::check_json(&json!(1.5), &p).is_ok());
        assert!(Timestamp::check_json(&json!("2026-01-01"), &p).is_err());
    }

    #[test]
    fn collections_check_every_item_and_say_where() {
        let root = Path::ROOT;
        let p = root.member("Tags");
        let err = Vec::<String>::check_json(&json!(["a", 2]), &p).unwrap_err();
        assert_eq!(err.path, "Tags.2.member");
        assert_eq!((err.expected, err.found), ("a string", "a number"));
        assert!(Vec::<String>::check_json(&json!({"a": "b"}), &p).is_err());
        let err = BTreeMap::<String, String>::check_json(&json!({"k": ["v"]}), &p).unwrap_err();
        assert_eq!(err.path, "Tags.k");
        assert!(BTreeMap::<String, String>::check_json(&json!([["k", "v"]]), &p).is_err());
    }

    #[test]
    fn the_message_names_types_never_values() {
        let root = Path::ROOT;
        let err = String::check_json(&json!({"secret": "s3cr3t"}), &root.member("Value"))
            .unwrap_err()
            .into_error();
        assert_eq!(
            err.message,
            "The value at 'Value' must be a string, but is an object"
        );
        assert!(!format!("{err:?}").contains("s3cr3t"));
    }
}
