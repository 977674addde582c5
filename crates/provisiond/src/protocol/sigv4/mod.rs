//! AWS Signature Version 4 verification: the `Authorization` header (`authorization`), then
//! the canonical request, string to sign and key of `provisiond_sigv4` (shared with clients).
//! `verify` ties them together and names the AWS error of each failure; every comparison is
//! constant-time.

pub mod authorization;

pub use provisiond_sigv4::signing::SigningSecret;
pub use provisiond_sigv4::{canonical, signing, PathStyle, Secret};

use authorization::Authorization;
use provisiond_model::{AwsError, CommonError};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// How far a request's `X-Amz-Date` may be from the server's clock.
pub const MAX_SKEW_SECS: i64 = 15 * 60;

/// The parts of an HTTP request a signature covers.
pub struct SignedRequest<'a> {
    /// `POST`, `GET`, …
    pub method: &'a str,
    /// The path as sent (percent-encoded).
    pub path: &'a str,
    /// The query string as sent, without `?`.
    pub query: &'a str,
    /// The headers.
    pub headers: &'a http::HeaderMap,
    /// The body.
    pub body: &'a [u8],
}

/// Reads and checks the form of the `Authorization` header; needs no secret.
pub fn parse(req: &SignedRequest<'_>) -> Result<Authorization, AwsError> {
    let header = req
        .headers
        .get(http::header::AUTHORIZATION)
        .ok_or_else(|| {
            CommonError::MissingAuthenticationTokenException.with("Missing Authentication Token")
        })?;
    let header = header.to_str().map_err(|_| {
        CommonError::IncompleteSignatureException.with("The Authorization header is not ASCII.")
    })?;
    authorization::parse(header)
}

fn invalid(message: impl Into<String>) -> AwsError {
    CommonError::InvalidSignatureException.with(message)
}

/// Verifies that `req` was signed by `auth`'s key with `secret`, for `service`, at a time within
/// `MAX_SKEW_SECS` of `now_secs`, over the body it holds.
pub fn verify(
    req: &SignedRequest<'_>,
    auth: &Authorization,
    secret: &SigningSecret,
    service: &str,
    path_style: PathStyle,
    now_secs: i64,
) -> Result<(), AwsError> {
    let amz_date = check_scope_and_time(req, auth, service, now_secs)?;
    let mut body_hash = [0u8; 64];
    hex::encode_to_slice(Sha256::digest(req.body), &mut body_hash)
        .expect("64 hex digits hold 32 bytes");
    let body_hash = std::str::from_utf8(&body_hash).expect("hex digits are ASCII");
    let payload_hash = match req
        .headers
        .get("x-amz-content-sha256")
        .and_then(|v| v.to_str().ok())
    {
        Some("UNSIGNED-PAYLOAD") if path_style == PathStyle::AsSent => "UNSIGNED-PAYLOAD",
        // aws-chunked uploads sign the literal; their chunks are checked as they are decoded.
        Some(streaming)
            if path_style == PathStyle::AsSent && streaming.starts_with("STREAMING-") =>
        {
            streaming
        }
        Some(claimed) => {
            if !bool::from(claimed.as_bytes().ct_eq(body_hash.as_bytes())) {
                return Err(invalid(
                    "The provided 'x-amz-content-sha256' header does not match what was computed.",
                ));
            }
            body_hash
        }
        None => body_hash,
    };
    signature_matches(req, auth, secret, path_style, amz_date, payload_hash)
}

/// Verifies a request's signature before its body is read, over the payload hash the request
/// declares in `x-amz-content-sha256` (a header the signature covers); the caller checks the
/// body against that hash once it has read it. S3 uses it, so an unsigned or badly signed
/// upload is refused before a byte of its body is read.
pub fn verify_declared_payload(
    req: &SignedRequest<'_>,
    auth: &Authorization,
    secret: &SigningSecret,
    service: &str,
    path_style: PathStyle,
    now_secs: i64,
    payload_hash: &str,
) -> Result<(), AwsError> {
    let amz_date = check_scope_and_time(req, auth, service, now_secs)?;
    signature_matches(req, auth, secret, path_style, amz_date, payload_hash)
}

/// The checks that need no secret: scope service, `host` signed, `X-Amz-Date` well formed, of
/// the credential's day and within the skew. Returns the `X-Amz-Date`.
fn check_scope_and_time<'r>(
    req: &SignedRequest<'r>,
    auth: &Authorization,
    service: &str,
    now_secs: i64,
) -> Result<&'r str, AwsError> {
    if auth.service != service {
        return Err(invalid(format!(
            "Credential should be scoped to correct service: '{service}'. "
        )));
    }
    if !auth.signed_headers.iter().any(|h| h == "host") {
        return Err(invalid(
            "'Host' must be a 'SignedHeader' in the AWS Authorization.",
        ));
    }
    let amz_date = req
        .headers
        .get("x-amz-date")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            CommonError::IncompleteSignatureException
                .with("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")
        })?;
    let signed_at = crate::time::parse_amz_date(amz_date).ok_or_else(|| {
        CommonError::IncompleteSignatureException.with(format!(
            "X-Amz-Date {amz_date:?} is not of the form YYYYMMDD'T'HHMMSS'Z'."
        ))
    })?;
    if !amz_date.starts_with(&auth.date) {
        return Err(invalid(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{}', from '{amz_date}'.",
            auth.date,
            &amz_date[..8]
        )));
    }
    if signed_at < now_secs - MAX_SKEW_SECS {
        return Err(invalid(format!(
            "Signature expired: {amz_date} is now earlier than {} ({} - 15 min.)",
            crate::time::format_amz_date(now_secs - MAX_SKEW_SECS),
            crate::time::format_amz_date(now_secs)
        )));
    }
    if signed_at > now_secs + MAX_SKEW_SECS {
        return Err(invalid(format!(
            "Signature not yet current: {amz_date} is still later than {} ({} + 15 min.)",
            crate::time::format_amz_date(now_secs + MAX_SKEW_SECS),
            crate::time::format_amz_date(now_secs)
        )));
    }
    Ok(amz_date)
}

fn signature_matches(
    req: &SignedRequest<'_>,
    auth: &Authorization,
    secret: &SigningSecret,
    path_style: PathStyle,
    amz_date: &str,
    payload_hash: &str,
) -> Result<(), AwsError> {
    let canonical = canonical::canonical_request(
        req.method,
        req.path,
        req.query,
        req.headers,
        &auth.signed_headers,
        payload_hash,
        path_style,
    )
    .map_err(|problem| invalid(problem.to_string()))?;
    let scope = format!(
        "{}/{}/{}/aws4_request",
        auth.date, auth.region, auth.service
    );
    let string_to_sign = signing::string_to_sign(amz_date, &scope, &canonical);
    let key = secret.key(&auth.date, &auth.region, &auth.service);
    let expected = signing::signature(&key, &string_to_sign);
    let mut given = [0u8; 32];
    let well_formed = hex::decode_to_slice(&auth.signature, &mut given).is_ok();
    if well_formed && bool::from(expected.as_slice().ct_eq(given.as_slice())) {
        Ok(())
    } else {
        Err(invalid(
            "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.",
        ))
    }
}
