//! What the CA is told: whose CA it is, the names it may certify, and how long things last.

use super::error::CaError;
use super::identity::{valid_scheme, LocalNames};
use model::clock::Clock;
use std::time::Duration;

/// One day.
const DAY: Duration = Duration::from_secs(24 * 3600);

/// The configuration of a certificate authority.
///
/// `permitted_dns` and `permitted_uri_hosts` become the CA certificate's name constraints when
/// the CA is created (TS-0003 clause 10.1.1: CA certificates constrain the names below them).
/// When an existing CA is opened, the constraints written in its certificate apply and these
/// two fields are ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaConfig {
    /// The SP-ID and CSE-ID every identity is certified relative to.
    pub names: LocalNames,
    /// The CA certificate's subject common name.
    pub common_name: String,
    /// Lifetime of a newly created CA certificate; default 10 years.
    pub ca_validity: Duration,
    /// Permitted dNSName subtrees (CSE public domain names); default: the SP-ID's domain.
    pub permitted_dns: Vec<String>,
    /// Permitted URI host subtrees (the host of an AE-ID's URI); default: the SP-ID's
    /// domain. A leading `.` permits hosts below the name but not the name itself.
    pub permitted_uri_hosts: Vec<String>,
    /// The URI scheme written before the absolute AE-ID in an AE certificate's
    /// subjectAltName; default `onem2m`, giving `onem2m://sp/cse/Cxyz`.
    ///
    /// NOTE(ca): RFC 5280 requires a scheme in a URI subjectAltName, and OpenSSL checks a URI
    /// name constraint only against `scheme://host`: it refuses a bare `//sp/cse/Cxyz` under
    /// any URI constraint. The TLS layer strips any scheme and binds the absolute AE-ID either
    /// way. `None` writes the bare absolute AE-ID, which needs `permitted_uri_hosts` empty.
    pub ae_uri_scheme: Option<String>,
    /// CRL distribution point URLs written into every issued certificate; the CSE publishes
    /// CRLs at `http://<host>/.well-known/crl/<name>`. Default none.
    pub crl_distribution_points: Vec<String>,
    /// How long a CRL is valid (its nextUpdate); default 7 days. Publish a new one before.
    pub crl_validity: Duration,
    /// The time the CA issues, withdraws and signs CRLs at (notBefore, thisUpdate, record
    /// times) and judges its own certificate's expiry by: the system clock, or the CSE's
    /// (a test's [`ManualClock`](model::clock::ManualClock)).
    pub clock: Clock,
}

impl CaConfig {
    /// The defaults for the SP-ID `sp_id` and the CSE-ID `cse_id` of the CSE that runs the
    /// CA.
    pub fn new(sp_id: impl Into<String>, cse_id: impl Into<String>) -> Self {
        let names = LocalNames::new(sp_id, cse_id);
        let sp = names.sp().to_owned();
        Self {
            common_name: format!("{sp} certificate authority"),
            names,
            ca_validity: 3650 * DAY,
            permitted_dns: vec![sp.clone()],
            permitted_uri_hosts: vec![sp],
            ae_uri_scheme: Some("onem2m".into()),
            crl_distribution_points: Vec::new(),
            crl_validity: 7 * DAY,
            clock: Clock::system(),
        }
    }

    /// Refuses a configuration that would produce certificates relying parties reject.
    pub(super) fn check(&self) -> Result<(), CaError> {
        self.names.check()?;
        if self.common_name.trim().is_empty() {
            return Err(CaError::Config("common_name must not be empty".into()));
        }
        if self.permitted_dns.is_empty() && self.permitted_uri_hosts.is_empty() {
            return Err(CaError::Config(
                "a CA certificate must carry name constraints (TS-0003 10.1.1): give \
                 permitted_dns or permitted_uri_hosts"
                    .into(),
            ));
        }
        for name in self.permitted_dns.iter().chain(&self.permitted_uri_hosts) {
            let bare = name.strip_prefix('.').unwrap_or(name);
            let ok = !bare.is_empty()
                && bare
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'));
            if !ok {
                return Err(CaError::Config(format!(
                    "name constraint {name:?} is not a domain name"
                )));
            }
        }
        match &self.ae_uri_scheme {
            Some(scheme) if !valid_scheme(scheme) => {
                return Err(CaError::Config(format!(
                    "ae_uri_scheme {scheme:?} is not a URI scheme"
                )))
            }
            None if !self.permitted_uri_hosts.is_empty() => {
                return Err(CaError::Config(
                    "without ae_uri_scheme an AE-ID's URI has no host, so permitted_uri_hosts \
                     must be empty (OpenSSL would refuse every AE certificate)"
                        .into(),
                ))
            }
            _ => {}
        }
        for url in &self.crl_distribution_points {
            if !url.is_ascii() || !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(CaError::Config(format!(
                    "CRL distribution point {url:?} must be an http(s) URL"
                )));
            }
        }
        if self.crl_validity.is_zero() || self.ca_validity.is_zero() {
            return Err(CaError::Config(
                "ca_validity and crl_validity must not be zero".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_pass_and_mistakes_are_named() {
        let ok = CaConfig::new("//secure-cse.example", "/id-in");
        assert!(ok.check().is_ok());
        assert_eq!(
            ok.permitted_uri_hosts,
            vec!["secure-cse.example".to_owned()]
        );
        let bad = |f: fn(&mut CaConfig)| {
            let mut c = ok.clone();
            f(&mut c);
            c.check()
        };
        assert!(matches!(
            bad(|c| c.ae_uri_scheme = None),
            Err(CaError::Config(m)) if m.contains("permitted_uri_hosts")
        ));
        assert!(bad(|c| {
            c.ae_uri_scheme = None;
            c.permitted_uri_hosts.clear();
        })
        .is_ok());
        assert!(bad(|c| c.ae_uri_scheme = Some("1x".into())).is_err());
        assert!(bad(|c| {
            c.permitted_dns.clear();
            c.permitted_uri_hosts.clear();
        })
        .is_err());
        assert!(bad(|c| c.crl_distribution_points = vec!["ftp://x/y".into()]).is_err());
        assert!(bad(|c| c.permitted_dns = vec!["*.example".into()]).is_err());
    }
}
