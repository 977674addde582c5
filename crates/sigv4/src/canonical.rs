//! The canonical request of SigV4: method, canonical URI, canonical query string, canonical
//! headers, signed header list and payload hash, one per line.

use super::PathStyle;
use std::fmt::{self, Write};

/// A signed header the request cannot be canonicalised with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderProblem {
    /// The header's value is not ASCII.
    NotAscii(String),
    /// The signature names a header the request lacks.
    Missing(String),
}

impl fmt::Display for HeaderProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeaderProblem::NotAscii(name) => write!(f, "Signed header {name} is not ASCII."),
            HeaderProblem::Missing(name) => write!(
                f,
                "The request lacks the header {name} that the signature names."
            ),
        }
    }
}

/// Percent-encodes everything but the unreserved characters (`A-Z a-z 0-9 - _ . ~`), and `/`
/// too unless `keep_slash`.
pub fn uri_encode(input: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(input.len());
    for b in input.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b'/' if keep_slash => out.push('/'),
            _ => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}

fn percent_decode(input: &str) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(hi), Some(lo)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push(hi << 4 | lo);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

/// The canonical URI: S3 signs the path as sent; other services encode it once more.
pub fn canonical_uri(path: &str, style: PathStyle) -> String {
    let path = if path.is_empty() { "/" } else { path };
    match style {
        PathStyle::AsSent => path.to_string(),
        PathStyle::DoubleEncoded => uri_encode(path, true),
    }
}

/// The canonical query string: every parameter decoded, re-encoded strictly, sorted.
pub fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let k = String::from_utf8_lossy(&percent_decode(k)).into_owned();
            let v = String::from_utf8_lossy(&percent_decode(v)).into_owned();
            (uri_encode(&k, false), uri_encode(&v, false))
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// A header value as SigV4 canonicalises it: trimmed, inner runs of spaces made one.
fn canonical_value(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The whole canonical request.
pub fn canonical_request(
    method: &str,
    path: &str,
    query: &str,
    headers: &http::HeaderMap,
    signed_headers: &[String],
    payload_hash: &str,
    style: PathStyle,
) -> Result<String, HeaderProblem> {
    let mut out = String::with_capacity(512);
    out.push_str(method);
    out.push('\n');
    out.push_str(&canonical_uri(path, style));
    out.push('\n');
    out.push_str(&canonical_query(query));
    out.push('\n');
    let mut names: Vec<&String> = signed_headers.iter().collect();
    names.sort();
    for name in &names {
        let values: Vec<String> = headers
            .get_all(name.as_str())
            .iter()
            .map(|v| v.to_str().map(canonical_value))
            .collect::<Result<_, _>>()
            .map_err(|_| HeaderProblem::NotAscii(name.to_string()))?;
        if values.is_empty() {
            return Err(HeaderProblem::Missing(name.to_string()));
        }
        let _ = writeln!(out, "{name}:{}", values.join(","));
    }
    out.push('\n');
    out.push_str(
        &names
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(";"),
    );
    out.push('\n');
    out.push_str(payload_hash);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_like_aws() {
        assert_eq!(uri_encode("a b/c~d*", true), "a%20b/c~d%2A");
        assert_eq!(uri_encode("a b/c", false), "a%20b%2Fc");
        assert_eq!(
            canonical_uri("/a%20b", PathStyle::DoubleEncoded),
            "/a%2520b"
        );
        assert_eq!(canonical_uri("/a%20b", PathStyle::AsSent), "/a%20b");
        assert_eq!(canonical_uri("", PathStyle::DoubleEncoded), "/");
    }

    #[test]
    fn sorts_and_reencodes_the_query() {
        assert_eq!(canonical_query("b=2&a=1&a=0"), "a=0&a=1&b=2");
        assert_eq!(canonical_query("key=a%20b+c&flag"), "flag=&key=a%20b%2Bc");
        assert_eq!(canonical_query(""), "");
    }
}
