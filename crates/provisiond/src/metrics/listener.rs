//! The metrics listener: `GET /metrics` on its own address (`serve --metrics-listen`), in the
//! Prometheus text format, for the operator's network only. It never reads a request body,
//! answers anything else 404, and holds at most [`MAX_CONNECTIONS`] connections, each with a
//! deadline for its request head, so a scraper gone wrong cannot crowd the API's port.

use super::{Metrics, CONTENT_TYPE};
use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// Most scrapers connected at once; more wait in the listen backlog.
pub const MAX_CONNECTIONS: usize = 16;
/// How long a scraper may take to send its request head.
const HEADER_READ: Duration = Duration::from_secs(10);

/// Serves `metrics` on `listener` until `shutdown` completes.
pub async fn run(listener: TcpListener, metrics: Arc<Metrics>, shutdown: impl Future<Output = ()>) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    tokio::pin!(shutdown);
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let stream = tokio::select! {
            _ = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "metrics: accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let metrics = metrics.clone();
                async move { Ok::<_, std::convert::Infallible>(answer(metrics, req).await) }
            });
            let served = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ)
                .serve_connection(TokioIo::new(stream), service)
                .await;
            if let Err(e) = served {
                tracing::debug!(error = %e, "metrics: connection ended with an error");
            }
            drop(slot);
        });
    }
}

fn text(status: StatusCode, content_type: &str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    if let Ok(value) = content_type.parse() {
        response
            .headers_mut()
            .insert(hyper::header::CONTENT_TYPE, value);
    }
    response
}

async fn answer<B>(metrics: Arc<Metrics>, req: Request<B>) -> Response<Full<Bytes>> {
    if req.uri().path() != "/metrics" {
        return text(
            StatusCode::NOT_FOUND,
            "text/plain",
            "Metrics are at /metrics.\n".into(),
        );
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return text(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "Use GET.\n".into(),
        );
    }
    match tokio::task::spawn_blocking(move || metrics.render()).await {
        Ok(Ok(body)) => text(StatusCode::OK, CONTENT_TYPE, body),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "metrics: reading the store failed");
            text(
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain",
                format!("The store could not be read: {e}\n"),
            )
        }
        Err(_) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "text/plain",
            "Rendering the metrics failed; see the server's log.\n".into(),
        ),
    }
}
