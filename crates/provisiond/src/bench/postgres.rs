//! The PostgreSQL part of `provisiond bench --database-url URL`, in the same run as SQLite's:
//! Notify and the full cycle on one replica and on two replicas of one scratch database
//! (made and dropped by the run; each replica of the two sized to half of this machine), Notify
//! on SQLite in turns with them for the comparison of the stores, the
//! server CPU per request of each replica, PostgreSQL's own rate for the Notify transaction
//! shape (the store alone), and a scale model built from them.

use super::load::{self, Stats};
use super::{
    cycles, drain_tasks, ms, notify_body, on_cpu_of, prepared, provision_many, publish, row,
    start_server_with, store, Server, HEADER,
};
use provisiond_engine::client::Api;
use std::path::Path;
use std::sync::Arc;

/// A database made for one run, dropped when done.
struct Scratch {
    admin_url: String,
    name: String,
    url: String,
}

impl Scratch {
    fn create(url: &str) -> Result<Scratch, String> {
        let name = format!(
            "provisiond_bench_{}",
            &crate::ids::uuid().replace('-', "")[..12]
        );
        crate::store::postgres::run_outside_transaction(url, &format!("CREATE DATABASE {name}"))
            .map_err(|e| {
                format!(
                    "creating the scratch database on {}: {e}",
                    crate::store::postgres::redact(url)
                )
            })?;
        let base = url
            .split_once('?')
            .map_or(url, |(u, _)| u)
            .rsplit_once('/')
            .map_or(url, |(b, _)| b);
        Ok(Scratch {
            admin_url: url.to_string(),
            url: format!("{base}/{name}"),
            name,
        })
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = crate::store::postgres::run_outside_transaction(
            &self.admin_url,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        );
    }
}

/// Notify at `connections` spread evenly over `servers`: the combined figures, and each
/// server's CPU per request it answered (µs).
async fn notify_over(
    servers: &[&Server],
    tasks: Arc<Vec<(String, String)>>,
    connections: usize,
) -> Result<(Stats, Vec<f64>), String> {
    let clocks: Vec<_> = servers
        .iter()
        .map(|s| super::CpuClock::start(s.child.id()))
        .collect();
    let started = std::time::Instant::now();
    let share = tasks.len() / servers.len();
    let mut runs = Vec::new();
    for (k, s) in servers.iter().enumerate() {
        let (creds, addr, t) = (s.credentials.clone(), s.addr, tasks.clone());
        let offset = k * share;
        runs.push(tokio::spawn(load::run(
            s.addr,
            (connections / servers.len()).max(1),
            share,
            Arc::new(move |i| {
                let (token, record) = &t[offset + i];
                prepared(
                    &creds,
                    addr,
                    Api::ServiceCatalog,
                    "NotifyProvisionProductEngineWorkflowResult",
                    &notify_body(token, record),
                )
            }),
        )));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    let mut counts = Vec::new();
    for run in runs {
        let stats = run.await.map_err(|e| e.to_string())??;
        counts.push(stats.count);
        errors += stats.errors;
        latencies.extend(stats.latencies);
    }
    let mut stats = Stats::new(latencies, errors, started.elapsed());
    let mut per_replica = Vec::new();
    let mut total_cpu = std::time::Duration::ZERO;
    for (clock, count) in clocks.iter().zip(counts) {
        let cpu = clock.elapsed();
        total_cpu += cpu;
        per_replica.push(cpu.as_secs_f64() * 1e6 / count.max(1) as f64);
    }
    stats.server_cpu = Some(total_cpu);
    Ok((stats, per_replica))
}

/// Runs the PostgreSQL scenarios and returns their part of the report.
pub async fn section(
    url: &str,
    root: &Path,
    connections: &[usize],
    scale: usize,
) -> Result<String, String> {
    std::fs::create_dir_all(root).map_err(|e| e.to_string())?;
    let owned = url.to_string();
    let scratch = tokio::task::spawn_blocking(move || Scratch::create(&owned))
        .await
        .map_err(|e| e.to_string())??;
    let mut out = String::new();
    out.push_str(&format!(
        "PostgreSQL ({}, scratch database {}):\n\n",
        crate::store::postgres::redact(url),
        scratch.name
    ));
    let a_dir = root.join("a");
    let (a, _) =
        start_server_with(&a_dir, &["--database-url".into(), scratch.url.clone()], &[]).await?;
    // The pair: two more replicas of the same database, each sized as if on its own half of
    // this machine (half the request threads, half the connections), so that together they
    // hold what the single replica holds.
    let half = Share::half_of_this_machine();
    let mut pair = Vec::new();
    for name in ["pair-a", "pair-b"] {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        for file in ["credentials", "config"] {
            std::fs::copy(a_dir.join(file), dir.join(file)).map_err(|e| e.to_string())?;
        }
        let mut args = vec![
            "--database-url".into(),
            scratch.url.clone(),
            "--server-key-file".into(),
            a_dir.join("server.key").display().to_string(),
        ];
        args.extend(half.args());
        pair.push(start_server_with(&dir, &args, &half.env()).await?.0);
    }
    let (pair_a, pair_b) = (&pair[0], &pair[1]);
    let product = publish(&a).await?;
    // SQLite takes its turns beside PostgreSQL's, for the comparison of the two stores: a
    // single run of each at different moments compares the machine's phases as much as them.
    let (lite, _) = super::start_server(&root.join("sqlite")).await?;
    let lite_product = publish(&lite).await?;
    out.push_str(HEADER);
    let mut lines = vec![format!(
        "Each replica of the pair runs {} request threads and opens {} connections, half of \
         the single replica's, as if each had half of this machine to itself.",
        half.request_threads, half.connections
    )];
    let mut lite_rates = Vec::new();
    for &c in connections {
        let n = 1_000 * scale;
        // One replica and the pair take turns, so that a slow phase of the machine falls on
        // both alike: their CPU per Notify moves by ±15% from run to run here.
        let rounds = if c >= 2 { ROUNDS } else { 1 };
        let (mut lites, mut ones, mut twos, mut cpu_by_round) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for round in 0..rounds {
            let label = |who: &str| match round {
                0 => format!("pg notify {c}{who}"),
                r => format!("pg notify {c}{who} round {}", r + 1),
            };
            provision_many(&lite, &lite_product, &format!("lite-{c}-{round}"), n).await?;
            let tasks = Arc::new(drain_tasks(&lite, n).await?);
            lites.push(
                on_cpu_of(lite.child.id(), &label(" sqlite"), async {
                    Ok(notify_over(&[&lite], tasks, c).await?.0)
                })
                .await?,
            );
            provision_many(&a, &product, &format!("pg1-{c}-{round}"), n).await?;
            let tasks = Arc::new(drain_tasks(&a, n).await?);
            let mut one_cpu = Vec::new();
            ones.push(
                on_cpu_of(a.child.id(), &label(""), async {
                    let (stats, cpu) = notify_over(&[&a], tasks, c).await?;
                    one_cpu = cpu;
                    Ok(stats)
                })
                .await?,
            );
            if c < 2 {
                continue;
            }
            provision_many(&a, &product, &format!("pg2-{c}-{round}"), n).await?;
            let tasks = Arc::new(drain_tasks(&a, n).await?);
            let profiles = [
                super::Profile::start(pair_a.child.id(), &label(" replica a of 2")).await,
                super::Profile::start(pair_b.child.id(), &label(" replica b of 2")).await,
            ];
            let (two, two_cpu) = notify_over(&[pair_a, pair_b], tasks, c).await?;
            for profile in profiles {
                profile.stop();
            }
            twos.push(two);
            cpu_by_round.push((one_cpu[0], two_cpu));
        }
        let lite_notify = Stats::merged(lites);
        row(
            &mut out,
            "SQLite, in the same turns: Notify",
            c,
            &lite_notify,
        );
        let one = Stats::merged(ones);
        row(&mut out, "PostgreSQL, 1 replica: Notify", c, &one);
        let cycle = on_cpu_of(
            a.child.id(),
            &format!("pg cycle {c}"),
            cycles(&a, &product, c, 500 * scale, &format!("pg1cycle{c}")),
        )
        .await?;
        row(&mut out, "PostgreSQL, 1 replica: full cycle", c, &cycle);
        if c >= 2 {
            let two = Stats::merged(twos);
            row(&mut out, "PostgreSQL, 2 replicas: Notify (spread)", c, &two);
            let clocks = [pair_a.child.id(), pair_b.child.id()].map(super::CpuClock::start);
            let mut cycle2 = super::cycles_over(
                &[pair_a, pair_b],
                &product,
                c,
                500 * scale,
                &format!("pg2cycle{c}"),
            )
            .await?;
            cycle2.server_cpu = Some(clocks[0].elapsed() + clocks[1].elapsed());
            row(
                &mut out,
                "PostgreSQL, 2 replicas: full cycle (each call to the next replica)",
                c,
                &cycle2,
            );
            lines.push(format!(
                "At {c} connections: 1 replica {:.0}/s, 2 replicas {:.0}/s; {}",
                one.throughput(),
                two.throughput(),
                replica_cpu_rounds(&cpu_by_round)
            ));
        }
        lite_rates.push((c, lite_notify.throughput()));
        lines.push(format!(
            "At {c} connections: PostgreSQL (1 replica) / SQLite Notify, in the same turns: \
             {:.0}% (p99 {} ms against {} ms).",
            100.0 * one.throughput() / lite_notify.throughput(),
            ms(one.quantile(0.99)),
            ms(lite_notify.quantile(0.99))
        ));
        eprintln!("bench: postgres at {c} done");
    }
    drop((a, pair, lite));
    out.push('\n');

    // PostgreSQL alone: the Notify transaction shape from threads of this process.
    out.push_str(HEADER);
    let mut capacity = 0.0f64;
    for &c in connections {
        let url = scratch.url.clone();
        let total = 2_500 * scale;
        let stats = tokio::task::spawn_blocking(move || {
            let name = format!("alone_{c}");
            crate::store::postgres::run_outside_transaction(&url, &format!("CREATE SCHEMA {name}"))
                .map_err(|e| e.to_string())?;
            let store = crate::store::postgres::PostgresStore::open(&with_schema(&url, &name))
                .map_err(|e| e.to_string())?;
            store::notify_shaped(Arc::new(store), c, total)
        })
        .await
        .map_err(|e| e.to_string())??;
        capacity = capacity.max(stats.throughput());
        if let Some((_, lite)) = lite_rates.iter().find(|(k, _)| *k == c) {
            // What the database alone commits bounds what a replica can reach on a machine
            // whose cores the database shares with the server and the load generator.
            lines.push(format!(
                "At {c} connections: PostgreSQL alone / SQLite Notify in the same turns: {:.0}%, \
                 about the most the replica's ratio can reach while the database shares this \
                 machine's cores (the transactions alone spend less CPU beside it than a \
                 replica and its load generator).",
                100.0 * stats.throughput() / lite
            ));
        }
        row(
            &mut out,
            "PostgreSQL alone: Notify-shaped transactions (threads)",
            c,
            &stats,
        );
    }
    out.push('\n');
    for line in &lines {
        out.push_str(line);
        out.push('\n');
    }
    out.push_str(&format!(
        "Scale model: PostgreSQL here commits up to {capacity:.0} Notify-shaped transactions/s; \
         N replicas give about min(N × cores × 10⁶ / (server CPU µs per Notify), that) on \
         machines with more cores, the database's capacity being the bound past it.\n\n"
    ));
    Ok(out)
}

/// How many turns one replica and the pair take at each connection count past one.
const ROUNDS: usize = 3;

/// The server CPU per Notify of one replica against each replica of the pair, round by round
/// (`(one, [a, b])` in µs), and the median of the rounds' differences.
fn replica_cpu_rounds(rounds: &[(f64, Vec<f64>)]) -> String {
    let mut differences = Vec::new();
    let mut each = Vec::new();
    for (one, two) in rounds {
        let pair = two.iter().sum::<f64>() / two.len().max(1) as f64;
        let difference = 100.0 * (pair / one - 1.0);
        differences.push(difference);
        let two: Vec<String> = two.iter().map(|t| format!("{t:.0}")).collect();
        each.push(format!(
            "{one:.0} against {} µs ({difference:+.0}%)",
            two.join(" and ")
        ));
    }
    differences.sort_by(f64::total_cmp);
    let median = differences
        .get(differences.len() / 2)
        .copied()
        .unwrap_or(f64::NAN);
    format!(
        "server CPU per Notify, 1 replica against each of 2, in {} alternating rounds: {}; \
         median {median:+.0}%.",
        rounds.len(),
        each.join(", ")
    )
}

/// What a replica of the pair may use of this machine.
struct Share {
    request_threads: usize,
    connections: usize,
}

impl Share {
    fn half_of_this_machine() -> Share {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Share {
            request_threads: (cores / 2).max(1),
            connections: (crate::store::postgres::default_connections() / 2).max(1),
        }
    }

    fn args(&self) -> Vec<String> {
        vec![
            "--database-connections".into(),
            self.connections.to_string(),
        ]
    }

    /// tokio reads its number of worker threads from this variable.
    fn env(&self) -> Vec<(&'static str, String)> {
        vec![("TOKIO_WORKER_THREADS", self.request_threads.to_string())]
    }
}

/// `url` with its connections using schema `schema` (so one scratch database holds several
/// empty stores).
fn with_schema(url: &str, schema: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}options=-csearch_path%3D{schema}")
}
