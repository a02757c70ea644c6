//! Decoy keys for PSK identities the store does not know, so that an unknown identity and a
//! known one offered with the wrong key fail the same way on the wire (issue 10).
//!
//! Refusing an unknown identity in the PSK callback makes OpenSSL send
//! `unknown_psk_identity` (TLS 1.2) or fall back to a certificate handshake (TLS 1.3), while
//! a known identity with a wrong key fails later, at the Finished message or the binder,
//! with `decrypt_error`/`bad_record_mac`: anyone could list valid KpsaIDs. Instead the
//! callback answers an unknown identity with a key nobody holds: HMAC-SHA-256, under a
//! random key made once per process, of the identity. The handshake then fails exactly as
//! with a wrong key, after the same amount of work (one keyed hash, one copy), and the same
//! identity always gets the same decoy, so repeating it shows nothing either.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::sync::OnceLock;
use zeroize::Zeroizing;

/// The decoy key's length (a Kpsa is 16-64 bytes; the length is not visible on the wire).
pub(crate) const DECOY_LEN: usize = 32;

fn process_key() -> &'static Zeroizing<[u8; 32]> {
    static KEY: OnceLock<Zeroizing<[u8; 32]>> = OnceLock::new();
    KEY.get_or_init(|| {
        let mut key = Zeroizing::new([0u8; 32]);
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut key[..]);
        key
    })
}

/// The decoy key of `identity`.
pub(crate) fn decoy_key(identity: &str) -> Zeroizing<[u8; DECOY_LEN]> {
    let mut out = Zeroizing::new([0u8; DECOY_LEN]);
    // HMAC accepts a key of any length, so `new_from_slice` cannot fail here.
    if let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&process_key()[..]) {
        mac.update(identity.as_bytes());
        out.copy_from_slice(&mac.finalize().into_bytes());
    }
    out
}

/// Whether `identity` could be a PSK identity a client chose (printable text), and not the
/// opaque session ticket OpenSSL also passes to the PSK callback under TLS 1.3: only those
/// get a decoy, so that tickets still resume.
pub(crate) fn is_plausible_identity(identity: &[u8]) -> bool {
    std::str::from_utf8(identity).is_ok_and(|s| !s.is_empty() && !s.chars().any(char::is_control))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoys_are_stable_per_identity_and_differ_between_identities() {
        assert_eq!(*decoy_key("a@sp"), *decoy_key("a@sp"));
        assert_ne!(*decoy_key("a@sp"), *decoy_key("b@sp"));
        assert_ne!(*decoy_key("a@sp"), [0u8; DECOY_LEN]);
        assert!(is_plausible_identity(b"sensor-1@secure-cse.example"));
        assert!(!is_plausible_identity(&[0x01, 0xff, 0x80]));
        assert!(!is_plausible_identity(b""));
        assert!(!is_plausible_identity(b"a\nb"));
    }
}
