//! The S3-shaped object store engines and template authors use (SPEC §8.2): path-style
//! ListBuckets, CreateBucket, DeleteBucket, PutObject, GetObject, HeadObject, DeleteObject and
//! ListObjectsV2, SigV4 with service `s3`, S3's XML errors. Buckets belong to the caller's
//! account; the system buckets the domain writes (`provisiond-artifacts`, the immutable
//! template copies, and Proton's rendered deployments) exist in every account and are
//! read-only. It needs only the store and the key ring (`ObjectStore`), never the server. `aws-chunked` bodies are decoded
//! (`chunked.rs`) with their chunk signatures checked; CRC32, SHA-256 and MD5 checksums are verified.

pub mod chunked;
mod xml;

use crate::auth::{self, KeyRing};
use crate::protocol::sigv4::{self, PathStyle, SignedRequest};
use crate::store::{self, transact, Kind, Mode, StoredObject};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Response, StatusCode};
use md5::{Digest, Md5};
use provisiond_model::AwsError;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::sync::Arc;

/// What the object store serves from.
#[derive(Clone)]
pub struct ObjectStore {
    /// Where objects live.
    pub store: Arc<dyn crate::store::Store>,
    /// Who signs with which key.
    pub keys: Arc<KeyRing>,
    /// The domain of virtual-hosted-style requests (`<bucket>.<domain>`).
    pub domain: String,
    /// Buckets every account has, written only by provisiond's domain (the wiring names
    /// them: template copies, rendered Proton deployment bundles).
    pub system_buckets: Vec<&'static str>,
}

/// Largest object accepted in one PutObject: 64 MiB.
pub const OBJECT_LIMIT: usize = 64 << 20;

/// An S3 error: code, HTTP status, message.
#[derive(Debug)]
pub struct S3Error {
    code: &'static str,
    status: u16,
    message: String,
    resource: Option<String>,
}

fn err(code: &'static str, status: u16, message: impl Into<String>) -> S3Error {
    S3Error {
        code,
        status,
        message: message.into(),
        resource: None,
    }
}

impl S3Error {
    fn on(mut self, resource: &str) -> Self {
        self.resource = Some(resource.to_string());
        self
    }
}

impl From<AwsError> for S3Error {
    /// Signature and store failures in S3's vocabulary.
    fn from(e: AwsError) -> Self {
        let code = match e.code {
            "MissingAuthenticationTokenException" => {
                return err(
                    "AccessDenied",
                    403,
                    "Access Denied: the request is not signed.",
                )
            }
            "UnrecognizedClientException" => {
                return err(
                    "InvalidAccessKeyId",
                    403,
                    "The AWS Access Key Id you provided does not exist in our records.",
                )
            }
            "IncompleteSignatureException" => {
                return err("AuthorizationHeaderMalformed", 400, e.message)
            }
            "InvalidSignatureException"
                if e.message.starts_with("Signature expired")
                    || e.message.starts_with("Signature not yet current") =>
            {
                return err("RequestTimeTooSkewed", 403, e.message)
            }
            "InvalidSignatureException" if e.message.contains("x-amz-content-sha256") => {
                return err(
                    "XAmzContentSHA256Mismatch",
                    400,
                    "The provided 'x-amz-content-sha256' header does not match what was computed.",
                )
            }
            "InvalidSignatureException" => "SignatureDoesNotMatch",
            _ => "InternalError",
        };
        let status = if code == "InternalError" { 500 } else { 403 };
        err(code, status, e.message)
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Bucket {
    name: String,
    created_ms: i64,
}

fn respond(
    status: u16,
    request_id: &str,
    headers: &[(&str, String)],
    body: Vec<u8>,
) -> Response<Full<Bytes>> {
    let mut builder = Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header("x-amz-request-id", request_id)
        .header("x-amzn-RequestId", request_id);
    for (k, v) in headers {
        builder = builder.header(*k, v.as_str());
    }
    builder
        .body(Full::new(Bytes::from(body)))
        .expect("valid headers")
}

fn xml_response(request_id: &str, body: String) -> Response<Full<Bytes>> {
    respond(
        200,
        request_id,
        &[("content-type", "application/xml".into())],
        body.into_bytes(),
    )
}

/// Renders an S3 error.
pub fn error_response(e: &S3Error, request_id: &str) -> Response<Full<Bytes>> {
    respond(
        e.status,
        request_id,
        &[("content-type", "application/xml".into())],
        xml::error(e.code, &e.message, e.resource.as_deref(), request_id).into_bytes(),
    )
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (
                bytes.get(i + 1).and_then(|b| (*b as char).to_digit(16)),
                bytes.get(i + 2).and_then(|b| (*b as char).to_digit(16)),
            ) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn query_params(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (
                percent_decode(&k.replace('+', " ")),
                percent_decode(&v.replace('+', " ")),
            )
        })
        .collect()
}

fn valid_bucket_name(name: &str) -> bool {
    (3..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name.as_bytes()[name.len() - 1].is_ascii_alphanumeric()
}

/// An S3 operation provisiond serves, as a path-style request names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `GET /`.
    ListBuckets,
    /// `PUT /<bucket>`.
    CreateBucket {
        /// The bucket.
        bucket: String,
    },
    /// `DELETE /<bucket>`.
    DeleteBucket {
        /// The bucket.
        bucket: String,
    },
    /// `GET /<bucket>` (ListObjectsV2 and its parameters).
    ListObjects {
        /// The bucket.
        bucket: String,
        /// The decoded query parameters.
        query: Vec<(String, String)>,
    },
    /// `PUT /<bucket>/<key>`.
    PutObject {
        /// The bucket.
        bucket: String,
        /// The object key.
        key: String,
    },
    /// `GET /<bucket>/<key>`.
    GetObject {
        /// The bucket.
        bucket: String,
        /// The object key.
        key: String,
    },
    /// `HEAD /<bucket>/<key>`.
    HeadObject {
        /// The bucket.
        bucket: String,
        /// The object key.
        key: String,
    },
    /// `DELETE /<bucket>/<key>`.
    DeleteObject {
        /// The bucket.
        bucket: String,
        /// The object key.
        key: String,
    },
}

/// The bucket a `Host` header names in virtual-hosted style (`<bucket>.<domain>[:port]`), if it
/// does; a host that is the domain itself, or outside it, is path-style.
pub fn virtual_host_bucket<'h>(host: &'h str, domain: &str) -> Option<&'h str> {
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    };
    let bucket = name.strip_suffix(domain)?.strip_suffix('.')?;
    (!bucket.is_empty()).then_some(bucket)
}

/// Which operation a request names, virtual-hosted (the bucket in `host`, under `domain`) or
/// path-style: `NotImplemented` for the S3 operations not served.
pub fn route(
    method: &Method,
    host: Option<&str>,
    domain: &str,
    path: &str,
    query: &str,
) -> Result<Route, S3Error> {
    let rest = path.trim_start_matches('/');
    let (bucket, key) = match host.and_then(|h| virtual_host_bucket(h, domain)) {
        Some(bucket) => (bucket.to_string(), percent_decode(rest)),
        None => match rest.split_once('/') {
            Some((b, k)) => (percent_decode(b), percent_decode(k)),
            None => (percent_decode(rest), String::new()),
        },
    };
    Ok(match (method, bucket.is_empty(), key.is_empty()) {
        (&Method::GET, true, _) => Route::ListBuckets,
        (&Method::PUT, false, true) => Route::CreateBucket { bucket },
        (&Method::DELETE, false, true) => Route::DeleteBucket { bucket },
        (&Method::GET, false, true) => Route::ListObjects {
            bucket,
            query: query_params(query),
        },
        (&Method::PUT, false, false) => Route::PutObject { bucket, key },
        (&Method::GET, false, false) => Route::GetObject { bucket, key },
        (&Method::HEAD, false, false) => Route::HeadObject { bucket, key },
        (&Method::DELETE, false, false) => Route::DeleteObject { bucket, key },
        _ => {
            return Err(err(
                "NotImplemented",
                501,
                "This S3 operation is not served by provisiond.",
            ))
        }
    })
}

/// Largest body read for one request: the object limit plus room for aws-chunked framing.
pub const WIRE_LIMIT: usize = OBJECT_LIMIT + (1 << 20);

/// Bodies read at once, in 64 KiB units: at most 256 MiB of uploads are held in memory, however
/// many clients send at the same time; more wait their turn.
static UPLOAD_BUDGET: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(4096);
const BUDGET_UNIT: usize = 64 << 10;

/// Serves one S3 request. Its body is read only once the declared length is within the limit
/// and the signature over the headers (which cover the declared payload hash) is good.
pub async fn handle(
    app: Arc<ObjectStore>,
    parts: http::request::Parts,
    body: hyper::body::Incoming,
    request_id: &str,
) -> Response<Full<Bytes>> {
    match serve(app, parts, body, request_id).await {
        Ok(r) => r,
        Err(e) => error_response(&e, request_id),
    }
}

/// When a PutObject may write: always, or (`If-None-Match: *`) only if the key is free.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WriteCondition {
    Always,
    IfAbsent,
}

impl WriteCondition {
    /// S3 serves `If-None-Match: *` on PutObject; the ETag conditions (`If-Match`, or
    /// `If-None-Match` with an ETag) are not served here and say so rather than being ignored.
    fn from_headers(headers: &http::HeaderMap) -> Result<WriteCondition, S3Error> {
        if headers.contains_key(http::header::IF_MATCH) {
            return Err(err(
                "NotImplemented",
                501,
                "A header you provided implies functionality that is not implemented: If-Match",
            ));
        }
        match headers.get(http::header::IF_NONE_MATCH).map(|v| v.to_str()) {
            None => Ok(WriteCondition::Always),
            Some(Ok(v)) if v.trim() == "*" => Ok(WriteCondition::IfAbsent),
            Some(_) => Err(err(
                "NotImplemented",
                501,
                "A header you provided implies functionality that is not implemented: If-None-Match other than *",
            )),
        }
    }
}

fn entity_too_large() -> S3Error {
    err(
        "EntityTooLarge",
        400,
        format!("Your proposed upload exceeds the maximum allowed size of {OBJECT_LIMIT} bytes."),
    )
}

/// Reads a body of at most `limit` bytes; stops reading at the first byte over.
async fn read_limited(mut body: hyper::body::Incoming, limit: usize) -> Result<Bytes, S3Error> {
    use http_body_util::BodyExt;
    let mut kept = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| {
            err(
                "IncompleteBody",
                400,
                "The request body ended before its declared length.",
            )
        })?;
        if let Ok(data) = frame.into_data() {
            if kept.len() + data.len() > limit {
                return Err(entity_too_large());
            }
            kept.extend_from_slice(&data);
        }
    }
    Ok(Bytes::from(kept))
}

async fn serve(
    app: Arc<ObjectStore>,
    parts: http::request::Parts,
    body: hyper::body::Incoming,
    request_id: &str,
) -> Result<Response<Full<Bytes>>, S3Error> {
    let declared_length = match parts.headers.get(http::header::CONTENT_LENGTH) {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or_else(|| err("InvalidArgument", 400, "Content-Length is not a number."))?,
        ),
    };
    if declared_length.is_some_and(|n| n > WIRE_LIMIT as u64) {
        return Err(entity_too_large());
    }
    let has_body = declared_length.map_or(
        parts.headers.contains_key(http::header::TRANSFER_ENCODING),
        |n| n > 0,
    );
    let headers_only = SignedRequest {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query().unwrap_or(""),
        headers: &parts.headers,
        body: &[],
    };
    let content_sha = parts
        .headers
        .get("x-amz-content-sha256")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let streaming = match chunked::Streaming::from_header(content_sha) {
        Some(Ok(mode)) => Some(mode),
        Some(Err(why)) => return Err(err("NotImplemented", 501, why)),
        None => None,
    };
    let auth = sigv4::parse(&headers_only)?;
    let known = app.keys.signing_key(&auth.access_key_id).await?;
    let now_ms = crate::time::now_ms();
    let payload_hash = match content_sha {
        "" if has_body => {
            return Err(err(
                "InvalidRequest",
                400,
                "Missing required header for this request: x-amz-content-sha256",
            ))
        }
        "" => hex::encode(<Sha256 as sha2::Digest>::digest(b"")),
        declared => declared.to_string(),
    };
    sigv4::verify_declared_payload(
        &headers_only,
        &auth,
        &known.secret,
        "s3",
        PathStyle::AsSent,
        now_ms / 1000,
        &payload_hash,
    )?;

    // Signed: now the body, within the limit and the memory budget.
    let units = declared_length
        .map_or(WIRE_LIMIT, |n| n as usize)
        .div_ceil(BUDGET_UNIT);
    let _budget = UPLOAD_BUDGET
        .acquire_many(units.clamp(1, WIRE_LIMIT.div_ceil(BUDGET_UNIT)) as u32)
        .await
        .map_err(|_| err("InternalError", 500, "the upload budget is closed"))?;
    let body = if has_body {
        read_limited(body, WIRE_LIMIT).await?
    } else {
        Bytes::new()
    };
    let is_hash = payload_hash.len() == 64 && payload_hash.bytes().all(|b| b.is_ascii_hexdigit());
    if is_hash && streaming.is_none() {
        let actual = hex::encode(<Sha256 as sha2::Digest>::digest(&body));
        if !actual.eq_ignore_ascii_case(&payload_hash) {
            return Err(err(
                "XAmzContentSHA256Mismatch",
                400,
                "The provided 'x-amz-content-sha256' header does not match what was computed.",
            ));
        }
    }
    let body = match streaming {
        None => {
            verify_checksums(&parts.headers, &body)?;
            body
        }
        Some(mode) => decode_streaming(&parts.headers, &auth, known.secret.expose(), &body, mode)?,
    };
    if body.len() > OBJECT_LIMIT {
        return Err(entity_too_large());
    }

    let host = parts
        .headers
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok());
    let route = route(
        &parts.method,
        host,
        &app.domain,
        parts.uri.path(),
        parts.uri.query().unwrap_or(""),
    )?;
    let write_condition = match &route {
        Route::PutObject { .. } => WriteCondition::from_headers(&parts.headers)?,
        _ => WriteCondition::Always,
    };
    let account = known.identity.account.clone();
    let request_id = request_id.to_string();
    let store = app.store.clone();
    let access_key_id = known.identity.access_key_id.clone();
    tokio::task::spawn_blocking(move || {
        // The key may have been deleted since it was cached.
        if !app
            .keys
            .still_exists(&access_key_id)
            .map_err(AwsError::from)?
        {
            return Err(auth::revoked_key().into());
        }
        let ctx = Op {
            store: store.as_ref(),
            account: &account,
            now_ms,
            request_id: &request_id,
            system_buckets: &app.system_buckets,
        };
        match route {
            Route::ListBuckets => ctx.list_buckets(),
            Route::CreateBucket { bucket } => ctx.create_bucket(&bucket),
            Route::DeleteBucket { bucket } => ctx.delete_bucket(&bucket),
            Route::ListObjects { bucket, query } => ctx.list_objects(&bucket, &query),
            Route::PutObject { bucket, key } => {
                ctx.put_object(&bucket, &key, body, write_condition)
            }
            Route::GetObject { bucket, key } => ctx.get_object(&bucket, &key, true),
            Route::HeadObject { bucket, key } => ctx.get_object(&bucket, &key, false),
            Route::DeleteObject { bucket, key } => ctx.delete_object(&bucket, &key),
        }
    })
    .await
    .map_err(|e| err("InternalError", 500, e.to_string()))?
}

/// Decodes an aws-chunked body, checking its chunk signatures, decoded length and checksums.
fn decode_streaming(
    headers: &http::HeaderMap,
    auth: &sigv4::authorization::Authorization,
    secret: &str,
    body: &[u8],
    mode: chunked::Streaming,
) -> Result<Bytes, S3Error> {
    let chunk_key = chunked::ChunkKey {
        key: *sigv4::signing::signing_key(secret, &auth.date, &auth.region, &auth.service),
        amz_date: headers
            .get("x-amz-date")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string(),
        scope: format!(
            "{}/{}/{}/aws4_request",
            auth.date, auth.region, auth.service
        ),
        seed: auth.signature.clone(),
    };
    let chunked::Decoded {
        payload: decoded,
        trailers,
    } = chunked::decode(body, mode, Some(&chunk_key)).map_err(|why| {
        if why.contains("signature") {
            err(
                "SignatureDoesNotMatch",
                403,
                format!("The aws-chunked body is not valid: {why}."),
            )
        } else {
            err(
                "IncompleteBody",
                400,
                format!("The aws-chunked body is not valid: {why}."),
            )
        }
    })?;
    if let Some(declared) = headers
        .get("x-amz-decoded-content-length")
        .and_then(|v| v.to_str().ok())
    {
        if declared.parse::<usize>().ok() != Some(decoded.len()) {
            return Err(err(
                "IncompleteBody",
                400,
                "The decoded body is not x-amz-decoded-content-length bytes long.",
            ));
        }
    }
    let mut checks = headers.clone();
    for (name, value) in &trailers {
        if let (Ok(n), Ok(v)) = (
            http::HeaderName::from_bytes(name.as_bytes()),
            http::HeaderValue::from_str(value),
        ) {
            checks.insert(n, v);
        }
    }
    verify_checksums(&checks, &decoded)?;
    Ok(Bytes::from(decoded))
}

fn verify_checksums(headers: &http::HeaderMap, body: &[u8]) -> Result<(), S3Error> {
    if let Some(claimed) = headers
        .get("x-amz-checksum-crc32")
        .and_then(|v| v.to_str().ok())
    {
        let actual = B64.encode(crc32fast::hash(body).to_be_bytes());
        if claimed != actual {
            return Err(err(
                "BadDigest",
                400,
                "The CRC32 you specified did not match the calculated checksum.",
            ));
        }
    }
    if let Some(claimed) = headers
        .get("x-amz-checksum-sha256")
        .and_then(|v| v.to_str().ok())
    {
        let actual = B64.encode(Sha256::digest(body));
        if claimed != actual {
            return Err(err(
                "BadDigest",
                400,
                "The SHA256 you specified did not match the calculated checksum.",
            ));
        }
    }
    if let Some(claimed) = headers.get("content-md5").and_then(|v| v.to_str().ok()) {
        if claimed != B64.encode(Md5::digest(body)) {
            return Err(err(
                "BadDigest",
                400,
                "The Content-MD5 you specified did not match what we received.",
            ));
        }
    }
    Ok(())
}

struct Op<'a> {
    store: &'a dyn crate::store::Store,
    account: &'a str,
    now_ms: i64,
    request_id: &'a str,
    system_buckets: &'a [&'static str],
}

impl Op<'_> {
    /// The bucket, if the account has it (`provisiond-artifacts` always exists).
    fn bucket(&self, name: &str) -> Result<(), S3Error> {
        if self.system_buckets.contains(&name) {
            return Ok(());
        }
        let found: Option<Bucket> = transact(self.store, Mode::Read, |tx| {
            store::get(tx, Kind::Bucket, self.account, name)
        })?;
        found.map(|_| ()).ok_or_else(|| {
            err("NoSuchBucket", 404, "The specified bucket does not exist").on(&format!("/{name}"))
        })
    }

    fn writable(&self, name: &str) -> Result<(), S3Error> {
        if self.system_buckets.contains(&name) {
            return Err(err("AccessDenied", 403, format!("{name} holds copies provisiond makes (templates, deployment bundles) and is read-only.")));
        }
        self.bucket(name)
    }

    fn list_buckets(&self) -> Result<Response<Full<Bytes>>, S3Error> {
        let rows: Vec<(i64, Bucket)> = transact(self.store, Mode::Read, |tx| {
            store::list(tx, Kind::Bucket, self.account, "", None, 10_000)
        })?;
        let mut buckets: Vec<(String, i64)> = self
            .system_buckets
            .iter()
            .map(|b| (b.to_string(), 0))
            .collect();
        buckets.extend(rows.into_iter().map(|(_, b)| (b.name, b.created_ms)));
        buckets.sort();
        Ok(xml_response(
            self.request_id,
            xml::list_buckets(self.account, &buckets),
        ))
    }

    fn create_bucket(&self, name: &str) -> Result<Response<Full<Bytes>>, S3Error> {
        if !valid_bucket_name(name) {
            return Err(err(
                "InvalidBucketName",
                400,
                "The specified bucket is not valid.",
            )
            .on(&format!("/{name}")));
        }
        let bucket = Bucket {
            name: name.to_string(),
            created_ms: self.now_ms,
        };
        let created = !self.system_buckets.contains(&name)
            && transact(self.store, Mode::Write, |tx| {
                store::insert(tx, Kind::Bucket, self.account, name, "", &bucket)
            })?;
        if !created {
            return Err(err("BucketAlreadyOwnedByYou", 409, "Your previous request to create the named bucket succeeded and you already own it.").on(&format!("/{name}")));
        }
        Ok(respond(
            200,
            self.request_id,
            &[("location", format!("/{name}"))],
            Vec::new(),
        ))
    }

    fn delete_bucket(&self, name: &str) -> Result<Response<Full<Bytes>>, S3Error> {
        self.writable(name)?;
        transact(self.store, Mode::Write, |tx| {
            if !tx.list_objects(self.account, name, "", "", 1)?.is_empty() {
                return Err(err(
                    "BucketNotEmpty",
                    409,
                    "The bucket you tried to delete is not empty",
                )
                .on(&format!("/{name}")));
            }
            tx.delete(Kind::Bucket, self.account, name)?;
            Ok(())
        })?;
        Ok(respond(204, self.request_id, &[], Vec::new()))
    }

    fn put_object(
        &self,
        bucket: &str,
        key: &str,
        body: Bytes,
        condition: WriteCondition,
    ) -> Result<Response<Full<Bytes>>, S3Error> {
        self.writable(bucket)?;
        let object = StoredObject {
            key: key.to_string(),
            size: body.len() as i64,
            etag: hex::encode(Md5::digest(&body)),
            body: body.to_vec(),
            created_ms: self.now_ms,
        };
        let written = transact(self.store, Mode::Write, |tx| match condition {
            WriteCondition::Always => tx.put_object(self.account, bucket, &object).map(|()| true),
            WriteCondition::IfAbsent => tx.insert_object(self.account, bucket, &object),
        })?;
        if !written {
            let e = err(
                "PreconditionFailed",
                412,
                "At least one of the pre-conditions you specified did not hold",
            );
            return Err(e.on(&format!("/{bucket}/{key}")));
        }
        Ok(respond(
            200,
            self.request_id,
            &[("etag", format!("\"{}\"", object.etag))],
            Vec::new(),
        ))
    }

    fn get_object(
        &self,
        bucket: &str,
        key: &str,
        with_body: bool,
    ) -> Result<Response<Full<Bytes>>, S3Error> {
        self.bucket(bucket)?;
        let object = transact(self.store, Mode::Read, |tx| {
            tx.get_object(self.account, bucket, key)
        })?
        .ok_or_else(|| {
            let e = err("NoSuchKey", 404, "The specified key does not exist.");
            e.on(&format!("/{bucket}/{key}"))
        })?;
        let headers = [
            ("etag", format!("\"{}\"", object.etag)),
            (
                "last-modified",
                crate::time::format_http_date(object.created_ms),
            ),
            ("content-type", "application/octet-stream".to_string()),
            ("content-length", object.size.to_string()),
        ];
        let body = if with_body { object.body } else { Vec::new() };
        Ok(respond(200, self.request_id, &headers, body))
    }

    fn delete_object(&self, bucket: &str, key: &str) -> Result<Response<Full<Bytes>>, S3Error> {
        self.writable(bucket)?;
        transact(self.store, Mode::Write, |tx| {
            tx.delete_object(self.account, bucket, key)
        })?;
        Ok(respond(204, self.request_id, &[], Vec::new()))
    }

    fn list_objects(
        &self,
        bucket: &str,
        query: &[(String, String)],
    ) -> Result<Response<Full<Bytes>>, S3Error> {
        self.bucket(bucket)?;
        let get = |name: &str| {
            query
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        if get("list-type") != Some("2") {
            return Err(err(
                "NotImplemented",
                501,
                "Only ListObjectsV2 (list-type=2) is served.",
            ));
        }
        let prefix = get("prefix").unwrap_or("");
        let max_keys = match get("max-keys") {
            None => 1000,
            Some(v) => v
                .parse::<usize>()
                .map_err(|_| {
                    err(
                        "InvalidArgument",
                        400,
                        "max-keys must be a non-negative integer",
                    )
                })?
                .min(1000),
        };
        let token = get("continuation-token");
        let start_after = match token {
            Some(t) => String::from_utf8(B64.decode(t).map_err(|_| {
                err(
                    "InvalidArgument",
                    400,
                    "The continuation token provided is incorrect",
                )
            })?)
            .map_err(|_| {
                err(
                    "InvalidArgument",
                    400,
                    "The continuation token provided is incorrect",
                )
            })?,
            None => get("start-after").unwrap_or("").to_string(),
        };
        let mut objects = transact(self.store, Mode::Read, |tx| {
            tx.list_objects(self.account, bucket, prefix, &start_after, max_keys + 1)
        })?;
        let truncated = objects.len() > max_keys;
        objects.truncate(max_keys);
        let next_token =
            truncated.then(|| B64.encode(objects.last().map(|o| o.key.as_str()).unwrap_or("")));
        let page = xml::ListV2 {
            bucket,
            prefix,
            max_keys,
            truncated,
            next_token,
            continuation_token: token,
            start_after: get("start-after"),
        };
        Ok(xml_response(
            self.request_id,
            xml::list_objects_v2(&page, &objects),
        ))
    }
}

impl From<crate::store::StoreError> for S3Error {
    fn from(e: crate::store::StoreError) -> Self {
        S3Error::from(AwsError::from(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn virtual_hosted_requests_name_their_bucket_in_the_host() {
        assert_eq!(
            virtual_host_bucket("b1.localhost:8787", "localhost"),
            Some("b1")
        );
        assert_eq!(
            virtual_host_bucket("my.dotted.bucket.localhost", "localhost"),
            Some("my.dotted.bucket")
        );
        assert_eq!(virtual_host_bucket("localhost:8787", "localhost"), None);
        assert_eq!(virtual_host_bucket("127.0.0.1:8787", "localhost"), None);
        assert_eq!(
            virtual_host_bucket("b.s3.example.com", "s3.example.com"),
            Some("b")
        );
        assert_eq!(virtual_host_bucket("evillocalhost", "localhost"), None);
        let r = |m: Method, host: &str, p: &str| {
            route(&m, Some(host), "localhost", p, "").map_err(|e| e.code)
        };
        assert_eq!(
            r(Method::PUT, "b1.localhost:1", "/dir/a%20b"),
            Ok(Route::PutObject {
                bucket: "b1".into(),
                key: "dir/a b".into()
            })
        );
        assert_eq!(
            r(Method::PUT, "b1.localhost:1", "/"),
            Ok(Route::CreateBucket {
                bucket: "b1".into()
            })
        );
        assert_eq!(r(Method::GET, "localhost:1", "/"), Ok(Route::ListBuckets));
    }

    #[test]
    fn requests_route_to_the_served_operations_only() {
        let r =
            |m: Method, p: &str, q: &str| route(&m, None, "localhost", p, q).map_err(|e| e.code);
        assert_eq!(r(Method::GET, "/", ""), Ok(Route::ListBuckets));
        assert_eq!(
            r(Method::PUT, "/b/a%20b/c", ""),
            Ok(Route::PutObject {
                bucket: "b".into(),
                key: "a b/c".into()
            })
        );
        assert_eq!(
            r(Method::GET, "/b", "list-type=2&prefix=a%2Fb"),
            Ok(Route::ListObjects {
                bucket: "b".into(),
                query: vec![
                    ("list-type".into(), "2".into()),
                    ("prefix".into(), "a/b".into())
                ]
            })
        );
        assert_eq!(r(Method::POST, "/b/k", "uploads"), Err("NotImplemented"));
        assert_eq!(r(Method::DELETE, "/", ""), Err("NotImplemented"));
    }

    #[test]
    fn bucket_names_follow_s3_rules() {
        assert!(valid_bucket_name("my-templates.1"));
        assert!(!valid_bucket_name("ab"));
        assert!(!valid_bucket_name("Upper"));
        assert!(!valid_bucket_name("-dash"));
        assert!(!valid_bucket_name(&"a".repeat(64)));
    }

    #[test]
    fn keys_and_queries_are_decoded() {
        assert_eq!(percent_decode("a%20b%2Fc"), "a b/c");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(
            query_params("list-type=2&prefix=dir%2F&x"),
            [
                ("list-type".into(), "2".into()),
                ("prefix".into(), "dir/".into()),
                ("x".into(), String::new())
            ]
        );
    }
}
