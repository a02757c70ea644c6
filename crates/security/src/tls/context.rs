//! The one OpenSSL server context of a listener, built from its policy.

use super::callbacks;
use super::error::TlsError;
use super::files::{self, CertificateMaterial};
use super::policy::{LocalIdentity, TlsPolicy, TlsVersion};
use super::resumption::Crls;
use super::state::ConnState;
use super::suites;
use crate::credentials::CredentialStore;
use openssl::dh::Dh;
use openssl::ex_data::Index;
use openssl::ssl::{
    Ssl, SslContext, SslContextBuilder, SslFiletype, SslMethod, SslOptions, SslSessionCacheMode,
    SslVerifyMode, SslVersion,
};
use openssl::x509::store::{X509Lookup, X509StoreBuilder};
use openssl::x509::verify::X509VerifyFlags;
use std::sync::Arc;

/// Sessions the server cache holds at most. A TLS 1.2 session with a client certificate
/// takes about 11 KiB, so this bounds the cache near 22 MiB; TLS 1.3 and ticket resumption do
/// not use the cache at all.
const SESSION_CACHE_SIZE: i32 = 2_048;

/// Longest client chain accepted below the trust anchor ("keep chains short", TS-0003 10.1.1.3).
const MAX_CHAIN_DEPTH: u32 = 4;

/// The context, and the CRLs it checks clients against (resumed sessions are checked
/// against them again, see `resumption.rs`).
pub(crate) fn build(
    policy: &TlsPolicy,
    credentials: &Arc<dyn CredentialStore>,
    local: &LocalIdentity,
    index: Index<Ssl, ConnState>,
) -> Result<(SslContext, Crls), TlsError> {
    let mut material = policy
        .certificate
        .as_ref()
        .map(|c| files::load(c, &policy.clock))
        .transpose()?;
    let crls = material
        .as_mut()
        .map(|m| std::mem::take(&mut m.crl_list))
        .unwrap_or_default();
    let certificate = material.is_some();
    let mut b = SslContextBuilder::new(SslMethod::tls_server())
        .map_err(TlsError::library("a TLS server context"))?;

    // Versions: never below TLS 1.2; TLS 1.3 always on.
    let min = match policy.min_version {
        TlsVersion::Tls12 => SslVersion::TLS1_2,
        TlsVersion::Tls13 => SslVersion::TLS1_3,
    };
    b.set_min_proto_version(Some(min))
        .map_err(TlsError::library("the minimum TLS version"))?;
    b.set_max_proto_version(Some(SslVersion::TLS1_3))
        .map_err(TlsError::library("the maximum TLS version"))?;
    // The NO_SSLV3/NO_TLSV1* options repeat the minimum version, in case a system-wide
    // OpenSSL configuration lowers it.
    b.set_options(
        SslOptions::NO_SSLV3
            | SslOptions::NO_TLSV1
            | SslOptions::NO_TLSV1_1
            | SslOptions::NO_COMPRESSION
            | SslOptions::NO_RENEGOTIATION
            | SslOptions::CIPHER_SERVER_PREFERENCE,
    );

    // Suites: the explicit lists of `suites`, for the enabled frameworks only.
    suites::check_mandatory(certificate, policy.psk).map_err(|suite| {
        TlsError::InvalidPolicy(format!(
            "this OpenSSL does not support the mandatory suite {suite}"
        ))
    })?;
    let only = policy.suites.as_deref();
    if let Some(only) = only {
        suites::check_restriction(certificate, policy.psk, only)
            .map_err(TlsError::InvalidPolicy)?;
    }
    let tls13 = suites::tls13_suites(only);
    if tls13.is_empty() && policy.min_version == TlsVersion::Tls13 {
        return Err(TlsError::InvalidPolicy(
            "a TLS 1.3 minimum needs at least one TLS 1.3 suite".into(),
        ));
    }
    b.set_cipher_list(&suites::tls12_cipher_list(certificate, policy.psk, only))
        .map_err(TlsError::library("the TLS 1.2 cipher list"))?;
    b.set_ciphersuites(&tls13)
        .map_err(TlsError::library("the TLS 1.3 cipher suites"))?;
    if suites::needs_dh(certificate, policy.psk) {
        let dh = Dh::params_from_pem(suites::FFDHE2048_PEM)
            .map_err(TlsError::library("the ffdhe2048 DH parameters"))?;
        b.set_tmp_dh(&dh)
            .map_err(TlsError::library("the ffdhe2048 DH parameters"))?;
    }

    // Sessions. The context id ties sessions to this listener's trust configuration.
    b.set_session_id_context(&session_context(policy, material.as_ref()))
        .map_err(TlsError::library("the session id context"))?;
    if policy.session_resumption {
        b.set_session_cache_mode(SslSessionCacheMode::SERVER);
        b.set_session_cache_size(SESSION_CACHE_SIZE);
        openssl_keyhome::session::set_session_lifetime(&mut b, policy.session_lifetime);
    } else {
        b.set_session_cache_mode(SslSessionCacheMode::OFF);
        b.set_options(SslOptions::NO_TICKET);
        b.set_num_tickets(0)
            .map_err(TlsError::library("the number of TLS 1.3 tickets"))?;
    }

    if let Some(material) = material {
        certificate_framework(&mut b, material, credentials, local, index)?;
    }
    if policy.psk {
        b.set_psk_server_callback(callbacks::psk_callback(index, credentials.clone()));
    }
    Ok((b.build(), crls))
}

fn certificate_framework(
    b: &mut SslContextBuilder,
    material: CertificateMaterial,
    credentials: &Arc<dyn CredentialStore>,
    local: &LocalIdentity,
    index: Index<Ssl, ConnState>,
) -> Result<(), TlsError> {
    let mut chain = material.chain.into_iter();
    if let Some(leaf) = chain.next() {
        b.set_certificate(&leaf)
            .map_err(TlsError::library("the server certificate"))?;
    }
    for intermediate in chain {
        b.add_extra_chain_cert(intermediate)
            .map_err(TlsError::library("the server certificate chain"))?;
    }
    b.set_private_key(&material.key)
        .map_err(TlsError::library("the server private key"))?;
    b.check_private_key()
        .map_err(TlsError::library("the server private key"))?;

    let mut store = X509StoreBuilder::new().map_err(TlsError::library("a certificate store"))?;
    for anchor in &material.trust_anchors {
        store
            .add_cert(anchor.clone())
            .map_err(TlsError::library("a trust anchor"))?;
        b.add_client_ca(anchor)
            .map_err(TlsError::library("the acceptable client CA list"))?;
    }
    let mut flags = X509VerifyFlags::empty();
    if !material.crls.is_empty() {
        let lookup = store
            .add_lookup(X509Lookup::file())
            .map_err(TlsError::library("a CRL lookup"))?;
        for (path, pem) in &material.crls {
            let filetype = if *pem {
                SslFiletype::PEM
            } else {
                SslFiletype::ASN1
            };
            lookup
                .load_crl_file(path, filetype)
                .map_err(TlsError::library("a CRL file"))?;
        }
        flags |= X509VerifyFlags::CRL_CHECK | X509VerifyFlags::CRL_CHECK_ALL;
    }
    store
        .set_flags(flags)
        .map_err(TlsError::library("the verification flags"))?;
    // The flags also go on the context's own verification parameters, which OpenSSL merges
    // into every client verification.
    b.verify_param_mut()
        .set_flags(flags)
        .map_err(TlsError::library("the verification flags"))?;
    b.set_verify_cert_store(store.build())
        .map_err(TlsError::library("the client verification store"))?;
    b.set_verify_depth(MAX_CHAIN_DEPTH);
    // A client certificate is required; OpenSSL asks for none when a PSK suite or an external
    // TLS 1.3 PSK is used, so PSK clients are not affected.
    b.set_verify_callback(
        SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT,
        callbacks::verify_callback(index, local.clone(), credentials.clone())
            .map_err(TlsError::library("the certificate verify callback"))?,
    );
    Ok(())
}

/// 32 bytes naming this listener's trust configuration, so that a session is only resumed
/// by a context that would have accepted it.
fn session_context(policy: &TlsPolicy, material: Option<&CertificateMaterial>) -> [u8; 32] {
    let mut h = openssl::sha::Sha256::new();
    h.update(b"secure-cse tls session v1\0");
    h.update(&[u8::from(policy.psk), u8::from(material.is_some())]);
    for anchor in material
        .map(|m| m.trust_anchors.as_slice())
        .unwrap_or_default()
    {
        h.update(&anchor.to_der().unwrap_or_default());
    }
    h.finish()
}
