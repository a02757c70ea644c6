//! What a TLS listener accepts: the policy with its defaults, and the names the CSE answers to.

use model::clock::Clock;
use std::path::PathBuf;
use std::time::Duration;

/// The lowest TLS version a listener accepts. TLS 1.3 is always enabled; TLS 1.1, TLS 1.0
/// and SSL 3 are always refused, whatever the policy says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TlsVersion {
    /// TLS 1.2 (RFC 5246), the version TS-0003 clause 10.2.1 requires, and TLS 1.3.
    #[default]
    Tls12,
    /// TLS 1.3 only. Not conformant to TS-0003 Release 3, which names TLS 1.2; for
    /// deployments whose clients are known to speak TLS 1.3.
    Tls13,
}

/// The files of the certificate-based framework (TS-0003 clause 8.2.2.2). All are read and
/// checked when the acceptor is built; nothing is read later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateConfig {
    /// PEM: the CSE's certificate first, then the intermediate CA certificates, in order.
    /// The key must be ECDSA P-256 (TS-0003 clause 10.1.1.1).
    pub chain: PathBuf,
    /// The private key of the first certificate in `chain`: a PEM file, or a key in a key
    /// home whose signatures are computed inside the home.
    pub key: ServerKey,
    /// PEM CA certificates that client certificates must chain to. At least one.
    pub trust_anchors: Vec<PathBuf>,
    /// PEM or DER CRLs. When any is given, revocation is checked for every certificate of a
    /// client's chain, so every CA that issues client (or intermediate) certificates needs a
    /// current CRL here.
    pub crls: Vec<PathBuf>,
}

/// Where the CSE's TLS private key is.
#[derive(Debug, Clone)]
pub enum ServerKey {
    /// A PEM private key file (PKCS#8 or SEC1, unencrypted), not readable by group or others.
    /// The key is in the process's memory: level 1 at best.
    File(PathBuf),
    /// A `tls-server` key in a key home: the handshake's signatures are computed inside the
    /// home (TPM, PKCS#11 token, encrypted software store), and at levels 2 and 3 the key
    /// never leaves it. A home that cannot sign fails that handshake only.
    Home(keystore::SigningKey),
}

impl ServerKey {
    /// The key's security level: its home's, or 1 for a key file.
    pub fn level(&self) -> keystore::Level {
        match self {
            Self::File(_) => keystore::Level::Software,
            Self::Home(key) => key.level(),
        }
    }

    /// Where the key is, for messages: the file, or `key <id> in home <home>`.
    pub fn describe(&self) -> String {
        match self {
            Self::File(path) => path.display().to_string(),
            Self::Home(key) => format!("key {} in home {}", key.handle().id(), key.handle().home()),
        }
    }
}

impl From<PathBuf> for ServerKey {
    fn from(path: PathBuf) -> Self {
        Self::File(path)
    }
}

impl PartialEq for ServerKey {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::File(a), Self::File(b)) => a == b,
            (Self::Home(a), Self::Home(b)) => a.handle() == b.handle(),
            _ => false,
        }
    }
}

impl Eq for ServerKey {}

/// The default [`TlsPolicy::session_lifetime`].
pub const DEFAULT_SESSION_LIFETIME: Duration = Duration::from_secs(600);

/// What a TLS listener accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsPolicy {
    /// Enables the certificate framework (mutual TLS). A client certificate is then required,
    /// unless `psk` is enabled too and the client authenticates with a PSK instead.
    pub certificate: Option<CertificateConfig>,
    /// Enables the provisioned symmetric key framework (TS-0003 clause 8.2.2.1): the TLS
    /// `psk_identity` is a KpsaID, looked up in the [`CredentialStore`](crate::credentials::CredentialStore).
    pub psk: bool,
    /// The lowest version accepted; default TLS 1.2.
    pub min_version: TlsVersion,
    /// Bound on the whole handshake, from accept to the established association; default 5 s.
    pub handshake_timeout: Duration,
    /// Handshakes in progress on this listener, at most; default 256.
    pub max_handshakes: usize,
    /// Handshakes in progress from one IPv4 address or one IPv6 /64, at most; default 16.
    pub max_handshakes_per_ip: usize,
    /// Session resumption (server-side session cache and session tickets); default on, as
    /// constrained clients depend on it.
    pub session_resumption: bool,
    /// How long a session (cache entry or ticket) may be resumed; default 10 minutes.
    /// OpenSSL's own default is 2 hours. A resumption re-checks withdrawal, the client
    /// certificate's validity and the CRLs anyway; the lifetime bounds how long one
    /// handshake's keys keep serving new connections.
    pub session_lifetime: Duration,
    /// Restricts the suites offered to these (IANA names, e.g.
    /// `TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256`), kept in the server's preference order.
    /// Only suites of the built-in list can be named, and the suites TS-0003 makes mandatory
    /// for an enabled framework cannot be removed. `None`: every built-in suite.
    pub suites: Option<Vec<String>>,
    /// The time certificates, CRLs and sessions are checked at: the system clock, or a test's
    /// [`ManualClock`](model::clock::ManualClock) (the CSE's `CseConfig::clock`).
    pub clock: Clock,
}

impl Default for TlsPolicy {
    /// No framework enabled (an acceptor refuses such a policy), TLS 1.2 and 1.3, 5 s, 256
    /// handshakes, 16 per address, resumption on with sessions of 10 minutes.
    fn default() -> Self {
        Self {
            certificate: None,
            psk: false,
            min_version: TlsVersion::Tls12,
            handshake_timeout: Duration::from_secs(5),
            max_handshakes: 256,
            max_handshakes_per_ip: 16,
            session_resumption: true,
            session_lifetime: DEFAULT_SESSION_LIFETIME,
            suites: None,
            clock: Clock::system(),
        }
    }
}

/// The names of the CSE that runs the listener, used to read CSE-ID certificates: the public
/// domain name of an IN-CSE is `<cse-id>.<sp-id>`, that of an MN-CSE below it
/// `<mn-id>.<cse-id>.<sp-id>` (TS-0001 clause 7.2, TS-0003 clause 10.1.1.7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalIdentity {
    /// The M2M-SP-ID, `secure-cse.example` (a leading `//` is ignored).
    pub sp_id: String,
    /// The CSE-ID, `id-in` (a leading `/` is ignored).
    pub cse_id: String,
}

impl LocalIdentity {
    /// The SP-ID without leading slashes.
    pub(crate) fn sp(&self) -> &str {
        self.sp_id.trim_start_matches('/')
    }

    /// The CSE-ID without leading slashes.
    pub(crate) fn cse(&self) -> &str {
        self.cse_id.trim_start_matches('/')
    }

    /// The public domain name of this CSE, `<cse-id>.<sp-id>`.
    pub fn public_domain_name(&self) -> String {
        format!("{}.{}", self.cse(), self.sp())
    }
}
