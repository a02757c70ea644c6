//! Test fixtures: a PKI generated at test time (nothing secret is checked in), a TLS
//! listener on 127.0.0.1:0 that reports each handshake's outcome, and real clients
//! (`openssl s_client`, `curl`).
#![allow(dead_code, unreachable_pub)]

use rcgen::{
    date_time_ymd, BasicConstraints, CertificateParams, CertificateRevocationListParams, DnType,
    ExtendedKeyUsagePurpose, GeneralSubtree, IsCa, KeyIdMethod, KeyPair, KeyUsagePurpose,
    NameConstraints, RevokedCertParams, SanType, SerialNumber,
};
use security::association::{Established, PeerIdentity};
use security::credentials::FileCredentials;
use security::tls::{CertificateConfig, HandshakeError, LocalIdentity, TlsAcceptor, TlsPolicy};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

pub const SP: &str = "secure-cse.example";
pub const CSE: &str = "id-in";
pub const AE1: &str = "//secure-cse.example/id-in/Cae1";
pub const PSK_ID: &str = "sensor-1@secure-cse.example";
pub const PSK_HEX: &str = "00112233445566778899aabbccddeeff";
pub const CSE_PSK_ID: &str = "mn-cse@secure-cse.example";
pub const CSE_PSK_HEX: &str = "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf";

// === PKI ===

/// A certificate and key on disk.
#[derive(Debug, Clone)]
pub struct Issued {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// The Credential-ID digest (SHA-256 of the TBSCertificate, lowercase hex).
    pub sha256: String,
}

/// Every file the tests use, generated once per test binary in a temporary directory.
#[derive(Debug)]
pub struct Pki {
    _dir: tempfile::TempDir,
    pub dir: PathBuf,
    pub ca: PathBuf,
    pub ca_key: PathBuf,
    pub other_ca: PathBuf,
    pub crl: PathBuf,
    pub crl_der: PathBuf,
    pub other_crl: PathBuf,
    pub server: Issued,
    /// Server certificate followed by the CA (chain with an extra certificate).
    pub server_with_ca: PathBuf,
    pub clients: HashMap<&'static str, Issued>,
}

impl Pki {
    pub fn client(&self, name: &str) -> &Issued {
        self.clients
            .get(name)
            .unwrap_or_else(|| panic!("no client certificate {name}"))
    }
}

pub fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(generate)
}

fn key() -> KeyPair {
    KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("P-256 key")
}

fn write_key(path: &Path, key: &KeyPair) {
    std::fs::write(path, key.serialize_pem()).expect("write key");
    set_mode(path, 0o600);
}

pub fn set_mode(path: &Path, mode: u32) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    }
}

fn ca_params(name: &str, constrained: bool) -> CertificateParams {
    let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
    p.distinguished_name.push(DnType::CommonName, name);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    p.key_identifier_method = KeyIdMethod::Sha256;
    if constrained {
        // TS-0003 10.1.1.5/10.1.1.7: the CA constrains the names it may certify.
        p.name_constraints = Some(NameConstraints {
            permitted_subtrees: vec![
                GeneralSubtree::DnsName(SP.into()),
                GeneralSubtree::DnsName("localhost".into()),
            ],
            excluded_subtrees: vec![],
        });
    }
    p
}

struct Leaf {
    name: &'static str,
    cn: &'static str,
    sans: Vec<SanType>,
    ku: Vec<KeyUsagePurpose>,
    eku: Vec<ExtendedKeyUsagePurpose>,
    expired: bool,
    serial: Option<u64>,
}

fn leaf(name: &'static str, cn: &'static str, sans: Vec<SanType>) -> Leaf {
    Leaf {
        name,
        cn,
        sans,
        ku: vec![KeyUsagePurpose::DigitalSignature],
        eku: vec![ExtendedKeyUsagePurpose::ClientAuth],
        expired: false,
        serial: None,
    }
}

fn uri(s: &str) -> SanType {
    SanType::URI(s.try_into().expect("ia5"))
}

fn dns(s: &str) -> SanType {
    SanType::DnsName(s.try_into().expect("ia5"))
}

fn sha256_hex(der: &[u8]) -> String {
    security::tls::certificate_id::certificate_digest(der).expect("a certificate")
}

fn generate() -> Pki {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().to_owned();
    let path = |n: &str| root.join(n);

    let ca_key = key();
    let ca = ca_params("secure-cse test CA", true)
        .self_signed(&ca_key)
        .expect("CA");
    std::fs::write(path("ca.pem"), ca.pem()).expect("write");
    write_key(&path("ca.key"), &ca_key);
    let other_key = key();
    let other = ca_params("some other CA", false)
        .self_signed(&other_key)
        .expect("other CA");
    std::fs::write(path("other-ca.pem"), other.pem()).expect("write");

    let issue = |l: Leaf, issuer: &rcgen::Certificate, issuer_key: &KeyPair| -> Issued {
        let k = key();
        let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
        p.distinguished_name.push(DnType::CommonName, l.cn);
        p.subject_alt_names = l.sans;
        p.key_usages = l.ku;
        p.extended_key_usages = l.eku;
        p.use_authority_key_identifier_extension = true;
        p.not_before = date_time_ymd(2024, 1, 1);
        p.not_after = if l.expired {
            date_time_ymd(2024, 6, 1)
        } else {
            date_time_ymd(2090, 1, 1)
        };
        if let Some(serial) = l.serial {
            p.serial_number = Some(SerialNumber::from_slice(&serial_bytes(serial)));
        }
        let cert = p.signed_by(&k, issuer, issuer_key).expect("issue");
        let issued = Issued {
            cert: path(&format!("{}.pem", l.name)),
            key: path(&format!("{}.key", l.name)),
            sha256: sha256_hex(cert.der()),
        };
        std::fs::write(&issued.cert, cert.pem()).expect("write");
        write_key(&issued.key, &k);
        issued
    };

    let mut server = leaf(
        "server",
        "id-in",
        vec![dns("id-in.secure-cse.example"), dns("localhost")],
    );
    server.eku = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server = issue(server, &ca, &ca_key);
    let server_with_ca = path("server-with-ca.pem");
    let chain = std::fs::read_to_string(&server.cert).expect("read") + &ca.pem();
    std::fs::write(&server_with_ca, chain).expect("write");

    let mut clients = HashMap::new();
    let mut add = |l: Leaf, foreign: bool| {
        let name = l.name;
        let issued = if foreign {
            issue(l, &other, &other_key)
        } else {
            issue(l, &ca, &ca_key)
        };
        clients.insert(name, issued);
    };
    add(leaf("ae1", "Cae1", vec![uri(AE1)]), false);
    add(
        leaf(
            "ae-scheme",
            "Sae2",
            vec![uri("onem2m://secure-cse.example/Sae2"), dns("localhost")],
        ),
        false,
    );
    add(
        leaf("mn", "id-mn", vec![dns("id-mn.id-in.secure-cse.example")]),
        false,
    );
    add(
        leaf(
            "device",
            "device-42",
            vec![uri("urn:dev:mac:0024befffe804ff1")],
        ),
        false,
    );
    add(
        leaf(
            "nameless",
            "device-43",
            vec![uri("urn:dev:mac:0024befffe804ff2")],
        ),
        false,
    );
    add(
        leaf(
            "wildcard",
            "wildcard",
            vec![dns("*.id-in.secure-cse.example")],
        ),
        false,
    );
    let mut expired = leaf(
        "expired",
        "Cexp",
        vec![uri("//secure-cse.example/id-in/Cexp")],
    );
    expired.expired = true;
    add(expired, false);
    let mut revoked = leaf(
        "revoked",
        "Crev",
        vec![uri("//secure-cse.example/id-in/Crev")],
    );
    revoked.serial = Some(0x0bad_cafe);
    add(revoked, false);
    let mut server_only = leaf(
        "server-only",
        "Csrv",
        vec![uri("//secure-cse.example/id-in/Csrv")],
    );
    server_only.eku = vec![ExtendedKeyUsagePurpose::ServerAuth];
    add(server_only, false);
    let mut key_agreement = leaf(
        "key-agreement",
        "Cka",
        vec![uri("//secure-cse.example/id-in/Cka")],
    );
    key_agreement.ku = vec![KeyUsagePurpose::KeyAgreement];
    add(key_agreement, false);
    let mut no_ku = leaf(
        "no-key-usage",
        "Cnoku",
        vec![uri("//secure-cse.example/id-in/Cnoku")],
    );
    no_ku.ku = vec![];
    add(no_ku, false);
    add(
        leaf(
            "foreign",
            "Cforeign",
            vec![uri("//secure-cse.example/id-in/Cforeign")],
        ),
        true,
    );

    let crl_params = |revoked: Vec<RevokedCertParams>| CertificateRevocationListParams {
        this_update: date_time_ymd(2024, 1, 1),
        next_update: date_time_ymd(2090, 1, 1),
        crl_number: SerialNumber::from_slice(&[1]),
        issuing_distribution_point: None,
        revoked_certs: revoked,
        key_identifier_method: KeyIdMethod::Sha256,
    };
    let crl = crl_params(vec![RevokedCertParams {
        serial_number: SerialNumber::from_slice(&serial_bytes(0x0bad_cafe)),
        revocation_time: date_time_ymd(2025, 1, 1),
        reason_code: Some(rcgen::RevocationReason::KeyCompromise),
        invalidity_date: None,
    }])
    .signed_by(&ca, &ca_key)
    .expect("CRL");
    std::fs::write(path("ca.crl.pem"), crl.pem().expect("pem")).expect("write");
    std::fs::write(path("ca.crl.der"), crl.der()).expect("write");
    let other_crl = crl_params(vec![])
        .signed_by(&other, &other_key)
        .expect("CRL");
    std::fs::write(path("other.crl.pem"), other_crl.pem().expect("pem")).expect("write");

    Pki {
        dir: root.clone(),
        ca: path("ca.pem"),
        ca_key: path("ca.key"),
        other_ca: path("other-ca.pem"),
        crl: path("ca.crl.pem"),
        crl_der: path("ca.crl.der"),
        other_crl: path("other.crl.pem"),
        server,
        server_with_ca,
        clients,
        _dir: dir,
    }
}

// === credentials and policies ===

pub fn local() -> LocalIdentity {
    LocalIdentity {
        sp_id: SP.into(),
        cse_id: CSE.into(),
    }
}

pub fn credentials() -> Arc<FileCredentials> {
    let device = &pki().client("device").sha256;
    let text = format!(
        r#"
[[psk]]
identity = "{PSK_ID}"
key_hex = "{PSK_HEX}"
allowed_aes = ["C*"]
allowed_apps = ["Nsensor"]

[[psk]]
identity = "{CSE_PSK_ID}"
key_hex = "{CSE_PSK_HEX}"
cse = "/id-mn"

[[certificate]]
credential_id = "31-{device}"
ae = "Cdevice"
"#
    );
    Arc::new(FileCredentials::parse(&text).expect("credentials"))
}

pub fn certificate_config() -> CertificateConfig {
    let p = pki();
    CertificateConfig {
        chain: p.server.cert.clone(),
        key: p.server.key.clone().into(),
        trust_anchors: vec![p.ca.clone()],
        crls: vec![p.crl.clone()],
    }
}

/// Both frameworks, short timeout.
pub fn both() -> TlsPolicy {
    TlsPolicy {
        certificate: Some(certificate_config()),
        psk: true,
        handshake_timeout: Duration::from_secs(3),
        ..TlsPolicy::default()
    }
}

pub fn psk_only() -> TlsPolicy {
    TlsPolicy {
        certificate: None,
        ..both()
    }
}

pub fn certificate_only() -> TlsPolicy {
    TlsPolicy {
        psk: false,
        ..both()
    }
}

// === the listener ===

/// What one accepted connection turned into.
pub type Outcome = Result<Established, HandshakeError>;

/// A TLS listener on 127.0.0.1:0 that answers every association with one HTTP response whose
/// body describes it, and reports each outcome.
pub struct Server {
    pub addr: SocketAddr,
    pub acceptor: TlsAcceptor,
    outcomes: mpsc::UnboundedReceiver<Outcome>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub fn describe(e: &Established) -> String {
    format!(
        "framework={} credential={} identity={:?} protocol={} cipher={} resumed={} sni={}",
        e.framework.name(),
        e.credential_id,
        e.binding.identity,
        e.protocol,
        e.cipher,
        e.resumed,
        e.server_name.as_deref().unwrap_or("-")
    )
}

impl Server {
    pub async fn start(policy: TlsPolicy) -> Server {
        let acceptor = TlsAcceptor::new(&policy, credentials(), local()).expect("acceptor");
        Self::with(acceptor).await
    }

    pub async fn with(acceptor: TlsAcceptor) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, outcomes) = mpsc::unbounded_channel();
        let a = acceptor.clone();
        let task = tokio::spawn(async move {
            while let Ok((tcp, peer)) = listener.accept().await {
                let (a, tx) = (a.clone(), tx.clone());
                tokio::spawn(async move {
                    match a.accept(tcp, peer).await {
                        Ok((mut stream, established)) => {
                            if !stream.get_ref().get_ref().nodelay().unwrap_or(false) {
                                let _ = tx.send(Err(HandshakeError::Refused {
                                    reason: "TEST: TCP_NODELAY is not set".into(),
                                    offered: None,
                                }));
                                return;
                            }
                            let body = format!("{}\n", describe(&established));
                            let _ = tx.send(Ok(established));
                            let response = format!(
                                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                                body.len()
                            );
                            let _ = stream.write_all(response.as_bytes()).await;
                            let _ = stream.shutdown().await;
                            // Read until the client closes, so it never sees a reset.
                            let _ = tokio::time::timeout(Duration::from_secs(2), async {
                                let mut buf = [0u8; 1024];
                                while let Ok(n) = stream.read(&mut buf).await {
                                    if n == 0 {
                                        break;
                                    }
                                }
                            })
                            .await;
                        }
                        Err(e) => {
                            let _ = tx.send(Err(e));
                        }
                    }
                });
            }
        });
        Server {
            addr,
            acceptor,
            outcomes,
            task,
        }
    }

    /// The next connection's outcome.
    pub async fn outcome(&mut self) -> Outcome {
        let outcome = tokio::time::timeout(Duration::from_secs(10), self.outcomes.recv())
            .await
            .expect("an outcome within 10 s")
            .expect("server running");
        match &outcome {
            Ok(e) => eprintln!("server: established {}", describe(e)),
            Err(e) => eprintln!("server: {} ({})", e.kind(), e.reason()),
        }
        outcome
    }

    pub async fn established(&mut self) -> Established {
        match self.outcome().await {
            Ok(e) => e,
            Err(e) => panic!("expected an association, got: {e}"),
        }
    }

    /// The next outcome, which must be a refusal whose reason contains `needle`.
    pub async fn refused(&mut self, needle: &str) -> String {
        self.refused_offering(needle).await.0
    }

    /// Like [`Self::refused`], with the known PSK identity the refusal says was offered.
    pub async fn refused_offering(&mut self, needle: &str) -> (String, Option<String>) {
        match self.outcome().await {
            Err(HandshakeError::Refused { reason, offered }) => {
                assert!(
                    reason.contains(needle),
                    "refusal reason {reason:?} lacks {needle:?}"
                );
                (reason, offered)
            }
            other => panic!("expected a refusal containing {needle:?}, got {other:?}"),
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }
}

pub fn ae(id: &str) -> PeerIdentity {
    PeerIdentity::Ae(id.into())
}

// === real clients ===

/// Whether a command-line tool is there; without it a test is skipped (with a printed
/// reason), unless SECURE_CSE_REQUIRE_SERVICES is set.
pub fn have(tool: &str) -> bool {
    let probe = if tool == "openssl" {
        "version"
    } else {
        "--version"
    };
    test_support::have_tool(tool, &[probe])
}

/// What a client run printed.
#[derive(Debug)]
pub struct Run {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

async fn run(program: &str, args: &[String]) -> Run {
    let child = tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn");
    let out = tokio::time::timeout(Duration::from_secs(15), child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{program} {args:?} did not finish"))
        .expect("wait");
    Run {
        success: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `openssl s_client -connect 127.0.0.1:PORT -ign_eof ARGS` with no input: it completes the
/// handshake, prints what the server sends and exits when the server closes.
pub async fn s_client(server: &Server, args: &[&str]) -> Run {
    let mut all = vec![
        "s_client".to_owned(),
        "-connect".to_owned(),
        server.addr.to_string(),
        "-ign_eof".to_owned(),
    ];
    all.extend(args.iter().map(|a| a.to_string()));
    run("openssl", &all).await
}

/// s_client arguments for the PSK of `sensor-1`.
pub fn psk_args(version: &str) -> Vec<&'static str> {
    let mut a = vec!["-psk", PSK_HEX, "-psk_identity", PSK_ID];
    match version {
        "1.2" => a.extend(["-tls1_2", "-cipher", "PSK-AES128-CBC-SHA256"]),
        _ => a.extend(["-tls1_3", "-ciphersuites", "TLS_AES_128_GCM_SHA256"]),
    }
    a
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// s_client arguments for a client certificate.
pub fn cert_args(client: &str) -> Vec<String> {
    let p = pki();
    let c = p.client(client);
    vec![
        "-cert".into(),
        path_str(&c.cert).into(),
        "-key".into(),
        path_str(&c.key).into(),
        "-CAfile".into(),
        path_str(&p.ca).into(),
        "-verify_return_error".into(),
    ]
}

pub async fn s_client_cert(server: &Server, client: &str, extra: &[&str]) -> Run {
    let mut args = cert_args(client);
    args.extend(extra.iter().map(|s| s.to_string()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    s_client(server, &refs).await
}

pub async fn curl(args: &[String]) -> Run {
    run("curl", args).await
}

/// Minimal big-endian bytes of a serial number.
fn serial_bytes(serial: u64) -> Vec<u8> {
    let bytes = serial.to_be_bytes();
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(7);
    bytes[first..].to_vec()
}

/// A real ClientHello (OpenSSL's default client: TLS 1.2 and 1.3 suites, no PSK), as the
/// bytes a client sends first, for clients that must get as far as a handshake place and
/// stall there.
pub async fn client_hello() -> Vec<u8> {
    let connector = openssl::ssl::SslConnector::builder(openssl::ssl::SslMethod::tls_client())
        .expect("connector")
        .build();
    let ssl = connector
        .configure()
        .expect("configure")
        .verify_hostname(false)
        .into_ssl("localhost")
        .expect("ssl");
    let (ours, mut theirs) = tokio::io::duplex(64 * 1024);
    let mut stream = tokio_openssl::SslStream::new(ssl, ours).expect("stream");
    let handshake = tokio::spawn(async move {
        let _ = std::pin::Pin::new(&mut stream).connect().await;
    });
    let mut hello = vec![0u8; 64 * 1024];
    let n = theirs.read(&mut hello).await.expect("the ClientHello");
    handshake.abort();
    hello.truncate(n);
    assert_eq!(hello.first(), Some(&0x16), "a handshake record");
    hello
}

// === SoftHSM ===

/// The one SoftHSM configuration of this test binary: the PKCS#11 module reads
/// `SOFTHSM2_CONF` once per process, so every test that opens a token goes through here
/// and its tokens are made here, before any test loads the module (a token made while
/// another test lists the slots is read half-written). `None` (with a printed reason)
/// without SoftHSM.
pub fn softhsm() -> Option<&'static keystore::testing::SoftHsm> {
    static HSM: OnceLock<Option<(tempfile::TempDir, keystore::testing::SoftHsm)>> = OnceLock::new();
    HSM.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tmp");
        let hsm = keystore::testing::SoftHsm::new(dir.path())?;
        for label in ["tls-test", "psk-token"] {
            hsm.init_token(label, "1234");
        }
        hsm.use_in_this_process();
        Some((dir, hsm))
    })
    .as_ref()
    .map(|(_, hsm)| hsm)
}
