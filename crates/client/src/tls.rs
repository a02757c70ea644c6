//! TLS options for `https://`: the two security association frameworks of TS-0003 clause
//! 8.2, on OpenSSL (the one TLS stack here with external PSKs).
//!
//! - **PSK** (8.2.1): the client offers only PSK cipher suites, and the key proves the
//!   server. Certificates play no part: a server that answers with one is refused.
//! - **Certificates** (8.2.2): the server's chain is verified against the given trust
//!   anchors (never the system store) and its name against the URL's host or
//!   [`TlsOptions::server_name`]. A client certificate is sent if the server asks.
//!
//! Either way TLS 1.2 is the lowest version offered; [`TlsOptions::protocol`] pins one.

use crate::error::TlsError;
use crate::psk::Psk;
use openssl::pkey::PKey;
use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode, SslVersion};
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::{X509VerifyResult, X509};
use std::fmt;
use std::io::Read;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// TLS 1.2 suites offered with a PSK: the oneM2M PSK suites, one with forward secrecy.
const PSK_TLS12_CIPHERS: &str =
    "PSK-AES128-CBC-SHA256:ECDHE-PSK-AES128-CBC-SHA256:PSK-AES128-GCM-SHA256";
/// TLS 1.3 suites offered with a PSK. OpenSSL's legacy PSK client callback (the only PSK
/// hook rust-openssl exposes) makes a TLS 1.3 external PSK only for SHA-256 suites.
const PSK_TLS13_SUITES: &str = "TLS_AES_128_GCM_SHA256";
/// Largest key or certificate file read (a chain of a few certificates fits easily).
const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// How the client proves the server's identity (and its own) on `https://` connections.
///
/// Built with the methods below and handed to [`crate::Client::with_tls`], which loads the
/// files and checks the combination. Choose one framework: a [`Psk`], or trust anchors
/// (plus, optionally, a client certificate and key).
///
/// ```no_run
/// # fn run() -> Result<(), client::ClientError> {
/// use client::{Client, Psk, TlsOptions};
/// let psk = Psk::from_hex_file("dev1@sp.example", "dev1.psk".as_ref())?;
/// let ae = Client::with_tls("https://cse.example:8443", TlsOptions::new().psk(psk))?;
/// let admin = Client::with_tls(
///     "https://127.0.0.1:8443",
///     TlsOptions::new()
///         .trust_anchor_file("ca.pem")
///         .client_cert_files("admin.pem", "admin.key")
///         .server_name("cse.example"),
/// )?;
/// # Ok(()) }
/// ```
#[derive(Default)]
pub struct TlsOptions {
    trust_anchors: Vec<Pem>,
    client_cert: Option<(Pem, KeyPem)>,
    psk: Option<Psk>,
    server_name: Option<String>,
    protocol: Option<TlsProtocol>,
}

/// One TLS version, for a client that must use exactly that one
/// ([`TlsOptions::protocol`]); without it the client offers TLS 1.2 and 1.3.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsProtocol {
    /// TLS 1.2 only (RFC 5246).
    Tls12,
    /// TLS 1.3 only (RFC 8446).
    Tls13,
}

/// Certificates (public): a file or inline PEM.
enum Pem {
    File(PathBuf),
    Inline(Vec<u8>),
}

/// A private key: a file (which must be private) or inline PEM in a zeroizing buffer.
enum KeyPem {
    File(PathBuf),
    Inline(Zeroizing<Vec<u8>>),
}

impl TlsOptions {
    /// No trust anchors, no client certificate, no PSK: add one framework before use.
    pub fn new() -> Self {
        Self::default()
    }

    /// Trusts the CA certificates in the PEM file `path` to issue the server's
    /// certificate. Repeatable; the system's trust store is never used.
    pub fn trust_anchor_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.trust_anchors.push(Pem::File(path.into()));
        self
    }

    /// Trusts the CA certificates in `pem`. Repeatable.
    pub fn trust_anchor_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.trust_anchors.push(Pem::Inline(pem.into()));
        self
    }

    /// Sends the certificate chain in the PEM file `chain` (leaf first) with the private key
    /// in the PEM file `key` when the server asks for a client certificate. On Unix the
    /// key file must not be accessible by group or others.
    pub fn client_cert_files(mut self, chain: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.client_cert = Some((Pem::File(chain.into()), KeyPem::File(key.into())));
        self
    }

    /// Like [`TlsOptions::client_cert_files`] with the chain and key given as PEM.
    pub fn client_cert_pem(mut self, chain: impl Into<Vec<u8>>, key: Zeroizing<Vec<u8>>) -> Self {
        self.client_cert = Some((Pem::Inline(chain.into()), KeyPem::Inline(key)));
        self
    }

    /// Uses the PSK framework with `psk`.
    pub fn psk(mut self, psk: Psk) -> Self {
        self.psk = Some(psk);
        self
    }

    /// The name sent as SNI and checked against the server certificate when connecting to
    /// the client's base URL, instead of the URL's host: for reaching a CSE by IP address
    /// or through a tunnel. Other URLs ([`crate::Client::send_to_url`]) are always checked
    /// against their own host.
    pub fn server_name(mut self, name: impl Into<String>) -> Self {
        self.server_name = Some(name.into());
        self
    }

    /// Offers only `protocol`: for an exchange whose meaning depends on the version (an
    /// enrolee asked to use TLS 1.2 with the oneM2M PSK suites, say) or a test of one.
    pub fn protocol(mut self, protocol: TlsProtocol) -> Self {
        self.protocol = Some(protocol);
        self
    }

    /// Loads the files and builds the OpenSSL configuration.
    pub(crate) fn build(self) -> Result<TlsConfig, TlsError> {
        let server_name = self.server_name.map(check_server_name).transpose()?;
        let mut b = SslConnector::builder(SslMethod::tls_client())?;
        let (lowest, highest) = match self.protocol {
            None => (SslVersion::TLS1_2, None),
            Some(TlsProtocol::Tls12) => (SslVersion::TLS1_2, Some(SslVersion::TLS1_2)),
            Some(TlsProtocol::Tls13) => (SslVersion::TLS1_3, Some(SslVersion::TLS1_3)),
        };
        b.set_min_proto_version(Some(lowest))?;
        b.set_max_proto_version(highest)?;
        // Replaces the store `SslConnector::builder` filled from the system defaults: only
        // the configured trust anchors vouch for a server.
        let mut store = X509StoreBuilder::new()?;
        let framework = match self.psk {
            Some(psk) => {
                if !self.trust_anchors.is_empty() {
                    return Err(TlsError::Conflict(
                        "trust anchors are not used with a PSK: the PSK authenticates the server",
                    ));
                }
                if self.client_cert.is_some() {
                    return Err(TlsError::Conflict(
                        "choose one framework: a PSK or a client certificate, not both",
                    ));
                }
                b.set_cipher_list(PSK_TLS12_CIPHERS)?;
                b.set_ciphersuites(PSK_TLS13_SUITES)?;
                // NOTE(psk): a TLS 1.3 server that does not accept the PSK falls back to a
                // certificate. This client has no trust anchors for that case and refuses
                // every certificate, so the PSK is the only way in.
                b.set_verify_callback(SslVerifyMode::PEER, |_, ctx| {
                    ctx.set_error(X509VerifyResult::APPLICATION_VERIFICATION);
                    false
                });
                let identity = psk.identity().to_owned();
                b.set_psk_client_callback(move |_ssl, _hint, identity_out, key_out| {
                    psk.write_to(identity_out, key_out)
                        .ok_or_else(openssl::error::ErrorStack::get)
                });
                Framework::Psk { identity }
            }
            None => {
                if self.trust_anchors.is_empty() {
                    return Err(TlsError::NoTrustAnchors);
                }
                for pem in &self.trust_anchors {
                    for cert in certificates(pem, "trust anchor")? {
                        store.add_cert(cert)?;
                    }
                }
                b.set_verify(SslVerifyMode::PEER);
                let client_cert = match self.client_cert {
                    Some((chain, key)) => {
                        let mut chain = certificates(&chain, "client certificate")?.into_iter();
                        if let Some(leaf) = chain.next() {
                            b.set_certificate(&leaf)?;
                        }
                        for extra in chain {
                            b.add_extra_chain_cert(extra)?;
                        }
                        let (bytes, origin) = match key {
                            KeyPem::File(path) => (read_private_file(&path)?, path_origin(&path)),
                            KeyPem::Inline(pem) => (pem, "inline PEM".to_owned()),
                        };
                        let key =
                            PKey::private_key_from_pem(&bytes).map_err(|e| TlsError::Pem {
                                what: "client private key",
                                origin,
                                reason: e.to_string(),
                            })?;
                        // OpenSSL 3 already compares the key with the certificate here.
                        b.set_private_key(&key).map_err(TlsError::KeyMismatch)?;
                        b.check_private_key().map_err(TlsError::KeyMismatch)?;
                        true
                    }
                    None => false,
                };
                Framework::Certificate { client_cert }
            }
        };
        b.set_cert_store(store.build());
        Ok(TlsConfig {
            connector: b.build(),
            server_name,
            framework,
        })
    }
}

impl fmt::Debug for TlsOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsOptions")
            .field("trust_anchors", &self.trust_anchors)
            .field(
                "client_cert",
                &self.client_cert.as_ref().map(|(chain, _)| chain),
            )
            .field("psk", &self.psk)
            .field("server_name", &self.server_name)
            .field("protocol", &self.protocol)
            .finish()
    }
}

impl fmt::Debug for Pem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(path) => path.fmt(f),
            Self::Inline(_) => f.write_str("<inline PEM>"),
        }
    }
}

/// The OpenSSL configuration the connector uses for every `https://` connection.
pub(crate) struct TlsConfig {
    pub(crate) connector: SslConnector,
    /// The SNI and verified name for the base URL, when not its host.
    pub(crate) server_name: Option<String>,
    framework: Framework,
}

impl TlsConfig {
    /// Whether the client authenticates with a PSK (a failed handshake then most likely
    /// means the server refused that PSK).
    pub(crate) fn is_psk(&self) -> bool {
        matches!(self.framework, Framework::Psk { .. })
    }
}

/// What the configuration does, for `Debug` (never the key).
enum Framework {
    Psk { identity: String },
    Certificate { client_cert: bool },
}

impl fmt::Debug for Framework {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Psk { identity } => f.debug_struct("Psk").field("identity", identity).finish(),
            Self::Certificate { client_cert } => f
                .debug_struct("Certificate")
                .field("client_cert", client_cert)
                .finish(),
        }
    }
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfig")
            .field("framework", &self.framework)
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

fn check_server_name(name: String) -> Result<String, TlsError> {
    let valid_dns = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        });
    if valid_dns || name.parse::<IpAddr>().is_ok() {
        Ok(name)
    } else {
        Err(TlsError::InvalidServerName(name))
    }
}

/// All certificates in a PEM source; at least one.
fn certificates(pem: &Pem, what: &'static str) -> Result<Vec<X509>, TlsError> {
    let (bytes, origin) = match pem {
        Pem::File(path) => (read_file(path)?, path_origin(path)),
        Pem::Inline(bytes) => (bytes.clone(), "inline PEM".to_owned()),
    };
    let invalid = |reason: String| TlsError::Pem {
        what,
        origin: origin.clone(),
        reason,
    };
    let certs = X509::stack_from_pem(&bytes).map_err(|e| invalid(e.to_string()))?;
    if certs.is_empty() {
        return Err(invalid("no PEM certificate found".to_owned()));
    }
    Ok(certs)
}

fn path_origin(path: &Path) -> String {
    path.display().to_string()
}

fn read_file(path: &Path) -> Result<Vec<u8>, TlsError> {
    let read_error = |error| TlsError::Read {
        path: path.to_owned(),
        error,
    };
    let file = std::fs::File::open(path).map_err(read_error)?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES)
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    Ok(bytes)
}

/// Reads a key file into a zeroizing buffer, refusing (on Unix) a file that group or
/// others may access. The mode is checked on the opened file, so the file cannot be
/// swapped between the check and the read.
pub(crate) fn read_private_file(path: &Path) -> Result<Zeroizing<Vec<u8>>, TlsError> {
    let read_error = |error| TlsError::Read {
        path: path.to_owned(),
        error,
    };
    let file = std::fs::File::open(path).map_err(read_error)?;
    let meta = file.metadata().map_err(read_error)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(TlsError::KeyFileNotPrivate {
                path: path.to_owned(),
                mode,
            });
        }
    }
    // Sized up front so `read_to_end` does not reallocate and leave copies of the key
    // behind in freed memory.
    let len = usize::try_from(meta.len().min(MAX_FILE_BYTES)).unwrap_or(0);
    let mut bytes = Zeroizing::new(Vec::with_capacity(len + 1));
    file.take(MAX_FILE_BYTES)
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "00112233445566778899aabbccddeeff";

    fn psk() -> Psk {
        Psk::from_hex("dev1", KEY).expect("valid")
    }

    #[test]
    fn one_framework_at_a_time() {
        assert!(matches!(
            TlsOptions::new().build(),
            Err(TlsError::NoTrustAnchors)
        ));
        assert!(TlsOptions::new().psk(psk()).build().is_ok());
        assert!(matches!(
            TlsOptions::new()
                .psk(psk())
                .trust_anchor_pem(b"x".to_vec())
                .build(),
            Err(TlsError::Conflict(_))
        ));
        assert!(matches!(
            TlsOptions::new()
                .psk(psk())
                .client_cert_pem(b"x".to_vec(), Zeroizing::new(b"y".to_vec()))
                .build(),
            Err(TlsError::Conflict(_))
        ));
    }

    #[test]
    fn pem_errors_name_their_origin() {
        let err = TlsOptions::new()
            .trust_anchor_pem(b"not a certificate".to_vec())
            .build()
            .expect_err("no certificate");
        assert!(
            matches!(&err, TlsError::Pem { what: "trust anchor", origin, .. } if origin == "inline PEM"),
            "{err}"
        );
        let err = TlsOptions::new()
            .trust_anchor_file("/nonexistent/ca.pem")
            .build()
            .expect_err("missing file");
        assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
    }

    #[test]
    fn server_names() {
        for ok in ["cse.example", "localhost", "127.0.0.1", "::1", "a-b_c.d"] {
            assert!(check_server_name(ok.to_owned()).is_ok(), "{ok}");
        }
        for bad in ["", "a..b", "a b", "[::1]", "x/y", ".", "a.b."] {
            assert!(check_server_name(bad.to_owned()).is_err(), "{bad}");
        }
    }

    #[test]
    fn debug_never_shows_keys() {
        let opts = TlsOptions::new()
            .psk(psk())
            .client_cert_pem(b"chain".to_vec(), Zeroizing::new(b"SECRETKEY".to_vec()));
        let text = format!("{opts:?}");
        assert!(
            text.contains("dev1") && text.contains("<inline PEM>"),
            "{text}"
        );
        assert!(
            !text.contains("SECRETKEY") && !text.contains("aabb"),
            "{text}"
        );
        let config = TlsOptions::new().psk(psk()).build().expect("valid");
        let text = format!("{config:?}");
        assert!(text.contains("dev1") && !text.contains("aabb"), "{text}");
    }
}
