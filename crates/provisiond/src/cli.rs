//! The command line: `serve` runs the server, `admin create-key` makes an access key. Logic lives
//! in the library modules; this file only parses arguments and wires things together.

use crate::auth::{self, KeyRing};
use crate::catalog::ServiceCatalog;
use crate::datadir::{self, DataDir};
use crate::queue::signal::QueueSignal;
use crate::queue::EngineQueues;
use crate::server::{self, App};
use crate::store::sqlite::SqliteStore;
use crate::store::Store;
use clap::{Parser, Subcommand};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

/// provisiond: AWS Service Catalog and Proton for external provisioning engines.
#[derive(Debug, Parser)]
#[command(name = "provisiond", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server on the embedded SQLite store.
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8787")]
        listen: SocketAddr,
        /// Where the database, the server key and the first credentials live.
        #[arg(long, default_value = "provisiond-data")]
        data_dir: PathBuf,
        /// Maps a Proton repository name (`owner/repo`, as registered with CreateRepository) to
        /// a git repository on this machine, bare or with a working tree: `NAME=PATH`.
        /// Repeatable. Deployments of environments using that repository are committed to it.
        #[arg(long = "git-repository", value_name = "NAME=PATH", value_parser = parse_git_repository)]
        git_repositories: Vec<(String, PathBuf)>,
    },
    /// Administer accounts and keys.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// Make an access key and print it once, as JSON.
    CreateKey {
        /// The data directory of the server (it may be running).
        #[arg(long, default_value = "provisiond-data")]
        data_dir: PathBuf,
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
}

/// Runs the command line.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("PROVISIOND_LOG")
        .unwrap_or_else(|_| "info".into());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let result = match cli.command {
        Command::Serve {
            listen,
            data_dir,
            git_repositories,
        } => serve(listen, data_dir, git_repositories.into_iter().collect()),
        Command::Admin {
            command:
                AdminCommand::CreateKey {
                    data_dir,
                    account,
                    principal,
                    admin,
                },
        } => create_key(data_dir, &account, &principal, admin),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("provisiond: {message}");
            ExitCode::FAILURE
        }
    }
}

/// What `serve` and `admin` open in a data directory.
struct Opened {
    dir: DataDir,
    store: Arc<dyn Store>,
    key: Arc<crate::crypto::ServerKey>,
}

fn open(data_dir: &Path) -> Result<Opened, String> {
    let dir = DataDir::open(data_dir)
        .map_err(|e| format!("data directory {}: {e}", data_dir.display()))?;
    let key = dir.server_key().map_err(|e| format!("server key: {e}"))?;
    let store = SqliteStore::open(&dir.database())
        .map_err(|e| format!("database {}: {e}", dir.database().display()))?;
    Ok(Opened {
        dir,
        store: Arc::new(store),
        key: Arc::new(key),
    })
}

fn create_key(
    data_dir: PathBuf,
    account: &str,
    principal: &str,
    admin: bool,
) -> Result<(), String> {
    auth::check_account(account)?;
    auth::check_principal(account, principal)?;
    let Opened { store, key, .. } = open(&data_dir)?;
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
    prepare_with_repositories(data_dir, BTreeMap::new())
}

/// [`prepare`], with Proton repository names mapped to git repositories on this machine.
pub fn prepare_with_repositories(
    data_dir: &Path,
    git_repositories: BTreeMap<String, PathBuf>,
) -> Result<Arc<App>, String> {
    let delivery = crate::proton::delivery::Deliverer::new(git_repositories);
    delivery.check()?;
    let Opened { dir, store, key } = open(data_dir)?;
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
    let queue_signal = Arc::new(QueueSignal::default());
    Ok(Arc::new(App {
        keys: KeyRing::new(store.clone(), key.clone()),
        store,
        catalog: ServiceCatalog,
        proton: crate::proton::Proton {
            delivery: Arc::new(delivery),
        },
        queues: EngineQueues::new(queue_signal.clone()),
        server_key: key,
        queue_signal,
    }))
}

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

fn serve(
    listen: SocketAddr,
    data_dir: PathBuf,
    git_repositories: BTreeMap<String, PathBuf>,
) -> Result<(), String> {
    let app = prepare_with_repositories(&data_dir, git_repositories)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("starting the runtime: {e}"))?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| format!("listening on {listen}: {e}"))?;
        let local = listener.local_addr().map_err(|e| e.to_string())?;
        tracing::info!(data_dir = %data_dir.display(), "listening on http://{local}");
        tokio::spawn(deliver_in_background(app.clone()));
        server::run(listener, app, shutdown_signal()).await;
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

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("installing the SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: shutting down"),
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
    }
}
