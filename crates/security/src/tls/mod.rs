//! TLS for the security association establishment frameworks of TS-0003 clause 8.2, on
//! OpenSSL: one stack for both the certificate-based framework (mutual TLS, clause 8.2.2.2)
//! and the provisioned symmetric key framework (TLS-PSK, clause 8.2.2.1), on one listener
//! when both are enabled.
//!
//! A [`TlsAcceptor`] is built once from a [`TlsPolicy`]: every file is read and checked then,
//! and a bad one stops start-up with a [`TlsError`] naming it. [`TlsAcceptor::accept`] runs
//! one handshake and returns the stream with the [`Established`] association: the framework,
//! the Credential-ID (TS-0003 clause 10.4) and the [`CredentialBinding`](crate::association::CredentialBinding)
//! the CSE checks every request's `From` against. Anything else is a [`HandshakeError`].
//!
//! # Design
//!
//! * **Versions and suites.** TLS 1.2 (TS-0003 clause 10.2.1) and TLS 1.3; never older.
//!   The suites are listed, with a reason each, in one file (`suites.rs`); both mandatory
//!   suites of clause 10.2 are offered. Server preference, no compression, no
//!   renegotiation, `TCP_NODELAY` before the handshake (OpenSSL writes each handshake record
//!   separately; with Nagle a TLS 1.3 handshake stalls about 40 ms).
//! * **Identity checks happen inside the handshake.** The verify callback, at depth 0 after
//!   OpenSSL accepted the chain (trust anchors, validity, CRLs for the whole chain when CRLs
//!   are configured, purpose), checks keyUsage/extendedKeyUsage and derives the identity from
//!   the subjectAltName (AE-ID URI, CSE-ID FQDN) or from the credential store. A refusal
//!   there fails the handshake with an alert; no unbound connection reaches the CSE.
//! * **PSK.** The PSK callback looks the `psk_identity` (KpsaID) up in the
//!   [`CredentialStore`], copies the key (from the credential file, or derived just now
//!   inside a key home from a master key) into OpenSSL's buffer (the store's copy is
//!   zeroized on drop) and notes the binding. Credential-ID `12-<KpsaID>`. TLS 1.2 PSK suites and
//!   TLS 1.3 external PSKs (SHA-256 suites only, see `suites::TLS13`). An identity with no
//!   usable key gets a decoy key (`decoy.rs`), so the client cannot tell it from a known
//!   identity with a wrong key; only the log says which it was.
//! * **Per-connection state** lives in the `Ssl`'s ex_data (the callbacks are per context);
//!   after the handshake the negotiated version, suite and session decide which framework
//!   was used, never merely which callback ran.
//! * **Resumption keeps the identity** because the identity is re-derived from what OpenSSL
//!   stores in the session itself: the client certificate (certificate framework, TLS 1.2 and
//!   1.3) or the `psk_identity` (TLS 1.2 PSK, looked up again in the store, so a withdrawn PSK
//!   cannot be resumed). This works for the session cache and for stateless tickets alike.
//!   TLS 1.3 sessions of external PSKs keep no identity, so they are given no tickets.
//!   Session id context: a hash of the trust configuration.
//! * **Resumption re-checks the certificate.** A resumed session's client certificate must
//!   still be valid (notBefore/notAfter), not revoked by the listener's CRLs and those CRLs
//!   still current, and its Credential-ID not withdrawn (`resumption.rs`). Sessions and
//!   tickets live `session_lifetime` (default 10 minutes, not OpenSSL's 2 hours); a
//!   re-read of the TLS material makes a new context, whose cache and ticket keys are new,
//!   so no session made under an earlier CRL is resumed.
//! * **Flood protection.** A connection takes a handshake place only once its whole
//!   ClientHello has arrived (`hello.rs`), so idle and trickling sockets cost no place; the
//!   places are capped per listener and per address, checked without waiting;
//!   `handshake_timeout` bounds the wait for the ClientHello and the whole handshake.
//! * **Secrets** never appear in errors, logs or `Debug` output.
//!
//! # Talking to a listener with OpenSSL and curl
//!
//! ```text
//! # PSK, TLS 1.2 with the mandatory suite
//! openssl s_client -connect HOST:PORT -tls1_2 -cipher PSK-AES128-CBC-SHA256 \
//!     -psk 00112233445566778899aabbccddeeff -psk_identity sensor-1@secure-cse.example
//! # PSK, TLS 1.3
//! openssl s_client -connect HOST:PORT -tls1_3 -ciphersuites TLS_AES_128_GCM_SHA256 \
//!     -psk 00112233445566778899aabbccddeeff -psk_identity sensor-1@secure-cse.example
//! # certificate, TLS 1.2 with the mandatory suite (TLS 1.3: -tls1_3 instead)
//! openssl s_client -connect HOST:PORT -tls1_2 -cipher ECDHE-ECDSA-AES128-SHA256 \
//!     -cert ae1.pem -key ae1.key -CAfile ca.pem -servername id-in.secure-cse.example
//! # certificate, HTTPS
//! curl --cert ae1.pem --key ae1.key --cacert ca.pem https://localhost:PORT/
//! ```

mod callbacks;
pub mod certificate_id;
mod context;
mod decoy;
mod device;
mod error;
mod failure;
mod files;
mod hello;
mod identity;
mod limits;
mod policy;
mod resumption;
mod slot;
mod state;
mod suites;

pub use device::AnyDeviceCertificate;
pub use error::{HandshakeCap, HandshakeError, TlsError};
pub use files::crl_der;
pub use hello::ClientStream;
pub use policy::{
    CertificateConfig, LocalIdentity, ServerKey, TlsPolicy, TlsVersion, DEFAULT_SESSION_LIFETIME,
};
pub use slot::AcceptorSlot;

use crate::association::Established;
use crate::credentials::CredentialStore;
use limits::Limits;
use openssl::ex_data::Index;
use openssl::ssl::{Ssl, SslContext};
use resumption::ResumptionCheck;
use state::ConnState;
use std::fmt;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_openssl::SslStream;

/// The server side of TLS security associations for one listener. Cheap to clone; clones
/// share the OpenSSL context, the session cache and the handshake caps.
#[derive(Clone)]
pub struct TlsAcceptor {
    inner: Arc<Inner>,
}

struct Inner {
    context: SslContext,
    index: Index<Ssl, ConnState>,
    credentials: Arc<dyn CredentialStore>,
    local: LocalIdentity,
    limits: Limits,
    policy: TlsPolicy,
    /// What a resumed session must still satisfy.
    resumption: ResumptionCheck,
    /// An enrolment listener (the MEF's): every association carries the bootstrap exporter.
    enrolment: bool,
    /// A device enrolment listener (certificate-based RSPF, `device.rs`).
    device_enrolment: bool,
}

impl fmt::Debug for TlsAcceptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = &self.inner.policy;
        f.debug_struct("TlsAcceptor")
            .field("certificate", &p.certificate.is_some())
            .field("psk", &p.psk)
            .field("min_version", &p.min_version)
            .field("handshake_timeout", &p.handshake_timeout)
            .field("max_handshakes", &p.max_handshakes)
            .field("max_handshakes_per_ip", &p.max_handshakes_per_ip)
            .field("session_resumption", &p.session_resumption)
            .field("session_lifetime", &p.session_lifetime)
            .field("local", &self.inner.local)
            .field("enrolment", &self.inner.enrolment)
            .field("device_enrolment", &self.inner.device_enrolment)
            .field("in_progress", &self.inner.limits.in_progress())
            .finish_non_exhaustive()
    }
}

impl TlsAcceptor {
    /// Builds the acceptor: checks the policy, reads and checks every file (chain order,
    /// validity, key type, key match, key file permissions, trust anchors, CRLs) and sets up
    /// OpenSSL. Fails when the policy enables no framework.
    pub fn new(
        policy: &TlsPolicy,
        credentials: Arc<dyn CredentialStore>,
        local_names: LocalIdentity,
    ) -> Result<Self, TlsError> {
        if policy.certificate.is_none() && !policy.psk {
            return Err(TlsError::NoFramework);
        }
        if policy.max_handshakes == 0 || policy.max_handshakes_per_ip == 0 {
            return Err(TlsError::InvalidPolicy(
                "max_handshakes and max_handshakes_per_ip must be at least 1".into(),
            ));
        }
        if policy.handshake_timeout.is_zero() {
            return Err(TlsError::InvalidPolicy(
                "handshake_timeout must not be zero".into(),
            ));
        }
        if local_names.sp().is_empty() || local_names.cse().is_empty() {
            return Err(TlsError::InvalidPolicy(
                "the local SP-ID and CSE-ID must not be empty".into(),
            ));
        }
        let index = state::index().map_err(TlsError::library("a per-connection data slot"))?;
        let (context, crls) = context::build(policy, &credentials, &local_names, index)?;
        Ok(Self {
            inner: Arc::new(Inner {
                context,
                index,
                credentials,
                local: local_names,
                limits: Limits::new(policy.max_handshakes, policy.max_handshakes_per_ip),
                policy: policy.clone(),
                resumption: ResumptionCheck::new(
                    policy.session_lifetime,
                    crls,
                    policy.clock.clone(),
                ),
                enrolment: false,
                device_enrolment: false,
            }),
        })
    }

    /// Builds the acceptor of a MEF enrolment listener (the pre-provisioned symmetric enrolee
    /// key RSPF, TS-0003 clause 8.3.2.1): `enrolees` holds the Kpm keys, looked up by the
    /// `psk_identity` (KpmID). Every association it establishes has the Credential-ID
    /// `10-<KpmID>` and carries the `EXPORTER-oneM2M-Bootstrap` output
    /// ([`Established::bootstrap`]). PSK only (the certificate-based RSPF is not offered
    /// here); no session resumption, so every enrolment is a fresh handshake with the Kpm.
    pub fn enrolment(
        policy: &TlsPolicy,
        enrolees: Arc<dyn CredentialStore>,
        local_names: LocalIdentity,
    ) -> Result<Self, TlsError> {
        if policy.certificate.is_some() || !policy.psk {
            return Err(TlsError::InvalidPolicy(
                "an enrolment listener uses the PSK framework only (the enrolee key)".into(),
            ));
        }
        let policy = TlsPolicy {
            session_resumption: false,
            ..policy.clone()
        };
        let mut acceptor = Self::new(&policy, enrolees, local_names)?;
        match Arc::get_mut(&mut acceptor.inner) {
            Some(inner) => inner.enrolment = true,
            None => {
                return Err(TlsError::InvalidPolicy(
                    "the enrolment acceptor is already shared".into(),
                ))
            }
        }
        Ok(acceptor)
    }

    /// Whether this is a MEF enrolment listener's acceptor.
    pub fn is_enrolment(&self) -> bool {
        self.inner.enrolment || self.inner.device_enrolment
    }

    /// Runs the server handshake on an accepted connection from `peer`.
    ///
    /// Waits for the client's whole ClientHello first, holding no handshake place: a silent
    /// or trickling connection costs only its socket. Then refuses at once when a handshake
    /// cap is reached. Sets `TCP_NODELAY`. The wait and the whole handshake, including the
    /// identity checks, are bounded by `handshake_timeout`. On error the connection is
    /// dropped (closed).
    pub async fn accept(
        &self,
        tcp: TcpStream,
        peer: SocketAddr,
    ) -> Result<(TlsStream, Established), HandshakeError> {
        let timeout: Duration = self.inner.policy.handshake_timeout;
        let admitted = async {
            let io = hello::receive(tcp).await?;
            let _admission = self.inner.limits.admit(peer.ip())?;
            self.handshake(io).await
        };
        match tokio::time::timeout(timeout, admitted).await {
            Ok(result) => result,
            Err(_) => Err(HandshakeError::Timeout),
        }
    }

    /// The cipher suites offered, IANA names, in server preference order: TLS 1.2 suites of
    /// the enabled frameworks, then TLS 1.3 suites (unless the policy's minimum is TLS 1.3).
    pub fn cipher_suites(&self) -> Vec<&'static str> {
        let p = &self.inner.policy;
        let only = p.suites.as_deref();
        let allowed = move |name: &str| only.is_none_or(|o| o.iter().any(|n| n == name));
        let tls12 = suites::tls12(p.certificate.is_some(), p.psk)
            .filter(|_| p.min_version == TlsVersion::Tls12)
            .map(|s| s.iana)
            .filter(move |n| allowed(n));
        tls12
            .chain(suites::TLS13.split(':').filter(move |n| allowed(n)))
            .collect()
    }

    /// Handshakes in progress on this listener (for metrics and tests).
    pub fn handshakes_in_progress(&self) -> usize {
        self.inner.limits.in_progress()
    }

    async fn handshake(
        &self,
        io: ClientStream,
    ) -> Result<(TlsStream, Established), HandshakeError> {
        let inner = &*self.inner;
        io.get_ref().set_nodelay(true).map_err(HandshakeError::Io)?;
        let mut ssl = Ssl::new(&inner.context).map_err(openssl_failure)?;
        // Client certificates and CRLs are verified at the policy's clock, read once per
        // handshake (the handshake lasts at most `handshake_timeout`).
        let now = i64::try_from(inner.policy.clock.unix()).unwrap_or(i64::MAX);
        ssl.param_mut().set_time(now);
        ssl.set_ex_data(inner.index, ConnState::default());
        let mut stream = SslStream::new(ssl, io).map_err(openssl_failure)?;
        let _ = files::take_sign_failure();
        if let Err(error) = Pin::new(&mut stream).accept().await {
            if let Some(reason) = files::take_sign_failure() {
                return Err(HandshakeError::refused(format!(
                    "the server key's home could not sign the handshake: {reason}"
                )));
            }
            return Err(failure::classify(
                error,
                stream.ssl().ex_data(inner.index),
                inner.policy.psk,
            ));
        }
        let established =
            state::establish(stream.ssl(), inner.index, &inner.local, &*inner.credentials)
                .and_then(
                    |established| match (inner.enrolment, inner.device_enrolment) {
                        (true, _) => state::enrolment(stream.ssl(), established),
                        (false, true) => device::establish(stream.ssl(), established),
                        (false, false) => Ok(established),
                    },
                );
        let established = established.and_then(|established| {
            match established
                .resumed
                .then(|| inner.resumption.refusal(stream.ssl()))
                .flatten()
            {
                Some(reason) => Err(reason),
                None => Ok(established),
            }
        });
        match established {
            Ok(established) => match inner.credentials.withdrawn(&established.credential_id) {
                None => Ok((stream, established)),
                // A withdrawn certificate (a PSK never gets this far): the handshake is done,
                // the association is not. Close before reading any request.
                Some(w) => {
                    let _ = stream.shutdown().await;
                    Err(HandshakeError::refused(format!(
                        "credential {}: {}",
                        w.kind.name(),
                        w.reason
                    )))
                }
            },
            Err(reason) => {
                // Only on resumption or an internal inconsistency: full handshakes are
                // refused inside the handshake. Close cleanly; the client sees close_notify.
                let _ = stream.shutdown().await;
                Err(HandshakeError::refused(reason))
            }
        }
    }
}

/// An established TLS connection, over a buffered reader.
pub type TlsStream = SslStream<ClientStream>;

/// OpenSSL failing to set up a connection (memory, mostly): not the client's fault.
fn openssl_failure(e: openssl::error::ErrorStack) -> HandshakeError {
    HandshakeError::Io(std::io::Error::other(format!(
        "OpenSSL could not set up the connection: {e}"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send<T: Send>(_: &T) {}

    /// Listeners run `accept` inside `Send` futures.
    #[allow(dead_code)]
    fn accept_is_send(acceptor: &TlsAcceptor, tcp: TcpStream, peer: SocketAddr) {
        assert_send(&acceptor.accept(tcp, peer));
    }

    #[test]
    fn acceptor_is_shareable() {
        fn shareable<T: Send + Sync + Clone + fmt::Debug>() {}
        shareable::<TlsAcceptor>();
    }
}
