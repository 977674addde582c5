//! Connection limits: every connection has a deadline while it sends a request head and while
//! it idles between requests, and the connection cap sheds the longest-quiet connection that has
//! no request in flight instead of refusing a newcomer. A flood of idle or slow connections
//! therefore never keeps a well-behaved client from being served (docs/decisions.md).

use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Notify;

/// How many connections are served at once, and how long they may be slow or quiet.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most open connections; at the cap, a quiet one is shed for each newcomer.
    pub max_connections: usize,
    /// From a connection's first byte of a request head (or its accept) to the whole head.
    pub header_read: Duration,
    /// Between the end of one answer and the first byte of the next request.
    pub idle: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 4096,
            header_read: Duration::from_secs(10),
            idle: Duration::from_secs(60),
        }
    }
}

/// Waiting for the next request, nothing of it received yet.
const IDLE: u8 = 0;
/// Receiving a request head (or just accepted).
const HEAD: u8 = 1;
/// A request is being served.
const BUSY: u8 = 2;
/// Shed or timed out: the connection is being closed.
const CLOSED: u8 = 3;

/// One open connection as the registry sees it.
pub struct Tracked {
    state: AtomicU8,
    /// When the current state began (ms since the epoch).
    since_ms: AtomicI64,
    close: Notify,
}

impl Tracked {
    /// Marks a request as started; `false` when the connection is already being closed.
    pub fn begin_request(&self) -> bool {
        let mut current = self.state.load(Ordering::Acquire);
        loop {
            if current == CLOSED {
                return false;
            }
            match self
                .state
                .compare_exchange(current, BUSY, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return true,
                Err(now) => current = now,
            }
        }
    }

    /// Marks the request as answered: the connection idles from now on.
    pub fn end_request(&self) {
        self.since_ms
            .store(crate::time::now_ms(), Ordering::Release);
        let _ = self
            .state
            .compare_exchange(BUSY, IDLE, Ordering::AcqRel, Ordering::Acquire);
    }

    /// Resolves when the connection is to be closed.
    pub async fn closed(&self) {
        self.close.notified().await
    }

    fn on_bytes_read(&self) {
        if self.state.load(Ordering::Acquire) == IDLE {
            self.since_ms
                .store(crate::time::now_ms(), Ordering::Release);
            let _ = self
                .state
                .compare_exchange(IDLE, HEAD, Ordering::AcqRel, Ordering::Acquire);
        }
    }

    /// Closes it unless a request is in flight.
    fn try_close(&self) -> bool {
        let mut current = self.state.load(Ordering::Acquire);
        while current == IDLE || current == HEAD {
            match self
                .state
                .compare_exchange(current, CLOSED, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => {
                    self.close.notify_one();
                    return true;
                }
                Err(now) => current = now,
            }
        }
        false
    }
}

#[derive(Default)]
struct Counters {
    shed: AtomicU64,
    refused: AtomicU64,
    header_timeouts: AtomicU64,
    idle_timeouts: AtomicU64,
}

/// Every open connection, and what happened to the ones closed by the server.
pub struct Registry {
    limits: Limits,
    conns: Mutex<HashMap<u64, Arc<Tracked>>>,
    next_id: AtomicU64,
    counters: Counters,
}

impl Registry {
    /// A registry enforcing `limits`.
    pub fn new(limits: Limits) -> Arc<Registry> {
        Arc::new(Registry {
            limits,
            conns: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            counters: Counters::default(),
        })
    }

    /// The limits it enforces.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    fn conns(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Tracked>>> {
        self.conns.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How many connections are open.
    pub fn open(&self) -> usize {
        self.conns().len()
    }

    /// Makes room for one more connection: `true` when there is room (after shedding the
    /// longest-quiet connection without a request in flight if at the cap), `false` when every
    /// connection is serving a request.
    pub fn make_room(&self) -> bool {
        if self.open() < self.limits.max_connections {
            return true;
        }
        if self.shed_one() {
            true
        } else {
            self.counters.refused.fetch_add(1, Ordering::Relaxed);
            false
        }
    }

    /// Closes the longest-quiet connection without a request in flight; `false` if none.
    pub fn shed_one(&self) -> bool {
        let mut quiet: Vec<(i64, Arc<Tracked>)> = self
            .conns()
            .values()
            .filter(|c| matches!(c.state.load(Ordering::Acquire), IDLE | HEAD))
            .map(|c| (c.since_ms.load(Ordering::Acquire), c.clone()))
            .collect();
        quiet.sort_by_key(|(since, _)| *since);
        for (_, conn) in quiet {
            if conn.try_close() {
                self.counters.shed.fetch_add(1, Ordering::Relaxed);
                return true;
            }
        }
        false
    }

    /// Closes every connection without a request in flight (at shutdown: only requests are
    /// worth draining); returns how many.
    pub fn close_quiet(&self) -> usize {
        let conns: Vec<Arc<Tracked>> = self.conns().values().cloned().collect();
        conns.iter().filter(|c| c.try_close()).count()
    }

    /// Registers an accepted connection, which must send its first request head within the
    /// header deadline. Returns its id and its shared state.
    pub fn register(&self) -> (u64, Arc<Tracked>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let tracked = Arc::new(Tracked {
            state: AtomicU8::new(HEAD),
            since_ms: AtomicI64::new(crate::time::now_ms()),
            close: Notify::new(),
        });
        self.conns().insert(id, tracked.clone());
        (id, tracked)
    }

    /// Forgets a connection that ended.
    pub fn unregister(&self, id: u64) {
        self.conns().remove(&id);
    }

    /// Closes every connection past its deadline; returns how many.
    pub fn reap(&self, now_ms: i64) -> usize {
        let header = self.limits.header_read.as_millis() as i64;
        let idle = self.limits.idle.as_millis() as i64;
        let expired: Vec<(u8, Arc<Tracked>)> = self
            .conns()
            .values()
            .filter_map(|c| {
                let state = c.state.load(Ordering::Acquire);
                let age = now_ms - c.since_ms.load(Ordering::Acquire);
                let late = match state {
                    IDLE => age >= idle,
                    HEAD => age >= header,
                    _ => false,
                };
                late.then(|| (state, c.clone()))
            })
            .collect();
        let mut closed = 0;
        for (state, conn) in expired {
            if conn.try_close() {
                closed += 1;
                let counter = if state == IDLE {
                    &self.counters.idle_timeouts
                } else {
                    &self.counters.header_timeouts
                };
                counter.fetch_add(1, Ordering::Relaxed);
            }
        }
        closed
    }

    /// Enforces the deadlines every 250 ms and logs, at most every 5 s, what was shed, refused
    /// or timed out since the last line.
    pub async fn run_reaper(self: Arc<Self>) {
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_logged = [0u64; 4];
        let mut last_log_ms = 0i64;
        loop {
            tick.tick().await;
            let now = crate::time::now_ms();
            self.reap(now);
            if now - last_log_ms < 5_000 {
                continue;
            }
            let c = &self.counters;
            let totals = [
                c.shed.load(Ordering::Relaxed),
                c.refused.load(Ordering::Relaxed),
                c.header_timeouts.load(Ordering::Relaxed),
                c.idle_timeouts.load(Ordering::Relaxed),
            ];
            if totals != last_logged {
                let d: Vec<u64> = totals.iter().zip(last_logged).map(|(t, l)| t - l).collect();
                tracing::warn!(
                    shed = d[0],
                    refused = d[1],
                    header_timeouts = d[2],
                    idle_timeouts = d[3],
                    open = self.open(),
                    max = self.limits.max_connections,
                    "connections closed by the server since the last report"
                );
                last_logged = totals;
                last_log_ms = now;
            }
        }
    }
}

impl crate::metrics::ConnectionSource for Registry {
    fn connection_counts(&self) -> crate::metrics::ConnectionCounts {
        let c = &self.counters;
        crate::metrics::ConnectionCounts {
            open: self.open() as u64,
            shed: c.shed.load(Ordering::Relaxed),
            refused: c.refused.load(Ordering::Relaxed),
            header_timeouts: c.header_timeouts.load(Ordering::Relaxed),
            idle_timeouts: c.idle_timeouts.load(Ordering::Relaxed),
        }
    }
}

/// A TCP stream that tells its connection's state when request bytes start arriving.
pub struct TrackedStream {
    inner: TcpStream,
    tracked: Arc<Tracked>,
}

impl TrackedStream {
    /// Wraps `inner`.
    pub fn new(inner: TcpStream, tracked: Arc<Tracked>) -> Self {
        TrackedStream { inner, tracked }
    }
}

impl AsyncRead for TrackedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.tracked.on_bytes_read();
        }
        polled
    }
}

impl AsyncWrite for TrackedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Raises this process's open-file limit to its hard limit and returns the soft limit now in
/// force (each connection takes a descriptor).
pub fn raise_fd_limit() -> Option<u64> {
    // SAFETY: getrlimit/setrlimit only read and write the struct passed to them.
    unsafe {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return None;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
        Some(limit.rlim_cur)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max: usize) -> Limits {
        Limits {
            max_connections: max,
            header_read: Duration::from_millis(1_000),
            idle: Duration::from_millis(5_000),
        }
    }

    #[test]
    fn the_cap_sheds_the_quietest_connection_without_a_request() {
        let registry = Registry::new(limits(3));
        let (_, busy) = registry.register();
        assert!(busy.begin_request());
        let (_, older) = registry.register();
        older.since_ms.store(1, Ordering::Release);
        let (_, newer) = registry.register();
        assert!(registry.make_room(), "a quiet connection is shed");
        assert_eq!(older.state.load(Ordering::Acquire), CLOSED);
        assert_eq!(newer.state.load(Ordering::Acquire), HEAD);
        assert!(
            !older.begin_request(),
            "a shed connection serves nothing more"
        );
        // Only requests in flight left: nothing to shed, the newcomer is refused.
        assert!(newer.begin_request());
        registry.unregister(1);
        let (_, third) = registry.register();
        assert!(third.begin_request());
        assert!(!registry.make_room());
        assert_eq!(busy.state.load(Ordering::Acquire), BUSY);
    }

    #[test]
    fn deadlines_close_slow_heads_and_idle_connections_but_never_a_request() {
        let registry = Registry::new(limits(10));
        let (_, slow) = registry.register();
        let (_, idle) = registry.register();
        assert!(idle.begin_request());
        idle.end_request();
        let (_, busy) = registry.register();
        assert!(busy.begin_request());
        let start = crate::time::now_ms();
        assert_eq!(registry.reap(start + 500), 0);
        assert_eq!(registry.reap(start + 1_500), 1, "the slow head");
        assert_eq!(slow.state.load(Ordering::Acquire), CLOSED);
        assert_eq!(registry.reap(start + 6_000), 1, "the idle one");
        assert_eq!(idle.state.load(Ordering::Acquire), CLOSED);
        assert_eq!(
            registry.reap(start + 600_000),
            0,
            "a request in flight is never cut"
        );
        assert_eq!(busy.state.load(Ordering::Acquire), BUSY);
        let (_, quiet) = registry.register();
        assert_eq!(
            registry.close_quiet(),
            1,
            "at shutdown only requests are drained"
        );
        assert_eq!(quiet.state.load(Ordering::Acquire), CLOSED);
        assert_eq!(busy.state.load(Ordering::Acquire), BUSY);
    }
}
