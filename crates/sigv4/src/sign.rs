//! Signing a request as an AWS client does: the headers (`host`, `x-amz-date`,
//! `x-amz-content-sha256`, the caller's own, and `authorization`) of a SigV4-signed request.

use super::canonical::canonical_request;
use super::date::format_amz_date;
use super::signing::{signature, string_to_sign, SigningSecret};
use super::PathStyle;
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// An access key and the region it signs for.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// `AKIA…`
    pub access_key_id: String,
    /// The secret (never printed), with the signing keys lately derived from it.
    pub secret: Arc<SigningSecret>,
    /// The region of the credential scope.
    pub region: String,
}

/// What a request to sign consists of.
pub struct Unsigned<'a> {
    /// `GET`, `POST`, …
    pub method: &'a str,
    /// The path, percent-encoded as it will be sent.
    pub path: &'a str,
    /// `host` or `host:port`.
    pub host: &'a str,
    /// Further headers to send and sign (lowercase names).
    pub headers: &'a [(&'static str, String)],
    /// The body.
    pub body: &'a [u8],
    /// The SigV4 service name (`servicecatalog`, `s3`, …).
    pub service: &'a str,
    /// How the service canonicalises paths.
    pub style: PathStyle,
}

/// The headers of `request` signed with `credentials` at `now_secs`, or why a header value
/// cannot be sent.
pub fn sign(
    credentials: &Credentials,
    request: &Unsigned<'_>,
    now_secs: i64,
) -> Result<http::HeaderMap, String> {
    let amz_date = format_amz_date(now_secs);
    let date = &amz_date[..8];
    let payload_hash = hex::encode(Sha256::digest(request.body));
    let mut headers = http::HeaderMap::new();
    let mut put = |name: &'static str, value: &str| {
        let value = value
            .parse()
            .map_err(|_| format!("bad header value for {name}"))?;
        headers.insert(name, value);
        Ok::<_, String>(())
    };
    put("host", request.host)?;
    put("x-amz-date", &amz_date)?;
    put("x-amz-content-sha256", &payload_hash)?;
    for (name, value) in request.headers {
        put(name, value)?;
    }
    let mut signed: Vec<String> = headers.keys().map(|k| k.as_str().to_string()).collect();
    signed.sort();
    let canonical = canonical_request(
        request.method,
        request.path,
        "",
        &headers,
        &signed,
        &payload_hash,
        request.style,
    )
    .map_err(|e| e.to_string())?;
    let scope = format!(
        "{date}/{}/{}/aws4_request",
        credentials.region, request.service
    );
    let to_sign = string_to_sign(&amz_date, &scope, &canonical);
    let key = credentials
        .secret
        .key(date, &credentials.region, request.service);
    let authorization = format!(
        "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={}, Signature={}",
        credentials.access_key_id,
        signed.join(";"),
        hex::encode(signature(&key, &to_sign))
    );
    let value = authorization
        .parse()
        .map_err(|_| "bad authorization header".to_string())?;
    headers.insert(http::header::AUTHORIZATION, value);
    Ok(headers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Secret;

    #[test]
    fn signs_every_header_it_sends_for_the_credential_scope() {
        let credentials = Credentials {
            access_key_id: "AKIAEXAMPLE".into(),
            secret: Arc::new(Secret::new("secret".into()).into()),
            region: "us-east-1".into(),
        };
        let extra = [("x-amz-target", "AmazonSQS.ListQueues".to_string())];
        let request = Unsigned {
            method: "POST",
            path: "/",
            host: "localhost:4566",
            headers: &extra,
            body: b"{}",
            service: "sqs",
            style: PathStyle::DoubleEncoded,
        };
        let headers = sign(&credentials, &request, 1_440_938_160).unwrap();
        let authorization = headers["authorization"].to_str().unwrap();
        assert!(authorization.starts_with(
            "AWS4-HMAC-SHA256 Credential=AKIAEXAMPLE/20150830/us-east-1/sqs/aws4_request, \
             SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-target, Signature="
        ));
        assert_eq!(headers["x-amz-date"], "20150830T123600Z");
        assert_eq!(
            headers["x-amz-content-sha256"],
            hex::encode(Sha256::digest(b"{}")).as_str()
        );
        // The same request signed twice at one time is signed alike; another secret is not.
        let again = sign(&credentials, &request, 1_440_938_160).unwrap();
        assert_eq!(again["authorization"], headers["authorization"]);
        let other = Credentials {
            secret: Arc::new(Secret::new("other".into()).into()),
            ..credentials
        };
        let signed_by_other = sign(&other, &request, 1_440_938_160).unwrap();
        assert_ne!(signed_by_other["authorization"], headers["authorization"]);
    }
}
