//! The HTTP server: accepts connections on one listener, serves each with hyper (HTTP/1.1,
//! keep-alive) through `handler::handle` under the limits of `connections` (deadlines for slow
//! and idle connections, a cap that sheds quiet ones), and on shutdown stops accepting, lets
//! in-flight requests finish (up to `DRAIN_DEADLINE`) and returns.

pub mod connections;
mod handler;

pub use connections::Limits;
pub use handler::{App, BODY_LIMIT};

use connections::{Registry, TrackedStream};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// How long in-flight requests may take to finish after shutdown is asked for.
pub const DRAIN_DEADLINE: Duration = Duration::from_secs(10);

/// Descriptors kept free for the store, git, terraform and logs when the open-file limit
/// lowers the connection cap.
const RESERVED_FDS: u64 = 256;

/// The listen backlog: a burst of new connections waits in the kernel rather than being
/// dropped (a dropped SYN costs the client a second before it retries). The kernel caps it at
/// `net.core.somaxconn`.
pub const LISTEN_BACKLOG: u32 = 4096;

/// Binds the server's listener with [`LISTEN_BACKLOG`] (the standard library's is 128).
pub fn listen(addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Serves `app` on `listener` under `limits` until `shutdown` completes, then drains.
pub async fn run(
    listener: TcpListener,
    app: Arc<App>,
    mut limits: Limits,
    shutdown: impl Future<Output = ()>,
) {
    if let Some(fds) = connections::raise_fd_limit() {
        let fit = fds.saturating_sub(RESERVED_FDS).max(16) as usize;
        if fit < limits.max_connections {
            tracing::warn!(
                open_file_limit = fds,
                "the open-file limit lowers the connection cap from {} to {fit}",
                limits.max_connections
            );
            limits.max_connections = fit;
        }
    }
    let registry = Registry::new(limits);
    if let Some(metrics) = app.metrics.get() {
        metrics.watch_connections(registry.clone());
    }
    let reaper = tokio::spawn(registry.clone().run_reaper());
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, _peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of descriptors: a quiet connection gives its own back.
                    let out_of_fds = matches!(e.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE));
                    if !(out_of_fds && registry.shed_one()) {
                        tracing::warn!(error = %e, "accept failed");
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        if !registry.make_room() {
            // Every connection is serving a request: this one is closed unanswered (counted
            // and logged by the reaper).
            drop(stream);
            continue;
        }
        let _ = stream.set_nodelay(true);
        let (id, tracked) = registry.register();
        let app = app.clone();
        let in_service = tracked.clone();
        let service = service_fn(move |req| {
            let app = app.clone();
            let tracked = in_service.clone();
            async move {
                if !tracked.begin_request() {
                    return Ok::<_, std::convert::Infallible>(handler::closing());
                }
                let response = handler::handle(app, req).await;
                tracked.end_request();
                Ok(response)
            }
        });
        let conn = http1::Builder::new().keep_alive(true).serve_connection(
            TokioIo::new(TrackedStream::new(stream, tracked.clone())),
            service,
        );
        let conn = graceful.watch(conn);
        let registry = registry.clone();
        tokio::spawn(async move {
            tokio::select! {
                ended = conn => if let Err(e) = ended {
                    tracing::debug!(error = %e, "connection ended with an error");
                },
                // Shed or past a deadline, with no request in flight: dropping closes it.
                _ = tracked.closed() => {}
            }
            registry.unregister(id);
        });
    }
    reaper.abort();
    registry.close_quiet();
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => tracing::info!("all connections drained"),
        _ = tokio::time::sleep(DRAIN_DEADLINE) => tracing::warn!("drain deadline passed; closing remaining connections"),
    }
}
