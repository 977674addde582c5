//! `provisiond bench`: starts the real server (a child process of this binary) on loopback
//! with a fresh data directory and drives it with signed requests over keep-alive HTTP/1.1
//! connections, beside a bare server of the same HTTP stack answering `{}` (the machine's
//! ceiling for the request shape) and, when it is installed, moto's server. Prints a Markdown
//! report for `BENCHMARKS.md`. Durability stays on (SQLite WAL, `synchronous=FULL`).

pub mod ceiling;
pub mod load;
pub mod postgres;
pub mod store;
pub mod wrk;

use load::{Connection, Prepared, Stats};
use provisiond_engine::client::Api;
use provisiond_sigv4::sign::{sign, Credentials, Unsigned};
use provisiond_sigv4::PathStyle;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Fewer requests per scenario (a smoke run).
    pub quick: bool,
    /// Multiplies each scenario's requests, when given (else 4, or 1 when `quick`).
    pub scale: Option<usize>,
    /// Also measure reads with 1,000,000 provisioned products stored.
    pub million: bool,
    /// The `moto_server` executable, when moto is to be measured.
    pub moto: Option<PathBuf>,
    /// Connection counts to run at (all of [`CONNECTIONS`] when empty).
    pub connections: Vec<usize>,
    /// A directory to write a `perf record` profile of the server into, one per scenario.
    pub perf: Option<PathBuf>,
    /// A PostgreSQL server (`postgres://USER@HOST:PORT/DB`) on which to measure one and two
    /// replicas too, in a scratch database made and dropped by the run.
    pub database_url: Option<String>,
}

/// Where `--perf` profiles go, when asked for.
static PERF_DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// Connection counts every scenario runs at.
pub const CONNECTIONS: [usize; 3] = [1, 8, 64];

pub(crate) struct Server {
    child: Child,
    addr: SocketAddr,
    credentials: Credentials,
    data_dir: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_addr() -> Result<SocketAddr, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    listener.local_addr().map_err(|e| e.to_string())
}

async fn wait_listening(addr: SocketAddr, path: &str) -> Result<Duration, String> {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(120) {
        if let Ok(mut conn) = Connection::open(addr).await {
            let mut headers = http::HeaderMap::new();
            headers.insert("host", addr.to_string().parse().map_err(|_| "bad host")?);
            if let Ok((200, _)) = conn.send("GET", path, (headers, Vec::new())).await {
                return Ok(started.elapsed());
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Err(format!("{addr} did not answer within 120 s"))
}

/// Starts `provisiond serve` on `data_dir`; returns it and its time to a healthy `/health`.
async fn start_server(data_dir: &Path) -> Result<(Server, Duration), String> {
    start_server_with(data_dir, &[], &[]).await
}

/// [`start_server`] with more arguments (`--database-url …`). The credentials file must be in
/// `data_dir` once it answers (a second replica gets a copy of the first one's).
pub(crate) async fn start_server_with(
    data_dir: &Path,
    extra: &[String],
    env: &[(&str, String)],
) -> Result<(Server, Duration), String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let addr = free_addr()?;
    let started = Instant::now();
    let child = Command::new(exe)
        .args(["serve", "--listen", &addr.to_string(), "--data-dir"])
        .arg(data_dir)
        .args(extra)
        .env("PROVISIOND_LOG", "warn")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("starting provisiond: {e}"))?;
    wait_listening(addr, "/health").await?;
    let startup = started.elapsed();
    let text = std::fs::read_to_string(data_dir.join("credentials")).map_err(|e| e.to_string())?;
    let field = |name: &str| {
        text.lines()
            .find_map(|l| {
                l.split_once('=')
                    .filter(|(k, _)| k.trim() == name)
                    .map(|(_, v)| v.trim().to_string())
            })
            .ok_or_else(|| format!("no {name} in the credentials file"))
    };
    let credentials = Credentials {
        access_key_id: field("aws_access_key_id")?,
        secret: Arc::new(crate::crypto::Secret::new(field("aws_secret_access_key")?).into()),
        region: "us-east-1".into(),
    };
    Ok((
        Server {
            child,
            addr,
            credentials,
            data_dir: data_dir.to_path_buf(),
        },
        startup,
    ))
}

/// Resident memory of a process, in MiB.
fn rss_mib(pid: u32) -> f64 {
    status_mib(pid, "VmRSS:")
}

/// The most resident memory the process has had (`VmHWM`), in MiB.
fn peak_rss_mib(pid: u32) -> f64 {
    status_mib(pid, "VmHWM:")
}

/// A size in kB of `/proc/PID/status`, in MiB.
fn status_mib(pid: u32, field: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// CPU time (user + system, every thread, living or exited) a process has used so far, from
/// `/proc/<pid>/stat` in the kernel's fixed 100 ticks per second.
fn cpu_ticks(pid: u32) -> Duration {
    let ticks = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            // Fields after the command name (which may hold spaces) start at `state` (field 3);
            // utime and stime are fields 14 and 15.
            let rest = s.rsplit_once(')')?.1;
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let utime: u64 = fields.get(11)?.parse().ok()?;
            let stime: u64 = fields.get(12)?.parse().ok()?;
            Some(utime + stime)
        })
        .unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

/// The nanoseconds each living thread of `pid` has run, from `/proc/<pid>/task/*/schedstat`.
fn thread_runtimes(pid: u32) -> HashMap<u32, u64> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return HashMap::new();
    };
    tasks
        .flatten()
        .filter_map(|task| {
            let tid = task.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(task.path().join("schedstat")).ok()?;
            Some((tid, stat.split_whitespace().next()?.parse().ok()?))
        })
        .collect()
}

/// The CPU time a process spends from [`CpuClock::start`] on. Ticks of 10 ms would be a few per
/// cent of a replica's share of a turn, so the clock adds up its threads' run times in
/// nanoseconds; when threads ended meanwhile (their time left with them), it falls back to the
/// ticks, which count exited threads too.
pub(crate) struct CpuClock {
    pid: u32,
    ticks: Duration,
    threads: HashMap<u32, u64>,
}

impl CpuClock {
    pub(crate) fn start(pid: u32) -> CpuClock {
        CpuClock {
            pid,
            ticks: cpu_ticks(pid),
            threads: thread_runtimes(pid),
        }
    }

    pub(crate) fn elapsed(&self) -> Duration {
        let ticks = cpu_ticks(self.pid).saturating_sub(self.ticks);
        let exact: u64 = thread_runtimes(self.pid)
            .into_iter()
            .map(|(tid, ns)| ns.saturating_sub(self.threads.get(&tid).copied().unwrap_or(0)))
            .sum();
        let exact = Duration::from_nanos(exact);
        // More than the ticks' rounding above the threads still living: some ended.
        if ticks > exact + Duration::from_millis(20) {
            ticks
        } else {
            exact
        }
    }
}

/// A `perf record` call-graph profile of one process, running while this lives (with
/// `--perf`; nothing otherwise).
pub(crate) struct Profile(Option<std::process::Child>);

impl Profile {
    /// Starts profiling `pid` into a file named after `label`, when `--perf` asked for it.
    pub(crate) async fn start(pid: u32, label: &str) -> Profile {
        let Some(dir) = PERF_DIR.get() else {
            return Profile(None);
        };
        let name: String = label
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        // PROVISIOND_PERF_EVENTS=a,b,… counts those events (`perf stat`, into NAME.txt)
        // instead of sampling: exact numbers of syscalls or switches per request, where a
        // profile's samples are noisy.
        let mut perf = Command::new("perf");
        if let Ok(events) = std::env::var("PROVISIOND_PERF_EVENTS") {
            perf.args(["stat", "-e", &events, "-p"])
                .arg(pid.to_string())
                .arg("-o")
                .arg(dir.join(format!("{name}.txt")));
        } else {
            // DWARF unwinding works on any build; a build with frame pointers profiles more
            // cheaply with PROVISIOND_PERF_CALL_GRAPH=fp.
            let call_graph = std::env::var("PROVISIOND_PERF_CALL_GRAPH")
                .unwrap_or_else(|_| "dwarf,16384".to_string());
            perf.args([
                "record",
                "-q",
                "-F",
                "999",
                "--call-graph",
                &call_graph,
                "-p",
            ])
            .arg(pid.to_string())
            .arg("-o")
            .arg(dir.join(format!("{name}.data")));
        }
        let perf = perf
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok();
        if perf.is_some() {
            // perf needs a moment to attach before the clock starts.
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        Profile(perf)
    }

    /// Stops the profiler and waits for it to write its file.
    pub(crate) fn stop(mut self) {
        if let Some(perf) = self.0.as_mut() {
            let _ = Command::new("kill")
                .args(["-INT", &perf.id().to_string()])
                .status();
            let _ = perf.wait();
        }
    }
}

/// Runs a scenario and records the CPU time process `pid` spent meanwhile; with `--perf`, also
/// a `perf record` call-graph profile of `pid` named after the scenario.
pub(crate) async fn on_cpu_of(
    pid: u32,
    label: &str,
    scenario: impl std::future::Future<Output = Result<Stats, String>>,
) -> Result<Stats, String> {
    let profile = Profile::start(pid, label).await;
    let me = std::process::id();
    let (server, client) = (CpuClock::start(pid), CpuClock::start(me));
    let mut stats = scenario.await?;
    stats.server_cpu = Some(server.elapsed());
    if pid != me {
        stats.client_cpu = Some(client.elapsed());
    }
    profile.stop();
    Ok(stats)
}

/// A signed awsJson request.
pub(crate) fn prepared(
    credentials: &Credentials,
    addr: SocketAddr,
    api: Api,
    op: &str,
    body: &Value,
) -> Prepared {
    let bytes = serde_json::to_vec(body).expect("JSON values serialize");
    let extra = [
        ("content-type", api.content_type().to_string()),
        ("x-amz-target", format!("{}.{op}", api.target_prefix())),
    ];
    let request = Unsigned {
        method: "POST",
        path: "/",
        host: &addr.to_string(),
        headers: &extra,
        body: &bytes,
        service: api.signing_name(),
        style: PathStyle::DoubleEncoded,
    };
    let headers = sign(credentials, &request, crate::time::now_ms() / 1000)
        .expect("signing never fails for these headers");
    (headers, bytes)
}

async fn call(
    conn: &mut Connection,
    server: &Server,
    api: Api,
    op: &str,
    body: Value,
) -> Result<Value, String> {
    let (status, bytes) = conn
        .send(
            "POST",
            "/",
            prepared(&server.credentials, server.addr, api, op, &body),
        )
        .await?;
    let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    if status != 200 {
        return Err(format!("{op}: {status} {value}"));
    }
    Ok(value)
}

/// A product with a one-variable Terraform module, launchable by the admin; returns
/// (product id, artifact id).
pub(crate) async fn publish(server: &Server) -> Result<(String, String), String> {
    let mut conn = Connection::open(server.addr).await?;
    let module = server.data_dir.join("bench-module.tar.gz");
    let mut files = provisiond_formats::bundle::Files::new();
    files.insert(
        "main.tf".into(),
        b"variable \"name\" { default = \"x\" }\n".to_vec(),
    );
    std::fs::write(&module, provisiond_formats::bundle::write(&files))
        .map_err(|e| e.to_string())?;
    let product = call(&mut conn, server, Api::ServiceCatalog, "CreateProduct", json!({
        "Name": "bench", "Owner": "bench", "ProductType": "TERRAFORM_OPEN_SOURCE", "IdempotencyToken": "bench",
        "ProvisioningArtifactParameters": {"Name": "v1", "Info": {"LoadTemplateFromURL": format!("file://{}", module.display())}}
    })).await?;
    let pid = product["ProductViewDetail"]["ProductViewSummary"]["ProductId"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let pa = product["ProvisioningArtifactDetail"]["Id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let port = call(
        &mut conn,
        server,
        Api::ServiceCatalog,
        "CreatePortfolio",
        json!({
        "DisplayName": "bench", "ProviderName": "bench", "IdempotencyToken": "bench"}),
    )
    .await?;
    let port = port["PortfolioDetail"]["Id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    call(
        &mut conn,
        server,
        Api::ServiceCatalog,
        "AssociateProductWithPortfolio",
        json!({"ProductId": pid, "PortfolioId": port}),
    )
    .await?;
    call(&mut conn, server, Api::ServiceCatalog, "AssociatePrincipalWithPortfolio", json!({
        "PortfolioId": port, "PrincipalARN": crate::datadir::DEFAULT_ADMIN_PRINCIPAL, "PrincipalType": "IAM"})).await?;
    Ok((pid, pa))
}

fn provision_body(product: &(String, String), name: &str) -> Value {
    json!({"ProductId": product.0, "ProvisioningArtifactId": product.1, "ProvisionedProductName": name,
           "ProvisionToken": name})
}

/// Provisions `count` products named `<prefix>-<i>` over 8 connections.
pub(crate) async fn provision_many(
    server: &Server,
    product: &(String, String),
    prefix: &str,
    count: usize,
) -> Result<Stats, String> {
    let (creds, addr, product, prefix) = (
        server.credentials.clone(),
        server.addr,
        product.clone(),
        prefix.to_string(),
    );
    load::run(
        server.addr,
        8,
        count,
        Arc::new(move |i| {
            prepared(
                &creds,
                addr,
                Api::ServiceCatalog,
                "ProvisionProduct",
                &provision_body(&product, &format!("{prefix}-{i}")),
            )
        }),
    )
    .await
}

/// Receives every waiting provision task: (token, record id) pairs.
pub(crate) async fn drain_tasks(
    server: &Server,
    want: usize,
) -> Result<Vec<(String, String)>, String> {
    let mut conn = Connection::open(server.addr).await?;
    let url = call(
        &mut conn,
        server,
        Api::Sqs,
        "GetQueueUrl",
        json!({"QueueName": "ServiceCatalogTerraformOSProvisionOperationQueue"}),
    )
    .await?;
    let url = url["QueueUrl"].as_str().unwrap_or_default().to_string();
    let mut tasks = Vec::new();
    while tasks.len() < want {
        let got = call(&mut conn, server, Api::Sqs, "ReceiveMessage", json!({
            "QueueUrl": url, "MaxNumberOfMessages": 10, "VisibilityTimeout": 3600, "WaitTimeSeconds": 1})).await?;
        let messages = got["Messages"].as_array().cloned().unwrap_or_default();
        if messages.is_empty() {
            break;
        }
        for m in messages {
            let body: Value =
                serde_json::from_str(m["Body"].as_str().unwrap_or("{}")).unwrap_or(Value::Null);
            tasks.push((
                body["token"].as_str().unwrap_or_default().to_string(),
                body["recordId"].as_str().unwrap_or_default().to_string(),
            ));
        }
    }
    Ok(tasks)
}

pub(crate) fn notify_body(token: &str, record: &str) -> Value {
    json!({"WorkflowToken": token, "RecordId": record, "Status": "SUCCEEDED", "IdempotencyToken": record,
           "ResourceIdentifier": {"UniqueTag": {"Key": "bench", "Value": record}},
           "Outputs": [{"OutputKey": "url", "OutputValue": "https://example.com"}]})
}

/// The full cycle over `connections` connections: provision → receive → notify → describe.
pub(crate) async fn cycles(
    server: &Server,
    product: &(String, String),
    connections: usize,
    total: usize,
    tag: &str,
) -> Result<Stats, String> {
    cycles_over(&[server], product, connections, total, tag).await
}

/// [`cycles`] with its four calls spread over `servers` (replicas of one database): step `k`
/// of cycle `i` goes to server `(i + k) % n`, so each cycle crosses replicas.
pub(crate) async fn cycles_over(
    servers: &[&Server],
    product: &(String, String),
    connections: usize,
    total: usize,
    tag: &str,
) -> Result<Stats, String> {
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let first = servers[0];
    let mut url_conn = Connection::open(first.addr).await?;
    let url = call(
        &mut url_conn,
        first,
        Api::Sqs,
        "GetQueueUrl",
        json!({"QueueName": "ServiceCatalogTerraformOSProvisionOperationQueue"}),
    )
    .await?;
    let url = url["QueueUrl"].as_str().unwrap_or_default().to_string();
    let targets: Arc<Vec<_>> = Arc::new(
        servers
            .iter()
            .map(|s| (s.credentials.clone(), s.addr))
            .collect(),
    );
    let started = Instant::now();
    let mut handles = Vec::new();
    for _ in 0..connections {
        let (next, targets, product, url, tag) = (
            next.clone(),
            targets.clone(),
            product.clone(),
            url.clone(),
            tag.to_string(),
        );
        handles.push(tokio::spawn(async move {
            let mut conns = Vec::new();
            for (_, addr) in targets.iter() {
                conns.push(Connection::open(*addr).await?);
            }
            let mut latencies = Vec::new();
            let mut errors = 0;
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= total {
                    break;
                }
                let t = Instant::now();
                let name = format!("{tag}-{i}");
                let mut statuses = Vec::new();
                let mut step = 0;
                let mut send = async |op: &str, body: Value| {
                    let k = (i + step) % targets.len();
                    step += 1;
                    let (creds, addr) = &targets[k];
                    let api = if op == "ReceiveMessage" { Api::Sqs } else { Api::ServiceCatalog };
                    let request = prepared(creds, *addr, api, op, &body);
                    let (status, got) = conns[k].send("POST", "/", request).await?;
                    statuses.push(status);
                    Ok::<_, String>(got)
                };
                send("ProvisionProduct", provision_body(&product, &name)).await?;
                let got = send("ReceiveMessage", json!({
                    "QueueUrl": url, "MaxNumberOfMessages": 1, "WaitTimeSeconds": 2, "VisibilityTimeout": 3600})).await?;
                let got: Value = serde_json::from_slice(&got).unwrap_or(Value::Null);
                let Some(message) = got["Messages"].as_array().and_then(|m| m.first()) else {
                    errors += 1;
                    continue;
                };
                let body: Value = serde_json::from_str(message["Body"].as_str().unwrap_or("{}")).unwrap_or(Value::Null);
                let (token, record) = (body["token"].as_str().unwrap_or_default(), body["recordId"].as_str().unwrap_or_default());
                send("NotifyProvisionProductEngineWorkflowResult", notify_body(token, record)).await?;
                send("DescribeRecord", json!({"Id": record})).await?;
                latencies.push(t.elapsed());
                if statuses.iter().any(|s| *s != 200) {
                    errors += 1;
                }
            }
            Ok::<_, String>((latencies, errors))
        }));
    }
    load::gather(handles, started).await
}

pub(crate) fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

pub(crate) fn row(out: &mut String, name: &str, connections: usize, stats: &Stats) {
    let micros = |cpu: Option<f64>| cpu.map_or("–".to_string(), |us| format!("{us:.0}"));
    let (cpu, client) = (
        micros(stats.per_request(stats.server_cpu)),
        micros(stats.per_request(stats.client_cpu)),
    );
    out.push_str(&format!(
        "| {name} | {connections} | {} | {:.0} | {} | {} | {} | {cpu} | {client} | {} |\n",
        stats.count,
        stats.throughput(),
        ms(stats.quantile(0.5)),
        ms(stats.quantile(0.99)),
        ms(stats.max()),
        stats.errors
    ));
}

pub(crate) const HEADER: &str = "| scenario | connections | requests | per second | p50 ms | p99 ms | max ms | server CPU µs each | load generator CPU µs each | errors |\n|---|---|---|---|---|---|---|---|---|---|\n";

/// Signed `ListPortfolios` beside the ceiling at each connection count, driven by the built-in
/// generator (which signs every request) and, when it is installed, by `wrk` replaying one
/// signed request: the ratio is what BENCHMARKS.md tracks, and the two generators cost the
/// shared cores differently.
async fn signed_reads(
    server: &Server,
    ceiling: SocketAddr,
    ceiling_pid: u32,
    connections: &[usize],
    scale: usize,
) -> Result<String, String> {
    let mut out = String::from(
        "| generator | connections | ceiling per second | ListPortfolios per second | ratio | ListPortfolios p99 ms | server CPU µs each | ceiling CPU µs each |\n|---|---|---|---|---|---|---|---|\n",
    );
    let has_wrk = wrk::available();
    for &c in connections {
        let n = 5_000 * scale;
        let mut both = Vec::new();
        for (addr, pid) in [(ceiling, ceiling_pid), (server.addr, server.child.id())] {
            let creds = server.credentials.clone();
            let stats = on_cpu_of(
                pid,
                &format!(
                    "list-portfolios {c} {}",
                    if addr == ceiling { "ceiling" } else { "server" }
                ),
                load::run(
                    addr,
                    c,
                    n,
                    Arc::new(move |_| {
                        prepared(
                            &creds,
                            addr,
                            Api::ServiceCatalog,
                            "ListPortfolios",
                            &json!({}),
                        )
                    }),
                ),
            )
            .await?;
            if stats.errors > 0 {
                return Err(format!("ListPortfolios at {c}: {} errors", stats.errors));
            }
            both.push(stats);
        }
        let micros = |s: &Stats| {
            s.per_request(s.server_cpu)
                .map_or("–".to_string(), |us| format!("{us:.0}"))
        };
        out.push_str(&format!(
            "| built-in | {c} | {:.0} | {:.0} | {:.0}% | {} | {} | {} |\n",
            both[0].throughput(),
            both[1].throughput(),
            100.0 * both[1].throughput() / both[0].throughput(),
            ms(both[1].quantile(0.99)),
            micros(&both[1]),
            micros(&both[0]),
        ));
        if !has_wrk {
            continue;
        }
        let seconds = 2 * scale as u64;
        let mut runs = Vec::new();
        for (addr, pid) in [(ceiling, ceiling_pid), (server.addr, server.child.id())] {
            let request = prepared(
                &server.credentials,
                addr,
                Api::ServiceCatalog,
                "ListPortfolios",
                &json!({}),
            );
            let who = if addr == ceiling { "ceiling" } else { "server" };
            let profile = Profile::start(pid, &format!("wrk list-portfolios {c} {who}")).await;
            let clock = CpuClock::start(pid);
            let run = tokio::task::spawn_blocking(move || wrk::run(addr, c, seconds, &request))
                .await
                .map_err(|e| e.to_string())??;
            profile.stop();
            if run.errors > 0 {
                return Err(format!("wrk ListPortfolios at {c}: {} errors", run.errors));
            }
            let cpu = clock.elapsed();
            runs.push((run.clone(), cpu.as_secs_f64() * 1e6 / run.requests as f64));
        }
        out.push_str(&format!(
            "| wrk | {c} | {:.0} | {:.0} | {:.0}% | {} | {:.0} | {:.0} |\n",
            runs[0].0.per_second,
            runs[1].0.per_second,
            100.0 * runs[1].0.per_second / runs[0].0.per_second,
            ms(runs[1].0.p99),
            runs[1].1,
            runs[0].1,
        ));
    }
    if !has_wrk {
        out.push_str("\n(wrk is not installed: `apt-get install wrk` adds its rows.)\n");
    }
    out.push('\n');
    Ok(out)
}

/// Clones the first provisioned product of the default account until `total` are stored,
/// straight into the (stopped) server's store: loading a million through the API would take
/// longer than the whole benchmark.
fn seed(data_dir: &Path, total: usize) -> Result<(), String> {
    use crate::store::{transact, Kind, Mode};
    let store = crate::store::sqlite::SqliteStore::open(&data_dir.join("provisiond.db"))
        .map_err(|e| e.to_string())?;
    let scope = format!("{}/us-east-1", crate::datadir::DEFAULT_ACCOUNT);
    let (existing, template): (usize, Value) = transact(&store, Mode::Read, |tx| {
        let rows = tx.list(Kind::ProvisionedProduct, &scope, "", None, 2_000_000)?;
        let first = rows
            .first()
            .map(|r| serde_json::from_slice(&r.body).unwrap_or(Value::Null))
            .unwrap_or(Value::Null);
        Ok::<_, crate::store::StoreError>((rows.len(), first))
    })
    .map_err(|e| e.to_string())?;
    if template.is_null() {
        return Err("nothing to clone".into());
    }
    let mut i = existing;
    while i < total {
        let end = (i + 20_000).min(total);
        transact(&store, Mode::Write, |tx| {
            for n in i..end {
                let id = format!("pp-seed{n:08}");
                let name = format!("seed-{n}");
                let mut doc = template.clone();
                doc["id"] = json!(id);
                doc["name"] = json!(name);
                doc["arn"] = json!(format!(
                    "arn:aws:servicecatalog:us-east-1:{}:stack/{name}/{id}",
                    crate::datadir::DEFAULT_ACCOUNT
                ));
                tx.put(
                    Kind::ProvisionedProduct,
                    &scope,
                    &id,
                    "",
                    &serde_json::to_vec(&doc).expect("JSON"),
                )?;
                tx.put(
                    Kind::ProvisionedProductName,
                    &scope,
                    &name,
                    "",
                    &serde_json::to_vec(&id).expect("JSON"),
                )?;
            }
            Ok::<_, crate::store::StoreError>(())
        })
        .map_err(|e| e.to_string())?;
        i = end;
    }
    Ok(())
}

/// Runs the whole benchmark and prints the report.
pub fn main(options: Options) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(run(options))
}

async fn run(options: Options) -> Result<(), String> {
    let scale = options.scale.unwrap_or(if options.quick { 1 } else { 4 });
    let connections = if options.connections.is_empty() {
        CONNECTIONS.to_vec()
    } else {
        options.connections.clone()
    };
    if let Some(dir) = &options.perf {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let _ = PERF_DIR.set(dir.clone());
    }
    let root = std::env::temp_dir().join(format!("provisiond-bench-{}", crate::ids::uuid()));
    std::fs::create_dir_all(&root).map_err(|e| e.to_string())?;
    let mut report = String::new();
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    report.push_str(&format!(
        "Machine: {cores} cores, shared by the load generator and the servers; loopback.\n\n"
    ));

    // Start-up and idle memory.
    let (server, startup) = start_server(&root.join("main")).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle = rss_mib(server.child.id());
    report.push_str(&format!(
        "Start-up to a healthy /health (fresh data directory): {} ms. Idle RSS: {idle:.1} MiB.\n\n",
        ms(startup)
    ));

    // The ceiling: the same HTTP stack answering {}.
    let ceiling_addr = free_addr()?;
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut ceiling_child = Command::new(exe)
        .args(["bench-ceiling", "--listen", &ceiling_addr.to_string()])
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    wait_listening(ceiling_addr, "/").await?;
    let product = publish(&server).await?;
    report.push_str(HEADER);
    let mut ratios = Vec::new();
    for &c in &connections {
        let n = 5_000 * scale;
        let (creds, addr) = (server.credentials.clone(), ceiling_addr);
        let sample = notify_body("dG9rZW4=", "rec-0000000000000");
        let ceiling_pid = ceiling_child.id();
        let ceiling = on_cpu_of(
            ceiling_pid,
            &format!("ceiling {c}"),
            load::run(
                ceiling_addr,
                c,
                n,
                Arc::new(move |_| {
                    prepared(
                        &creds,
                        addr,
                        Api::ServiceCatalog,
                        "NotifyProvisionProductEngineWorkflowResult",
                        &sample,
                    )
                }),
            ),
        )
        .await?;
        row(&mut report, "ceiling: bare `{}`", c, &ceiling);
        eprintln!("bench: ceiling at {c} done");

        let n = 1_000 * scale;
        provision_many(&server, &product, &format!("n{c}"), n)
            .await
            .map_err(|e| format!("provisioning for notify at {c}: {e}"))?;
        let tasks = Arc::new(drain_tasks(&server, n).await?);
        let (creds, addr, t) = (server.credentials.clone(), server.addr, tasks.clone());
        let notify = on_cpu_of(
            server.child.id(),
            &format!("notify {c}"),
            load::run(
                server.addr,
                c,
                tasks.len(),
                Arc::new(move |i| {
                    prepared(
                        &creds,
                        addr,
                        Api::ServiceCatalog,
                        "NotifyProvisionProductEngineWorkflowResult",
                        &notify_body(&t[i].0, &t[i].1),
                    )
                }),
            ),
        )
        .await?;
        row(
            &mut report,
            "NotifyProvisionProductEngineWorkflowResult",
            c,
            &notify,
        );
        eprintln!("bench: notify at {c} done");
        ratios.push((
            c,
            notify.throughput() / ceiling.throughput(),
            notify.quantile(0.99),
        ));

        let cycle = on_cpu_of(
            server.child.id(),
            &format!("cycle {c}"),
            cycles(&server, &product, c, 500 * scale, &format!("cycle{c}")),
        )
        .await
        .map_err(|e| format!("full cycle at {c}: {e}"))?;
        row(
            &mut report,
            "full cycle (provision → receive → notify → describe)",
            c,
            &cycle,
        );
    }
    report.push('\n');
    for (c, ratio, p99) in &ratios {
        report.push_str(&format!(
            "Notify / ceiling at {c} connections: {:.0}% (p99 {} ms)\n",
            ratio * 100.0,
            ms(*p99)
        ));
    }
    report.push('\n');
    report.push_str(
        &signed_reads(
            &server,
            ceiling_addr,
            ceiling_child.id(),
            &connections,
            scale,
        )
        .await?,
    );
    let _ = ceiling_child.kill();
    let _ = ceiling_child.wait();
    drop(server);

    // The store alone, in this process: what the server's writes could reach without HTTP.
    report.push_str(HEADER);
    for &c in &connections {
        let dir = root.join(format!("store-{c}"));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let total = 2_500 * scale;
        let stats =
            tokio::task::spawn_blocking(move || store::notify_shaped_sqlite(&dir, c, total))
                .await
                .map_err(|e| e.to_string())??;
        row(
            &mut report,
            "store alone: Notify-shaped write transactions (threads)",
            c,
            &stats,
        );
    }
    report.push('\n');

    // PostgreSQL: one replica and two, in this same run.
    if let Some(url) = &options.database_url {
        let section = postgres::section(url, &root.join("postgres"), &connections, scale)
            .await
            .map_err(|e| format!("the PostgreSQL scenarios: {e}"))?;
        report.push_str(&section);
    }

    // Reads at 1,000 and 1,000,000 provisioned products.
    let reads_dir = root.join("reads");
    let (server, _) = start_server(&reads_dir).await?;
    let product = publish(&server).await?;
    provision_many(&server, &product, "r", 1_000).await?;
    let mut sizes = vec![1_000];
    if options.million {
        sizes.push(1_000_000);
    }
    report.push_str(HEADER);
    let mut server = Some(server);
    for size in sizes {
        if size > 1_000 {
            drop(server.take());
            let t = Instant::now();
            seed(&reads_dir, size)?;
            report.push_str(&format!(
                "(seeded {size} provisioned products in {:.1} s)\n",
                t.elapsed().as_secs_f64()
            ));
            let (s, startup) = start_server(&reads_dir).await?;
            report.push_str(&format!(
                "(start-up with {size} stored: {} ms)\n",
                ms(startup)
            ));
            server = Some(s);
        }
        let s = server.as_ref().expect("a server runs");
        let mut conn = Connection::open(s.addr).await?;
        let first = call(
            &mut conn,
            s,
            Api::ServiceCatalog,
            "SearchProvisionedProducts",
            json!({"PageSize": 20}),
        )
        .await?;
        let ids: Arc<Vec<String>> = Arc::new(
            first["ProvisionedProducts"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .filter_map(|p| p["Id"].as_str().map(String::from))
                .collect(),
        );
        if ids.is_empty() {
            return Err("no provisioned product to read".into());
        }
        for &c in &connections {
            let (creds, addr, ids2) = (s.credentials.clone(), s.addr, ids.clone());
            let describe = on_cpu_of(
                s.child.id(),
                &format!("describe {size} {c}"),
                load::run(
                    s.addr,
                    c,
                    2_000 * scale,
                    Arc::new(move |i| {
                        prepared(
                            &creds,
                            addr,
                            Api::ServiceCatalog,
                            "DescribeProvisionedProduct",
                            &json!({"Id": ids2[i % ids2.len()]}),
                        )
                    }),
                ),
            )
            .await?;
            row(
                &mut report,
                &format!("DescribeProvisionedProduct, {size} stored"),
                c,
                &describe,
            );
            let (creds, addr) = (s.credentials.clone(), s.addr);
            let search_n = 500 * scale;
            let search = on_cpu_of(
                s.child.id(),
                &format!("search {size} {c}"),
                load::run(
                    s.addr,
                    c,
                    search_n,
                    Arc::new(move |_| {
                        prepared(
                            &creds,
                            addr,
                            Api::ServiceCatalog,
                            "SearchProvisionedProducts",
                            &json!({"PageSize": 20}),
                        )
                    }),
                ),
            )
            .await?;
            row(
                &mut report,
                &format!("SearchProvisionedProducts first page, {size} stored"),
                c,
                &search,
            );
        }
        // A search that must look at every provisioned product (a sort by name): its time
        // grows with the account, its memory must not.
        let (creds, addr) = (s.credentials.clone(), s.addr);
        let sorted = on_cpu_of(
            s.child.id(),
            &format!("sorted search {size}"),
            load::run(
                s.addr,
                1,
                if size > 1_000 { 4 } else { 200 },
                Arc::new(move |_| {
                    prepared(
                        &creds,
                        addr,
                        Api::ServiceCatalog,
                        "SearchProvisionedProducts",
                        &json!({"PageSize": 20, "SortBy": "name"}),
                    )
                }),
            ),
        )
        .await?;
        row(
            &mut report,
            &format!("SearchProvisionedProducts sorted by name, {size} stored"),
            1,
            &sorted,
        );
        report.push_str(&format!(
            "(RSS with {size} stored, after the reads: {:.1} MiB; most since start-up: {:.1} MiB)\n",
            rss_mib(s.child.id()),
            peak_rss_mib(s.child.id())
        ));
    }
    drop(server);
    report.push('\n');

    // moto on the comparable call.
    if let Some(moto) = &options.moto {
        let moto_addr = free_addr()?;
        let mut moto_child = Command::new(moto)
            .args(["-H", "127.0.0.1", "-p", &moto_addr.port().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("starting {}: {e}", moto.display()))?;
        let (server, _) = start_server(&root.join("moto-peer")).await?;
        wait_listening(moto_addr, "/moto-api/").await.ok();
        report.push_str(HEADER);
        let mut pair = Vec::new();
        let peers = [
            ("provisiond", server.addr, server.child.id()),
            ("moto", moto_addr, moto_child.id()),
        ];
        for (label, addr, pid) in peers {
            let creds = server.credentials.clone();
            let mut conn = Connection::open(addr).await?;
            let body = json!({"DisplayName": "p", "ProviderName": "p", "IdempotencyToken": "t"});
            let (status, _) = conn
                .send(
                    "POST",
                    "/",
                    prepared(&creds, addr, Api::ServiceCatalog, "CreatePortfolio", &body),
                )
                .await?;
            if status != 200 {
                return Err(format!("{label}: CreatePortfolio answered {status}"));
            }
            let stats = on_cpu_of(
                pid,
                &format!("list-portfolios {label}"),
                load::run(
                    addr,
                    8,
                    if label == "moto" { 500 } else { 2_000 * scale },
                    Arc::new(move |_| {
                        prepared(
                            &creds,
                            addr,
                            Api::ServiceCatalog,
                            "ListPortfolios",
                            &json!({}),
                        )
                    }),
                ),
            )
            .await?;
            row(&mut report, &format!("ListPortfolios, {label}"), 8, &stats);
            pair.push(stats.throughput());
        }
        report.push_str(&format!(
            "\nprovisiond / moto on ListPortfolios at 8 connections: {:.0}×\n",
            pair[0] / pair[1]
        ));
        let _ = moto_child.kill();
        let _ = moto_child.wait();
    }
    let _ = std::fs::remove_dir_all(&root);
    println!("{report}");
    Ok(())
}
