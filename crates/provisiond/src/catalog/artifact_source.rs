//! Fetching a product version's template from its `LoadTemplateFromURL` at creation time:
//! `file://<absolute path>` (on the server's machine), `http://…`, and `s3://<bucket>/<key>`
//! (the caller account's objects in provisiond's own object store), and `https://`, verified
//! against the machine's trust store (`SSL_CERT_FILE` / `SSL_CERT_DIR` point it elsewhere).

use crate::store::{transact, Mode, Store};
use provisiond_model::servicecatalog::ErrorCode;
use provisiond_model::AwsError;
use std::io::Read;

/// Largest template accepted: 64 MiB.
pub const MAX_TEMPLATE_BYTES: u64 = 64 << 20;

fn invalid(message: String) -> AwsError {
    ErrorCode::InvalidParametersException.with(message)
}

/// Reads the bytes at `url`. `account` scopes `s3://` reads to the caller's objects.
pub fn fetch(store: &dyn Store, account: &str, url: &str) -> Result<Vec<u8>, AwsError> {
    if let Some(path) = url.strip_prefix("file://") {
        let file = std::fs::File::open(path)
            .map_err(|e| invalid(format!("LoadTemplateFromURL {url} cannot be read: {e}")))?;
        return read_bounded(file, url);
    }
    if url.starts_with("http://") || url.starts_with("https://") {
        return http_get(url)
            .map_err(|e| invalid(format!("LoadTemplateFromURL {url} cannot be fetched: {e}")));
    }
    if let Some(rest) = url.strip_prefix("s3://") {
        let (bucket, key) = rest
            .split_once('/')
            .filter(|(b, k)| !b.is_empty() && !k.is_empty())
            .ok_or_else(|| {
                invalid(format!(
                    "LoadTemplateFromURL {url} is not of the form s3://<bucket>/<key>"
                ))
            })?;
        let object = transact(store, Mode::Read, |tx| tx.get_object(account, bucket, key))?
            .ok_or_else(|| invalid(format!("LoadTemplateFromURL {url}: no such object")))?;
        return Ok(object.body);
    }
    Err(invalid(format!(
        "LoadTemplateFromURL {url} must start with file://, http://, https:// or s3://"
    )))
}

/// An HTTP/1.1 GET over plain TCP or TLS (for `https://`), run on the server's runtime (or a
/// small one of its own when called outside it, as in unit tests).
fn http_get(url: &str) -> Result<Vec<u8>, String> {
    let uri: http::Uri = url.parse().map_err(|e| format!("{e}"))?;
    let tls = uri.scheme_str() == Some("https");
    let host = uri.host().ok_or("the URL has no host")?.to_string();
    let default_port = if tls { 443 } else { 80 };
    let port = uri.port_u16().unwrap_or(default_port);
    let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
    let host_header = if port == default_port {
        host.clone()
    } else {
        format!("{host}:{port}")
    };
    let get = async move {
        let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|e| e.to_string())?;
        if !tls {
            return get_over(tcp, path, host_header).await;
        }
        let name = rustls::pki_types::ServerName::try_from(host.clone())
            .map_err(|e| format!("{host} is not a valid TLS server name: {e}"))?;
        let connector = tokio_rustls::TlsConnector::from(crate::tls::client_config()?);
        let stream = connector
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS: {e}"))?;
        get_over(stream, path, host_header).await
    };
    let timed = async move {
        tokio::time::timeout(std::time::Duration::from_secs(30), get)
            .await
            .unwrap_or_else(|_| Err("timed out after 30 s".into()))
    };
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => handle.block_on(timed),
        Err(_) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?
            .block_on(timed),
    }
}

/// Sends the GET on an open connection and reads at most [`MAX_TEMPLATE_BYTES`] of the body.
async fn get_over<S>(stream: S, path: String, host_header: String) -> Result<Vec<u8>, String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    use http_body_util::{BodyExt, Empty, Limited};
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let request = http::Request::get(path)
        .header(http::header::HOST, host_header)
        .body(Empty::<bytes::Bytes>::new())
        .map_err(|e| e.to_string())?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())?;
    if !response.status().is_success() {
        return Err(format!("the server answered {}", response.status()));
    }
    let body = Limited::new(response.into_body(), MAX_TEMPLATE_BYTES as usize)
        .collect()
        .await
        .map_err(|e| format!("reading the body: {e}"))?;
    Ok(body.to_bytes().to_vec())
}

fn read_bounded(reader: impl Read, url: &str) -> Result<Vec<u8>, AwsError> {
    let mut bytes = Vec::new();
    reader
        .take(MAX_TEMPLATE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| invalid(format!("LoadTemplateFromURL {url} cannot be read: {e}")))?;
    if bytes.len() as u64 > MAX_TEMPLATE_BYTES {
        return Err(invalid(format!(
            "LoadTemplateFromURL {url} is larger than {MAX_TEMPLATE_BYTES} bytes"
        )));
    }
    Ok(bytes)
}
