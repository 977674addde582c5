//! The HTTP server: accepts connections on one listener, serves each with hyper (HTTP/1.1,
//! keep-alive) through `handler::handle`, caps concurrent connections, and on shutdown stops
//! accepting, lets in-flight requests finish (up to `DRAIN_DEADLINE`) and returns.

mod handler;

pub use handler::{revoked_key, signing_key, App, BODY_LIMIT};

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// How long in-flight requests may take to finish after shutdown is asked for.
pub const DRAIN_DEADLINE: Duration = Duration::from_secs(10);
/// Most connections served at once; more wait in the listen backlog.
pub const MAX_CONNECTIONS: usize = 4096;

/// Serves `app` on `listener` until `shutdown` completes, then drains.
pub async fn run(listener: TcpListener, app: Arc<App>, shutdown: impl Future<Output = ()>) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            _ = &mut shutdown => break,
            permit = permits.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
        };
        let (stream, _peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let service = service_fn(move |req| {
            let app = app.clone();
            async move { Ok::<_, std::convert::Infallible>(handler::handle(app, req).await) }
        });
        let conn = http1::Builder::new()
            .keep_alive(true)
            .serve_connection(TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => tracing::info!("all connections drained"),
        _ = tokio::time::sleep(DRAIN_DEADLINE) => tracing::warn!("drain deadline passed; closing remaining connections"),
    }
}
