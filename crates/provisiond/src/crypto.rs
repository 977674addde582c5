//! The server key and what it protects: secrets at rest are sealed with ChaCha20-Poly1305 under
//! keys derived from it (one per purpose), and `Secret` keeps secrets out of logs and memory.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::fmt;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use zeroize::{Zeroize, Zeroizing};

pub use provisiond_sigv4::Secret;

/// What a sealed value is for; each purpose seals under its own derived key.
#[derive(Debug, Clone, Copy)]
pub enum Purpose {
    /// Secret access keys stored in the database.
    AccessKeySecret,
    /// Workflow tokens handed to engines.
    WorkflowToken,
    /// The proof, kept in the database, of which server key its secrets are sealed under.
    KeyCheck,
}

impl Purpose {
    fn label(self) -> &'static [u8] {
        match self {
            Purpose::AccessKeySecret => b"provisiond/v1/access-key-secret",
            Purpose::WorkflowToken => b"provisiond/v1/workflow-token",
            Purpose::KeyCheck => b"provisiond/v1/key-check",
        }
    }
}

/// The 32-byte server key, kept in `<data dir>/server.key` (mode 0600).
pub struct ServerKey([u8; 32]);

impl Drop for ServerKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for ServerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ServerKey([redacted])")
    }
}

/// Sealing failed: the value was not sealed by this key for this purpose and context.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenError;

impl ServerKey {
    /// A fresh random key.
    pub fn generate() -> Self {
        let mut k = [0u8; 32];
        getrandom::getrandom(&mut k).expect("the OS random source is available");
        ServerKey(k)
    }

    /// Reads the key at `path`, or creates it (mode 0600) when the file does not exist.
    pub fn load_or_create(path: &Path) -> std::io::Result<Self> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::from_hex(text.trim()).ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{} does not hold a 64-digit hex key", path.display()),
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = Self::generate();
                let mut hex_text = Zeroizing::new(hex::encode(key.0));
                hex_text.push('\n');
                match std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(path)
                {
                    Ok(mut f) => {
                        f.write_all(hex_text.as_bytes())?;
                        f.sync_all()?;
                        Ok(key)
                    }
                    // Another process created it first: use theirs.
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        Self::load_or_create(path)
                    }
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }

    fn from_hex(text: &str) -> Option<Self> {
        let bytes = hex::decode(text).ok()?;
        let arr: [u8; 32] = bytes.try_into().ok()?;
        Some(ServerKey(arr))
    }

    fn derive(&self, purpose: Purpose) -> Zeroizing<[u8; 32]> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("any key length");
        mac.update(purpose.label());
        Zeroizing::new(mac.finalize().into_bytes().into())
    }

    /// Seals `plain` for `purpose`, bound to `context` (which must be given again to open it).
    /// The result is standard base64 of nonce ‖ ciphertext ‖ tag.
    pub fn seal(&self, purpose: Purpose, context: &[u8], plain: &[u8]) -> String {
        let key = self.derive(purpose);
        let cipher = ChaCha20Poly1305::new(Key::from_slice(&key[..]));
        let mut nonce = [0u8; 12];
        getrandom::getrandom(&mut nonce).expect("the OS random source is available");
        let sealed = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plain,
                    aad: context,
                },
            )
            .expect("encryption of a bounded message cannot fail");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        B64.encode(out)
    }

    /// Opens what `seal` produced for the same purpose and context.
    pub fn open(
        &self,
        purpose: Purpose,
        context: &[u8],
        sealed: &str,
    ) -> Result<Vec<u8>, OpenError> {
        let raw = B64.decode(sealed).map_err(|_| OpenError)?;
        if raw.len() < 12 + 16 {
            return Err(OpenError);
        }
        let key = self.derive(purpose);
        let cipher = ChaCha20Poly1305::new(Key::from_slice(&key[..]));
        cipher
            .decrypt(
                Nonce::from_slice(&raw[..12]),
                Payload {
                    msg: &raw[12..],
                    aad: context,
                },
            )
            .map_err(|_| OpenError)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_the_same_key_purpose_and_context() {
        let key = ServerKey::generate();
        let sealed = key.seal(Purpose::AccessKeySecret, b"AKIA1", b"s3cret");
        assert_eq!(
            key.open(Purpose::AccessKeySecret, b"AKIA1", &sealed)
                .unwrap(),
            b"s3cret"
        );
        assert!(key
            .open(Purpose::AccessKeySecret, b"AKIA2", &sealed)
            .is_err());
        assert!(key.open(Purpose::WorkflowToken, b"AKIA1", &sealed).is_err());
        assert!(ServerKey::generate()
            .open(Purpose::AccessKeySecret, b"AKIA1", &sealed)
            .is_err());
        assert!(key
            .open(Purpose::AccessKeySecret, b"AKIA1", "not base64!")
            .is_err());
    }

    #[test]
    fn the_key_file_is_private_and_stable() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.key");
        let a = ServerKey::load_or_create(&path).unwrap();
        let b = ServerKey::load_or_create(&path).unwrap();
        assert_eq!(a.0, b.0);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(format!("{a:?}"), "ServerKey([redacted])");
        assert_eq!(format!("{:?}", Secret::new("x".into())), "[redacted]");
    }
}
