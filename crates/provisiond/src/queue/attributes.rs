//! Message attributes as SQS keeps them: checked on send (at most 10; names of letters, digits,
//! `-`, `_`, `.`; a `String`, `Number` or `Binary` data type with a value of that kind), stored
//! with their message as JSON text, chosen on receive by `MessageAttributeNames`, and digested
//! into `MD5OfMessageAttributes` exactly as SQS does so SDKs that check it accept ours.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use md5::{Digest, Md5};
use provisiond_model::sqs::MessageAttributeValue;
use provisiond_model::AwsError;
use std::collections::BTreeMap;

/// Most attributes on one message.
pub const MAX_ATTRIBUTES: usize = 10;

/// A message's attributes, by name.
pub type Attributes = BTreeMap<String, MessageAttributeValue>;

fn invalid(message: String) -> AwsError {
    AwsError::new("InvalidParameterValue", 400, message)
}

/// The three data types, and the bytes of a value for the digest and the size limit.
enum Kind {
    Text,
    Binary,
}

fn kind_of(data_type: &str) -> Option<Kind> {
    let base = data_type.split_once('.').map_or(data_type, |(b, _)| b);
    match base {
        "String" | "Number" => Some(Kind::Text),
        "Binary" => Some(Kind::Binary),
        _ => None,
    }
}

/// Checks attributes as SendMessage gets them; returns their size in bytes (names, types and
/// values), which counts toward the message size limit.
pub fn check(attributes: &Attributes) -> Result<usize, AwsError> {
    if attributes.len() > MAX_ATTRIBUTES {
        return Err(invalid(format!(
            "Number of message attributes [{}] exceeds the allowed maximum [{MAX_ATTRIBUTES}].",
            attributes.len()
        )));
    }
    let mut size = 0;
    for (name, value) in attributes {
        let name_ok = !name.is_empty()
            && name.len() <= 256
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            && !name.starts_with('.')
            && !name.ends_with('.')
            && !name.contains("..");
        let lower = name.to_ascii_lowercase();
        if !name_ok || lower.starts_with("aws.") || lower.starts_with("amazon.") {
            return Err(invalid(format!(
                "Message attribute name '{}' is invalid: use at most 256 letters, digits, hyphens, underscores and periods, not starting with AWS. or Amazon.",
                provisiond_model::runtime::cut(name, 64)
            )));
        }
        let data_type = value.data_type.as_deref().unwrap_or_default();
        let kind = kind_of(data_type).ok_or_else(|| {
            invalid(format!(
                "The message attribute '{name}' has an invalid message attribute type, the set of supported type prefixes is Binary, Number, and String."
            ))
        })?;
        if value.string_list_values.is_some() || value.binary_list_values.is_some() {
            return Err(invalid(format!(
                "Message attribute list values in SendMessage operation are not supported ('{name}')."
            )));
        }
        let bytes = match kind {
            Kind::Text => {
                if value.binary_value.is_some() {
                    return Err(invalid(format!(
                        "The message attribute '{name}' with type '{data_type}' must use field 'String'."
                    )));
                }
                let text = value.string_value.as_deref().unwrap_or_default();
                if text.is_empty() {
                    return Err(invalid(format!(
                        "The message attribute '{name}' must contain a non-empty message attribute value."
                    )));
                }
                if data_type.starts_with("Number") && text.trim().parse::<f64>().is_err() {
                    return Err(invalid(format!(
                        "Can't cast the value of message (user) attribute '{name}' to a number."
                    )));
                }
                text.len()
            }
            Kind::Binary => {
                if value.string_value.is_some() {
                    return Err(invalid(format!(
                        "The message attribute '{name}' with type 'Binary' must use field 'Binary'."
                    )));
                }
                let raw = binary(value).ok_or_else(|| {
                    invalid(format!(
                        "The message attribute '{name}' must contain a non-empty base64-encoded binary value."
                    ))
                })?;
                if raw.is_empty() {
                    return Err(invalid(format!(
                        "The message attribute '{name}' must contain a non-empty message attribute value."
                    )));
                }
                raw.len()
            }
        };
        size += name.len() + data_type.len() + bytes;
    }
    Ok(size)
}

fn binary(value: &MessageAttributeValue) -> Option<Vec<u8>> {
    B64.decode(value.binary_value.as_deref()?).ok()
}

/// The attributes as the store keeps them: JSON text, empty for none.
pub fn encode(attributes: &Attributes) -> String {
    if attributes.is_empty() {
        String::new()
    } else {
        serde_json::to_string(attributes).expect("attributes serialize")
    }
}

/// The attributes of a stored message.
pub fn decode(stored: &str) -> Attributes {
    if stored.is_empty() {
        Attributes::new()
    } else {
        serde_json::from_str(stored).unwrap_or_default()
    }
}

/// The attributes a receive asked for: `All` or `.*` for every one, `name` for one, `prefix.*`
/// for those under a prefix.
pub fn select(attributes: Attributes, names: &[String]) -> Attributes {
    attributes
        .into_iter()
        .filter(|(name, _)| {
            names.iter().any(|wanted| {
                wanted == "All"
                    || wanted == ".*"
                    || wanted == name
                    || wanted
                        .strip_suffix(".*")
                        .is_some_and(|prefix| name.starts_with(&format!("{prefix}.")))
            })
        })
        .collect()
}

/// `MD5OfMessageAttributes`: over the attributes in name order, each as its name, its data
/// type (both length-prefixed, 4 bytes big-endian), a transport byte (1 text, 2 binary) and its
/// length-prefixed value. `None` for no attributes.
pub fn md5(attributes: &Attributes) -> Option<String> {
    if attributes.is_empty() {
        return None;
    }
    fn field(digest: &mut Md5, bytes: &[u8]) {
        digest.update((bytes.len() as u32).to_be_bytes());
        digest.update(bytes);
    }
    let mut digest = Md5::new();
    for (name, value) in attributes {
        let data_type = value.data_type.as_deref().unwrap_or_default();
        let (transport, bytes) = match kind_of(data_type) {
            Some(Kind::Binary) => (2u8, binary(value).unwrap_or_default()),
            _ => (
                1u8,
                value.string_value.clone().unwrap_or_default().into_bytes(),
            ),
        };
        field(&mut digest, name.as_bytes());
        field(&mut digest, data_type.as_bytes());
        digest.update([transport]);
        field(&mut digest, &bytes);
    }
    Some(hex::encode(digest.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(data_type: &str, value: &str) -> MessageAttributeValue {
        MessageAttributeValue {
            data_type: Some(data_type.into()),
            string_value: Some(value.into()),
            ..Default::default()
        }
    }

    #[test]
    fn the_digest_is_the_one_sqs_computes() {
        // Digests published for these attributes (AWS's documentation example, and a
        // timestamp attribute as other SQS implementations test it).
        let one = |name: &str, data_type: &str, value: &str| {
            let mut a = Attributes::new();
            a.insert(name.into(), text(data_type, value));
            md5(&a)
        };
        assert_eq!(
            one("SellerName", "String", "Example Store").as_deref(),
            Some("cd28f3b68aeee4b2eac9c66f2f694b58")
        );
        assert_eq!(
            one("timestamp", "Number", "1493147359900").as_deref(),
            Some("235c5c510d26fb653d073faed50ae77c")
        );
        // Binary values are digested as their decoded bytes, with transport byte 2.
        let mut a = Attributes::new();
        a.insert(
            "bin".into(),
            MessageAttributeValue {
                data_type: Some("Binary".into()),
                binary_value: Some(B64.encode([1u8, 2, 3])),
                ..Default::default()
            },
        );
        let mut expected = Vec::new();
        for field in [&b"bin"[..], b"Binary"] {
            expected.extend((field.len() as u32).to_be_bytes());
            expected.extend(field);
        }
        expected.push(2);
        expected.extend(3u32.to_be_bytes());
        expected.extend([1, 2, 3]);
        assert_eq!(md5(&a), Some(hex::encode(Md5::digest(&expected))));
        assert_eq!(md5(&Attributes::new()), None);
    }

    #[test]
    fn attributes_are_checked_and_selected() {
        let mut a = Attributes::new();
        a.insert("team".into(), text("String", "platform"));
        a.insert("retries".into(), text("Number", "3"));
        a.insert("trace.id".into(), text("String.uuid", "x"));
        assert!(check(&a).is_ok());
        let names = |v: &[&str]| -> Vec<String> {
            select(
                a.clone(),
                &v.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            )
            .into_keys()
            .collect()
        };
        assert_eq!(names(&["All"]).len(), 3);
        assert_eq!(names(&["team"]), ["team"]);
        assert_eq!(names(&["trace.*"]), ["trace.id"]);
        assert!(names(&[]).is_empty());
        for (name, value) in [
            ("bad name!", text("String", "v")),
            ("AWS.reserved", text("String", "v")),
            ("n", text("Integer", "1")),
            ("n", text("Number", "one")),
            ("n", text("String", "")),
        ] {
            let mut bad = Attributes::new();
            bad.insert(name.into(), value);
            assert_eq!(
                check(&bad).unwrap_err().code,
                "InvalidParameterValue",
                "{name}"
            );
        }
        let many: Attributes = (0..11)
            .map(|i| (format!("a{i}"), text("String", "v")))
            .collect();
        assert!(check(&many).is_err());
        assert_eq!(decode(&encode(&a)), a);
        assert_eq!(encode(&Attributes::new()), "");
    }
}
