//! TLS for `rediss://` with rustls (no system OpenSSL): the server's certificate checked
//! against the system's CAs, or the PEM file `ssl_ca_certs` names, and its host name.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};

use crate::error::{Result, StoreError};

/// The client configuration, built once per store.
pub fn config(ca_file: Option<&str>, setting: &str) -> Result<Arc<ClientConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs: Vec<CertificateDer<'static>> = match ca_file {
        Some(path) => CertificateDer::pem_file_iter(path)
            .and_then(|it| it.collect())
            .map_err(|_| {
                StoreError::Config(format!(
                    "{setting}: ssl_ca_certs {path} cannot be read as PEM certificates"
                ))
            })?,
        None => rustls_native_certs::load_native_certs().certs,
    };
    let mut roots = RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(StoreError::Config(format!(
            "{setting}: rediss:// checks the server's certificate, and {} holds no CA certificate; \
             give one with ssl_ca_certs=/path/ca.pem",
            ca_file.unwrap_or("the system")
        )));
    }
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|_| StoreError::Internal("rustls has no protocol version"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}
