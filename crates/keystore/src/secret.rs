//! Values that cross the key-store boundary. Secrets are types: they zeroize on drop, have no
//! `Clone` or `Serialize`, print only their length, and compare in constant time.

use std::fmt;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

/// Secret bytes handed in (key material to import, a passphrase) or out (a derived key, a
/// decrypted secret). Zeroized when dropped; `Debug` shows only the length.
pub struct SecretBytes(Zeroizing<Vec<u8>>);

impl SecretBytes {
    /// Takes ownership of the bytes; they are wiped when the value is dropped.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// Copies a slice (the caller remains responsible for wiping its own copy).
    pub fn from_slice(bytes: &[u8]) -> Self {
        Self::new(bytes.to_vec())
    }

    /// The bytes. Keep the borrow short and do not copy them into unprotected buffers.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Constant-time equality (lengths are not secret).
    pub fn ct_eq(&self, other: &SecretBytes) -> bool {
        self.0.len() == other.0.len() && bool::from(self.0.as_slice().ct_eq(other.0.as_slice()))
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretBytes({} bytes)", self.0.len())
    }
}

/// An HMAC-SHA-256 tag. Treated as secret, because a MAC over a label under a master key is
/// itself a key (TS-0003 derives Kpsa that way): zeroized, not printed, compared in constant
/// time.
pub struct Mac([u8; 32]);

impl Mac {
    pub(crate) fn new(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    #[cfg_attr(not(feature = "pkcs11"), allow(dead_code))]
    pub(crate) fn from_slice(bytes: &[u8]) -> Option<Self> {
        let mut out = [0u8; 32];
        if bytes.len() != out.len() {
            return None;
        }
        out.copy_from_slice(bytes);
        Some(Self(out))
    }

    /// The tag.
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }

    /// Constant-time comparison against a received tag of any length.
    pub fn verify(&self, received: &[u8]) -> bool {
        received.len() == 32 && bool::from(self.0.as_slice().ct_eq(received))
    }
}

impl Drop for Mac {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Mac(32 bytes)")
    }
}

/// An ECDSA signature, DER-encoded (`Ecdsa-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER }`),
/// the form X.509 and TLS carry.
#[derive(Clone, PartialEq, Eq)]
pub struct Signature(Vec<u8>);

impl Signature {
    /// Wraps DER bytes received from elsewhere (for [`crate::KeyHome::verify`]).
    pub fn from_der(der: Vec<u8>) -> Self {
        Self(der)
    }

    /// The DER bytes.
    pub fn as_der(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({})", hex::encode(&self.0))
    }
}

/// A public key as X.509 SubjectPublicKeyInfo DER.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKeyDer(Vec<u8>);

impl PublicKeyDer {
    pub(crate) fn new(der: Vec<u8>) -> Self {
        Self(der)
    }

    /// The DER bytes.
    pub fn as_der(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for PublicKeyDer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKeyDer({})", hex::encode(&self.0))
    }
}

/// AEAD output: `nonce (12) || ciphertext || tag (16)`. Not secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Sealed(Vec<u8>);

impl Sealed {
    /// Nonce length.
    pub const NONCE_LEN: usize = 12;
    /// Tag length.
    pub const TAG_LEN: usize = 16;

    /// Wraps stored bytes for decryption.
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    /// The bytes, to store or send.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// `(nonce, ciphertext, tag)`, or `None` when too short.
    pub(crate) fn parts(&self) -> Option<(&[u8], &[u8], &[u8])> {
        if self.0.len() < Self::NONCE_LEN + Self::TAG_LEN {
            return None;
        }
        let (nonce, rest) = self.0.split_at(Self::NONCE_LEN);
        let (ct, tag) = rest.split_at(rest.len() - Self::TAG_LEN);
        Some((nonce, ct, tag))
    }
}

impl fmt::Debug for Sealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sealed({} bytes)", self.0.len())
    }
}

/// Evidence that a signature verified: only [`crate::KeyHome::verify`] builds one.
#[derive(Debug)]
pub struct SignatureValid(pub(crate) ());

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_do_not_print() {
        let s = SecretBytes::from_slice(b"hunter2");
        assert_eq!(format!("{s:?}"), "SecretBytes(7 bytes)");
        let m = Mac::new([7; 32]);
        assert_eq!(format!("{m:?}"), "Mac(32 bytes)");
    }

    #[test]
    fn constant_time_compares() {
        let a = SecretBytes::from_slice(b"abc");
        assert!(a.ct_eq(&SecretBytes::from_slice(b"abc")));
        assert!(!a.ct_eq(&SecretBytes::from_slice(b"abd")));
        assert!(!a.ct_eq(&SecretBytes::from_slice(b"ab")));
        let m = Mac::new([1; 32]);
        assert!(m.verify(&[1; 32]));
        assert!(!m.verify(&[1; 31]));
        assert!(!m.verify(&[2; 32]));
    }

    #[test]
    fn sealed_parts() {
        assert!(Sealed::from_bytes(vec![0; 27]).parts().is_none());
        let s = Sealed::from_bytes((0..30).collect());
        let (n, c, t) = s.parts().expect("long enough");
        assert_eq!((n.len(), c.len(), t.len()), (12, 2, 16));
    }
}
