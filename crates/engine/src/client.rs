//! A small signed AWS client for the built-in engine: awsJson calls (Service Catalog, SQS,
//! Proton) and S3 `GetObject`, SigV4-signed with the engine's key, over plain HTTP/1.1 to the
//! provisiond endpoint. The engine uses nothing else: it is an ordinary client of the public API.

use http_body_util::{BodyExt, Full};
use provisiond_sigv4::canonical::uri_encode;
use provisiond_sigv4::sign::{sign, Unsigned};
use provisiond_sigv4::PathStyle;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use provisiond_sigv4::Credentials;

/// A failed call: the AWS error code and message, or a transport problem.
#[derive(Debug, Clone)]
pub struct CallError {
    /// `__type` of the answer (`Transport` when there was none).
    pub code: String,
    /// What went wrong.
    pub message: String,
    /// HTTP status (0 for transport errors).
    pub status: u16,
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl CallError {
    fn transport(message: impl Into<String>) -> CallError {
        CallError {
            code: "Transport".into(),
            message: message.into(),
            status: 0,
        }
    }

    /// Whether trying again may help (the server was unreachable or failed).
    pub fn is_retryable(&self) -> bool {
        self.status == 0 || self.status >= 500
    }
}

/// The client.
#[derive(Debug, Clone)]
pub struct Client {
    host: String,
    port: u16,
    credentials: Credentials,
}

/// The awsJson services the engine calls.
#[derive(Debug, Clone, Copy)]
pub enum Api {
    /// Service Catalog (awsJson 1.1).
    ServiceCatalog,
    /// The engine queues (awsJson 1.0).
    Sqs,
    /// Proton (awsJson 1.0).
    Proton,
}

impl Api {
    /// The `X-Amz-Target` prefix.
    pub fn target_prefix(self) -> &'static str {
        match self {
            Api::ServiceCatalog => "AWS242ServiceCatalogService",
            Api::Sqs => "AmazonSQS",
            Api::Proton => "AwsProton20200720",
        }
    }

    /// The SigV4 service name.
    pub fn signing_name(self) -> &'static str {
        match self {
            Api::ServiceCatalog => "servicecatalog",
            Api::Sqs => "sqs",
            Api::Proton => "proton",
        }
    }

    /// The `Content-Type` of its requests.
    pub fn content_type(self) -> &'static str {
        match self {
            Api::ServiceCatalog => "application/x-amz-json-1.1",
            Api::Sqs | Api::Proton => "application/x-amz-json-1.0",
        }
    }
}

impl Client {
    /// A client of `endpoint` (`http://host:port`).
    pub fn new(endpoint: &str, credentials: Credentials) -> Result<Client, String> {
        let uri: http::Uri = endpoint
            .parse()
            .map_err(|e| format!("endpoint {endpoint}: {e}"))?;
        if uri.scheme_str() != Some("http") {
            return Err(format!(
                "endpoint {endpoint}: only http:// endpoints are supported"
            ));
        }
        Ok(Client {
            host: uri.host().ok_or("the endpoint has no host")?.to_string(),
            port: uri.port_u16().unwrap_or(80),
            credentials,
        })
    }

    /// Calls `operation` of `api` with `input` (a shape of the model), reading the answer as
    /// `O` (its output shape, or `serde::de::IgnoredAny` when the answer does not matter);
    /// `timeout` bounds the whole call (long polls need more than the default).
    pub async fn call<I: Serialize, O: DeserializeOwned>(
        &self,
        api: Api,
        operation: &str,
        input: &I,
        timeout: Duration,
    ) -> Result<O, CallError> {
        let body = serde_json::to_vec(input).expect("model shapes serialize");
        let headers = [
            ("content-type", api.content_type().to_string()),
            (
                "x-amz-target",
                format!("{}.{operation}", api.target_prefix()),
            ),
        ];
        let (status, bytes) = self
            .send(
                "POST",
                "/",
                &headers,
                body,
                api.signing_name(),
                PathStyle::DoubleEncoded,
                timeout,
            )
            .await?;
        let bytes: &[u8] = if bytes.is_empty() { b"{}" } else { &bytes };
        if status == 200 {
            return serde_json::from_slice(bytes).map_err(|e| {
                CallError::transport(format!("the answer to {operation} is not its shape: {e}"))
            });
        }
        let value: Value = serde_json::from_slice(bytes)
            .map_err(|e| CallError::transport(format!("the answer is not JSON: {e}")))?;
        Err(CallError {
            code: value["__type"].as_str().unwrap_or("Unknown").to_string(),
            message: value["message"].as_str().unwrap_or("").to_string(),
            status,
        })
    }

    /// Reads `s3://bucket/key` from the object store.
    pub async fn get_object(&self, bucket: &str, key: &str) -> Result<Vec<u8>, CallError> {
        self.s3("GET", bucket, Some(key), &[], Vec::new()).await
    }

    /// Writes `s3://bucket/key`.
    pub async fn put_object(
        &self,
        bucket: &str,
        key: &str,
        body: Vec<u8>,
    ) -> Result<(), CallError> {
        self.s3("PUT", bucket, Some(key), &[], body).await.map(drop)
    }

    /// Writes `s3://bucket/key` only if nothing is there (`If-None-Match: *`): `Ok(false)`
    /// when another writer created it first.
    pub async fn create_object(
        &self,
        bucket: &str,
        key: &str,
        body: Vec<u8>,
    ) -> Result<bool, CallError> {
        let condition = [("if-none-match", "*".to_string())];
        match self.s3("PUT", bucket, Some(key), &condition, body).await {
            Ok(_) => Ok(true),
            Err(e) if e.code == "PreconditionFailed" => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Removes `s3://bucket/key` (nothing there is no error, as in S3).
    pub async fn delete_object(&self, bucket: &str, key: &str) -> Result<(), CallError> {
        self.s3("DELETE", bucket, Some(key), &[], Vec::new())
            .await
            .map(drop)
    }

    /// Makes `bucket`, unless this account already has it.
    pub async fn ensure_bucket(&self, bucket: &str) -> Result<(), CallError> {
        match self.s3("PUT", bucket, None, &[], Vec::new()).await {
            Err(e) if e.code == "BucketAlreadyOwnedByYou" => Ok(()),
            other => other.map(drop),
        }
    }

    /// One S3 request, path-style; a 2xx answer's body, else the error S3 named.
    async fn s3(
        &self,
        method: &str,
        bucket: &str,
        key: Option<&str>,
        extra: &[(&'static str, String)],
        body: Vec<u8>,
    ) -> Result<Vec<u8>, CallError> {
        let path = match key {
            Some(key) => format!("/{}/{}", uri_encode(bucket, false), uri_encode(key, true)),
            None => format!("/{}", uri_encode(bucket, false)),
        };
        let (status, bytes) = self
            .send(
                method,
                &path,
                extra,
                body,
                "s3",
                PathStyle::AsSent,
                Duration::from_secs(120),
            )
            .await?;
        if (200..300).contains(&status) {
            return Ok(bytes);
        }
        let text = String::from_utf8_lossy(&bytes);
        let code = text
            .split("<Code>")
            .nth(1)
            .and_then(|rest| rest.split("</Code>").next())
            .unwrap_or("Unknown");
        Err(CallError {
            code: code.to_string(),
            message: format!(
                "{method} s3://{bucket}/{} answered {status}",
                key.unwrap_or("")
            ),
            status,
        })
    }

    #[allow(clippy::too_many_arguments)]
    async fn send(
        &self,
        method: &str,
        path: &str,
        extra: &[(&'static str, String)],
        body: Vec<u8>,
        service: &str,
        style: PathStyle,
        timeout: Duration,
    ) -> Result<(u16, Vec<u8>), CallError> {
        let host = if self.port == 80 {
            self.host.clone()
        } else {
            format!("{}:{}", self.host, self.port)
        };
        let now_secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let unsigned = Unsigned {
            method,
            path,
            host: &host,
            headers: extra,
            body: &body,
            service,
            style,
        };
        let headers = sign(&self.credentials, &unsigned, now_secs).map_err(CallError::transport)?;
        let mut request = http::Request::builder().method(method).uri(path);
        for (name, value) in &headers {
            request = request.header(name, value);
        }
        let request = request
            .body(Full::new(bytes::Bytes::from(body)))
            .map_err(|e| CallError::transport(e.to_string()))?;
        let exchange = async {
            let stream = tokio::net::TcpStream::connect((self.host.as_str(), self.port))
                .await
                .map_err(|e| CallError::transport(format!("connecting to {host}: {e}")))?;
            let (mut sender, conn) =
                hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                    .await
                    .map_err(|e| CallError::transport(e.to_string()))?;
            tokio::spawn(conn);
            let response = sender
                .send_request(request)
                .await
                .map_err(|e| CallError::transport(e.to_string()))?;
            let status = response.status().as_u16();
            let bytes = response
                .into_body()
                .collect()
                .await
                .map_err(|e| CallError::transport(e.to_string()))?
                .to_bytes()
                .to_vec();
            Ok((status, bytes))
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .unwrap_or_else(|_| {
                Err(CallError::transport(format!(
                    "no answer within {timeout:?}"
                )))
            })
    }
}
