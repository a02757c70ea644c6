//! `https://` against a small OpenSSL server in the test: both security association
//! frameworks (PSK over TLS 1.2 and 1.3, mutual certificates) and the ways each fails.
//! Certificates are generated per run; no key is checked in.

use bytes::Bytes;
use client::{Client, ClientError, Exporter, Psk, TlsError, TlsOptions, TlsProtocol, Zeroizing};
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use model::{Operation, Request, ResponseStatusCode};
use openssl::ex_data::Index;
use openssl::nid::Nid;
use openssl::pkey::PKey;
use openssl::ssl::{NameType, Ssl, SslAcceptor, SslMethod, SslVerifyMode, SslVersion};
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::X509;
use serde_json::{json, Value};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use tokio::net::{TcpListener, TcpStream};
use tokio_openssl::SslStream;

const IDENTITY: &str = "dev1@sp.example";
const KEY_HEX: &str = "00112233445566778899aabbccddeeff";
const KEY: [u8; 16] = [
    0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff,
];

/// The label the server exports 32 bytes under, for [`Connection`]'s exporter.
const EXPORTER_LABEL: &str = "EXPORTER-secure-cse-test";

// === test server ===

/// A oneM2M-looking HTTP/1.1 server on `127.0.0.1:0`: every request gets `X-M2M-RSC: 2000`
/// and a JSON body describing the TLS session and the request it saw.
struct Server {
    port: u16,
    handshakes: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Server {
    /// TLS with `acceptor`.
    async fn tls(acceptor: SslAcceptor) -> Self {
        Self::start(Some(acceptor)).await
    }

    /// Plain HTTP.
    async fn plain() -> Self {
        Self::start(None).await
    }

    async fn start(acceptor: Option<SslAcceptor>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let handshakes = Arc::new(AtomicUsize::new(0));
        let count = handshakes.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let acceptor = acceptor.clone();
                let count = count.clone();
                tokio::spawn(async move {
                    tcp.set_nodelay(true).expect("nodelay");
                    match acceptor {
                        None => serve_http(tcp, json!(null)).await,
                        Some(acceptor) => {
                            let ssl = Ssl::new(acceptor.context()).expect("ssl");
                            let mut tls = SslStream::new(ssl, tcp).expect("stream");
                            if Pin::new(&mut tls).accept().await.is_err() {
                                return;
                            }
                            count.fetch_add(1, Ordering::SeqCst);
                            let info = session_info(&tls);
                            serve_http(tls, info).await;
                        }
                    }
                });
            }
        });
        Self {
            port,
            handshakes,
            task,
        }
    }

    fn url(&self, scheme: &str, host: &str) -> String {
        format!("{scheme}://{host}:{}", self.port)
    }

    fn handshakes(&self) -> usize {
        self.handshakes.load(Ordering::SeqCst)
    }
}

fn session_info(tls: &SslStream<TcpStream>) -> Value {
    let ssl = tls.ssl();
    let peer = ssl.peer_certificate().and_then(|c| {
        c.subject_name()
            .entries_by_nid(Nid::COMMONNAME)
            .next()
            .and_then(|e| e.data().to_string().ok())
    });
    let mut exported = [0u8; 32];
    ssl.export_keying_material(&mut exported, EXPORTER_LABEL, None)
        .expect("exporter");
    json!({
        "exporter": hex::encode(exported),
        "version": ssl.version_str(),
        "cipher": ssl.current_cipher().map(|c| c.name()),
        "pskIdentity": ssl.ex_data(psk_identity_index()),
        "peer": peer,
        "sni": ssl.servername(NameType::HOST_NAME),
    })
}

async fn serve_http<S>(io: S, tls: Value)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        let header = |name: &str| {
            req.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let body = json!({
            "tls": tls,
            "path": req.uri().path(),
            "origin": header("x-m2m-origin"),
            "rvi": header("x-m2m-rvi"),
            "ri": header("x-m2m-ri"),
        });
        let resp = hyper::Response::builder()
            .header("X-M2M-RSC", "2000")
            .header("X-M2M-RI", header("x-m2m-ri").unwrap_or_default())
            .header("Content-Type", "application/json")
            .body(Full::new(Bytes::from(body.to_string())));
        async move { resp }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(io), service)
        .await;
}

// === server configurations ===

/// Where the PSK callback leaves the identity it accepted (`SSL_get_psk_identity` does not
/// report it for TLS 1.3).
fn psk_identity_index() -> Index<Ssl, String> {
    static INDEX: OnceLock<Index<Ssl, String>> = OnceLock::new();
    *INDEX.get_or_init(|| Ssl::new_ex_index().expect("ex index"))
}

fn psk_acceptor(version: SslVersion) -> SslAcceptor {
    let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server()).expect("acceptor");
    b.set_cipher_list("PSK-AES128-GCM-SHA256:ECDHE-PSK-AES128-CBC-SHA256:PSK-AES128-CBC-SHA256")
        .expect("ciphers");
    b.set_ciphersuites("TLS_AES_128_GCM_SHA256")
        .expect("suites");
    b.set_min_proto_version(Some(version)).expect("min");
    b.set_max_proto_version(Some(version)).expect("max");
    b.set_psk_server_callback(|ssl, identity, key_out| {
        if identity == Some(IDENTITY.as_bytes()) {
            ssl.set_ex_data(psk_identity_index(), IDENTITY.to_owned());
            key_out[..KEY.len()].copy_from_slice(&KEY);
            Ok(KEY.len())
        } else {
            Ok(0)
        }
    });
    b.build()
}

/// A CA, a server certificate (`cse.test` and 127.0.0.1) and a client certificate
/// (`CAdmin`), all generated now.
struct Pki {
    ca: String,
    server: (String, String),
    client: (String, String),
}

impl Pki {
    fn new(ca_name: &str) -> Self {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, SanType};
        let ca_key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.distinguished_name.push(DnType::CommonName, ca_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = params.self_signed(&ca_key).expect("ca");
        let leaf = |cn: &str, sans: Vec<String>| {
            let key = KeyPair::generate().expect("key");
            let mut params = CertificateParams::new(sans).expect("params");
            params.distinguished_name.push(DnType::CommonName, cn);
            if cn == "cse" {
                params
                    .subject_alt_names
                    .push(SanType::IpAddress([127, 0, 0, 1].into()));
            }
            let cert = params.signed_by(&key, &ca, &ca_key).expect("sign");
            (cert.pem(), key.serialize_pem())
        };
        Self {
            server: leaf("cse", vec!["cse.test".to_owned()]),
            client: leaf("CAdmin", Vec::new()),
            ca: ca.pem(),
        }
    }

    /// A server that requires a client certificate from this CA.
    fn acceptor(&self) -> SslAcceptor {
        let mut b =
            SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server()).expect("acceptor");
        let cert = X509::from_pem(self.server.0.as_bytes()).expect("cert");
        let key = PKey::private_key_from_pem(self.server.1.as_bytes()).expect("key");
        b.set_certificate(&cert).expect("set cert");
        b.set_private_key(&key).expect("set key");
        let mut store = X509StoreBuilder::new().expect("store");
        store
            .add_cert(X509::from_pem(self.ca.as_bytes()).expect("ca"))
            .expect("add ca");
        b.set_cert_store(store.build());
        b.set_verify(SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT);
        b.build()
    }

    /// Client options trusting this CA, with the client certificate.
    fn client_options(&self) -> TlsOptions {
        TlsOptions::new()
            .trust_anchor_pem(self.ca.as_bytes())
            .client_cert_pem(
                self.client.0.as_bytes(),
                Zeroizing::new(self.client.1.as_bytes().to_vec()),
            )
    }
}

fn psk() -> Psk {
    Psk::from_hex(IDENTITY, KEY_HEX).expect("valid PSK")
}

fn retrieve() -> Request {
    Request::new(Operation::Retrieve, "cse-in", Some("CAdmin".into()))
}

/// The server's view of the TLS session, from the response content.
fn tls_info(resp: &model::Response) -> &Value {
    resp.pc
        .as_ref()
        .and_then(|pc| pc.get("tls"))
        .expect("tls info in the response")
}

/// The client fails with a transport error whose message mentions `needle`.
fn assert_transport_error(result: Result<model::Response, ClientError>, needle: &str) {
    match result {
        Err(e @ ClientError::Transport(_)) => {
            let text = e.to_string();
            assert!(text.contains(needle), "'{needle}' not in: {text}");
        }
        other => panic!("expected a transport error, got {other:?}"),
    }
}

// === PSK framework ===

#[tokio::test]
async fn psk_over_tls12_with_a_pooled_connection() {
    let server = Server::tls(psk_acceptor(SslVersion::TLS1_2)).await;
    let client = Client::with_tls(
        &server.url("https", "127.0.0.1"),
        TlsOptions::new().psk(psk()),
    )
    .expect("client");
    let resp = client.send(&retrieve()).await.expect("response");
    assert_eq!(resp.rsc, ResponseStatusCode::Ok);
    let tls = tls_info(&resp);
    assert_eq!(tls["version"], "TLSv1.2");
    assert_eq!(tls["pskIdentity"], IDENTITY);
    assert!(
        tls["cipher"].as_str().is_some_and(|c| c.contains("PSK")),
        "{tls}"
    );
    assert_eq!(tls["peer"], Value::Null);
    let again = client.send(&retrieve()).await.expect("second response");
    assert_eq!(again.rsc, ResponseStatusCode::Ok);
    assert_eq!(server.handshakes(), 1, "the connection is kept alive");
}

#[tokio::test]
async fn psk_over_tls13() {
    let server = Server::tls(psk_acceptor(SslVersion::TLS1_3)).await;
    let client = Client::with_tls(
        &server.url("https", "localhost"),
        TlsOptions::new().psk(psk()),
    )
    .expect("client");
    let resp = client.send(&retrieve()).await.expect("response");
    assert_eq!(resp.rsc, ResponseStatusCode::Ok);
    let tls = tls_info(&resp);
    assert_eq!(
        (&tls["version"], &tls["cipher"]),
        (&json!("TLSv1.3"), &json!("TLS_AES_128_GCM_SHA256"))
    );
    assert_eq!(tls["pskIdentity"], IDENTITY);
    assert_eq!(tls["sni"], "localhost", "the URL's host is sent as SNI");
}

#[tokio::test]
async fn wrong_psk_key_is_a_transport_error() {
    for version in [SslVersion::TLS1_2, SslVersion::TLS1_3] {
        let server = Server::tls(psk_acceptor(version)).await;
        let wrong = Psk::from_hex(IDENTITY, &KEY_HEX.replace('0', "1")).expect("valid PSK");
        let client = Client::with_tls(
            &server.url("https", "127.0.0.1"),
            TlsOptions::new().psk(wrong),
        )
        .expect("client");
        assert_transport_error(client.send(&retrieve()).await, "may have withdrawn");
        assert_eq!(server.handshakes(), 0, "{version:?}");
    }
}

#[tokio::test]
async fn unknown_psk_identity_is_refused() {
    let server = Server::tls(psk_acceptor(SslVersion::TLS1_2)).await;
    let stranger = Psk::from_hex("dev2@sp.example", KEY_HEX).expect("valid PSK");
    let client = Client::with_tls(
        &server.url("https", "127.0.0.1"),
        TlsOptions::new().psk(stranger),
    )
    .expect("client");
    assert_transport_error(client.send(&retrieve()).await, "may have withdrawn");
}

/// A TLS 1.3 server that ignores the PSK answers with a certificate; a PSK client must not
/// accept that instead.
#[tokio::test]
async fn psk_client_refuses_a_certificate_server() {
    let pki = Pki::new("CA");
    let server = Server::tls(pki.acceptor()).await;
    let client = Client::with_tls(
        &server.url("https", "127.0.0.1"),
        TlsOptions::new().psk(psk()),
    )
    .expect("client");
    let refused = client.send(&retrieve()).await;
    assert!(
        !format!("{refused:?}").contains("certificate verify failed"),
        "a refused PSK reads as a certificate problem: {refused:?}"
    );
    assert_transport_error(refused, "the server refused the PSK");
    assert_eq!(server.handshakes(), 0);
}

/// One connection outside the pool: every request on it shares the one TLS session, whose
/// exported keying material both ends agree on; the version is the one asked for.
#[tokio::test]
async fn a_connection_is_one_session_with_its_exported_keying_material() {
    for (version, protocol, name) in [
        (SslVersion::TLS1_2, TlsProtocol::Tls12, "TLSv1.2"),
        (SslVersion::TLS1_3, TlsProtocol::Tls13, "TLSv1.3"),
    ] {
        let server = Server::tls(psk_acceptor(version)).await;
        let client = Client::with_tls(
            &server.url("https", "127.0.0.1"),
            TlsOptions::new().psk(psk()).protocol(protocol),
        )
        .expect("client");
        let connection = client
            .connect(Some(Exporter::new(EXPORTER_LABEL, 32)))
            .await
            .expect("connection");
        assert_eq!(connection.protocol(), Some(name));
        let ekm = hex::encode(connection.keying_material().expect("exported"));
        for _ in 0..2 {
            let (req, rqi) = client
                .manager_request(
                    http::Method::POST,
                    "/.mef/enrol",
                    None,
                    Some(("application/json", b"{}".to_vec())),
                )
                .expect("request");
            let answer = connection.send(req).await.expect("answer");
            assert_eq!((answer.status(), answer.rsc()), (200, Some(2000)));
            let seen: Value = serde_json::from_slice(answer.body()).expect("json");
            assert_eq!(seen["tls"]["exporter"], ekm.as_str(), "{name}");
            assert_eq!(seen["tls"]["version"], name);
            assert_eq!(
                (&seen["path"], &seen["ri"]),
                (&json!("/.mef/enrol"), &json!(rqi))
            );
        }
        assert_eq!(server.handshakes(), 1, "one session for both requests");
    }
    // A pinned version the server does not speak: the handshake is refused, as such.
    let server = Server::tls(psk_acceptor(SslVersion::TLS1_2)).await;
    let client = Client::with_tls(
        &server.url("https", "127.0.0.1"),
        TlsOptions::new().psk(psk()).protocol(TlsProtocol::Tls13),
    )
    .expect("client");
    let refused = client.connect(None).await.expect_err("no common version");
    assert!(matches!(refused, ClientError::Handshake(_)), "{refused}");
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind")
        .local_addr()
        .expect("addr");
    let client = Client::with_tls(&format!("https://{closed}"), TlsOptions::new().psk(psk()))
        .expect("client");
    let refused = client.connect(None).await.expect_err("closed port");
    assert!(matches!(refused, ClientError::Connect(_)), "{refused}");
}

// === certificate framework ===

#[tokio::test]
async fn mutual_certificates() {
    let pki = Pki::new("CA");
    let server = Server::tls(pki.acceptor()).await;
    let client =
        Client::with_tls(&server.url("https", "127.0.0.1"), pki.client_options()).expect("client");
    let resp = client.send(&retrieve()).await.expect("response");
    assert_eq!(resp.rsc, ResponseStatusCode::Ok);
    let tls = tls_info(&resp);
    assert_eq!(
        tls["peer"], "CAdmin",
        "the server saw the client certificate"
    );
    assert_eq!(tls["pskIdentity"], Value::Null);
    assert_eq!(tls["sni"], Value::Null, "no SNI for an IP address");
    // `send_to_url` uses the same TLS options and pool.
    let resp = client
        .send_to_url(
            &format!("{}/notify?x=1", server.url("https", "127.0.0.1")),
            &retrieve(),
        )
        .await
        .expect("response");
    assert_eq!(
        resp.pc.as_ref().map(|pc| &pc["path"]),
        Some(&json!("/notify"))
    );
    assert_eq!(server.handshakes(), 1);
}

#[tokio::test]
async fn untrusted_server_certificate_is_refused() {
    let (pki, other) = (Pki::new("CA"), Pki::new("Other CA"));
    let server = Server::tls(pki.acceptor()).await;
    let client = Client::with_tls(
        &server.url("https", "127.0.0.1"),
        TlsOptions::new().trust_anchor_pem(other.ca.as_bytes()),
    )
    .expect("client");
    assert_transport_error(client.send(&retrieve()).await, "certificate verify failed");
    assert_eq!(server.handshakes(), 0);
}

#[tokio::test]
async fn server_name_is_sent_and_verified() {
    let pki = Pki::new("CA");
    let server = Server::tls(pki.acceptor()).await;
    let named = Client::with_tls(
        &server.url("https", "127.0.0.1"),
        pki.client_options().server_name("cse.test"),
    )
    .expect("client");
    let resp = named.send(&retrieve()).await.expect("response");
    assert_eq!(tls_info(&resp)["sni"], "cse.test");
    let misnamed = Client::with_tls(
        &server.url("https", "127.0.0.1"),
        pki.client_options().server_name("other.test"),
    )
    .expect("client");
    assert_transport_error(misnamed.send(&retrieve()).await, "hostname mismatch");
    // The URL's host is verified when no name is given: `localhost` is not in the
    // certificate.
    let by_host =
        Client::with_tls(&server.url("https", "localhost"), pki.client_options()).expect("client");
    assert_transport_error(by_host.send(&retrieve()).await, "hostname mismatch");
}

#[tokio::test]
async fn server_requiring_a_client_certificate_refuses_a_client_without_one() {
    let pki = Pki::new("CA");
    let server = Server::tls(pki.acceptor()).await;
    let client = Client::with_tls(
        &server.url("https", "127.0.0.1"),
        TlsOptions::new().trust_anchor_pem(pki.ca.as_bytes()),
    )
    .expect("client");
    // In TLS 1.3 the client finishes its handshake before the server checks for its
    // certificate, so the refusal arrives while hyper reads the response.
    assert!(matches!(
        client.send(&retrieve()).await,
        Err(ClientError::Transport(_))
    ));
}

/// A client certificate the server does not trust: the error gives the server's reason
/// (its `unknown ca` alert, NOTE(alert) in the connector), not a broken pipe.
#[tokio::test]
async fn a_refused_client_certificate_reads_as_the_servers_alert() {
    let (pki, other) = (Pki::new("CA"), Pki::new("Other CA"));
    let server = Server::tls(pki.acceptor()).await;
    let options = TlsOptions::new()
        .trust_anchor_pem(pki.ca.as_bytes())
        .client_cert_pem(
            other.client.0.as_bytes(),
            Zeroizing::new(other.client.1.as_bytes().to_vec()),
        );
    let client = Client::with_tls(&server.url("https", "127.0.0.1"), options).expect("client");
    let refused = client.send(&retrieve()).await;
    assert!(
        !format!("{refused:?}").contains("Broken pipe"),
        "{refused:?}"
    );
    assert_transport_error(refused, "unknown ca");
}

#[cfg(unix)]
#[tokio::test]
async fn certificate_and_key_files() {
    use std::os::unix::fs::PermissionsExt;
    let pki = Pki::new("CA");
    let server = Server::tls(pki.acceptor()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = |name: &str| dir.path().join(name);
    std::fs::write(path("ca.pem"), &pki.ca).expect("write");
    std::fs::write(path("client.pem"), &pki.client.0).expect("write");
    std::fs::write(path("client.key"), &pki.client.1).expect("write");
    let options = || {
        TlsOptions::new()
            .trust_anchor_file(path("ca.pem"))
            .client_cert_files(path("client.pem"), path("client.key"))
    };
    std::fs::set_permissions(path("client.key"), std::fs::Permissions::from_mode(0o644))
        .expect("chmod");
    let err = Client::with_tls(&server.url("https", "127.0.0.1"), options()).expect_err("0644");
    assert!(
        matches!(err, ClientError::Tls(TlsError::KeyFileNotPrivate { .. })),
        "{err}"
    );
    std::fs::set_permissions(path("client.key"), std::fs::Permissions::from_mode(0o600))
        .expect("chmod");
    let client = Client::with_tls(&server.url("https", "127.0.0.1"), options()).expect("client");
    let resp = client.send(&retrieve()).await.expect("response");
    assert_eq!(tls_info(&resp)["peer"], "CAdmin");
    // A key that is not the certificate's.
    std::fs::write(path("client.key"), &pki.server.1).expect("write");
    let err = Client::with_tls(&server.url("https", "127.0.0.1"), options()).expect_err("mismatch");
    assert!(
        matches!(err, ClientError::Tls(TlsError::KeyMismatch(_))),
        "{err}"
    );
}

// === URLs, plain HTTP and the admin interface ===

#[tokio::test]
async fn https_needs_tls_options_and_http_still_works() {
    let server = Server::plain().await;
    assert!(matches!(
        Client::new(&server.url("https", "127.0.0.1")),
        Err(ClientError::InvalidUrl { .. })
    ));
    let plain = Client::new(&server.url("http", "127.0.0.1")).expect("client");
    assert!(matches!(
        plain
            .send_to_url(&server.url("https", "127.0.0.1"), &retrieve())
            .await,
        Err(ClientError::InvalidUrl { .. })
    ));
    let resp = plain.send(&retrieve()).await.expect("response");
    assert_eq!(resp.rsc, ResponseStatusCode::Ok);
    // A TLS client still speaks plain HTTP to http:// URLs.
    let tls = Client::with_tls(
        &server.url("http", "127.0.0.1"),
        TlsOptions::new().psk(psk()),
    )
    .expect("client");
    let resp = tls.send(&retrieve()).await.expect("response");
    assert_eq!(resp.pc.as_ref().map(|pc| &pc["tls"]), Some(&Value::Null));
}

#[tokio::test]
async fn admin_requests() {
    let server = Server::tls(psk_acceptor(SslVersion::TLS1_3)).await;
    let client = Client::with_tls(
        &format!("{}/prefix", server.url("https", "127.0.0.1")),
        TlsOptions::new().psk(psk()),
    )
    .expect("client");
    let resp = client
        .admin("associations", "CAdmin")
        .await
        .expect("response");
    assert_eq!(resp.rsc, ResponseStatusCode::Ok);
    let pc = resp.pc.as_ref().expect("content");
    assert_eq!(pc["path"], "/prefix/.admin/associations");
    assert_eq!((&pc["origin"], &pc["rvi"]), (&json!("CAdmin"), &json!("3")));
    assert_eq!(pc["ri"], json!(resp.rqi));
    for bad in ["", "../x", "a/b", "a?b", "a b"] {
        assert!(
            matches!(
                client.admin(bad, "CAdmin").await,
                Err(ClientError::InvalidAdminCommand(_))
            ),
            "{bad}"
        );
    }
}
