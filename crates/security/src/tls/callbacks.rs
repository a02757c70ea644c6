//! The two OpenSSL callbacks that authenticate a client during the handshake.
//!
//! NOTE(identity-in-handshake): the identity checks run inside the handshake, in the verify
//! callback at depth 0 once OpenSSL has validated the chain (trust, validity period, CRLs,
//! purpose). A certificate that names no usable identity therefore fails the handshake with
//! an alert (`handshake_failure`), like an untrusted one; no connection with an unbound
//! certificate ever reaches application data.

use super::decoy;
use super::error::Untrusted;
use super::identity::{identify_certificate, Authenticated};
use super::policy::LocalIdentity;
use super::state::ConnState;
use crate::association::Framework;
use crate::credentials::CredentialStore;
use openssl::error::ErrorStack;
use openssl::ex_data::Index;
use openssl::ssl::{Ssl, SslRef, SslVersion};
use openssl::x509::{X509StoreContext, X509StoreContextRef, X509VerifyResult};
use std::sync::Arc;

/// The certificate verify callback: keeps OpenSSL's verdict on the chain, records why a
/// chain failed, and at depth 0 derives the identity (or refuses).
pub(crate) fn verify_callback(
    index: Index<Ssl, ConnState>,
    local: LocalIdentity,
    credentials: Arc<dyn CredentialStore>,
) -> Result<impl Fn(bool, &mut X509StoreContextRef) -> bool + Send + Sync + 'static, ErrorStack> {
    let ssl_index = X509StoreContext::ssl_idx()?;
    Ok(move |preverify_ok: bool, ctx: &mut X509StoreContextRef| {
        let depth = ctx.error_depth();
        let verdict = {
            let Some(state) = ctx.ex_data(ssl_index).and_then(|ssl| ssl.ex_data(index)) else {
                // Not one of our connections: fail closed.
                return false;
            };
            if !preverify_ok {
                state.refuse(describe_chain_error(ctx.error(), depth));
                return false;
            }
            if depth > 0 {
                return true;
            }
            match ctx
                .current_cert()
                .map(|leaf| identify_certificate(leaf, &local, &*credentials))
            {
                Some(Ok(auth)) => {
                    state.certificate_verified(auth);
                    true
                }
                Some(Err(reason)) => {
                    state.refuse(reason);
                    false
                }
                None => {
                    state.refuse("no client certificate to verify".into());
                    false
                }
            }
        };
        if !verdict {
            // Makes OpenSSL send `handshake_failure`.
            ctx.set_error(X509VerifyResult::APPLICATION_VERIFICATION);
        }
        verdict
    })
}

/// The TLS-PSK server callback: `psk_identity` is a KpsaID (TS-0003 clause 8.2.2.1).
///
/// An identity without a usable key (unknown, withdrawn, or whose key home failed) gets a
/// decoy key (`decoy.rs`) rather than a refusal, so the client sees the same failure as with
/// a known identity and a wrong key; the notes keep the real reason for the log. OpenSSL also
/// calls this with TLS 1.3 session tickets as the identity before trying them as tickets:
/// those (binary, not text) get no decoy, and returning 0 lets OpenSSL go on.
pub(crate) fn psk_callback(
    index: Index<Ssl, ConnState>,
    credentials: Arc<dyn CredentialStore>,
) -> impl Fn(&mut SslRef, Option<&[u8]>, &mut [u8]) -> Result<usize, ErrorStack> + Send + Sync + 'static
{
    move |ssl: &mut SslRef, identity: Option<&[u8]>, out: &mut [u8]| {
        let tls13 = ssl.version2() == Some(SslVersion::TLS1_3);
        let found = {
            let Some(state) = ssl.ex_data(index) else {
                return Ok(0);
            };
            let Some(identity) = identity
                .filter(|id| decoy::is_plausible_identity(id))
                .and_then(|id| std::str::from_utf8(id).ok())
            else {
                return Ok(0);
            };
            match usable_key(state, &*credentials, identity, out) {
                Some(len) => len,
                None => {
                    let decoy = decoy::decoy_key(identity);
                    match out.get_mut(..decoy.len()) {
                        Some(slot) => {
                            slot.copy_from_slice(&decoy[..]);
                            decoy.len()
                        }
                        None => return Ok(0),
                    }
                }
            }
        };
        if tls13 {
            // NOTE(tls13-psk-tickets): a TLS 1.3 session made from an external PSK carries
            // no trace of the PSK identity, so a ticket for it could not be bound to an
            // identity on resumption. Such sessions get no tickets; a full PSK handshake
            // costs no public-key operation more than a resumption anyway.
            let _ = ssl.set_num_tickets(0);
        }
        Ok(found)
    }
}

/// Copies the key of `identity` into `out` and notes the association it would make; `None`
/// (with the reason noted) when there is no usable key.
fn usable_key(
    state: &ConnState,
    credentials: &dyn CredentialStore,
    identity: &str,
    out: &mut [u8],
) -> Option<usize> {
    let credential = match credentials.lookup_psk(identity) {
        Ok(Some(credential)) => credential,
        Ok(None) => {
            state.psk_unknown(identity);
            return None;
        }
        // A known identity whose key the master's home could not derive: refused with that
        // reason (the store logged it), not as an unknown identity.
        Err(unavailable) => {
            state.refuse(format!(
                "the PSK of {} is unavailable: {unavailable}",
                Untrusted(identity)
            ));
            return None;
        }
    };
    // `credential.key` (read from the file, or derived in a key home just now) is zeroized
    // when `credential` drops at the end of this function; OpenSSL cleanses `out` after use.
    let key = credential.key.expose();
    if key.is_empty() || key.len() > out.len() {
        state.refuse(format!(
            "PSK of {} has an unusable length",
            Untrusted(identity)
        ));
        return None;
    }
    out[..key.len()].copy_from_slice(key);
    state.psk_found(
        identity,
        Authenticated {
            framework: Framework::Psk,
            credential_id: format!("12-{identity}"),
            binding: credential.binding.clone(),
        },
    );
    Some(key.len())
}

/// `X509_V_ERR_*` codes of OpenSSL's `x509_vfy.h` that get a reason in plain words.
mod x509_v_err {
    pub(super) const UNABLE_TO_GET_ISSUER_CERT: i32 = 2;
    pub(super) const UNABLE_TO_GET_CRL: i32 = 3;
    pub(super) const UNABLE_TO_DECRYPT_CERT_SIGNATURE: i32 = 4;
    pub(super) const UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY: i32 = 6;
    pub(super) const CERT_SIGNATURE_FAILURE: i32 = 7;
    pub(super) const CRL_SIGNATURE_FAILURE: i32 = 8;
    pub(super) const CERT_NOT_YET_VALID: i32 = 9;
    pub(super) const CERT_HAS_EXPIRED: i32 = 10;
    pub(super) const CRL_NOT_YET_VALID: i32 = 11;
    pub(super) const CRL_HAS_EXPIRED: i32 = 12;
    pub(super) const DEPTH_ZERO_SELF_SIGNED_CERT: i32 = 18;
    pub(super) const SELF_SIGNED_CERT_IN_CHAIN: i32 = 19;
    pub(super) const UNABLE_TO_GET_ISSUER_CERT_LOCALLY: i32 = 20;
    pub(super) const UNABLE_TO_VERIFY_LEAF_SIGNATURE: i32 = 21;
    pub(super) const CERT_CHAIN_TOO_LONG: i32 = 22;
    pub(super) const CERT_REVOKED: i32 = 23;
    pub(super) const PATH_LENGTH_EXCEEDED: i32 = 25;
    pub(super) const INVALID_PURPOSE: i32 = 26;
    pub(super) const CERT_UNTRUSTED: i32 = 27;
    pub(super) const KEYUSAGE_NO_DIGITAL_SIGNATURE: i32 = 39;
    pub(super) const PERMITTED_VIOLATION: i32 = 47;
    pub(super) const EXCLUDED_VIOLATION: i32 = 48;
    pub(super) const SUBTREE_MINMAX: i32 = 49;
    pub(super) const UNSUPPORTED_CONSTRAINT_TYPE: i32 = 51;
    pub(super) const UNSUPPORTED_NAME_SYNTAX: i32 = 53;
}

/// Why OpenSSL rejected a client's chain, in words, with OpenSSL's own text and the depth.
fn describe_chain_error(error: X509VerifyResult, depth: u32) -> String {
    use x509_v_err::*;
    let what = match error.as_raw() {
        CERT_NOT_YET_VALID => "certificate is not yet valid",
        CERT_HAS_EXPIRED => "certificate has expired",
        CERT_REVOKED => "certificate is revoked",
        UNABLE_TO_GET_ISSUER_CERT
        | DEPTH_ZERO_SELF_SIGNED_CERT
        | SELF_SIGNED_CERT_IN_CHAIN
        | UNABLE_TO_GET_ISSUER_CERT_LOCALLY
        | UNABLE_TO_VERIFY_LEAF_SIGNATURE
        | CERT_UNTRUSTED => "certificate is not issued by a trust anchor (untrusted)",
        INVALID_PURPOSE | KEYUSAGE_NO_DIGITAL_SIGNATURE => {
            "certificate is not allowed for client authentication (keyUsage/extendedKeyUsage)"
        }
        UNABLE_TO_GET_CRL => "certificate has no CRL from its issuer (CRL checking is on)",
        CRL_NOT_YET_VALID => "certificate's CRL is not yet valid",
        CRL_HAS_EXPIRED => "certificate's CRL has expired",
        UNABLE_TO_DECRYPT_CERT_SIGNATURE
        | UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY
        | CERT_SIGNATURE_FAILURE => "certificate signature does not verify",
        CRL_SIGNATURE_FAILURE => "certificate's CRL signature does not verify",
        PERMITTED_VIOLATION
        | EXCLUDED_VIOLATION
        | SUBTREE_MINMAX
        | UNSUPPORTED_CONSTRAINT_TYPE
        | UNSUPPORTED_NAME_SYNTAX => "certificate violates its issuer's name constraints",
        CERT_CHAIN_TOO_LONG | PATH_LENGTH_EXCEEDED => "certificate chain is too long",
        _ => "certificate verification failed",
    };
    let whose = if depth == 0 { "client" } else { "issuing CA" };
    format!("{whose} {what} ({}, depth {depth})", error.error_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_errors_in_plain_words() {
        let r = describe_chain_error(X509VerifyResult::APPLICATION_VERIFICATION, 0);
        assert!(
            r.starts_with("client certificate verification failed ("),
            "{r}"
        );
        let r = describe_chain_error(X509VerifyResult::APPLICATION_VERIFICATION, 1);
        assert!(r.starts_with("issuing CA"), "{r}");
    }
}
