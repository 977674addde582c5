//! `aws-chunked` request bodies (SigV4 streaming uploads): `<hex size>[;chunk-signature=<sig>]\r\n
//! <data>\r\n` … a zero-size chunk, then optional trailing headers (`x-amz-checksum-crc32:…`,
//! `x-amz-trailer-signature:…`) and an empty line. Signed chunks chain from the request's seed
//! signature: each is `HMAC(key, "AWS4-HMAC-SHA256-PAYLOAD\n" date "\n" scope "\n" previous "\n"
//! sha256("") "\n" sha256(data))`; the trailer signature covers the trailer lines the same way.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// How the body is encoded, from `x-amz-content-sha256`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Streaming {
    /// `STREAMING-UNSIGNED-PAYLOAD-TRAILER`.
    UnsignedTrailer,
    /// `STREAMING-AWS4-HMAC-SHA256-PAYLOAD` (`trailer: false`) or `…-PAYLOAD-TRAILER`.
    Signed {
        /// Whether trailing headers (with their signature) follow the last chunk.
        trailer: bool,
    },
}

impl Streaming {
    /// The encoding a `x-amz-content-sha256` value names, if it is a streaming one.
    pub fn from_header(value: &str) -> Option<Result<Streaming, String>> {
        match value {
            "STREAMING-UNSIGNED-PAYLOAD-TRAILER" => Some(Ok(Streaming::UnsignedTrailer)),
            "STREAMING-AWS4-HMAC-SHA256-PAYLOAD" => Some(Ok(Streaming::Signed { trailer: false })),
            "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER" => {
                Some(Ok(Streaming::Signed { trailer: true }))
            }
            other if other.starts_with("STREAMING-") => {
                Some(Err(format!("{other} uploads are not supported")))
            }
            _ => None,
        }
    }
}

/// What signed chunks are checked against.
pub struct ChunkKey {
    /// The derived SigV4 signing key of the request.
    pub key: [u8; 32],
    /// `X-Amz-Date`.
    pub amz_date: String,
    /// `<date>/<region>/s3/aws4_request`.
    pub scope: String,
    /// The request's own signature.
    pub seed: String,
}

fn hmac_hex(key: &[u8; 32], text: &str) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("any key length");
    mac.update(text.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// The signature of one chunk, given the previous one.
pub fn chunk_signature(k: &ChunkKey, previous: &str, data: &[u8]) -> String {
    let sts = format!(
        "AWS4-HMAC-SHA256-PAYLOAD\n{}\n{}\n{previous}\n{EMPTY_SHA256}\n{}",
        k.amz_date,
        k.scope,
        hex::encode(Sha256::digest(data))
    );
    hmac_hex(&k.key, &sts)
}

/// The signature of the trailer lines (`name:value\n` each), given the last chunk's.
pub fn trailer_signature(k: &ChunkKey, previous: &str, trailer_text: &str) -> String {
    let sts = format!(
        "AWS4-HMAC-SHA256-TRAILER\n{}\n{}\n{previous}\n{}",
        k.amz_date,
        k.scope,
        hex::encode(Sha256::digest(trailer_text.as_bytes()))
    );
    hmac_hex(&k.key, &sts)
}

fn line(body: &[u8], pos: usize) -> Result<(&str, usize), String> {
    let rest = body.get(pos..).ok_or("the body ends early")?;
    let end = rest
        .windows(2)
        .position(|w| w == b"\r\n")
        .ok_or("a chunk line has no CRLF")?;
    let text = std::str::from_utf8(&rest[..end]).map_err(|_| "a chunk line is not text")?;
    Ok((text, pos + end + 2))
}

/// A decoded body: the payload and its trailing headers.
#[derive(Debug)]
pub struct Decoded {
    /// The object's bytes.
    pub payload: Vec<u8>,
    /// Trailing headers, names lower-cased, without `x-amz-trailer-signature`.
    pub trailers: Vec<(String, String)>,
}

/// Decodes the body, checking every chunk signature when signed. Returns the payload and the
/// trailing headers (names lower-cased, `x-amz-trailer-signature` checked and removed).
pub fn decode(body: &[u8], mode: Streaming, key: Option<&ChunkKey>) -> Result<Decoded, String> {
    let signed = matches!(mode, Streaming::Signed { .. });
    let key = if signed {
        Some(key.ok_or("a signed upload needs its signing key")?)
    } else {
        None
    };
    let mut previous = key.map(|k| k.seed.clone()).unwrap_or_default();
    let mut out = Vec::new();
    let mut pos = 0;
    loop {
        let (header, next) = line(body, pos)?;
        let (size_hex, signature) = match header.split_once(';') {
            Some((s, ext)) => (s, ext.strip_prefix("chunk-signature=")),
            None => (header, None),
        };
        let size = usize::from_str_radix(size_hex.trim(), 16)
            .map_err(|_| format!("bad chunk size {size_hex:?}"))?;
        // A size past the end of the body (up to usize::MAX) must not overflow the arithmetic.
        let data = next
            .checked_add(size)
            .and_then(|end| body.get(next..end))
            .ok_or("a chunk is shorter than its size")?;
        if let Some(k) = key {
            let given = signature.ok_or("a chunk has no chunk-signature")?;
            let expected = chunk_signature(k, &previous, data);
            if !bool::from(expected.as_bytes().ct_eq(given.as_bytes())) {
                return Err("a chunk signature does not match".into());
            }
            previous = expected;
        }
        out.extend_from_slice(data);
        pos = next + size;
        if size == 0 {
            break;
        }
        if body.get(pos..pos + 2) != Some(b"\r\n") {
            return Err("a chunk is longer than its size".into());
        }
        pos += 2;
    }
    // Trailing headers, then an empty line.
    let mut trailers = Vec::new();
    let mut trailer_text = String::new();
    let mut trailer_sig = None;
    while pos < body.len() {
        let (text, next) = line(body, pos)?;
        pos = next;
        if text.is_empty() {
            if trailers.is_empty() && trailer_sig.is_none() && pos < body.len() {
                continue;
            }
            break;
        }
        let (name, value) = text.split_once(':').ok_or("a trailer line has no colon")?;
        let name = name.trim().to_ascii_lowercase();
        let value = value.trim().to_string();
        if name == "x-amz-trailer-signature" {
            trailer_sig = Some(value);
        } else {
            trailer_text.push_str(&format!("{name}:{value}\n"));
            trailers.push((name, value));
        }
    }
    if let (Streaming::Signed { trailer: true }, Some(k)) = (mode, key) {
        let given = trailer_sig.ok_or("the trailer has no x-amz-trailer-signature")?;
        let expected = trailer_signature(k, &previous, &trailer_text);
        if !bool::from(expected.as_bytes().ct_eq(given.as_bytes())) {
            return Err("the trailer signature does not match".into());
        }
    }
    Ok(Decoded {
        payload: out,
        trailers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chunk_size_near_usize_max_is_refused_not_overflowed() {
        // Found by the aws_chunked fuzz target (fuzz/regressions/aws_chunked/): the size line
        // `FFFFFFFFFFFFFFFF` (with Unicode spaces around it) overflowed `start + size`.
        let body = "   \u{1680}\u{1680}FFFFFFFFFFFFFFFF\u{1680}\r\n".as_bytes();
        for mode in [
            Streaming::UnsignedTrailer,
            Streaming::Signed { trailer: false },
        ] {
            let err = decode(body, mode, Some(&key())).unwrap_err();
            assert!(err.contains("shorter than its size"), "{err}");
        }
        assert!(decode(b"ffffffffffffffff\r\nabc", Streaming::UnsignedTrailer, None).is_err());
    }

    fn key() -> ChunkKey {
        ChunkKey {
            key: [7u8; 32],
            amz_date: "20261122T000000Z".into(),
            scope: "20261122/us-east-1/s3/aws4_request".into(),
            seed: "ab".repeat(32),
        }
    }

    fn signed_body(k: &ChunkKey, chunks: &[&[u8]], trailer: Option<&str>) -> Vec<u8> {
        let mut out = Vec::new();
        let mut prev = k.seed.clone();
        for c in chunks.iter().chain(std::iter::once(&&b""[..])) {
            let sig = chunk_signature(k, &prev, c);
            out.extend_from_slice(format!("{:x};chunk-signature={sig}\r\n", c.len()).as_bytes());
            out.extend_from_slice(c);
            if !c.is_empty() {
                out.extend_from_slice(b"\r\n");
            }
            prev = sig;
        }
        match trailer {
            Some(t) => {
                let sig = trailer_signature(k, &prev, &format!("{t}\n"));
                out.extend_from_slice(
                    format!("{t}\r\nx-amz-trailer-signature:{sig}\r\n\r\n").as_bytes(),
                );
            }
            None => out.extend_from_slice(b"\r\n"),
        }
        out
    }

    #[test]
    fn unsigned_trailer_bodies_decode_with_their_checksum() {
        let body = b"5\r\nhello\r\n6\r\n world\r\n0\r\nx-amz-checksum-crc32:DUoRhQ==\r\n\r\n";
        let Decoded {
            payload: data,
            trailers,
        } = decode(body, Streaming::UnsignedTrailer, None).unwrap();
        assert_eq!(data, b"hello world");
        assert_eq!(
            trailers,
            [("x-amz-checksum-crc32".to_string(), "DUoRhQ==".to_string())]
        );
    }

    #[test]
    fn signed_chunks_chain_and_tampering_is_caught() {
        let k = key();
        let body = signed_body(&k, &[b"hello", b" world"], None);
        let d = decode(&body, Streaming::Signed { trailer: false }, Some(&k)).unwrap();
        assert_eq!(d.payload, b"hello world");
        let tampered: Vec<u8> = String::from_utf8(body.clone())
            .unwrap()
            .replace("hello", "jello")
            .into_bytes();
        assert!(decode(&tampered, Streaming::Signed { trailer: false }, Some(&k)).is_err());
        let reordered = signed_body(&k, &[b" world", b"hello"], None);
        let d = decode(&reordered, Streaming::Signed { trailer: false }, Some(&k)).unwrap();
        assert_eq!(
            d.payload, b" worldhello",
            "a re-signed body is another body"
        );
        let with_trailer =
            signed_body(&k, &[b"hello world"], Some("x-amz-checksum-crc32:DUoRhQ=="));
        let Decoded {
            payload: data,
            trailers,
        } = decode(&with_trailer, Streaming::Signed { trailer: true }, Some(&k)).unwrap();
        assert_eq!(data, b"hello world");
        assert_eq!(trailers[0].1, "DUoRhQ==");
        let forged = String::from_utf8(with_trailer)
            .unwrap()
            .replace("DUoRhQ==", "AAAAAA==")
            .into_bytes();
        assert!(decode(&forged, Streaming::Signed { trailer: true }, Some(&k)).is_err());
    }

    #[test]
    fn malformed_bodies_are_refused() {
        for bad in [
            &b"zz\r\nhello\r\n0\r\n\r\n"[..],
            b"5\r\nhel",
            b"3\r\nhello\r\n0\r\n\r\n",
        ] {
            assert!(decode(bad, Streaming::UnsignedTrailer, None).is_err());
        }
    }
}
