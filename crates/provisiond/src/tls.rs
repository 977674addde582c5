//! The TLS client configuration provisiond's outgoing connections share (template URLs,
//! PostgreSQL with `sslmode=require`): the machine's trust store as `rustls-native-certs`
//! finds it, which honours `SSL_CERT_FILE` and `SSL_CERT_DIR` as OpenSSL does.

use std::sync::{Arc, OnceLock};

/// The configuration, built once per process.
pub fn client_config() -> Result<Arc<rustls::ClientConfig>, String> {
    static CONFIG: OnceLock<Result<Arc<rustls::ClientConfig>, String>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let found = rustls_native_certs::load_native_certs();
            let mut roots = rustls::RootCertStore::empty();
            let (added, _ignored) = roots.add_parsable_certificates(found.certs);
            if added == 0 {
                return Err(format!(
                    "no trusted certificate authority was found on this machine ({} errors); set SSL_CERT_FILE to a PEM bundle",
                    found.errors.len()
                ));
            }
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|e| e.to_string())?
                .with_root_certificates(roots)
                .with_no_client_auth();
            Ok(Arc::new(config))
        })
        .clone()
}
