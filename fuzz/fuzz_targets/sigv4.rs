//! SigV4: the `Authorization` header parser, the canonical request of any method, path, query
//! and headers, and `verify` over them. Lines of the input: the header, method, path, query,
//! then `name: value` headers up to an empty line; the whole input is the body. Nothing may panic, and a request signed by
//! nobody must never verify.
#![no_main]

use libfuzzer_sys::fuzz_target;
use provisiond::protocol::sigv4::{self, canonical, PathStyle, SignedRequest};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.split('\n');
    let authorization = lines.next().unwrap_or_default();
    let method = lines.next().unwrap_or("POST");
    let path = lines.next().unwrap_or("/");
    let query = lines.next().unwrap_or("");
    let mut headers = http::HeaderMap::new();
    if let Ok(v) = http::HeaderValue::from_str(authorization) {
        headers.insert(http::header::AUTHORIZATION, v);
    }
    for line in lines.by_ref() {
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if let (Ok(n), Ok(v)) = (
                http::HeaderName::from_bytes(name.trim().as_bytes()),
                http::HeaderValue::from_str(value.trim()),
            ) {
                headers.append(n, v);
            }
        }
    }
    let _ = canonical::canonical_query(query);
    let _ = canonical::canonical_uri(path, PathStyle::DoubleEncoded);
    let _ = canonical::canonical_uri(path, PathStyle::AsSent);
    let req = SignedRequest {
        method,
        path,
        query,
        headers: &headers,
        body: data,
    };
    if let Ok(auth) = sigv4::parse(&req) {
        let _ = canonical::canonical_request(
            method,
            path,
            query,
            &headers,
            &auth.signed_headers,
            "UNSIGNED-PAYLOAD",
            PathStyle::AsSent,
        );
        for style in [PathStyle::DoubleEncoded, PathStyle::AsSent] {
            let now = provisiond::time::parse_amz_date(
                headers
                    .get("x-amz-date")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or(""),
            )
            .unwrap_or(0);
            // The fuzzer cannot know this secret: a signature it wrote must not verify. One
            // secret for every run, so its remembered keys see every scope the fuzzer makes.
            static SECRET: std::sync::LazyLock<sigv4::SigningSecret> =
                std::sync::LazyLock::new(|| {
                    sigv4::SigningSecret::new(sigv4::Secret::new(
                        "fuzz-secret-never-guessed-0123456789abcd".into(),
                    ))
                });
            let verdict = sigv4::verify(&req, &auth, &SECRET, &auth.service, style, now);
            assert!(verdict.is_err(), "a forged signature verified");
        }
    }
});
