//! A provisiond served in-process on a loopback port with a fresh data directory, and the
//! admin credentials it wrote, for the SDK tests.

#![allow(dead_code)]

use aws_sdk_servicecatalog::config::{BehaviorVersion, Credentials, Region};
use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
use std::path::{Path, PathBuf};

/// A running server; it stops when dropped.
pub struct Running {
    /// `http://127.0.0.1:<port>`
    pub endpoint: String,
    /// The admin key's id and secret.
    pub credentials: Credentials,
    /// The data directory.
    pub data: PathBuf,
    _shutdown: tokio::sync::oneshot::Sender<()>,
    _dir: tempfile::TempDir,
}

/// Starts a server.
pub async fn start() -> Running {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let app = provisiond::cli::prepare(&data).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(provisiond::server::run(
        listener,
        app,
        Default::default(),
        async move {
            let _ = rx.await;
        },
    ));
    let (akid, secret) = read_credentials(&data.join("credentials"));
    Running {
        endpoint,
        credentials: Credentials::new(akid, secret, None, None, "provisiond"),
        data,
        _shutdown: tx,
        _dir: dir,
    }
}

impl Running {
    /// A Service Catalog client with the admin key.
    pub fn servicecatalog(&self) -> aws_sdk_servicecatalog::Client {
        let config = aws_sdk_servicecatalog::Config::builder()
            .http_client(http_client())
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(&self.endpoint)
            .credentials_provider(self.credentials.clone())
            .build();
        aws_sdk_servicecatalog::Client::from_conf(config)
    }

    /// An SQS client with the admin key.
    pub fn sqs(&self) -> aws_sdk_sqs::Client {
        let config = aws_sdk_sqs::Config::builder()
            .http_client(http_client())
            .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
            .region(aws_sdk_sqs::config::Region::new("us-east-1"))
            .endpoint_url(&self.endpoint)
            .credentials_provider(self.credentials.clone())
            .build();
        aws_sdk_sqs::Client::from_conf(config)
    }
}

impl Running {
    /// An S3 client (path-style) with the admin key.
    pub fn s3(&self) -> aws_sdk_s3::Client {
        let config = aws_sdk_s3::Config::builder()
            .http_client(http_client())
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .endpoint_url(&self.endpoint)
            .force_path_style(true)
            .credentials_provider(self.credentials.clone())
            .build();
        aws_sdk_s3::Client::from_conf(config)
    }
}

/// The clients' HTTP client: the SDK's own, on rustls with ring (plain HTTP to the test server).
fn http_client() -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

fn read_credentials(path: &Path) -> (String, String) {
    let text = std::fs::read_to_string(path).unwrap();
    let value = |name: &str| {
        text.lines()
            .find_map(|l| {
                l.strip_prefix(name)
                    .map(|v| v.trim_start_matches([' ', '=']).trim().to_string())
            })
            .unwrap()
    };
    (value("aws_access_key_id"), value("aws_secret_access_key"))
}
