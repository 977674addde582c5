//! provisiond's SigV4 verifier against requests signed by AWS's own signer (`aws-sigv4`): what it
//! signs verifies; a tampered body, a wrong secret, another service, another date or a skewed
//! clock does not.

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use provisiond::protocol::sigv4::{self, PathStyle, SignedRequest};
use std::time::{Duration, UNIX_EPOCH};

const KEY: &str = "AKIAIOSFODNN7EXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const SIGNED_AT: u64 = 1_795_000_000;

struct Signed {
    request: http::Request<Vec<u8>>,
}

fn signed(service: &str, uri: &str, body: &[u8], extra_headers: &[(&str, &str)]) -> Signed {
    let mut request = http::Request::builder()
        .method("POST")
        .uri(uri)
        .header("host", "127.0.0.1:8787")
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amz-target", "AWS242ServiceCatalogService.ListPortfolios");
    for (k, v) in extra_headers {
        request = request.header(*k, *v);
    }
    let mut request = request.body(body.to_vec()).unwrap();
    let identity = Credentials::new(KEY, SECRET, None, None, "test").into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name(service)
        .time(UNIX_EPOCH + Duration::from_secs(SIGNED_AT))
        .settings(SigningSettings::default())
        .build()
        .unwrap()
        .into();
    let headers: Vec<(String, String)> = request
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap().to_string()))
        .collect();
    let signable = SignableRequest::new(
        "POST",
        uri,
        headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::Bytes(body),
    )
    .unwrap();
    let (instructions, _) = sign(signable, &params).unwrap().into_parts();
    instructions.apply_to_request_http1x(&mut request);
    Signed { request }
}

fn verify(s: &Signed, body: &[u8], secret: &str, service: &str, now: u64) -> Result<(), String> {
    let uri = s.request.uri();
    let req = SignedRequest {
        method: s.request.method().as_str(),
        path: uri.path(),
        query: uri.query().unwrap_or(""),
        headers: s.request.headers(),
        body,
    };
    let auth = sigv4::parse(&req).map_err(|e| e.code.to_string())?;
    assert_eq!(auth.access_key_id, KEY);
    sigv4::verify(
        &req,
        &auth,
        &sigv4::SigningSecret::new(sigv4::Secret::new(secret.into())),
        service,
        PathStyle::DoubleEncoded,
        now as i64,
    )
    .map_err(|e| format!("{}: {}", e.code, e.message))
}

#[test]
fn what_aws_signs_verifies() {
    let body = br#"{"PageSize":5}"#;
    let s = signed("servicecatalog", "http://127.0.0.1:8787/", body, &[]);
    assert_eq!(
        verify(&s, body, SECRET, "servicecatalog", SIGNED_AT),
        Ok(())
    );
    // Within the allowed skew both ways.
    assert_eq!(
        verify(&s, body, SECRET, "servicecatalog", SIGNED_AT + 899),
        Ok(())
    );
    assert_eq!(
        verify(&s, body, SECRET, "servicecatalog", SIGNED_AT - 899),
        Ok(())
    );
}

#[test]
fn queries_paths_and_untidy_headers_canonicalise_like_aws() {
    let body = b"{}";
    let s = signed(
        "servicecatalog",
        "http://127.0.0.1:8787/some%20path/x?b=2&a=hello%20world&a=0",
        body,
        &[("x-custom", "  spaced    out   value ")],
    );
    assert_eq!(
        verify(&s, body, SECRET, "servicecatalog", SIGNED_AT),
        Ok(())
    );
}

#[test]
fn a_content_sha256_header_must_match_the_body() {
    use sha2::Digest;
    let body = br#"{"PageSize":5}"#;
    let hash = hex::encode(sha2::Sha256::digest(body));
    let s = signed(
        "servicecatalog",
        "http://127.0.0.1:8787/",
        body,
        &[("x-amz-content-sha256", &hash)],
    );
    assert_eq!(
        verify(&s, body, SECRET, "servicecatalog", SIGNED_AT),
        Ok(())
    );
    let err = verify(
        &s,
        br#"{"PageSize":6}"#,
        SECRET,
        "servicecatalog",
        SIGNED_AT,
    )
    .unwrap_err();
    assert!(err.contains("x-amz-content-sha256"), "{err}");
}

#[test]
fn tampering_and_wrong_keys_are_refused() {
    let body = br#"{"PageSize":5}"#;
    let s = signed("servicecatalog", "http://127.0.0.1:8787/", body, &[]);
    let tampered = verify(
        &s,
        br#"{"PageSize":6}"#,
        SECRET,
        "servicecatalog",
        SIGNED_AT,
    )
    .unwrap_err();
    assert!(
        tampered.starts_with("InvalidSignatureException: The request signature we calculated"),
        "{tampered}"
    );
    let wrong_secret = verify(&s, body, "not-the-secret", "servicecatalog", SIGNED_AT).unwrap_err();
    assert!(
        wrong_secret.starts_with("InvalidSignatureException"),
        "{wrong_secret}"
    );
    let wrong_service = verify(&s, body, SECRET, "proton", SIGNED_AT).unwrap_err();
    assert!(
        wrong_service.contains("Credential should be scoped to correct service: 'proton'"),
        "{wrong_service}"
    );
    let mut changed_header = signed("servicecatalog", "http://127.0.0.1:8787/", body, &[]);
    changed_header.request.headers_mut().insert(
        "x-amz-target",
        "AWS242ServiceCatalogService.DeletePortfolio"
            .parse()
            .unwrap(),
    );
    assert!(verify(&changed_header, body, SECRET, "servicecatalog", SIGNED_AT).is_err());
}

#[test]
fn skew_beyond_fifteen_minutes_is_refused() {
    let body = b"{}";
    let s = signed("servicecatalog", "http://127.0.0.1:8787/", body, &[]);
    let late = verify(&s, body, SECRET, "servicecatalog", SIGNED_AT + 901).unwrap_err();
    assert!(
        late.starts_with("InvalidSignatureException: Signature expired"),
        "{late}"
    );
    let early = verify(&s, body, SECRET, "servicecatalog", SIGNED_AT - 901).unwrap_err();
    assert!(
        early.starts_with("InvalidSignatureException: Signature not yet current"),
        "{early}"
    );
}

#[test]
fn unsigned_requests_are_missing_a_token() {
    let request = http::Request::builder()
        .uri("http://127.0.0.1/")
        .body(Vec::<u8>::new())
        .unwrap();
    let req = SignedRequest {
        method: "POST",
        path: "/",
        query: "",
        headers: request.headers(),
        body: b"",
    };
    assert_eq!(
        sigv4::parse(&req).unwrap_err().code,
        "MissingAuthenticationTokenException"
    );
}
