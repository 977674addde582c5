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

/// Appends a header value as SigV4 canonicalises it: trimmed, inner runs of spaces made one.
fn push_canonical_value(out: &mut String, value: &str) {
    for (i, word) in value.split_whitespace().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(word);
    }
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
    match style {
        // A path that needs no encoding (`/`, say) is its own canonical form.
        PathStyle::DoubleEncoded if !path.is_empty() && path.bytes().all(unreserved_or_slash) => {
            out.push_str(path)
        }
        _ => out.push_str(&canonical_uri(path, style)),
    }
    out.push('\n');
    if !query.is_empty() {
        out.push_str(&canonical_query(query));
    }
    out.push('\n');
    let mut names: Vec<&str> = signed_headers.iter().map(String::as_str).collect();
    names.sort_unstable();
    for name in &names {
        let mut values = headers.get_all(*name).iter().peekable();
        if values.peek().is_none() {
            return Err(HeaderProblem::Missing(name.to_string()));
        }
        out.push_str(name);
        out.push(':');
        for (i, value) in values.enumerate() {
            let value = value
                .to_str()
                .map_err(|_| HeaderProblem::NotAscii(name.to_string()))?;
            if i > 0 {
                out.push(',');
            }
            push_canonical_value(&mut out, value);
        }
        out.push('\n');
    }
    out.push('\n');
    for (i, name) in names.iter().enumerate() {
        if i > 0 {
            out.push(';');
        }
        out.push_str(name);
    }
    out.push('\n');
    out.push_str(payload_hash);
    Ok(out)
}

/// Whether `b` stands for itself in a canonical URI.
fn unreserved_or_slash(b: u8) -> bool {
    matches!(b, b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/')
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
    fn canonicalises_signed_headers_and_refuses_missing_ones() {
        let mut headers = http::HeaderMap::new();
        headers.insert("host", "example.com".parse().unwrap());
        headers.append("x-multi", "  a   b  ".parse().unwrap());
        headers.append("x-multi", "c".parse().unwrap());
        let signed = ["x-multi".to_string(), "host".to_string()];
        let canonical = canonical_request(
            "POST",
            "/a b",
            "z=1&a=2",
            &headers,
            &signed,
            "HASH",
            PathStyle::DoubleEncoded,
        )
        .unwrap();
        assert_eq!(
            canonical,
            "POST\n/a%20b\na=2&z=1\nhost:example.com\nx-multi:a b,c\n\nhost;x-multi\nHASH"
        );
        let plain = canonical_request(
            "GET",
            "/",
            "",
            &headers,
            &["host".to_string()],
            "H",
            PathStyle::DoubleEncoded,
        )
        .unwrap();
        assert_eq!(plain, "GET\n/\n\nhost:example.com\n\nhost\nH");
        let missing = canonical_request(
            "GET",
            "/",
            "",
            &headers,
            &["x-absent".to_string()],
            "H",
            PathStyle::DoubleEncoded,
        );
        assert_eq!(missing, Err(HeaderProblem::Missing("x-absent".into())));
    }

    #[test]
    fn sorts_and_reencodes_the_query() {
        assert_eq!(canonical_query("b=2&a=1&a=0"), "a=0&a=1&b=2");
        assert_eq!(canonical_query("key=a%20b+c&flag"), "flag=&key=a%20b%2Bc");
        assert_eq!(canonical_query(""), "");
    }
}
