//! The pre-shared key of the PSK-based security association framework (TS-0003 clause
//! 8.2.1): a key identifier (KpsaID, e.g. `dev1@sp.example`) and the key itself.

use crate::error::TlsError;
use crate::tls::read_private_file;
use std::fmt;
use std::path::Path;
use zeroize::Zeroizing;

/// A pre-shared key and its identity, for [`crate::TlsOptions::psk`].
///
/// The key bytes live in a zeroizing buffer that is wiped on drop. There is no `Clone`,
/// and `Debug` prints only the identity.
pub struct Psk {
    identity: String,
    key: Zeroizing<Vec<u8>>,
}

impl Psk {
    /// The shortest key accepted: 128 bits. A shorter key would be the weakest part of the
    /// association, so it is refused rather than used.
    pub const MIN_KEY_BYTES: usize = 16;
    /// The longest key accepted (512 bits).
    pub const MAX_KEY_BYTES: usize = 64;
    /// The longest identity accepted (OpenSSL's limit for the legacy PSK callback).
    pub const MAX_IDENTITY_BYTES: usize = 128;

    /// A PSK from its identity and key bytes.
    pub fn new(identity: impl Into<String>, key: Zeroizing<Vec<u8>>) -> Result<Self, TlsError> {
        let identity = identity.into();
        if identity.is_empty() {
            return Err(TlsError::InvalidPsk("the identity is empty"));
        }
        if identity.len() > Self::MAX_IDENTITY_BYTES {
            return Err(TlsError::InvalidPsk(
                "the identity is longer than 128 bytes",
            ));
        }
        // The identity travels as a C string and in logs: no NUL, no control characters.
        if identity.chars().any(char::is_control) {
            return Err(TlsError::InvalidPsk(
                "the identity contains control characters",
            ));
        }
        if key.len() < Self::MIN_KEY_BYTES {
            return Err(TlsError::InvalidPsk(
                "the key is shorter than 16 bytes (32 hex digits)",
            ));
        }
        if key.len() > Self::MAX_KEY_BYTES {
            return Err(TlsError::InvalidPsk(
                "the key is longer than 64 bytes (128 hex digits)",
            ));
        }
        Ok(Self { identity, key })
    }

    /// A PSK whose key is given as hex digits (surrounding whitespace is ignored).
    pub fn from_hex(identity: impl Into<String>, hex_key: &str) -> Result<Self, TlsError> {
        let hex_key = hex_key.trim();
        let mut key = Zeroizing::new(vec![0u8; hex_key.len() / 2]);
        hex::decode_to_slice(hex_key, &mut key).map_err(|e| {
            TlsError::InvalidPsk(match e {
                hex::FromHexError::OddLength => "the key has an odd number of hex digits",
                _ => "the key is not hex digits",
            })
        })?;
        Self::new(identity, key)
    }

    /// A PSK whose key is read, as hex digits, from `path`. On Unix the file must not be
    /// accessible by group or others ([`TlsError::KeyFileNotPrivate`]).
    pub fn from_hex_file(identity: impl Into<String>, path: &Path) -> Result<Self, TlsError> {
        let bytes = read_private_file(path)?;
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| TlsError::InvalidPsk("the key file is not hex digits"))?;
        Self::from_hex(identity, text)
    }

    /// The identity (KpsaID) sent to the server.
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// Writes the identity (as a C string) and the key into OpenSSL's buffers and returns
    /// the key length, or `None` when a buffer is too small.
    pub(crate) fn write_to(&self, identity_out: &mut [u8], key_out: &mut [u8]) -> Option<usize> {
        let id = self.identity.as_bytes();
        if id.len() >= identity_out.len() || self.key.len() > key_out.len() {
            return None;
        }
        identity_out[..id.len()].copy_from_slice(id);
        identity_out[id.len()] = 0;
        key_out[..self.key.len()].copy_from_slice(&self.key);
        Some(self.key.len())
    }
}

impl fmt::Debug for Psk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Psk")
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "00112233445566778899aabbccddeeff";

    #[test]
    fn hex_keys() {
        let psk = Psk::from_hex("dev1@sp.example", &format!(" {KEY}\n")).expect("valid");
        assert_eq!(psk.identity(), "dev1@sp.example");
        assert_eq!(psk.key.len(), 16);
        assert!(Psk::from_hex("dev1", "0011").is_err(), "too short");
        assert!(Psk::from_hex("dev1", &KEY[1..]).is_err(), "odd length");
        assert!(Psk::from_hex("dev1", &KEY.replace('0', "g")).is_err());
        assert!(Psk::from_hex("dev1", &"ab".repeat(65)).is_err(), "too long");
        assert!(Psk::from_hex("", KEY).is_err());
        assert!(Psk::from_hex("dev\u{0}1", KEY).is_err());
        assert!(Psk::from_hex("d".repeat(129), KEY).is_err());
    }

    #[test]
    fn debug_shows_only_the_identity() {
        let psk = Psk::from_hex("dev1", KEY).expect("valid");
        let text = format!("{psk:?}");
        assert!(text.contains("dev1"), "{text}");
        assert!(!text.contains("key"), "{text}");
        assert!(!text.to_lowercase().contains("aabb"), "{text}");
        assert!(
            !text.contains("17"),
            "no key bytes in decimal either: {text}"
        );
    }

    #[test]
    fn writes_into_openssl_buffers() {
        let psk = Psk::from_hex("dev1", KEY).expect("valid");
        let (mut id, mut key) = ([0xffu8; 8], [0u8; 32]);
        assert_eq!(psk.write_to(&mut id, &mut key), Some(16));
        assert_eq!(&id[..5], b"dev1\0");
        assert_eq!(key[1], 0x11);
        let mut small = [0u8; 4];
        assert_eq!(
            psk.write_to(&mut small, &mut key),
            None,
            "no room for the NUL"
        );
        assert_eq!(psk.write_to(&mut id, &mut small), None);
    }

    #[cfg(unix)]
    #[test]
    fn key_files_must_be_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("psk.hex");
        std::fs::write(&path, KEY).expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        assert_eq!(
            Psk::from_hex_file("dev1", &path)
                .expect("private file")
                .identity(),
            "dev1"
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).expect("chmod");
        let err = Psk::from_hex_file("dev1", &path).expect_err("group-readable");
        assert!(
            matches!(err, TlsError::KeyFileNotPrivate { mode: 0o640, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("chmod 600"), "{err}");
        assert!(matches!(
            Psk::from_hex_file("dev1", &dir.path().join("missing")),
            Err(TlsError::Read { .. })
        ));
    }
}
