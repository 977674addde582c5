//! What the domain and store tests share: a throwaway PostgreSQL server.

use std::path::Path;
use std::process::Command;

/// A PostgreSQL server started by `scripts/postgres.sh` in a temporary directory, stopped and
/// removed when dropped.
pub struct TestPostgres {
    dir: tempfile::TempDir,
    /// The URL of its `postgres` database.
    pub url: String,
}

fn script() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/postgres.sh")
}

impl TestPostgres {
    /// Starts a server; `None` (said loudly) when PostgreSQL is not installed, which under
    /// `CI=true` is a failure instead.
    pub fn start() -> Option<TestPostgres> {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let out = Command::new("bash")
            .arg(script())
            .arg("start")
            .arg(dir.path())
            .output()
            .expect("running scripts/postgres.sh");
        if out.status.code() == Some(3) {
            let why = String::from_utf8_lossy(&out.stderr);
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("PostgreSQL is required under CI=true: {why}");
            }
            eprintln!("SKIPPED: the PostgreSQL tests need PostgreSQL's binaries: {why}");
            return None;
        }
        assert!(
            out.status.success(),
            "starting PostgreSQL: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let url = String::from_utf8(out.stdout).unwrap().trim().to_string();
        Some(TestPostgres { dir, url })
    }

    /// A new, empty database on this server; its URL.
    pub fn database(&self, name: &str) -> String {
        let mut client = postgres::Client::connect(&self.url, postgres::NoTls).unwrap();
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap();
        let base = self.url.rsplit_once('/').expect("a URL with a database").0;
        format!("{base}/{name}")
    }

    /// The directory that holds the server's Unix socket.
    pub fn socket_dir(&self) -> &Path {
        self.dir.path()
    }

    /// The certificate authority that signed the server's TLS certificate (`DIR/tls/ca.crt`),
    /// when `scripts/postgres.sh` could make one (it needs `openssl`).
    pub fn tls_authority(&self) -> Option<std::path::PathBuf> {
        let ca = self.dir.path().join("tls/ca.crt");
        ca.exists().then_some(ca)
    }

    /// The server's certificate itself: a PEM file that is no certificate authority.
    pub fn tls_certificate(&self) -> std::path::PathBuf {
        self.dir.path().join("tls/server.crt")
    }

    /// The server's port.
    pub fn port(&self) -> u16 {
        let after_host = self.url.rsplit_once(':').expect("a URL with a port").1;
        after_host
            .split('/')
            .next()
            .unwrap()
            .parse()
            .expect("a port")
    }

    /// Runs `sql` as the superuser on database `postgres`.
    pub fn admin(&self, sql: &str) {
        let mut client = postgres::Client::connect(&self.url, postgres::NoTls).unwrap();
        client.batch_execute(sql).unwrap();
    }

    /// Stops the server (its data stays), as an outage would.
    pub fn stop(&self) {
        self.run("stop");
    }

    /// Starts it again on the same port.
    pub fn restart(&self) {
        self.run("start");
    }

    fn run(&self, what: &str) {
        let status = Command::new("bash")
            .arg(script())
            .arg(what)
            .arg(self.dir.path())
            .stdout(std::process::Stdio::null())
            .status()
            .expect("running scripts/postgres.sh");
        assert!(status.success(), "scripts/postgres.sh {what}");
    }
}

impl Drop for TestPostgres {
    fn drop(&mut self) {
        self.run("kill");
    }
}
