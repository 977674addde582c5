//! The data directory: `provisiond.db` (the SQLite store), `server.key` (mode 0600) and, for a
//! newcomer, `credentials` and `config`: an AWS shared-credentials profile `[provisiond]` holding
//! the first admin key, so the AWS CLI and SDKs work at once.

use crate::auth::NewKey;
use crate::crypto::ServerKey;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The account a newcomer's first key belongs to.
pub const DEFAULT_ACCOUNT: &str = "000000000000";
/// The principal of a newcomer's first key.
pub const DEFAULT_ADMIN_PRINCIPAL: &str = "arn:aws:iam::000000000000:role/provisiond-admin";
/// The profile name written to the credentials file.
pub const PROFILE: &str = "provisiond";
/// The region the written config file names.
pub const DEFAULT_REGION: &str = "us-east-1";

/// A data directory on disk.
#[derive(Debug, Clone)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    /// Opens `root`, creating it (mode 0700) if needed.
    pub fn open(root: &Path) -> std::io::Result<Self> {
        if !root.exists() {
            std::fs::create_dir_all(root)?;
            std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o700))?;
        }
        Ok(DataDir {
            root: root.to_path_buf(),
        })
    }

    /// The directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the SQLite database lives.
    pub fn database(&self) -> PathBuf {
        self.root.join("provisiond.db")
    }

    /// The server key, created on first use.
    pub fn server_key(&self) -> std::io::Result<ServerKey> {
        ServerKey::load_or_create(&self.server_key_file())
    }

    /// Where the server key is kept unless `--server-key-file` says otherwise.
    pub fn server_key_file(&self) -> PathBuf {
        self.root.join("server.key")
    }

    /// Where the newcomer's shared-credentials file is written.
    pub fn credentials_file(&self) -> PathBuf {
        self.root.join("credentials")
    }

    /// Where the newcomer's AWS config file (the profile's region) is written.
    pub fn config_file(&self) -> PathBuf {
        self.root.join("config")
    }

    /// Writes `key` as profile `[provisiond]` to `credentials` and its region to `config`, both
    /// mode 0600.
    pub fn write_credentials(&self, key: &NewKey) -> std::io::Result<()> {
        let credentials = format!(
            "[{PROFILE}]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            key.access_key_id,
            key.secret.expose()
        );
        let config = format!("[profile {PROFILE}]\nregion = {DEFAULT_REGION}\n");
        write_private(&self.credentials_file(), credentials.as_bytes())?;
        write_private(&self.config_file(), config.as_bytes())
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}
