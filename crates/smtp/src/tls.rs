//! The TLS certificate for STARTTLS: the configured one, or a self-signed
//! certificate generated on first start and kept in the data directory.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::{Error, ErrorKind};

/// Where the generated certificate and key are kept, inside the data directory.
pub const TLS_DIR: &str = "tls";

fn tls_error(message: impl Into<String>) -> Error {
    ErrorKind::Tls(message.into()).into()
}

/// Loads `cert.pem` and `key.pem` from `<data>/tls`, generating a
/// self-signed pair for `hostname` first when they are absent. The key file
/// is created with mode 0600.
pub fn load_or_generate(data_dir: &Path, hostname: &str) -> Result<Arc<ServerConfig>, Error> {
    let dir = data_dir.join(TLS_DIR);
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    if !cert_path.exists() || !key_path.exists() {
        std::fs::create_dir_all(&dir)
            .map_err(|e| tls_error(format!("create {}: {e}", dir.display())))?;
        let generated = rcgen::generate_simple_self_signed(vec![hostname.to_owned()])
            .map_err(|e| tls_error(format!("generating a certificate: {e}")))?;
        let mut key = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&key_path)
            .map_err(|e| tls_error(format!("create {}: {e}", key_path.display())))?;
        key.write_all(generated.signing_key.serialize_pem().as_bytes())
            .and_then(|()| key.sync_all())
            .map_err(|e| tls_error(format!("write {}: {e}", key_path.display())))?;
        std::fs::write(&cert_path, generated.cert.pem())
            .map_err(|e| tls_error(format!("write {}: {e}", cert_path.display())))?;
        tracing::info!(message = "generated a self-signed TLS certificate", hostname, path = %cert_path.display());
    }
    load(&cert_path, &key_path)
}

/// Loads a PEM certificate chain and private key.
pub fn load(cert_path: &Path, key_path: &Path) -> Result<Arc<ServerConfig>, Error> {
    let certs = CertificateDer::pem_file_iter(cert_path)
        .map_err(|e| tls_error(format!("read {}: {e}", cert_path.display())))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| tls_error(format!("parse {}: {e}", cert_path.display())))?;
    let key = PrivateKeyDer::from_pem_file(key_path)
        .map_err(|e| tls_error(format!("read {}: {e}", key_path.display())))?;
    let config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_error(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| tls_error(format!("certificate and key do not match: {e}")))?;
    Ok(Arc::new(config))
}
