//! The MEF side of the pre-provisioned symmetric enrolee key RSPF (TS-0003 clause 8.3.2.1):
//! the enrolee keys (Kpm) the enrolment listener accepts, and the exporter value an
//! enrolment association carries to the one request it may serve.
//!
//! An enrolee proves it holds its Kpm in a TLS-PSK handshake (`psk_identity` = KpmID). The
//! listener then computes the TLS exporter with the label `EXPORTER-oneM2M-Bootstrap`
//! (48 bytes, clause 10.3.1) and hands it to the association as a
//! [`BootstrapExporter`](crate::association::BootstrapExporter): a
//! cell the MEF empties exactly once, so one association can enrol once and never twice.

use crate::association::{CredentialBinding, Level, PeerIdentity};
use crate::credentials::PskUnavailable;
use crate::credentials::{valid_kpsa_id, CredentialError, CredentialStore, PskCredential};
use keystore::SecretBytes;
use model::clock::Clock;
use serde::Deserialize;
use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use zeroize::Zeroizing;

/// One pre-provisioned enrolee: its Kpm, until when it may enrol, and what the credentials
/// issued to it are bound to.
#[derive(Debug)]
struct Enrolee {
    key: SecretBytes,
    expires: Option<u64>,
    binding: CredentialBinding,
}

/// What the MEF needs to know about an enrolee besides its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnroleeInfo {
    /// The KpmID.
    pub identity: String,
    /// When the Kpm stops being accepted (seconds since the Unix epoch), if ever. Keys
    /// derived through the enrolment do not outlive it (clause 10.7).
    pub expires: Option<u64>,
    /// What a Kpsa issued to the enrolee is bound to.
    pub binding: CredentialBinding,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    enrolee: Vec<RawEnrolee>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEnrolee {
    identity: String,
    key_hex: String,
    expires: Option<String>,
    ae: Option<String>,
    #[serde(default)]
    allowed_aes: Vec<String>,
    #[serde(default)]
    allowed_apps: Vec<String>,
    level: Option<Level>,
}

impl Drop for RawEnrolee {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.key_hex);
    }
}

/// The pre-provisioned enrolee keys (Kpm), read from a TOML file (mode 600):
///
/// ```toml
/// [[enrolee]]
/// identity = "sensor-9@mef.secure-cse.example"  # KpmID, the psk_identity of the enrolment handshake
/// key_hex = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
/// expires = "2030-01-01T00:00:00Z"             # optional (RFC 3339): refused from then on
/// allowed_aes = ["C*"]                          # or ae = "Csensor9": what the issued Kpsa is bound to
/// allowed_apps = ["Nsensor"]                    # optional
/// level = 2                                     # optional: level of the enrolee's key home
/// ```
///
/// As a [`CredentialStore`] it serves the enrolment listener only: an expired Kpm is a
/// known identity whose key is unavailable, so the handshake is refused with that reason.
#[derive(Debug, Default)]
pub struct EnroleeKeys {
    enrolees: HashMap<String, Enrolee>,
    /// Decides whether a Kpm has expired.
    clock: Clock,
}

impl EnroleeKeys {
    /// Reads and checks the file; it must not be readable by group or others.
    pub fn load(path: &Path) -> Result<Self, CredentialError> {
        let invalid = |message: String| CredentialError::Invalid {
            path: path.to_owned(),
            message,
        };
        check_private(path).map_err(invalid)?;
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|source| {
            CredentialError::Read {
                path: path.to_owned(),
                source,
            }
        })?);
        Self::parse(&text).map_err(invalid)
    }

    /// Parses the TOML text of an enrolee file.
    pub fn parse(text: &str) -> Result<Self, String> {
        // The parser's message may quote a line holding a key: never pass it on.
        let raw: RawFile = toml::from_str(text).map_err(|e| match e.span() {
            Some(span) => format!("syntax error at bytes {}..{}", span.start, span.end),
            None => "syntax error".to_owned(),
        })?;
        let mut enrolees = HashMap::new();
        for e in raw.enrolee {
            let what = format!("enrolee '{}'", e.identity);
            if !valid_kpsa_id(&e.identity) {
                return Err(format!("{what}: the identity (KpmID) is not relative@fqdn"));
            }
            let key = Zeroizing::new(
                hex::decode(e.key_hex.trim()).map_err(|_| format!("{what}: key_hex is not hex"))?,
            );
            if key.len() < 16 {
                return Err(format!("{what}: keys must be at least 16 bytes"));
            }
            let expires = e
                .expires
                .as_deref()
                .map(|t| {
                    chrono::DateTime::parse_from_rfc3339(t)
                        .map_err(|_| format!("{what}: expires is not an RFC 3339 time"))
                        .and_then(|t| {
                            u64::try_from(t.timestamp())
                                .map_err(|_| format!("{what}: expires is before 1970"))
                        })
                })
                .transpose()?;
            let identity = match (e.ae.clone(), e.allowed_aes.is_empty()) {
                (Some(ae), true) => PeerIdentity::Ae(ae),
                (None, false) => PeerIdentity::AllowedAes(e.allowed_aes.clone()),
                _ => return Err(format!("{what}: give exactly one of ae or allowed_aes")),
            };
            let binding = CredentialBinding {
                identity,
                admin: false,
                allowed_apps: e.allowed_apps.clone(),
                level: Some(e.level.unwrap_or(Level::Software)),
            };
            let enrolee = Enrolee {
                key: SecretBytes::new(key.to_vec()),
                expires,
                binding,
            };
            if enrolees.insert(e.identity.clone(), enrolee).is_some() {
                return Err(format!("{what} is listed twice"));
            }
        }
        Ok(Self {
            enrolees,
            clock: Clock::system(),
        })
    }

    /// The same keys, their expiry decided by `clock` (the CSE's).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Number of enrolees.
    pub fn len(&self) -> usize {
        self.enrolees.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.enrolees.is_empty()
    }

    /// What the MEF needs about the enrolee `identity` (KpmID), without its key.
    pub fn info(&self, identity: &str) -> Option<EnroleeInfo> {
        self.enrolees.get(identity).map(|e| EnroleeInfo {
            identity: identity.to_owned(),
            expires: e.expires,
            binding: e.binding.clone(),
        })
    }

    /// The Kpm of `identity` as the handshake at `now` sees it.
    pub fn lookup_at(
        &self,
        identity: &str,
        now: SystemTime,
    ) -> Result<Option<PskCredential>, PskUnavailable> {
        let Some(e) = self.enrolees.get(identity) else {
            return Ok(None);
        };
        if let Some(expires) = e.expires {
            if unix(now) >= expires {
                return Err(PskUnavailable::new(format!(
                    "the enrolee key {identity:?} expired at {}",
                    rfc3339(expires)
                )));
            }
        }
        Ok(Some(PskCredential {
            identity: identity.to_owned(),
            key: SecretBytes::new(e.key.expose().to_vec()),
            binding: e.binding.clone(),
        }))
    }
}

impl CredentialStore for EnroleeKeys {
    fn psk(&self, identity: &str) -> Option<PskCredential> {
        self.lookup_psk(identity).ok().flatten()
    }

    fn certificate_binding(&self, _credential_id: &str) -> Option<CredentialBinding> {
        None
    }

    fn lookup_psk(&self, identity: &str) -> Result<Option<PskCredential>, PskUnavailable> {
        self.lookup_at(identity, self.clock.system_time())
    }
}

/// Seconds since the Unix epoch (0 before it).
pub fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// A Unix time in RFC 3339 (UTC), for messages and answers.
pub fn rfc3339(secs: u64) -> String {
    let t = UNIX_EPOCH + Duration::from_secs(secs);
    chrono::DateTime::<chrono::Utc>::from(t)
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

#[cfg(unix)]
fn check_private(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot stat: {e}"))?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err("holds secrets but is readable by group or others (chmod 600)".into());
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_: &Path) -> Result<(), String> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    #[test]
    fn enrolee_file_parses_and_refuses() {
        let keys = EnroleeKeys::parse(&format!(
            "[[enrolee]]\nidentity = \"a@mef.example\"\nkey_hex = \"{KEY}\"\nexpires = \"2030-01-01T00:00:00Z\"\nallowed_aes = [\"C*\"]\n\
             [[enrolee]]\nidentity = \"b@mef.example\"\nkey_hex = \"{KEY}\"\nae = \"Cb\"\nlevel = 3\n"
        ))
        .expect("valid");
        assert_eq!(keys.len(), 2);
        let a = keys.info("a@mef.example").expect("a");
        assert_eq!(a.expires, Some(1_893_456_000));
        assert_eq!(
            a.binding.identity,
            PeerIdentity::AllowedAes(vec!["C*".into()])
        );
        assert_eq!(
            keys.info("b@mef.example").and_then(|b| b.binding.level),
            Some(Level::Hsm)
        );
        assert!(!format!("{keys:?}").contains("0001020304"));
        for bad in [
            format!("[[enrolee]]\nidentity = \"nope\"\nkey_hex = \"{KEY}\"\nae = \"C1\""),
            "[[enrolee]]\nidentity = \"a@b\"\nkey_hex = \"0011\"\nae = \"C1\"".to_owned(),
            format!("[[enrolee]]\nidentity = \"a@b\"\nkey_hex = \"{KEY}\"\nae = \"C1\"\nexpires = \"tomorrow\""),
            format!("[[enrolee]]\nidentity = \"a@b\"\nkey_hex = \"{KEY}\""),
            format!("[[enrolee]]\nidentity = \"a@b\"\nkey_hex = \"{KEY}\"\nae = \"C1\"\nadmin = true"),
            format!("[[enrolee]]\nidentity = \"a@b\"\nkey_hex = \"{KEY}\"\nae = \"C1\"\n[[enrolee]]\nidentity = \"a@b\"\nkey_hex = \"{KEY}\"\nae = \"C1\""),
        ] {
            let err = EnroleeKeys::parse(&bad).map(|_| ()).expect_err(&bad);
            assert!(!err.contains("0001020304"), "no secret in errors: {err}");
        }
    }

    #[test]
    fn an_expired_enrolee_key_is_refused_with_a_reason() {
        let keys = EnroleeKeys::parse(&format!(
            "[[enrolee]]\nidentity = \"a@mef.example\"\nkey_hex = \"{KEY}\"\nexpires = \"2030-01-01T00:00:00Z\"\nae = \"Ca\"\n"
        ))
        .expect("valid");
        let before = UNIX_EPOCH + Duration::from_secs(1_893_455_999);
        let at = UNIX_EPOCH + Duration::from_secs(1_893_456_000);
        let found = keys.lookup_at("a@mef.example", before).expect("usable");
        assert_eq!(found.map(|c| c.key.expose().len()), Some(32));
        let err = keys
            .lookup_at("a@mef.example", at)
            .map(|_| ())
            .expect_err("expired");
        assert!(
            err.to_string().contains("expired at 2030-01-01T00:00:00Z"),
            "{err}"
        );
        assert!(matches!(keys.lookup_at("z@mef.example", before), Ok(None)));
    }
}
