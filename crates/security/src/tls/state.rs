//! What the OpenSSL callbacks of one handshake learned, kept in the `Ssl`'s ex_data, and how
//! the finished handshake becomes an [`Established`].

use super::error::Untrusted;
use super::identity::{identify_certificate, Authenticated};
use super::policy::LocalIdentity;
use super::suites;
use crate::association::{BootstrapExporter, BOOTSTRAP_EXPORTER_LABEL, BOOTSTRAP_EXPORTER_LEN};
use crate::association::{Established, Framework};
use crate::credentials::CredentialStore;
use openssl::error::ErrorStack;
use openssl::ex_data::Index;
use openssl::ssl::{NameType, Ssl, SslRef, SslVersion};
use std::sync::{Mutex, OnceLock};
use zeroize::Zeroizing;

/// Per-connection notes of the callbacks. The callbacks run inside OpenSSL with at most a
/// shared reference to the `Ssl`, hence the lock.
#[derive(Debug, Default)]
pub(crate) struct ConnState(Mutex<Notes>);

#[derive(Debug, Default)]
struct Notes {
    /// Set by the verify callback when the client's certificate passed every check.
    certificate: Option<Authenticated>,
    /// Set by the PSK callback when the client's identity was known (the key may still be
    /// wrong: then the handshake fails).
    psk: Option<Authenticated>,
    /// The KpsaID of `psk`.
    psk_identity: Option<String>,
    /// The first reason a callback refused the handshake.
    refusal: Option<String>,
    /// The last PSK identity offered that the store does not know.
    unknown_psk: Option<String>,
}

impl ConnState {
    fn with<R>(&self, f: impl FnOnce(&mut Notes) -> R) -> R {
        // A poisoned lock only means a callback panicked; the notes stay usable.
        let mut notes = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut notes)
    }

    pub(crate) fn certificate_verified(&self, auth: Authenticated) {
        self.with(|n| n.certificate = Some(auth));
    }

    pub(crate) fn psk_found(&self, identity: &str, auth: Authenticated) {
        self.with(|n| {
            n.psk_identity = Some(identity.to_owned());
            n.psk = Some(auth);
        });
    }

    pub(crate) fn psk_unknown(&self, identity: &str) {
        self.with(|n| n.unknown_psk = Some(identity.to_owned()));
    }

    pub(crate) fn refuse(&self, reason: String) {
        self.with(|n| {
            n.refusal.get_or_insert(reason);
        });
    }

    pub(crate) fn refusal(&self) -> Option<String> {
        self.with(|n| n.refusal.clone())
    }

    /// The PSK identity whose key was used, if a PSK callback found one.
    pub(crate) fn psk_identity(&self) -> Option<String> {
        self.with(|n| {
            n.psk
                .as_ref()
                .map(|a| a.credential_id.trim_start_matches("12-").to_owned())
        })
    }

    pub(crate) fn unknown_psk(&self) -> Option<String> {
        self.with(|n| n.unknown_psk.clone())
    }

    fn take(&self) -> Notes {
        self.with(std::mem::take)
    }
}

/// The ex_data slot for [`ConnState`], created once per process.
pub(crate) fn index() -> Result<Index<Ssl, ConnState>, ErrorStack> {
    static INDEX: OnceLock<Index<Ssl, ConnState>> = OnceLock::new();
    if let Some(index) = INDEX.get() {
        return Ok(*index);
    }
    let index = Ssl::new_ex_index()?;
    Ok(*INDEX.get_or_init(|| index))
}

/// The association a finished handshake established, or why it must not be used.
///
/// Which framework was used follows from what OpenSSL negotiated, not from which callback
/// ran last (a TLS 1.3 client may offer a PSK identity the server then does not use):
///
/// | version | cipher / session | framework | identity from |
/// |---|---|---|---|
/// | 1.2 | PSK suite, full | PSK | the PSK callback |
/// | 1.2 | PSK suite, resumed | PSK | the session's `psk_identity`, looked up again |
/// | 1.2 | ECDSA suite, full | certificate | the verify callback |
/// | 1.2 | ECDSA suite, resumed | certificate | the session's peer certificate |
/// | 1.3 | full | certificate | the verify callback |
/// | 1.3 | PSK, no peer certificate | PSK (external) | the PSK callback |
/// | 1.3 | resumed, peer certificate | certificate | the session's peer certificate |
///
/// OpenSSL reports an external TLS 1.3 PSK as a "reused session"; `resumed` is false there.
/// TLS 1.3 sessions of external PSKs get no tickets (see the PSK callback), so a TLS 1.3
/// session without a peer certificate can only be an external PSK.
pub(crate) fn establish(
    ssl: &SslRef,
    index: Index<Ssl, ConnState>,
    local: &LocalIdentity,
    credentials: &dyn CredentialStore,
) -> Result<Established, String> {
    let notes = ssl.ex_data(index).map(ConnState::take).unwrap_or_default();
    let cipher = ssl.current_cipher().ok_or("no cipher negotiated")?;
    let reused = ssl.session_reused();
    let from_session_certificate = || match ssl.peer_certificate() {
        Some(cert) => identify_certificate(&cert, local, credentials),
        None => Err("resumed session has no client certificate".to_owned()),
    };
    let (auth, resumed) = if ssl.version2() == Some(SslVersion::TLS1_3) {
        match (reused, ssl.peer_certificate().is_some()) {
            (false, _) => (
                notes
                    .certificate
                    .ok_or("handshake ended without a verified client certificate")?,
                false,
            ),
            (true, true) => (from_session_certificate()?, true),
            (true, false) => (
                notes
                    .psk
                    .ok_or("TLS 1.3 session has neither a PSK identity nor a client certificate")?,
                false,
            ),
        }
    } else {
        match (suites::is_psk(cipher.name()), reused) {
            (true, false) => (
                notes
                    .psk
                    .ok_or("PSK handshake ended without a PSK identity")?,
                false,
            ),
            (true, true) => (psk_from_session(ssl, credentials)?, true),
            (false, false) => (
                notes
                    .certificate
                    .ok_or("handshake ended without a verified client certificate")?,
                false,
            ),
            (false, true) => (from_session_certificate()?, true),
        }
    };
    Ok(Established {
        framework: auth.framework,
        credential_id: auth.credential_id,
        binding: auth.binding,
        protocol: ssl.version_str().to_owned(),
        cipher: cipher.standard_name().unwrap_or(cipher.name()).to_owned(),
        server_name: ssl.servername(NameType::HOST_NAME).map(str::to_owned),
        resumed,
        bootstrap: None,
    })
}

/// Turns the association of a finished handshake on an enrolment listener into an
/// enrolment association (TS-0003 clause 8.3.2.1): a full PSK handshake only (the
/// `psk_identity` was a KpmID), Credential-ID `10-<KpmID>` (clause 10.4), and the
/// `EXPORTER-oneM2M-Bootstrap` output (RFC 5705, no context, 48 bytes; clause 10.3.1) the
/// MEF derives Ke and KeID from.
pub(crate) fn enrolment(ssl: &SslRef, mut established: Established) -> Result<Established, String> {
    if established.framework != Framework::Psk || established.resumed {
        return Err("an enrolment needs a full handshake with the enrolee key (PSK)".into());
    }
    let kpm_id = established
        .credential_id
        .strip_prefix("12-")
        .ok_or("the enrolment handshake has no PSK identity")?
        .to_owned();
    let mut ekm = Zeroizing::new([0u8; BOOTSTRAP_EXPORTER_LEN]);
    ssl.export_keying_material(&mut ekm[..], BOOTSTRAP_EXPORTER_LABEL, None)
        .map_err(|e| format!("the TLS exporter failed: {e}"))?;
    established.credential_id = format!("10-{kpm_id}");
    established.bootstrap = Some(BootstrapExporter::new(ekm));
    Ok(established)
}

/// A resumed TLS 1.2 PSK session: the identity stored in the session, looked up again so a
/// PSK withdrawn from the store cannot be resumed either.
fn psk_from_session(
    ssl: &SslRef,
    credentials: &dyn CredentialStore,
) -> Result<Authenticated, String> {
    let identity = ssl
        .psk_identity()
        .and_then(|id| std::str::from_utf8(id).ok())
        .ok_or("resumed PSK session has no PSK identity")?;
    // The binding only: resuming needs no key, so a derived PSK is not derived again.
    let binding = credentials.psk_binding(identity).ok_or_else(|| {
        format!(
            "resumed PSK session of {} which is no longer known",
            Untrusted(identity)
        )
    })?;
    Ok(Authenticated {
        framework: Framework::Psk,
        credential_id: format!("12-{identity}"),
        binding,
    })
}
