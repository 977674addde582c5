//! The command line: `serve` runs the server, `admin create-key` / `list-keys` / `delete-key`
//! manage access keys, `admin records` / `record-fail` / `record-retry` / `audit` find and
//! repair stuck work and show the audit log. Logic lives
//! in the library modules; this file only parses arguments and wires things together.

use crate::auth::{self, KeyRing};
use crate::catalog::ServiceCatalog;
use crate::datadir::{self, DataDir};
use crate::queue::EngineQueues;
use crate::server::{self, App};
use crate::store::sqlite::SqliteStore;
use crate::store::Store;
use clap::{Parser, Subcommand};
use provisiond_engine as engine;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

/// provisiond: AWS Service Catalog and Proton for external provisioning engines.
#[derive(Debug, Parser)]
#[command(name = "provisiond", version, about)]
pub struct Cli {
    /// How log lines are written to standard error: `text` for people, `json` (one object per
    /// line) for log collectors.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

/// The forms of log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    /// One line of text per event.
    Text,
    /// One JSON object per event: `timestamp`, `level`, `target`, `fields`.
    Json,
}

/// Where the store is: a data directory (the embedded SQLite store and the server key), or
/// a PostgreSQL database shared by several replicas and a server key file they share.
#[derive(Debug, Clone, clap::Args)]
struct StoreArgs {
    /// The data directory: the SQLite database, the server key, the first credentials; with
    /// `--database-url`, only this replica's local files (engine working directories, logs).
    #[arg(long, default_value = "provisiond-data")]
    data_dir: PathBuf,
    /// A PostgreSQL database (`postgres://USER@HOST:PORT/DB`) to keep everything in instead
    /// of `DATA_DIR/provisiond.db`; every replica of one deployment names the same one.
    #[arg(long, env = "PROVISIOND_DATABASE_URL", value_name = "URL")]
    database_url: Option<String>,
    /// Most connections this process opens to `--database-url` at once [default: four per
    /// core of this machine, 4 to 64]. More is slower once the database's cores are busy.
    #[arg(long, env = "PROVISIOND_DATABASE_CONNECTIONS", value_name = "N",
          value_parser = clap::value_parser!(u16).range(1..=1000))]
    database_connections: Option<u16>,
    /// The server key (seals workflow tokens and stored secrets), shared by every replica
    /// of one database [default: DATA_DIR/server.key, created if absent].
    #[arg(long, value_name = "PATH")]
    server_key_file: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (on the embedded SQLite store unless `--database-url` names PostgreSQL).
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8787")]
        listen: SocketAddr,
        #[command(flatten)]
        store: StoreArgs,
        /// Maps a Proton repository name (`owner/repo`, as registered with CreateRepository) to
        /// a git repository on this machine, bare or with a working tree: `NAME=PATH`.
        /// Repeatable. Deployments of environments using that repository are committed to it.
        #[arg(long = "git-repository", value_name = "NAME=PATH", value_parser = parse_git_repository)]
        git_repositories: Vec<(String, PathBuf)>,
        /// Start a built-in engine in this process (`terraform`): it polls this server with the
        /// keys of `DATA_DIR/credentials`, like `provisiond engine terraform` would.
        #[arg(long, value_parser = ["terraform"])]
        engine: Option<String>,
        /// Tasks the in-process engine runs at once.
        #[arg(long, default_value_t = 2)]
        workers: usize,
        /// The terraform executable of the in-process engine.
        #[arg(long, default_value = "terraform")]
        terraform: PathBuf,
        /// Seconds a task the in-process engine received stays invisible to other receivers
        /// (extended every third of it while it runs).
        #[arg(long, default_value_t = engine::terraform::DEFAULT_VISIBILITY_SECS, value_name = "SECONDS",
              value_parser = clap::value_parser!(u64).range(3..=43_200))]
        engine_visibility_timeout: u64,
        /// Most open connections; at the cap the quietest connection without a request in
        /// flight is closed for each new one.
        #[arg(long, default_value_t = 4096)]
        max_connections: usize,
        /// Seconds a connection has to send a whole request head.
        #[arg(long, default_value_t = 10.0, value_name = "SECONDS")]
        header_timeout: f64,
        /// The domain under which S3 requests name their bucket in the host
        /// (`<bucket>.<domain>[:port]`, virtual-hosted style, as SDKs address by default);
        /// requests to any other host are path-style.
        #[arg(long, default_value = DEFAULT_S3_DOMAIN, value_name = "DOMAIN")]
        s3_domain: String,
        /// Seconds a keep-alive connection may idle between requests.
        #[arg(long, default_value_t = 60.0, value_name = "SECONDS")]
        idle_timeout: f64,
        /// Fail every record and Proton deployment still in progress this long after it started
        /// (`30m`, `2h`, `1d`), as `admin record-fail` would, with a reason saying it timed out
        /// [default: never].
        #[arg(long, value_name = "DURATION", value_parser = crate::time::parse_duration)]
        record_timeout: Option<i64>,
        /// Days the audit log keeps an entry.
        #[arg(long, default_value_t = 90, value_name = "DAYS",
              value_parser = clap::value_parser!(u32).range(1..=36_500))]
        audit_retention: u32,
        /// Serve Prometheus metrics at `http://ADDR/metrics` (`127.0.0.1:9464`), a port for the
        /// operator's network only: it answers without a signature [default: off].
        #[arg(long, value_name = "ADDR")]
        metrics_listen: Option<SocketAddr>,
        /// The console (`/console/`) flags records and deployments in progress longer than
        /// this as stuck (`30m`, `2h`).
        #[arg(long, default_value = "1h", value_name = "DURATION", value_parser = crate::time::parse_duration)]
        stuck_after: i64,
    },
    /// Measure throughput and latency against the real server (see BENCHMARKS.md).
    Bench {
        /// Fewer requests per scenario: a smoke run.
        #[arg(long)]
        quick: bool,
        /// Multiply each scenario's requests by N (default 4, or 1 with --quick): longer runs
        /// for steadier figures and fuller profiles.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
        scale: Option<u16>,
        /// Also measure reads with 1,000,000 provisioned products stored (slow to seed).
        #[arg(long)]
        million: bool,
        /// moto's `moto_server` executable, to measure it on the comparable call.
        #[arg(long)]
        moto: Option<PathBuf>,
        /// Run at these connection counts only (repeatable; default 1, 8 and 64).
        #[arg(long = "connections")]
        connections: Vec<usize>,
        /// Write a `perf record` call-graph profile of the server per scenario into DIR.
        #[arg(long, value_name = "DIR")]
        perf: Option<PathBuf>,
        /// Also measure one and two replicas on this PostgreSQL server, in a scratch database
        /// the run makes and drops (`postgres://USER@HOST:PORT/DB`).
        #[arg(long, value_name = "URL")]
        database_url: Option<String>,
    },
    /// The bare `{}` server `bench` measures as the machine's ceiling.
    #[command(hide = true)]
    BenchCeiling {
        /// Address to listen on.
        #[arg(long)]
        listen: SocketAddr,
    },
    /// Run a built-in engine against a provisiond endpoint.
    Engine {
        #[command(subcommand)]
        command: EngineCommand,
    },
    /// Bring a PostgreSQL database's schema up to date, and nothing else (`serve` does it too,
    /// at start).
    Migrate {
        /// The PostgreSQL database (`postgres://USER@HOST:PORT/DB`).
        #[arg(long, env = "PROVISIOND_DATABASE_URL", value_name = "URL")]
        database_url: String,
    },
    /// Administer accounts and keys.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
}

#[derive(Debug, Subcommand)]
enum EngineCommand {
    /// The Terraform engine: long-polls the TerraformOS queues, runs terraform, notifies.
    Terraform {
        /// The provisiond endpoint, `http://host:port`.
        #[arg(long)]
        endpoint: String,
        /// Where working directories (with terraform state) and run logs are kept.
        #[arg(long, default_value = "provisiond-engine")]
        data_dir: PathBuf,
        /// An AWS shared credentials file; every profile in it is one account whose tasks the
        /// engine runs (default: `DATA_DIR/credentials`).
        #[arg(long)]
        credentials: Option<PathBuf>,
        /// The region to sign for.
        #[arg(long, default_value = "us-east-1")]
        region: String,
        /// Tasks run at once (never two for one provisioned product).
        #[arg(long, default_value_t = 2)]
        workers: usize,
        /// The terraform executable.
        #[arg(long, default_value = "terraform")]
        terraform: PathBuf,
        /// Seconds a received task stays invisible to other receivers (extended every third of
        /// it while it runs).
        #[arg(long, default_value_t = engine::terraform::DEFAULT_VISIBILITY_SECS, value_name = "SECONDS",
              value_parser = clap::value_parser!(u64).range(3..=43_200))]
        visibility_timeout: u64,
        /// A Proton repository (`owner/repo`) and the local git repository holding it:
        /// `NAME=PATH`. Repeatable. The engine applies the deployment commits it finds there.
        #[arg(long = "git-repository", value_name = "NAME=PATH", value_parser = parse_git_repository)]
        git_repositories: Vec<(String, PathBuf)>,
    },
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// Make an access key and print it once, as JSON.
    CreateKey {
        /// The server's store (it may be running).
        #[command(flatten)]
        store: StoreArgs,
        /// The 12-digit account the key belongs to.
        #[arg(long)]
        account: String,
        /// The IAM role or user ARN of that account the key acts as.
        #[arg(long)]
        principal: String,
        /// Whether the principal administers the account's catalog.
        #[arg(long)]
        admin: bool,
    },
    /// Print the access keys (never their secrets), one JSON object per line.
    ListKeys {
        /// The server's store (it may be running).
        #[command(flatten)]
        store: StoreArgs,
        /// Only the keys of this 12-digit account.
        #[arg(long)]
        account: Option<String>,
    },
    /// Delete an access key: a running server refuses it from its next request on.
    DeleteKey {
        /// The server's store (it may be running).
        #[command(flatten)]
        store: StoreArgs,
        /// The access key id (`AKIA…`).
        access_key_id: String,
    },
    /// Print the records and Proton deployments in progress for longer than a duration, with
    /// their engine task's state, oldest first, one JSON object per line.
    Records {
        /// The server's store (it may be running).
        #[command(flatten)]
        store: StoreArgs,
        /// How long in progress counts as stuck (`0s` lists everything in progress).
        #[arg(long, value_name = "DURATION", value_parser = crate::time::parse_duration)]
        stuck_for: i64,
        /// Only the work of this 12-digit account.
        #[arg(long)]
        account: Option<String>,
    },
    /// Settle a stuck record (or Proton deployment) as its engine's FAILED would, remove its
    /// engine task, and audit it.
    RecordFail {
        /// The server's store (it may be running).
        #[command(flatten)]
        store: StoreArgs,
        /// The record id (`rec-…`) or deployment id.
        id: String,
        /// Why: the record's error, the deployment's status message.
        #[arg(long)]
        reason: String,
    },
    /// Give a stuck record's engine task back to the engine under a fresh workflow token (the
    /// old one stops working), and audit it.
    RecordRetry {
        /// The server's store (it may be running).
        #[command(flatten)]
        store: StoreArgs,
        /// The record id (`rec-…`).
        id: String,
    },
    /// Print the audit log, oldest first, one JSON object per line.
    Audit {
        /// The server's store (it may be running).
        #[command(flatten)]
        store: StoreArgs,
        /// Only entries this recent (`1h`, `7d`).
        #[arg(long, value_name = "DURATION", value_parser = crate::time::parse_duration)]
        since: Option<i64>,
        /// Only entries of this 12-digit account.
        #[arg(long)]
        account: Option<String>,
        /// Only entries of this operation (`ProvisionProduct`, `record-fail`, …).
        #[arg(long)]
        operation: Option<String>,
    },
    /// Print the engine's full log of a record's (or a Proton deployment's) terraform runs.
    Logs {
        /// The data directory of the engine (for `serve --engine`, the server's).
        #[arg(long, default_value = "provisiond-data")]
        data_dir: PathBuf,
        /// The record id (`rec-…`) or deployment id.
        id: String,
    },
}

/// Runs the command line.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("PROVISIOND_LOG")
        .unwrap_or_else(|_| "info".into());
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false);
    match cli.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().init(),
    }
    let result = match cli.command {
        Command::Serve {
            listen,
            store,
            git_repositories,
            engine,
            workers,
            terraform,
            engine_visibility_timeout,
            max_connections,
            header_timeout,
            idle_timeout,
            s3_domain,
            record_timeout,
            audit_retention,
            metrics_listen,
            stuck_after,
        } => connection_limits(max_connections, header_timeout, idle_timeout).and_then(|limits| {
            serve(
                listen,
                store,
                git_repositories.into_iter().collect(),
                engine.map(|_| (workers, terraform, engine_visibility_timeout)),
                limits,
                s3_domain,
                Alongside {
                    record_timeout_ms: record_timeout,
                    audit_retention_ms: i64::from(audit_retention) * 86_400_000,
                    metrics_listen,
                    stuck_after_ms: stuck_after,
                },
            )
        }),
        Command::Bench {
            quick,
            scale,
            million,
            moto,
            connections,
            perf,
            database_url,
        } => crate::bench::main(crate::bench::Options {
            quick,
            scale: scale.map(usize::from),
            million,
            moto,
            connections,
            perf,
            database_url,
        }),
        Command::BenchCeiling { listen } => crate::bench::ceiling::main(listen),
        Command::Engine {
            command:
                EngineCommand::Terraform {
                    endpoint,
                    data_dir,
                    credentials,
                    region,
                    workers,
                    terraform,
                    visibility_timeout,
                    git_repositories,
                },
        } => run_engine(
            endpoint,
            data_dir,
            credentials,
            region,
            (workers, terraform, visibility_timeout),
            git_repositories.into_iter().collect(),
        ),
        Command::Admin {
            command: AdminCommand::Logs { data_dir, id },
        } => print_logs(&data_dir, &id),
        Command::Admin {
            command:
                AdminCommand::Records {
                    store,
                    stuck_for,
                    account,
                },
        } => list_stuck(&store, stuck_for, account.as_deref()),
        Command::Admin {
            command: AdminCommand::RecordFail { store, id, reason },
        } => open_existing(&store).and_then(|opened| {
            let actor = crate::repair::Actor::operator();
            let now = crate::time::now_ms();
            crate::repair::fail(
                opened.store.as_ref(),
                &id,
                &reason,
                &actor,
                "record-fail",
                now,
            )
            .map(|line| println!("{line}"))
            .map_err(|e| e.to_string())
        }),
        Command::Admin {
            command: AdminCommand::RecordRetry { store, id },
        } => open_existing(&store).and_then(|opened| {
            let actor = crate::repair::Actor::operator();
            let now = crate::time::now_ms();
            crate::repair::retry(opened.store.as_ref(), &opened.key, &id, &actor, now)
                .map(|line| println!("{line}"))
                .map_err(|e| e.to_string())
        }),
        Command::Admin {
            command:
                AdminCommand::Audit {
                    store,
                    since,
                    account,
                    operation,
                },
        } => print_audit(
            &store,
            crate::audit::Filter {
                since_ms: since.map(|d| crate::time::now_ms() - d),
                account,
                operation,
            },
        ),
        Command::Migrate { database_url } => crate::store::postgres::migrate_only(&database_url)
            .map(|()| println!("{}", serde_json::json!({"Migrated": true})))
            .map_err(|e| e.to_string()),
        Command::Admin {
            command: AdminCommand::ListKeys { store, account },
        } => list_keys(&store, account.as_deref()),
        Command::Admin {
            command:
                AdminCommand::DeleteKey {
                    store,
                    access_key_id,
                },
        } => delete_key(&store, &access_key_id),
        Command::Admin {
            command:
                AdminCommand::CreateKey {
                    store,
                    account,
                    principal,
                    admin,
                },
        } => create_key(&store, &account, &principal, admin),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("provisiond: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Every index of the domain, for [`crate::store::index::build_missing`].
fn index_backfills() -> Vec<crate::store::index::Backfill> {
    use crate::store::index::backfill;
    vec![
        backfill::<crate::catalog::product::Product>(),
        backfill::<crate::catalog::provisioning::Record>(),
        backfill::<crate::catalog::plan::Plan>(),
        backfill::<crate::proton::environment::Environment>(),
        backfill::<crate::proton::service::ServiceInstance>(),
        backfill::<crate::proton::component::Component>(),
        backfill::<crate::proton::deployment::Deployment>(),
    ]
}

/// How the work in progress of a database older than `in_flight` is found.
fn in_flight_backfills() -> Vec<(
    crate::in_flight::Work,
    crate::store::Kind,
    crate::in_flight::Backfill,
)> {
    use crate::in_flight::{Page, Work};
    use crate::store::{Kind, StoreError, Tx};
    fn records(tx: &mut dyn Tx, scope: &str, after: Option<i64>) -> Result<Page, StoreError> {
        use crate::catalog::{provisioning::Record, status::RecordStatus};
        let rows = crate::store::list::<Record>(tx, Kind::Record, scope, "", after, 500)?;
        let next = (rows.len() == 500)
            .then(|| rows.last().map(|r| r.0))
            .flatten();
        let found = rows
            .into_iter()
            .filter(|(_, r)| r.status == RecordStatus::InProgress)
            .map(|(_, r)| (r.id, r.created_ms))
            .collect();
        Ok((found, next))
    }
    fn deployments(tx: &mut dyn Tx, scope: &str, after: Option<i64>) -> Result<Page, StoreError> {
        use crate::proton::deployment::Deployment;
        let kind = Kind::ProtonDeployment;
        let rows = crate::store::list::<Deployment>(tx, kind, scope, "", after, 500)?;
        let next = (rows.len() == 500)
            .then(|| rows.last().map(|r| r.0))
            .flatten();
        let found = rows
            .into_iter()
            .filter(|(_, d)| !d.is_final())
            .map(|(_, d)| (d.id, d.created_ms))
            .collect();
        Ok((found, next))
    }
    vec![
        (Work::Record, Kind::Record, records),
        (Work::Deployment, Kind::ProtonDeployment, deployments),
    ]
}

/// What `serve` and `admin` open in a data directory.
struct Opened {
    dir: DataDir,
    store: Arc<dyn Store>,
    key: Arc<crate::crypto::ServerKey>,
}

fn open(args: &StoreArgs) -> Result<Opened, String> {
    let data_dir = &args.data_dir;
    let dir = DataDir::open(data_dir)
        .map_err(|e| format!("data directory {}: {e}", data_dir.display()))?;
    let key_file = args
        .server_key_file
        .clone()
        .unwrap_or_else(|| dir.server_key_file());
    let key = crate::crypto::ServerKey::load_or_create(&key_file)
        .map_err(|e| format!("server key {}: {e}", key_file.display()))?;
    let store: Arc<dyn Store> = match &args.database_url {
        None => Arc::new(
            SqliteStore::open(&dir.database())
                .map_err(|e| format!("database {}: {e}", dir.database().display()))?,
        ),
        Some(url) => Arc::new(
            crate::store::postgres::PostgresStore::open_with(
                url,
                args.database_connections
                    .map_or_else(crate::store::postgres::default_connections, usize::from),
            )
            .map_err(|e| format!("database {}: {e}", crate::store::postgres::redact(url)))?,
        ),
    };
    auth::check_server_key(store.as_ref(), &key).map_err(|e| match e {
        auth::KeyCheck::Mismatch => format!(
            "the server key {} is not the key this database's secrets are sealed under; \
             every replica must use the same --server-key-file",
            key_file.display()
        ),
        auth::KeyCheck::Store(e) => e.to_string(),
    })?;
    crate::store::index::build_missing(store.as_ref(), &index_backfills())
        .map_err(|e| format!("building the store's indexes: {e}"))?;
    crate::in_flight::build_missing(store.as_ref(), &in_flight_backfills())
        .map_err(|e| format!("noting the work in progress: {e}"))?;
    Ok(Opened {
        dir,
        store,
        key: Arc::new(key),
    })
}

/// Opens the store of an existing server for an `admin` command: a server key that does not
/// exist is refused rather than made (its keys would be unknown to the server the operator
/// meant).
fn open_existing(args: &StoreArgs) -> Result<Opened, String> {
    let key_file = args
        .server_key_file
        .clone()
        .unwrap_or_else(|| args.data_dir.join("server.key"));
    if !key_file.is_file() {
        return Err(match &args.server_key_file {
            None => format!(
                "{} is not a provisiond data directory (it has no server.key); \
                 pass the --data-dir the server runs with",
                args.data_dir.display()
            ),
            Some(_) => format!(
                "there is no server key file {}; pass the --server-key-file the server runs with",
                key_file.display()
            ),
        });
    }
    open(args)
}

fn list_stuck(args: &StoreArgs, stuck_for_ms: i64, account: Option<&str>) -> Result<(), String> {
    if let Some(account) = account {
        auth::check_account(account)?;
    }
    let Opened { store, .. } = open_existing(args)?;
    let now = crate::time::now_ms();
    for underway in crate::repair::stuck(store.as_ref(), stuck_for_ms, account, now)
        .map_err(|e| e.to_string())?
    {
        println!("{}", underway.line);
    }
    Ok(())
}

fn print_audit(args: &StoreArgs, filter: crate::audit::Filter) -> Result<(), String> {
    if let Some(account) = &filter.account {
        auth::check_account(account)?;
    }
    let Opened { store, .. } = open_existing(args)?;
    for entry in crate::audit::entries(store.as_ref(), &filter).map_err(|e| e.to_string())? {
        println!("{}", entry.to_json());
    }
    Ok(())
}

fn list_keys(args: &StoreArgs, account: Option<&str>) -> Result<(), String> {
    if let Some(account) = account {
        auth::check_account(account)?;
    }
    let Opened { store, .. } = open_existing(args)?;
    for key in auth::list_keys(store.as_ref(), account).map_err(|e| e.to_string())? {
        let json = serde_json::json!({
            "AccessKeyId": key.access_key_id,
            "Account": key.account,
            "Principal": key.principal,
            "Admin": key.admin,
            "Created": crate::time::format_iso8601(key.created_ms),
        });
        println!("{json}");
    }
    Ok(())
}

fn delete_key(args: &StoreArgs, access_key_id: &str) -> Result<(), String> {
    let Opened { store, .. } = open_existing(args)?;
    if !auth::delete_key(store.as_ref(), access_key_id).map_err(|e| e.to_string())? {
        return Err(format!(
            "there is no access key {access_key_id:?} (see `provisiond admin list-keys`)"
        ));
    }
    println!(
        "{}",
        serde_json::json!({"AccessKeyId": access_key_id, "Deleted": true})
    );
    Ok(())
}

fn create_key(args: &StoreArgs, account: &str, principal: &str, admin: bool) -> Result<(), String> {
    auth::check_account(account)?;
    auth::check_principal(account, principal)?;
    let Opened { store, key, .. } = open_existing(args)?;
    let new = auth::create_key(store.as_ref(), &key, account, principal, admin)
        .map_err(|e| e.to_string())?;
    let json = serde_json::json!({
        "AccessKeyId": new.access_key_id,
        "SecretAccessKey": new.secret.expose(),
        "Account": new.account,
        "Principal": new.principal,
    });
    println!("{json}");
    Ok(())
}

/// Opens the data directory (creating the first admin key and its credentials file for a
/// newcomer) and returns the application the server serves.
pub fn prepare(data_dir: &Path) -> Result<Arc<App>, String> {
    let args = StoreArgs {
        data_dir: data_dir.to_path_buf(),
        database_url: None,
        database_connections: None,
        server_key_file: None,
    };
    prepare_with_repositories(&args, BTreeMap::new())
}

/// [`prepare`], with Proton repository names mapped to git repositories on this machine.
fn prepare_with_repositories(
    args: &StoreArgs,
    git_repositories: BTreeMap<String, PathBuf>,
) -> Result<Arc<App>, String> {
    let delivery = crate::proton::delivery::Deliverer::new(git_repositories);
    delivery.check()?;
    let Opened { dir, store, key } = open(args)?;
    if !auth::any_key_exists(store.as_ref()).map_err(|e| e.to_string())? {
        let first = auth::create_key(
            store.as_ref(),
            &key,
            datadir::DEFAULT_ACCOUNT,
            datadir::DEFAULT_ADMIN_PRINCIPAL,
            true,
        )
        .map_err(|e| e.to_string())?;
        dir.write_credentials(&first)
            .map_err(|e| format!("writing credentials: {e}"))?;
        tracing::info!(
            credentials = %dir.credentials_file().display(),
            config = %dir.config_file().display(),
            account = datadir::DEFAULT_ACCOUNT,
            "created the first admin key as profile [{}]",
            datadir::PROFILE
        );
    }
    let keys = Arc::new(KeyRing::new(store.clone(), key.clone()));
    let s3 = Arc::new(crate::s3::ObjectStore {
        store: store.clone(),
        keys: keys.clone(),
        domain: DEFAULT_S3_DOMAIN.to_string(),
        system_buckets: vec![
            crate::catalog::product::ARTIFACT_BUCKET,
            crate::proton::delivery::DEPLOYMENT_BUCKET,
        ],
    });
    let console = Arc::new(crate::console::Console {
        store: store.clone(),
        keys: keys.clone(),
        server_key: key.clone(),
        engine_status: std::sync::OnceLock::new(),
        data_dir: args.data_dir.clone(),
        stuck_after_ms: crate::console::DEFAULT_STUCK_AFTER_MS,
    });
    Ok(Arc::new(App {
        console,
        keys,
        s3,
        store,
        catalog: ServiceCatalog,
        engine_status: std::sync::OnceLock::new(),
        metrics: std::sync::OnceLock::new(),
        proton: crate::proton::Proton {
            delivery: Arc::new(delivery),
        },
        queues: EngineQueues,
        server_key: key,
    }))
}

/// The domain of virtual-hosted-style S3 requests unless `serve --s3-domain` says otherwise.
pub const DEFAULT_S3_DOMAIN: &str = "localhost";

fn parse_git_repository(text: &str) -> Result<(String, PathBuf), String> {
    let (name, path) = text
        .split_once('=')
        .filter(|(n, p)| !n.is_empty() && !p.is_empty())
        .ok_or_else(|| {
            format!("{text:?} is not NAME=PATH (for example acme/env-repo=/srv/git/env-repo.git)")
        })?;
    let path = std::path::absolute(path).map_err(|e| format!("{path}: {e}"))?;
    Ok((name.to_string(), path))
}

fn print_logs(data_dir: &Path, id: &str) -> Result<(), String> {
    let path = engine::terraform::log_path(data_dir, id);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("no log for {id} at {}: {e}", path.display()))?;
    print!("{text}");
    Ok(())
}

/// Every profile of an AWS shared credentials file, as engine credentials for `region`.
fn read_credentials(path: &Path, region: &str) -> Result<Vec<engine::client::Credentials>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        format!(
            "{}: {e}; give the engine a credentials file with --credentials FILE (profiles with \
             aws_access_key_id and aws_secret_access_key, one per account it serves)",
            path.display()
        )
    })?;
    let mut found = Vec::new();
    let mut current: Option<(Option<String>, Option<String>)> = None;
    let mut finish = |entry: Option<(Option<String>, Option<String>)>| {
        if let Some((Some(id), Some(secret))) = entry {
            found.push(engine::client::Credentials {
                access_key_id: id,
                secret: Arc::new(crate::crypto::Secret::new(secret).into()),
                region: region.to_string(),
            });
        }
    };
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            finish(current.take());
            current = Some((None, None));
        } else if let (Some(entry), Some((k, v))) = (current.as_mut(), line.split_once('=')) {
            match k.trim() {
                "aws_access_key_id" => entry.0 = Some(v.trim().to_string()),
                "aws_secret_access_key" => entry.1 = Some(v.trim().to_string()),
                _ => {}
            }
        }
    }
    finish(current.take());
    if found.is_empty() {
        return Err(format!(
            "{} has no profile with a key and a secret; give the engine its keys with \
             --credentials FILE",
            path.display()
        ));
    }
    Ok(found)
}

/// The built-in engine's workers, terraform executable and task visibility (seconds).
type EngineOptions = (usize, PathBuf, u64);

fn run_engine(
    endpoint: String,
    data_dir: PathBuf,
    credentials: Option<PathBuf>,
    region: String,
    (workers, terraform, visibility_secs): EngineOptions,
    git_repositories: BTreeMap<String, PathBuf>,
) -> Result<(), String> {
    let credentials = credentials.unwrap_or_else(|| data_dir.join("credentials"));
    let version = engine::terraform::check_terraform(&terraform)?;
    tracing::info!(terraform = %terraform.display(), %version, "engine: terraform found");
    let (_keep_the_list, credentials) =
        tokio::sync::watch::channel(read_credentials(&credentials, &region)?);
    let (stop_engine, stop) = tokio::sync::watch::channel(false);
    let config = engine::terraform::Config {
        endpoint,
        credentials,
        data_dir,
        workers,
        terraform,
        visibility_secs,
        git_repositories,
        stop,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("starting the runtime: {e}"))?;
    runtime.block_on(async move {
        let status = Arc::new(engine::terraform::Status::default());
        let engine = tokio::spawn(engine::terraform::run(config, status));
        shutdown_signal().await;
        let _ = stop_engine.send(true);
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), engine).await;
    });
    Ok(())
}

fn connection_limits(max: usize, header: f64, idle: f64) -> Result<server::Limits, String> {
    let seconds = |name: &str, v: f64| {
        if v.is_finite() && v > 0.0 && v <= 86_400.0 {
            Ok(std::time::Duration::from_secs_f64(v))
        } else {
            Err(format!(
                "--{name} {v}: give a number of seconds above 0, at most 86400"
            ))
        }
    };
    if max == 0 {
        return Err("--max-connections must be at least 1".into());
    }
    Ok(server::Limits {
        max_connections: max,
        header_read: seconds("header-timeout", header)?,
        idle: seconds("idle-timeout", idle)?,
    })
}

/// What `serve` runs beside the API and deliveries: background upkeep, the metrics listener.
struct Alongside {
    /// `--record-timeout`.
    record_timeout_ms: Option<i64>,
    /// `--audit-retention`, in milliseconds.
    audit_retention_ms: i64,
    /// `--metrics-listen`.
    metrics_listen: Option<SocketAddr>,
    /// `--stuck-after`: the console flags work in progress longer than this.
    stuck_after_ms: i64,
}

fn serve(
    listen: SocketAddr,
    store: StoreArgs,
    git_repositories: BTreeMap<String, PathBuf>,
    engine: Option<EngineOptions>,
    limits: server::Limits,
    s3_domain: String,
    alongside: Alongside,
) -> Result<(), String> {
    let data_dir = store.data_dir.clone();
    let mut app = prepare_with_repositories(&store, git_repositories.clone())?;
    let object_store = crate::s3::ObjectStore {
        domain: s3_domain.trim_matches('.').to_ascii_lowercase(),
        ..app.s3.as_ref().clone()
    };
    let console = crate::console::Console {
        store: app.store.clone(),
        keys: app.keys.clone(),
        server_key: app.server_key.clone(),
        engine_status: std::sync::OnceLock::new(),
        data_dir: data_dir.clone(),
        stuck_after_ms: alongside.stuck_after_ms,
    };
    let unshared = Arc::get_mut(&mut app).expect("the app is not shared yet");
    unshared.s3 = Arc::new(object_store);
    unshared.console = Arc::new(console);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("starting the runtime: {e}"))?;
    runtime.block_on(async move {
        let listener = server::listen(listen).map_err(|e| format!("listening on {listen}: {e}"))?;
        let local = listener.local_addr().map_err(|e| e.to_string())?;
        tracing::info!(data_dir = %data_dir.display(), "listening on http://{local}");
        let metrics = match alongside.metrics_listen {
            Some(addr) => {
                let metrics = crate::metrics::Metrics::new(app.store.clone());
                let _ = app.metrics.set(metrics.clone());
                let listener = server::listen(addr)
                    .map_err(|e| format!("listening for metrics on {addr}: {e}"))?;
                let at = listener.local_addr().map_err(|e| e.to_string())?;
                tracing::info!("metrics at http://{at}/metrics");
                // Stopped (aborted) once the API has drained.
                let task = tokio::spawn(crate::metrics::listener::run(
                    listener,
                    metrics.clone(),
                    std::future::pending(),
                ));
                Some((metrics, task))
            }
            None => None,
        };
        tokio::spawn(deliver_in_background(app.clone()));
        tokio::spawn(sweep_audit_in_background(
            app.clone(),
            alongside.audit_retention_ms,
        ));
        if let Some(timeout_ms) = alongside.record_timeout_ms {
            tokio::spawn(time_out_in_background(app.clone(), timeout_ms));
        }
        let mut engine_tasks = Vec::new();
        let mut engine_keys = None;
        let (stop_engine, stop) = tokio::sync::watch::channel(false);
        if let Some((workers, terraform, visibility_secs)) = engine {
            let version = engine::terraform::check_terraform(&terraform)?;
            tracing::info!(terraform = %terraform.display(), %version, "engine: terraform found");
            // The store is synchronous (and PostgreSQL's client must not run on this thread).
            let (mut keys, credentials) = tokio::task::block_in_place(|| {
                crate::engine_keys::EngineKeys::start(
                    app.store.clone(),
                    app.server_key.clone(),
                    datadir::DEFAULT_REGION,
                )
            })?;
            tokio::task::block_in_place(|| keys.refresh())?;
            let keys = Arc::new(tokio::sync::Mutex::new(keys));
            let keeping_up = tokio::spawn(crate::engine_keys::EngineKeys::keep_up(keys.clone()));
            engine_keys = Some((keys, keeping_up));
            let config = engine::terraform::Config {
                endpoint: format!("http://{local}"),
                credentials,
                data_dir: data_dir.clone(),
                workers,
                terraform,
                visibility_secs,
                git_repositories,
                stop,
            };
            let status = Arc::new(engine::terraform::Status::default());
            let _ = app.engine_status.set(status.clone());
            let _ = app.console.engine_status.set(status.clone());
            if let Some((metrics, _)) = &metrics {
                metrics.observe_engine(status.clone());
            }
            engine_tasks.push(tokio::spawn(engine::terraform::run(config, status)));
        }
        let store = app.store.clone();
        let shutdown = async move {
            shutdown_signal().await;
            // The in-process engine stops polling first (its long polls end with it), then every
            // other long poll answers, then the server drains.
            let _ = stop_engine.send(true);
            for task in engine_tasks {
                let _ = tokio::time::timeout(std::time::Duration::from_secs(1), task).await;
            }
            store.wakeups().close();
        };
        server::run(listener, app, limits, shutdown).await;
        if let Some((_, task)) = metrics {
            task.abort();
        }
        if let Some((keys, keeping_up)) = engine_keys {
            keeping_up.abort();
            let mut keys = keys.lock().await;
            tokio::task::block_in_place(|| keys.retire());
        }
        tracing::info!("stopped");
        Ok(())
    })
}

/// Retries pending Proton deliveries (a git repository that was unavailable, a crash between a
/// commit and its acknowledgement) every five seconds.
async fn deliver_in_background(app: Arc<App>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
    loop {
        tick.tick().await;
        let app = app.clone();
        let _ = tokio::task::spawn_blocking(move || {
            app.proton.delivery.deliver_pending(app.store.as_ref())
        })
        .await;
    }
}

/// `serve --record-timeout`: fails what has been in progress too long, checking a few times
/// per timeout (every second at most, every thirty at least); one replica at a time.
async fn time_out_in_background(app: Arc<App>, timeout_ms: i64) {
    let every = (timeout_ms / 3).clamp(1_000, 30_000) as u64;
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(every));
    let holder = crate::store::lease::new_holder();
    loop {
        tick.tick().await;
        let (app, holder) = (app.clone(), holder.clone());
        let done = tokio::task::spawn_blocking(move || {
            let now = crate::time::now_ms();
            crate::repair::time_out(app.store.as_ref(), &holder, timeout_ms, now)
        })
        .await;
        if let Ok(Err(e)) = done {
            tracing::warn!(error = %e, "record timeout: will try again");
        }
    }
}

/// Deletes audit entries past their retention and console sessions that ended, at start and
/// hourly.
async fn sweep_audit_in_background(app: Arc<App>, retention_ms: i64) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(3_600));
    loop {
        tick.tick().await;
        let app = app.clone();
        let done = tokio::task::spawn_blocking(move || {
            let now = crate::time::now_ms();
            let sessions = crate::console::session::sweep(app.store.as_ref(), now);
            (
                crate::audit::sweep(app.store.as_ref(), now - retention_ms),
                sessions,
            )
        })
        .await;
        let Ok((entries, sessions)) = done else {
            continue;
        };
        match entries {
            Ok(n) if n > 0 => tracing::info!(entries = n, "audit log: swept expired entries"),
            Err(e) => tracing::warn!(error = %e, "audit log sweep: will try again"),
            _ => {}
        }
        if let Err(e) = sessions {
            tracing::warn!(error = %e, "console sessions sweep: will try again");
        }
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("installing the SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: shutting down"),
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
    }
}
