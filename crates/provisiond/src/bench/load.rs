//! The load generator: keep-alive HTTP/1.1 connections, each sending its share of the
//! requests one after another and timing every one.

use http_body_util::{BodyExt, Full};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A request ready to send: headers (signed) and body.
pub type Prepared = (http::HeaderMap, Vec<u8>);

/// What one run measured.
#[derive(Debug, Clone)]
pub struct Stats {
    /// Requests (or cycles) completed.
    pub count: usize,
    /// Wall time of the run.
    pub elapsed: Duration,
    /// Sorted latencies.
    pub latencies: Vec<Duration>,
    /// Answers that were not 200.
    pub errors: usize,
    /// CPU time the server under test spent during the run (user + system, all threads), when
    /// measured.
    pub server_cpu: Option<Duration>,
    /// CPU time the load generator (this process) spent during the run, when measured.
    pub client_cpu: Option<Duration>,
}

impl Stats {
    /// The figures of a run that took `elapsed`, from its latencies (in any order).
    pub fn new(mut latencies: Vec<Duration>, errors: usize, elapsed: Duration) -> Stats {
        latencies.sort();
        Stats {
            count: latencies.len(),
            elapsed,
            latencies,
            errors,
            server_cpu: None,
            client_cpu: None,
        }
    }

    /// Several runs of one scenario as one: their requests, errors, wall time and CPU added up.
    pub fn merged(runs: Vec<Stats>) -> Stats {
        let add = |a: Option<Duration>, b: Option<Duration>| match (a, b) {
            (Some(a), Some(b)) => Some(a + b),
            (a, b) => a.or(b),
        };
        let mut elapsed = Duration::ZERO;
        let (mut errors, mut server_cpu, mut client_cpu) = (0, None, None);
        let mut latencies = Vec::new();
        for run in runs {
            elapsed += run.elapsed;
            errors += run.errors;
            server_cpu = add(server_cpu, run.server_cpu);
            client_cpu = add(client_cpu, run.client_cpu);
            latencies.extend(run.latencies);
        }
        Stats {
            server_cpu,
            client_cpu,
            ..Stats::new(latencies, errors, elapsed)
        }
    }

    /// Completed per second.
    pub fn throughput(&self) -> f64 {
        self.count as f64 / self.elapsed.as_secs_f64()
    }

    /// The latency at quantile `q` (0–1).
    pub fn quantile(&self, q: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let i = ((self.latencies.len() as f64 - 1.0) * q).round() as usize;
        self.latencies[i]
    }

    /// `cpu` per completed request (or cycle), in microseconds.
    pub fn per_request(&self, cpu: Option<Duration>) -> Option<f64> {
        let cpu = cpu?;
        (self.count > 0).then(|| cpu.as_secs_f64() * 1e6 / self.count as f64)
    }

    /// The slowest.
    pub fn max(&self) -> Duration {
        self.latencies.last().copied().unwrap_or_default()
    }
}

/// One keep-alive connection.
pub struct Connection {
    sender: hyper::client::conn::http1::SendRequest<Full<bytes::Bytes>>,
}

impl Connection {
    /// Opens a connection to `addr`.
    pub async fn open(addr: std::net::SocketAddr) -> Result<Connection, String> {
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connecting to {addr}: {e}"))?;
        let _ = stream.set_nodelay(true);
        let (sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        Ok(Connection { sender })
    }

    /// Sends one POST / (or GET for `method`) and returns the status and body.
    pub async fn send(
        &mut self,
        method: &str,
        path: &str,
        request: Prepared,
    ) -> Result<(u16, Vec<u8>), String> {
        let (headers, body) = request;
        let mut builder = http::Request::builder().method(method).uri(path);
        for (name, value) in &headers {
            builder = builder.header(name, value);
        }
        let req = builder
            .body(Full::new(bytes::Bytes::from(body)))
            .map_err(|e| e.to_string())?;
        self.sender.ready().await.map_err(|e| e.to_string())?;
        let response = self
            .sender
            .send_request(req)
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes()
            .to_vec();
        Ok((status, bytes))
    }
}

/// Sends `total` requests over `connections` connections; `make(i)` prepares request `i`.
pub async fn run(
    addr: std::net::SocketAddr,
    connections: usize,
    total: usize,
    make: Arc<dyn Fn(usize) -> Prepared + Send + Sync>,
) -> Result<Stats, String> {
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    let started = Instant::now();
    for _ in 0..connections {
        let (next, make) = (next.clone(), make.clone());
        tasks.push(tokio::spawn(async move {
            let mut conn = Connection::open(addr).await?;
            let mut latencies = Vec::new();
            let mut errors = 0;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    break;
                }
                let t = Instant::now();
                // A server that closes connections (moto's does) gets a new one; the time to
                // open it counts in the request's latency.
                let status = match conn.send("POST", "/", make(i)).await {
                    Ok((status, _)) => status,
                    Err(_) => {
                        conn = Connection::open(addr).await?;
                        conn.send("POST", "/", make(i)).await?.0
                    }
                };
                latencies.push(t.elapsed());
                if status != 200 {
                    errors += 1;
                }
            }
            Ok::<_, String>((latencies, errors))
        }));
    }
    gather(tasks, started).await
}

/// What one connection's task measured: its latencies and how many answers were not 200.
pub type Measured = Result<(Vec<Duration>, usize), String>;

/// Waits for every connection's task and puts their measurements together into one run's
/// figures, timed from `started`.
pub async fn gather(
    tasks: Vec<tokio::task::JoinHandle<Measured>>,
    started: Instant,
) -> Result<Stats, String> {
    let mut latencies = Vec::new();
    let mut errors = 0;
    for task in tasks {
        let (l, e) = task.await.map_err(|e| e.to_string())??;
        latencies.extend(l);
        errors += e;
    }
    Ok(Stats::new(latencies, errors, started.elapsed()))
}
