//! Prometheus metrics (`serve --metrics-listen ADDR`): what is counted as it happens (requests,
//! engine runs, store commits) lives in [`Metrics`]; what is read from the store when scraped
//! (work in progress, engine tasks per queue) is [`scrape`]'s; [`listener`] serves the text
//! format at `/metrics` on its own port.

pub mod listener;
mod scrape;

use crate::store::{Commit, Store, StoreError};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use provisiond_engine::terraform::{RunEnd, RunOf, Status};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// The `Content-Type` of [`Metrics::render`]'s text (Prometheus text format 0.0.4).
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Label sets: a fixed number of `(name, value)` pairs.
type Labels<const N: usize> = [(&'static str, String); N];
/// A gauge of seconds (or any fraction).
type Seconds = Gauge<f64, AtomicU64>;
type Histograms<const N: usize> = Family<Labels<N>, Histogram, fn() -> Histogram>;

/// Bounds of request and commit latencies, in seconds: 250 µs to 10 s.
const LATENCY_BUCKETS: [f64; 14] = [
    0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];
/// Bounds of engine run durations, in seconds: 1 s to 1 h.
const RUN_BUCKETS: [f64; 10] = [1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0, 3600.0];
/// Bounds of a group commit's size, in write transactions (the SQLite writer carries up to 64).
const GROUP_BUCKETS: [f64; 7] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0];

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

fn run_histogram() -> Histogram {
    Histogram::new(RUN_BUCKETS)
}

/// What the server's connection registry has counted, read at each scrape.
#[derive(Debug, Clone, Copy, Default)]
pub struct ConnectionCounts {
    /// Connections open now.
    pub open: u64,
    /// Quiet connections closed to make room for a newcomer.
    pub shed: u64,
    /// Newcomers closed unanswered because every connection was serving a request.
    pub refused: u64,
    /// Connections closed for sending a request head too slowly.
    pub header_timeouts: u64,
    /// Connections closed for idling too long between requests.
    pub idle_timeouts: u64,
}

/// Where connection counts come from (the HTTP server's registry).
pub trait ConnectionSource: Send + Sync + 'static {
    /// The counts now.
    fn connection_counts(&self) -> ConnectionCounts;
}

/// Every metric of one server process.
pub struct Metrics {
    registry: Registry,
    requests: Family<Labels<4>, Counter>,
    request_seconds: Histograms<2>,
    engine_runs: Family<Labels<2>, Counter>,
    engine_run_seconds: Histograms<1>,
    commit_seconds: Histogram,
    commit_transactions: Histogram,
    scraped: scrape::Gauges,
    live: Arc<Live>,
    store: Arc<dyn Store>,
    /// One scrape at a time: the scraped gauges are cleared and refilled by each.
    scraping: Mutex<()>,
}

impl Metrics {
    /// Metrics of a server on `store`; from now on the store's commits are counted.
    pub fn new(store: Arc<dyn Store>) -> Arc<Metrics> {
        let mut registry = Registry::with_prefix("provisiond");
        let requests = Family::<Labels<4>, Counter>::default();
        registry.register(
            "requests",
            "Requests answered, by service, operation, HTTP status and the caller's account",
            requests.clone(),
        );
        let request_seconds: Histograms<2> = Family::new_with_constructor(latency_histogram);
        registry.register(
            "request_duration_seconds",
            "Time from a request's arrival to its answer, by service and operation",
            request_seconds.clone(),
        );
        let engine_runs = Family::<Labels<2>, Counter>::default();
        registry.register(
            "engine_runs",
            "Runs of the in-process engine that ended, by what they ran (record, deployment) and outcome",
            engine_runs.clone(),
        );
        let engine_run_seconds: Histograms<1> = Family::new_with_constructor(run_histogram);
        registry.register(
            "engine_run_duration_seconds",
            "Time from the in-process engine's receipt of a task to its outcome being reported",
            engine_run_seconds.clone(),
        );
        let commit_seconds = latency_histogram();
        registry.register(
            "store_commit_duration_seconds",
            "Time from a commit's first write transaction beginning to the commit being durable",
            commit_seconds.clone(),
        );
        let commit_transactions = Histogram::new(GROUP_BUCKETS);
        registry.register(
            "store_commit_transactions",
            "Write transactions carried by one durable commit (the group of a group commit)",
            commit_transactions.clone(),
        );
        let scraped = scrape::Gauges::register(&mut registry);
        let live = Arc::new(Live::default());
        registry.register_collector(Box::new(live.clone()));
        let metrics = Arc::new(Metrics {
            registry,
            requests,
            request_seconds,
            engine_runs,
            engine_run_seconds,
            commit_seconds,
            commit_transactions,
            scraped,
            live,
            store: store.clone(),
            scraping: Mutex::new(()),
        });
        let observer = Arc::downgrade(&metrics);
        store.observe_commits(Arc::new(move |commit: Commit| {
            if let Some(metrics) = observer.upgrade() {
                metrics
                    .commit_seconds
                    .observe(commit.duration.as_secs_f64());
                metrics
                    .commit_transactions
                    .observe(commit.transactions as f64);
            }
        }));
        metrics
    }

    /// Counts the runs of the in-process engine whose status is `status`, and shows how many
    /// run now.
    pub fn observe_engine(self: &Arc<Self>, status: Arc<Status>) {
        let observer = Arc::downgrade(self);
        status.on_run_end(Arc::new(move |end: RunEnd| {
            if let Some(metrics) = observer.upgrade() {
                metrics.engine_ran(end);
            }
        }));
        let _ = self.live.engine.set(status);
    }

    /// Shows the counts of the server's connections.
    pub fn watch_connections(&self, source: Arc<dyn ConnectionSource>) {
        let _ = self.live.connections.set(source);
    }

    /// Counts one answered request. `service` and `operation` must come from a fixed set (an
    /// operation the server serves, or empty), never from the caller unchecked: each distinct
    /// value is a series kept for the process's life.
    pub fn request(
        &self,
        service: &'static str,
        operation: &'static str,
        status: u16,
        account: &str,
        elapsed: Duration,
    ) {
        self.requests
            .get_or_create(&[
                ("service", service.to_string()),
                ("operation", operation.to_string()),
                ("status", status.to_string()),
                ("account", account.to_string()),
            ])
            .inc();
        self.request_seconds
            .get_or_create(&[
                ("service", service.to_string()),
                ("operation", operation.to_string()),
            ])
            .observe(elapsed.as_secs_f64());
    }

    fn engine_ran(&self, end: RunEnd) {
        let of = match end.of {
            RunOf::Record => "record",
            RunOf::Deployment => "deployment",
        };
        let outcome = if end.succeeded { "succeeded" } else { "failed" };
        self.engine_runs
            .get_or_create(&[("of", of.to_string()), ("outcome", outcome.to_string())])
            .inc();
        self.engine_run_seconds
            .get_or_create(&[("of", of.to_string())])
            .observe(end.duration.as_secs_f64());
    }

    /// The Prometheus text exposition of every metric, with what is read from the store read
    /// now (blocking: call it off the async workers).
    pub fn render(&self) -> Result<String, StoreError> {
        let _one = self.scraping.lock().unwrap_or_else(|p| p.into_inner());
        self.scraped
            .refresh(self.store.as_ref(), crate::time::now_ms())?;
        let mut text = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry)
            .map_err(|_| StoreError::new("encoding the metrics failed"))?;
        Ok(text)
    }
}

/// Reads the connection counts and the in-process engine's state at each scrape.
#[derive(Debug, Default)]
struct Live {
    connections: OnceLock<Arc<dyn ConnectionSource>>,
    engine: OnceLock<Arc<Status>>,
}

impl std::fmt::Debug for dyn ConnectionSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ConnectionSource")
    }
}

impl Collector for Live {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        if let Some(source) = self.connections.get() {
            let c = source.connection_counts();
            let open = ConstGauge::new(c.open as i64);
            open.encode(encoder.encode_descriptor(
                "connections_open",
                "Client connections open now",
                None,
                open.metric_type(),
            )?)?;
            let closed = ConstCounter::new(0u64);
            let mut family = encoder.encode_descriptor(
                "connections_closed",
                "Client connections the server closed, by why: shed (a quiet one made room), \
                 refused (every one was busy), header_timeout, idle_timeout",
                None,
                closed.metric_type(),
            )?;
            for (reason, n) in [
                ("shed", c.shed),
                ("refused", c.refused),
                ("header_timeout", c.header_timeouts),
                ("idle_timeout", c.idle_timeouts),
            ] {
                ConstCounter::new(n).encode(family.encode_family(&[("reason", reason)])?)?;
            }
        }
        if let Some(engine) = self.engine.get() {
            let running = ConstGauge::new(engine.running() as i64);
            running.encode(encoder.encode_descriptor(
                "engine_running",
                "Tasks the in-process engine is running now",
                None,
                running.metric_type(),
            )?)?;
        }
        Ok(())
    }
}
