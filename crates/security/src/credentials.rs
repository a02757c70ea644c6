//! Credentials: the secrets and the bindings the handshake code looks up. Files are the
//! source today; the security manager (issuing and revoking at run time) and the key store
//! (keys at levels 1-3) implement the same [`CredentialStore`] trait, so the handshake code
//! does not change when they arrive.

use crate::association::{CredentialBinding, PeerIdentity};
use serde::Deserialize;
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// Secret key bytes: zeroized when dropped, never printed, compared in constant time.
pub struct Secret(Zeroizing<Vec<u8>>);

impl Secret {
    /// Wraps key bytes.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// The bytes, for the TLS library's PSK callback only.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Constant-time equality.
    pub fn ct_eq(&self, other: &Secret) -> bool {
        use subtle::ConstantTimeEq;
        self.0.len() == other.0.len() && bool::from(self.0.as_slice().ct_eq(other.0.as_slice()))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({} bytes)", self.0.len())
    }
}

/// A provisioned pre-shared key (Kpsa) and what it may be used as.
#[derive(Debug)]
pub struct PskCredential {
    /// KpsaID, the TLS `psk_identity`.
    pub identity: String,
    /// Kpsa.
    pub key: Secret,
    /// What an association using it is bound to.
    pub binding: CredentialBinding,
}

/// Where the handshake finds credentials.
pub trait CredentialStore: Send + Sync + fmt::Debug + 'static {
    /// The PSK for a `psk_identity`, if the identity is known and usable now.
    fn psk(&self, identity: &str) -> Option<PskCredential>;
    /// The binding for a certificate whose subjectAltName does not itself name an AE or CSE
    /// (for example a device certificate), by Credential-ID.
    fn certificate_binding(&self, credential_id: &str) -> Option<CredentialBinding>;
}

/// Why a credential file cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialError {
    /// The file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The file is not valid.
    #[error("invalid credential file {path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong (never the secret itself).
        message: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    psk: Vec<RawPsk>,
    #[serde(default)]
    certificate: Vec<RawCertificate>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPsk {
    identity: String,
    key_hex: String,
    #[serde(flatten)]
    binding: RawBinding,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCertificate {
    credential_id: String,
    #[serde(flatten)]
    binding: RawBinding,
}

#[derive(Deserialize)]
struct RawBinding {
    ae: Option<String>,
    cse: Option<String>,
    #[serde(default)]
    allowed_aes: Vec<String>,
    #[serde(default)]
    allowed_apps: Vec<String>,
    #[serde(default)]
    admin: bool,
}

impl RawBinding {
    fn resolve(self, what: &str) -> Result<CredentialBinding, String> {
        let identity = match (self.ae, self.cse, self.allowed_aes.is_empty()) {
            (Some(ae), None, true) => PeerIdentity::Ae(ae),
            (None, Some(cse), true) => PeerIdentity::Cse(cse),
            (None, None, false) => PeerIdentity::AllowedAes(self.allowed_aes),
            _ => {
                return Err(format!(
                    "{what}: give exactly one of ae, cse or allowed_aes"
                ))
            }
        };
        Ok(CredentialBinding {
            identity,
            admin: self.admin,
            allowed_apps: self.allowed_apps,
        })
    }
}

/// A KpsaID: `relative@issuer-FQDN` with the characters TS-0003 clause 10.5 allows.
pub fn valid_kpsa_id(id: &str) -> bool {
    let ok = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    };
    matches!(id.split_once('@'), Some((rel, fqdn)) if ok(rel) && ok(fqdn))
}

/// Credentials read from a TOML file:
///
/// ```toml
/// [[psk]]
/// identity = "sensor-1@sp.example"   # KpsaID
/// key_hex = "00112233445566778899aabbccddeeff"
/// allowed_aes = ["C*"]               # or ae = "Cabc", or cse = "/id-mn"
/// allowed_apps = ["Nsensor"]         # optional
/// admin = false                      # optional
///
/// [[certificate]]
/// credential_id = "31-<sha256 hex>"  # a certificate without an AE-ID/CSE-ID name
/// ae = "Cdevice"
/// ```
#[derive(Debug, Default)]
pub struct FileCredentials {
    psks: HashMap<String, (Vec<u8>, CredentialBinding)>,
    certificates: HashMap<String, CredentialBinding>,
}

impl Drop for FileCredentials {
    fn drop(&mut self) {
        for (key, _) in self.psks.values_mut() {
            zeroize::Zeroize::zeroize(key);
        }
    }
}

impl FileCredentials {
    /// Reads and checks a credential file. Key files must not be readable by others.
    pub fn load(path: &Path) -> Result<Self, CredentialError> {
        let invalid = |message: String| CredentialError::Invalid {
            path: path.to_owned(),
            message,
        };
        check_permissions(path).map_err(invalid)?;
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|source| {
            CredentialError::Read {
                path: path.to_owned(),
                source,
            }
        })?);
        Self::parse(&text).map_err(invalid)
    }

    /// Parses the TOML text of a credential file.
    pub fn parse(text: &str) -> Result<Self, String> {
        // The parser's error message can quote the offending line: never pass it on as is.
        let raw: RawFile = toml::from_str(text).map_err(|e| match e.span() {
            Some(span) => format!("syntax error at bytes {}..{}", span.start, span.end),
            None => "syntax error".to_owned(),
        })?;
        let mut out = Self::default();
        for p in raw.psk {
            if !valid_kpsa_id(&p.identity) {
                return Err(format!(
                    "psk identity '{}' is not relative@issuer-fqdn",
                    p.identity
                ));
            }
            let key = Zeroizing::new(
                hex::decode(p.key_hex.trim())
                    .map_err(|_| format!("psk '{}': key_hex is not hex", p.identity))?,
            );
            if key.len() < 16 {
                return Err(format!(
                    "psk '{}': keys must be at least 16 bytes",
                    p.identity
                ));
            }
            let binding = p.binding.resolve(&format!("psk '{}'", p.identity))?;
            if out
                .psks
                .insert(p.identity.clone(), (key.to_vec(), binding))
                .is_some()
            {
                return Err(format!("psk '{}' is listed twice", p.identity));
            }
        }
        for c in raw.certificate {
            let binding = c
                .binding
                .resolve(&format!("certificate '{}'", c.credential_id))?;
            out.certificates.insert(c.credential_id, binding);
        }
        Ok(out)
    }

    /// Number of PSKs.
    pub fn psk_count(&self) -> usize {
        self.psks.len()
    }
}

#[cfg(unix)]
fn check_permissions(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot stat: {e}"))?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err("holds secrets but is readable by group or others (chmod 600)".into());
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_permissions(_: &Path) -> Result<(), String> {
    Ok(())
}

impl CredentialStore for FileCredentials {
    fn psk(&self, identity: &str) -> Option<PskCredential> {
        self.psks.get(identity).map(|(key, binding)| PskCredential {
            identity: identity.to_owned(),
            key: Secret::new(key.clone()),
            binding: binding.clone(),
        })
    }

    fn certificate_binding(&self, credential_id: &str) -> Option<CredentialBinding> {
        self.certificates.get(credential_id).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses() {
        let ok = FileCredentials::parse(
            "[[psk]]\nidentity = \"a@sp.example\"\nkey_hex = \"00112233445566778899aabbccddeeff\"\nallowed_aes = [\"C*\"]\n",
        )
        .expect("valid");
        let psk = ok.psk("a@sp.example").expect("found");
        assert_eq!(psk.key.expose().len(), 16);
        assert_eq!(
            psk.binding.identity,
            PeerIdentity::AllowedAes(vec!["C*".into()])
        );
        assert!(
            format!("{:?}", psk.key).contains("16 bytes")
                && !format!("{:?}", psk.key).contains("0011")
        );
        assert!(ok.psk("b@sp.example").is_none());
        for bad in [
            "[[psk]]\nidentity = \"nope\"\nkey_hex = \"00112233445566778899aabbccddeeff\"\nae = \"C1\"",
            "[[psk]]\nidentity = \"a@b\"\nkey_hex = \"0011\"\nae = \"C1\"",
            "[[psk]]\nidentity = \"a@b\"\nkey_hex = \"zz112233445566778899aabbccddeeff\"\nae = \"C1\"",
            "[[psk]]\nidentity = \"a@b\"\nkey_hex = \"00112233445566778899aabbccddeeff\"",
            "[[psk]]\nidentity = \"a@b\"\nkey_hex = \"00112233445566778899aabbccddeeff\"\nae = \"C1\"\ncse = \"/x\"",
            "[[psk]]\nidentity = \"a@b\"\nkey_hex = \"00112233445566778899aabbccddeeff\"\nae = \"C1\"\nbogus = 1",
        ] {
            let err = FileCredentials::parse(bad).map(|_| ()).expect_err(bad);
            assert!(!err.contains("00112233"), "no secret in errors: {err}");
        }
    }

    #[test]
    fn secrets_compare_in_constant_time() {
        assert!(Secret::new(vec![1, 2]).ct_eq(&Secret::new(vec![1, 2])));
        assert!(!Secret::new(vec![1, 2]).ct_eq(&Secret::new(vec![1, 3])));
        assert!(!Secret::new(vec![1]).ct_eq(&Secret::new(vec![1, 2])));
    }
}
