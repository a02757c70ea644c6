//! The certificate-based enrolment keys of `[enrolment]` (`device_*`, `[[enrolment.device]]`):
//! a device with a manufacturer certificate gets an AE-ID certificate from the CSE's CA.

use super::{ConfigError, EnrolmentSection};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// One `[[enrolment.device]]`: a device certificate, by fingerprint, and its AE-ID.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceEntry {
    /// The device certificate's Credential-ID digest, as `m2m credentials id` prints it (the
    /// SHA-256 of what its issuer signed; a `31-` prefix and colons are accepted).
    pub fingerprint: String,
    /// The AE-ID it may be certified for (`Cdev1`).
    pub ae_id: String,
}

/// The resolved certificate-based enrolment.
#[derive(Debug, Clone)]
pub struct DeviceEnrolmentSettings {
    /// Where the device enrolment listener binds.
    pub listen: SocketAddr,
    /// The manufacturer CAs (PEM) device certificates must chain to.
    pub device_cas: Vec<PathBuf>,
    /// The manufacturers' CRLs, checked for every device certificate.
    pub device_crls: Vec<PathBuf>,
    /// The devices and their AE-IDs (normalised fingerprints).
    pub policy: cse::security_manager::enrolment::certificate::DevicePolicy,
    /// Validity of an issued certificate.
    pub validity: Duration,
}

/// Default validity of an enrolled certificate: 90 days.
pub const DEFAULT_DEVICE_CERT_DAYS: u64 = 90;

impl EnrolmentSection {
    /// Takes the certificate-based enrolment keys out of the section and checks them.
    pub(super) fn resolve_devices(
        &mut self,
    ) -> Result<Option<DeviceEnrolmentSettings>, ConfigError> {
        let listen = self.device_listen.take();
        let cas = std::mem::take(&mut self.device_cas);
        let crls = std::mem::take(&mut self.device_crls);
        let entries = std::mem::take(&mut self.device);
        let (any, days) = (self.device_any.take(), self.device_days.take());
        let Some(listen) = listen else {
            if !cas.is_empty()
                || !crls.is_empty()
                || !entries.is_empty()
                || any.is_some()
                || days.is_some()
            {
                return Err(ConfigError::Invalid(
                    "enrolment.device_* keys need enrolment.device_listen".into(),
                ));
            }
            return Ok(None);
        };
        if cas.is_empty() {
            return Err(ConfigError::Invalid(
                "enrolment.device_listen needs enrolment.device_cas (the manufacturer CAs)".into(),
            ));
        }
        let days = days.unwrap_or(DEFAULT_DEVICE_CERT_DAYS);
        if days == 0 {
            return Err(ConfigError::Invalid(
                "enrolment.device_days must be at least 1".into(),
            ));
        }
        let mut devices = Vec::new();
        for e in entries {
            let f = cse::security_manager::enrolment::certificate::DevicePolicy::fingerprint(&e.fingerprint).ok_or_else(
                || {
                    ConfigError::Invalid(format!(
                        "enrolment.device fingerprint {:?} is not a certificate digest (m2m credentials id)",
                        e.fingerprint
                    ))
                },
            )?;
            devices.push((f, e.ae_id));
        }
        Ok(Some(DeviceEnrolmentSettings {
            listen,
            device_cas: cas,
            device_crls: crls,
            policy: cse::security_manager::enrolment::certificate::DevicePolicy {
                devices,
                any_device: any.unwrap_or(false),
            },
            validity: Duration::from_secs(days.saturating_mul(86_400)),
        }))
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{ConfigError, FileConfig};
    use std::path::Path;

    fn resolve(text: &str) -> Result<crate::config::Settings, ConfigError> {
        FileConfig::parse(text, Path::new("test.toml"))?.resolve(None, None)
    }

    #[test]
    fn device_enrolment_keys_are_checked() {
        let fp = "AB:".repeat(31) + "AB";
        let ok = resolve(&format!(
            "[enrolment]\ndevice_listen = \"127.0.0.1:0\"\ndevice_cas = [\"m.pem\"]\n\
             [[enrolment.device]]\nfingerprint = \"{fp}\"\nae_id = \"Cdev\"\n"
        ))
        .expect("valid");
        let d = ok.device_enrolment.expect("configured");
        assert_eq!(d.policy.devices, vec![("ab".repeat(32), "Cdev".to_owned())]);
        assert!(!d.policy.any_device);
        assert_eq!(d.validity.as_secs(), 90 * 86_400);
        assert!(ok.enrolment.is_none(), "the PSK MEF is not implied");

        for (bad, needle) in [
            ("[enrolment]\ndevice_cas = [\"m.pem\"]\n", "need enrolment.device_listen"),
            ("[enrolment]\ndevice_crls = [\"m.crl\"]\n", "need enrolment.device_listen"),
            ("[enrolment]\ndevice_listen = \"127.0.0.1:0\"\n", "needs enrolment.device_cas"),
            (
                "[enrolment]\ndevice_listen = \"127.0.0.1:0\"\ndevice_cas = [\"m\"]\ndevice_days = 0\n",
                "device_days",
            ),
            (
                "[enrolment]\ndevice_listen = \"127.0.0.1:0\"\ndevice_cas = [\"m\"]\n\
                 [[enrolment.device]]\nfingerprint = \"AB:CD\"\nae_id = \"Cdev\"\n",
                "not a certificate digest",
            ),
        ] {
            let r = resolve(bad);
            assert!(
                matches!(&r, Err(ConfigError::Invalid(m)) if m.contains(needle)),
                "{bad}: {r:?}"
            );
        }
    }
}
