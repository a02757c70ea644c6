//! The certificate-based framework (TS-0003 clause 8.2.2.2) against `openssl s_client` and
//! `curl`, with both frameworks on one listener and CRL checking on.

use crate::common;

use common::*;
use security::association::{Framework, PeerIdentity};
use security::tls::{HandshakeError, TlsPolicy};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ae_id_certificate_with_the_mandatory_suite() {
    if !have("openssl") {
        return;
    }
    let mut server = Server::start(both()).await;
    let run = s_client_cert(
        &server,
        "ae1",
        &[
            "-tls1_2",
            "-cipher",
            "ECDHE-ECDSA-AES128-SHA256",
            "-servername",
            "id-in.secure-cse.example",
        ],
    )
    .await;
    let e = server.established().await;
    assert_eq!(e.framework, Framework::Certificate);
    assert_eq!(
        e.credential_id,
        format!("33-{}", pki().client("ae1").sha256)
    );
    assert_eq!(e.binding.identity, ae(AE1));
    assert!(!e.binding.admin && e.binding.allowed_apps.is_empty());
    assert_eq!(e.protocol, "TLSv1.2");
    assert_eq!(e.cipher, "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256");
    assert_eq!(e.server_name.as_deref(), Some("id-in.secure-cse.example"));
    assert!(!e.resumed);
    assert!(
        run.stdout.contains("Verify return code: 0 (ok)"),
        "the client verified the server: {run:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ae_id_certificate_over_tls13_and_a_scheme_prefixed_uri() {
    if !have("openssl") {
        return;
    }
    let mut server = Server::start(both()).await;
    s_client_cert(&server, "ae1", &["-tls1_3"]).await;
    let e = server.established().await;
    assert_eq!(
        (e.framework, e.protocol.as_str(), e.cipher.as_str()),
        (Framework::Certificate, "TLSv1.3", "TLS_AES_128_GCM_SHA256")
    );
    assert_eq!(e.binding.identity, ae(AE1));
    s_client_cert(&server, "ae-scheme", &[]).await;
    let e = server.established().await;
    assert_eq!(e.binding.identity, ae("//secure-cse.example/Sae2"));
    assert_eq!(
        e.credential_id,
        format!("33-{}", pki().client("ae-scheme").sha256)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cse_id_certificate() {
    if !have("openssl") {
        return;
    }
    let mut server = Server::start(both()).await;
    s_client_cert(&server, "mn", &["-tls1_2"]).await;
    let e = server.established().await;
    assert_eq!(e.binding.identity, PeerIdentity::Cse("/id-mn".into()));
    assert_eq!(e.credential_id, format!("32-{}", pki().client("mn").sha256));
    assert_eq!(
        e.cipher, "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        "server preference among the client's suites"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_without_identity_uses_the_credential_store() {
    if !have("openssl") {
        return;
    }
    let mut server = Server::start(both()).await;
    s_client_cert(&server, "device", &[]).await;
    let e = server.established().await;
    assert_eq!(
        e.credential_id,
        format!("31-{}", pki().client("device").sha256)
    );
    assert_eq!(e.binding.identity, ae("Cdevice"));
    s_client_cert(&server, "nameless", &[]).await;
    server.refused("certificate names no AE-ID or CSE-ID").await;
}

/// Each bad certificate fails inside the handshake (the client gets an alert), over TLS 1.2
/// and TLS 1.3.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_certificates_are_refused_in_the_handshake() {
    if !have("openssl") {
        return;
    }
    let cases = [
        ("expired", "client certificate has expired"),
        ("foreign", "not issued by a trust anchor"),
        ("revoked", "client certificate is revoked"),
        ("wildcard", "wildcard"),
        ("server-only", "not allowed for client authentication"),
        ("key-agreement", "keyUsage lacks digitalSignature"),
        ("no-key-usage", "no keyUsage extension"),
        ("nameless", "names no AE-ID or CSE-ID"),
    ];
    let mut server = Server::start(both()).await;
    for version in ["-tls1_2", "-tls1_3"] {
        for (client, reason) in cases {
            let run = s_client_cert(&server, client, &[version]).await;
            server.refused(reason).await;
            assert!(!run.stdout.contains("framework="), "{client}: {run:?}");
            assert!(
                run.stderr.contains("alert"),
                "{client} {version}: the client gets an alert: {}",
                run.stderr
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_with_neither_certificate_nor_psk_is_refused() {
    if !have("openssl") {
        return;
    }
    let mut server = Server::start(both()).await;
    for version in ["-tls1_2", "-tls1_3"] {
        s_client(&server, &["-CAfile", path_str(&pki().ca), version]).await;
        server
            .refused("client presented neither a certificate nor a PSK")
            .await;
    }
    let mut server = Server::start(certificate_only()).await;
    s_client(&server, &["-CAfile", path_str(&pki().ca)]).await;
    server.refused("client presented no certificate").await;
    // PSK clients are turned away by a certificate-only listener.
    s_client(&server, &psk_args("1.2")).await;
    assert!(server.outcome().await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_frameworks_share_one_listener() {
    if !have("openssl") {
        return;
    }
    let mut server = Server::start(both()).await;
    for version in ["1.2", "1.3"] {
        s_client(&server, &psk_args(version)).await;
        assert_eq!(server.established().await.framework, Framework::Psk);
        s_client_cert(
            &server,
            "ae1",
            &[if version == "1.2" {
                "-tls1_2"
            } else {
                "-tls1_3"
            }],
        )
        .await;
        assert_eq!(server.established().await.framework, Framework::Certificate);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_certificate_suite_negotiates() {
    if !have("openssl") {
        return;
    }
    let mut server = Server::start(certificate_only()).await;
    for (openssl, iana) in [
        (
            "ECDHE-ECDSA-AES128-GCM-SHA256",
            "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        ),
        (
            "ECDHE-ECDSA-AES256-GCM-SHA384",
            "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        ),
        (
            "ECDHE-ECDSA-CHACHA20-POLY1305",
            "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        ),
        (
            "ECDHE-ECDSA-AES128-SHA256",
            "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
        ),
    ] {
        s_client_cert(&server, "ae1", &["-tls1_2", "-cipher", openssl]).await;
        assert_eq!(server.established().await.cipher, iana);
        eprintln!("accepted: {openssl} = {iana}");
    }
    for suite in [
        "TLS_AES_128_GCM_SHA256",
        "TLS_AES_256_GCM_SHA384",
        "TLS_CHACHA20_POLY1305_SHA256",
    ] {
        s_client_cert(&server, "ae1", &["-tls1_3", "-ciphersuites", suite]).await;
        assert_eq!(server.established().await.cipher, suite);
    }
    // Outside the list: CBC-SHA1 and anything RSA.
    for refused in [
        "ECDHE-ECDSA-AES128-SHA",
        "AES128-SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256",
    ] {
        s_client_cert(&server, "ae1", &["-tls1_2", "-cipher", refused]).await;
        server.refused("no cipher suite in common").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_resumption_keeps_the_identity() {
    if !have("openssl") {
        return;
    }
    let mut server = Server::start(both()).await;
    // TLS 1.2: session id or ticket, -reconnect.
    s_client_cert(&server, "ae1", &["-tls1_2", "-reconnect"]).await;
    let full = server.established().await;
    assert!(!full.resumed);
    for _ in 0..5 {
        let e = server.established().await;
        assert!(e.resumed, "TLS 1.2 resumption");
        assert_eq!(
            (e.framework, &e.credential_id, &e.binding),
            (full.framework, &full.credential_id, &full.binding)
        );
    }
    // TLS 1.2 without tickets: the server's session cache.
    s_client_cert(&server, "ae1", &["-tls1_2", "-no_ticket", "-reconnect"]).await;
    assert!(!server.established().await.resumed);
    for _ in 0..5 {
        let e = server.established().await;
        assert!(e.resumed, "TLS 1.2 session-id resumption");
        assert_eq!(e.binding, full.binding);
    }
    // TLS 1.3: ticket saved and reused by a second process.
    for (client, version) in [("ae1", "-tls1_3"), ("mn", "-tls1_3"), ("mn", "-tls1_2")] {
        let sess = pki().dir.join(format!("{client}{version}.sess"));
        s_client_cert(&server, client, &[version, "-sess_out", path_str(&sess)]).await;
        let first = server.established().await;
        s_client_cert(&server, client, &[version, "-sess_in", path_str(&sess)]).await;
        let again = server.established().await;
        assert!(!first.resumed && again.resumed, "{client} {version}");
        assert_eq!(
            (&again.credential_id, &again.binding),
            (&first.credential_id, &first.binding)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_is_only_resumed_by_its_own_listener() {
    if !have("openssl") {
        return;
    }
    let mut one = Server::start(both()).await;
    let mut two = Server::start(both()).await;
    let sess = pki().dir.join("elsewhere.sess");
    s_client_cert(&one, "ae1", &["-tls1_3", "-sess_out", path_str(&sess)]).await;
    one.established().await;
    s_client_cert(&two, "ae1", &["-tls1_3", "-sess_in", path_str(&sess)]).await;
    assert!(
        !two.established().await.resumed,
        "other ticket keys: a full handshake"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_with_a_client_certificate() {
    if !have("curl") {
        return;
    }
    let p = pki();
    let mut server = Server::start(both()).await;
    let url = format!("https://localhost:{}/", server.port());
    let resolve = format!("localhost:{}:127.0.0.1", server.port());
    let c = p.client("ae1");
    let args = |cert: bool| {
        let mut a = vec![
            "-sS".to_owned(),
            "--resolve".into(),
            resolve.clone(),
            "--cacert".into(),
            path_str(&p.ca).into(),
        ];
        if cert {
            a.extend([
                "--cert".into(),
                path_str(&c.cert).into(),
                "--key".into(),
                path_str(&c.key).into(),
            ]);
        }
        a.push(url.clone());
        a
    };
    let run = curl(&args(true)).await;
    let e = server.established().await;
    assert!(run.success, "{run:?}");
    assert!(
        run.stdout
            .contains("identity=Ae(\"//secure-cse.example/id-in/Cae1\")"),
        "{run:?}"
    );
    assert_eq!(e.server_name.as_deref(), Some("localhost"));
    let run = curl(&args(false)).await;
    assert!(!run.success);
    assert!(matches!(
        server.outcome().await,
        Err(HandshakeError::Refused { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn der_crls_and_a_chain_with_its_ca() {
    if !have("openssl") {
        return;
    }
    let p = pki();
    let mut config = certificate_config();
    config.crls = vec![p.crl_der.clone()];
    config.chain = p.server_with_ca.clone();
    let mut server = Server::start(TlsPolicy {
        certificate: Some(config),
        ..both()
    })
    .await;
    s_client_cert(&server, "ae1", &[]).await;
    server.established().await;
    s_client_cert(&server, "revoked", &[]).await;
    server.refused("revoked").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_crls_a_revoked_certificate_is_not_detected() {
    if !have("openssl") {
        return;
    }
    let mut config = certificate_config();
    config.crls.clear();
    let mut server = Server::start(TlsPolicy {
        certificate: Some(config),
        ..both()
    })
    .await;
    s_client_cert(&server, "revoked", &[]).await;
    assert_eq!(
        server.established().await.binding.identity,
        ae("//secure-cse.example/id-in/Crev")
    );
}

/// Credential entries and withdrawals recorded under the earlier Credential-ID form (SHA-256
/// of the whole DER) keep applying to the encoding they name: a `31-` entry still binds the
/// device certificate (whose association carries the new Credential-ID), and a withdrawal
/// of the earlier form still refuses it in the handshake.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn earlier_form_credential_ids_still_match_their_encoding() {
    if !have("openssl") {
        return;
    }
    let device = pki().client("device");
    let pem = std::fs::read(&device.cert).expect("device certificate");
    let der = openssl::x509::X509::from_pem(&pem)
        .and_then(|c| c.to_der())
        .expect("der");
    let legacy = format!("31-{}", security::tls::certificate_id::legacy_digest(&der));
    assert_ne!(legacy, format!("31-{}", device.sha256));
    let file = std::sync::Arc::new(
        security::credentials::FileCredentials::parse(&format!(
            "[[certificate]]\ncredential_id = \"{legacy}\"\nae = \"Cold\"\n"
        ))
        .expect("credentials"),
    );
    let revocations = std::sync::Arc::new(security::revocation::Revocations::default());
    let store: std::sync::Arc<dyn security::credentials::CredentialStore> = std::sync::Arc::new(
        security::revocation::Withdrawable::new(file, revocations.clone()),
    );
    let acceptor = security::tls::TlsAcceptor::new(&both(), store, local()).expect("acceptor");
    let mut server = Server::with(acceptor).await;
    s_client_cert(&server, "device", &[]).await;
    let e = server.established().await;
    assert_eq!(e.credential_id, format!("31-{}", device.sha256));
    assert_eq!(e.binding.identity, ae("Cold"));
    revocations
        .revoke(&legacy, "recorded in the earlier form")
        .expect("revoke");
    s_client_cert(&server, "device", &[]).await;
    server
        .refused("revoked under its earlier Credential-ID")
        .await;
}

/// Client certificates are verified at the policy's clock, not the system's: the same
/// certificate is accepted, then refused as expired once the clock passes its notAfter
/// (2090), without waiting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificates_are_verified_at_the_policys_clock() {
    if !have("openssl") {
        return;
    }
    let clock = model::clock::ManualClock::new();
    // No CRL: its nextUpdate would expire first.
    let mut config = certificate_config();
    config.crls.clear();
    let mut server = Server::start(TlsPolicy {
        certificate: Some(config),
        clock: clock.clock(),
        ..both()
    })
    .await;
    s_client_cert(&server, "ae1", &[]).await;
    server.established().await;
    clock.advance(std::time::Duration::from_secs(70 * 366 * 86_400));
    s_client_cert(&server, "ae1", &[]).await;
    server.refused("client certificate has expired").await;
}
