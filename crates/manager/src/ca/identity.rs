//! The identities the CA certifies and how they appear in a certificate, matching what the TLS
//! layer (`security::tls`, identity extraction) reads back (TS-0003 clauses 8.1.2.5, 10.1.1.5,
//! 10.1.1.7):
//!
//! * an AE-ID becomes a URI subjectAltName holding the absolute AE-ID (`//sp/cse/Cxyz`,
//!   `//sp/Sxyz`), by default behind the scheme `onem2m:` (see [`LocalNames`] and
//!   `CaConfig::ae_uri_scheme` for why);
//! * a CSE-ID becomes a dNSName holding the public domain name of the CSE: `<cse-id>.<sp-id>`
//!   for this CSE, `<mn-id>.<cse-id>.<sp-id>` for a CSE below it.

use super::error::CaError;
use std::fmt;

/// The names of the CSE that runs the CA: every identity is certified relative to them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalNames {
    /// The M2M-SP-ID, `secure-cse.example` (a leading `//` is ignored).
    pub sp_id: String,
    /// The CSE-ID of this CSE, `id-in` (a leading `/` is ignored).
    pub cse_id: String,
}

impl LocalNames {
    /// Both names, as the configuration holds them.
    pub fn new(sp_id: impl Into<String>, cse_id: impl Into<String>) -> Self {
        Self {
            sp_id: sp_id.into(),
            cse_id: cse_id.into(),
        }
    }

    /// The SP-ID without leading slashes.
    pub fn sp(&self) -> &str {
        self.sp_id.trim_start_matches('/')
    }

    /// This CSE's CSE-ID without leading slashes.
    pub fn local_cse(&self) -> &str {
        self.cse_id.trim_start_matches('/')
    }

    /// The public domain name of this CSE, `<cse-id>.<sp-id>`.
    pub fn public_domain_name(&self) -> String {
        format!("{}.{}", self.local_cse(), self.sp())
    }

    /// Checks both names once, so that identities built from them are well formed.
    pub(super) fn check(&self) -> Result<(), CaError> {
        let sp = self.sp();
        let sp_ok =
            !sp.is_empty() && sp.len() <= 253 && sp.split('.').all(|label| dns_label(label, false));
        if !sp_ok {
            return Err(CaError::Config(format!(
                "the SP-ID {:?} must be a domain name (letters, digits, '-', dots)",
                self.sp_id
            )));
        }
        if !dns_label(self.local_cse(), true) {
            return Err(CaError::Config(format!(
                "the CSE-ID {:?} must be one DNS label (letters, digits, '-', '_')",
                self.cse_id
            )));
        }
        if names_an_s_ae(self.local_cse()) {
            return Err(CaError::Config(format!(
                "the CSE-ID {:?} must not start with 'S': /S... is an S-AE-ID",
                self.cse_id
            )));
        }
        Ok(())
    }

    /// The AE identity named by `ae_id` in any of its forms: CSE-relative (`Cxyz`, `Sxyz`),
    /// SP-relative (`/id-in/Cxyz`, `/Sxyz`) or absolute (`//sp/id-in/Cxyz`, `//sp/Sxyz`).
    /// An absolute AE-ID of another SP is refused: the CA's name constraints cover ours only.
    pub fn ae(&self, ae_id: &str) -> Result<Identity, CaError> {
        let refuse = |reason: &str| CaError::InvalidIdentity {
            identity: ae_id.to_owned(),
            reason: reason.to_owned(),
        };
        let absolute = if let Some(rest) = ae_id.strip_prefix("//") {
            let (sp, path) = rest
                .split_once('/')
                .ok_or_else(|| refuse("an absolute AE-ID needs a path after the SP-ID"))?;
            if !sp.eq_ignore_ascii_case(self.sp()) {
                return Err(refuse("it belongs to another M2M service provider"));
            }
            format!("//{}/{path}", self.sp())
        } else if let Some(path) = ae_id.strip_prefix('/') {
            format!("//{}/{path}", self.sp())
        } else if ae_id.starts_with('S') {
            format!("//{}/{ae_id}", self.sp())
        } else {
            format!("//{}/{}/{ae_id}", self.sp(), self.local_cse())
        };
        let segments: Vec<&str> = absolute[2..].split('/').collect();
        if !segments.iter().all(|s| unreserved(s)) {
            return Err(refuse(
                "each part must be non-empty and use only letters, digits, '-', '.', '_', '~'",
            ));
        }
        match segments.as_slice() {
            [_sp, _cse, ae] if ae.starts_with('C') && ae.len() > 1 => {}
            [_sp, ae] if ae.starts_with('S') && ae.len() > 1 => {}
            _ => {
                return Err(refuse(
                    "an AE-ID is C<stem> below a CSE or S<stem> below the SP (a bare C or S is a \
                     request for an AE-ID, not one)",
                ))
            }
        }
        Ok(Identity::Ae(absolute))
    }

    /// The CSE identity named by `cse_id`: `id-mn`, `/id-mn` or `//sp/id-mn`. This CSE's own
    /// CSE-ID gives its own public domain name; any other one a name below it.
    pub fn cse(&self, cse_id: &str) -> Result<Identity, CaError> {
        let refuse = |reason: &str| CaError::InvalidIdentity {
            identity: cse_id.to_owned(),
            reason: reason.to_owned(),
        };
        let label = if let Some(rest) = cse_id.strip_prefix("//") {
            let (sp, label) = rest
                .split_once('/')
                .ok_or_else(|| refuse("an absolute CSE-ID needs a CSE-ID after the SP-ID"))?;
            if !sp.eq_ignore_ascii_case(self.sp()) {
                return Err(refuse("it belongs to another M2M service provider"));
            }
            label
        } else {
            cse_id.strip_prefix('/').unwrap_or(cse_id)
        };
        if !dns_label(label, true) {
            return Err(refuse(
                "a CSE-ID certified here must be one DNS label (letters, digits, '-', '_')",
            ));
        }
        if names_an_s_ae(label) {
            return Err(refuse(
                "a CSE-ID must not start with 'S': its SP-relative form /S... is an S-AE-ID",
            ));
        }
        Ok(Identity::Cse(format!("/{label}")))
    }

    /// The subjectAltName entry that states `identity`.
    pub(super) fn san(&self, identity: &Identity, ae_uri_scheme: Option<&str>) -> SanName {
        match identity {
            Identity::Ae(absolute) => SanName::Uri(match ae_uri_scheme {
                Some(scheme) => format!("{scheme}:{absolute}"),
                None => absolute.clone(),
            }),
            Identity::Cse(cse_id) => {
                let label = cse_id.trim_start_matches('/');
                if label.eq_ignore_ascii_case(self.local_cse()) {
                    SanName::Dns(self.public_domain_name())
                } else {
                    SanName::Dns(format!("{label}.{}", self.public_domain_name()))
                }
            }
        }
    }

    /// Whether a name found in a CSR states `identity` (the same rules the TLS layer uses to
    /// read it back: any `scheme:` before an absolute AE-ID; DNS case and a trailing dot
    /// ignored).
    pub(super) fn states(&self, name: &SanName, identity: &Identity) -> bool {
        match (name, identity) {
            (SanName::Uri(uri), Identity::Ae(absolute)) => {
                strip_scheme(uri).is_some_and(|a| a == absolute)
            }
            (SanName::Dns(dns), Identity::Cse(_)) => {
                let SanName::Dns(ours) = self.san(identity, None) else {
                    return false;
                };
                dns.strip_suffix('.')
                    .unwrap_or(dns)
                    .eq_ignore_ascii_case(&ours)
            }
            _ => false,
        }
    }
}

/// What a certificate certifies: one AE-ID or one CSE-ID of this SP, in the canonical form
/// the TLS layer binds an association to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Identity {
    /// An AE, by its absolute AE-ID (`//secure-cse.example/id-in/Cae1`).
    Ae(String),
    /// A CSE, by its SP-relative CSE-ID (`/id-mn`).
    Cse(String),
}

impl Identity {
    /// The identity as text (absolute AE-ID or SP-relative CSE-ID).
    pub fn as_str(&self) -> &str {
        match self {
            Identity::Ae(s) | Identity::Cse(s) => s,
        }
    }

    /// `ae` or `cse`, as the records store it.
    pub fn kind(&self) -> &'static str {
        match self {
            Identity::Ae(_) => "ae",
            Identity::Cse(_) => "cse",
        }
    }

    pub(super) fn from_parts(kind: &str, value: String) -> Option<Self> {
        match kind {
            "ae" => Some(Identity::Ae(value)),
            "cse" => Some(Identity::Cse(value)),
            _ => None,
        }
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Identity::Ae(s) => write!(f, "AE-ID {s}"),
            Identity::Cse(s) => write!(f, "CSE-ID {s}"),
        }
    }
}

/// One subjectAltName entry of the kinds the CA writes or reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum SanName {
    /// uniformResourceIdentifier.
    Uri(String),
    /// dNSName.
    Dns(String),
    /// Any other kind, described for error messages.
    Other(String),
}

impl fmt::Display for SanName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SanName::Uri(s) => write!(f, "URI:{s}"),
            SanName::Dns(s) => write!(f, "DNS:{s}"),
            SanName::Other(s) => f.write_str(s),
        }
    }
}

/// The absolute AE-ID in a URI: as is when it starts with `//`, else after a valid `scheme:`.
fn strip_scheme(uri: &str) -> Option<&str> {
    if uri.starts_with("//") {
        return Some(uri);
    }
    let (scheme, rest) = uri.split_once(':')?;
    (valid_scheme(scheme) && rest.starts_with("//")).then_some(rest)
}

/// RFC 3986 scheme: a letter, then letters, digits, `+`, `-`, `.`.
pub(super) fn valid_scheme(scheme: &str) -> bool {
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

fn unreserved(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~'))
}

/// One DNS label: 1-63 letters, digits and `-` (and `_` where the TLS layer allows it), not
/// starting or ending with `-`.
/// Whether a CSE-ID label would read as an S-AE-ID: `/Sx` is the SP-relative ID of the
/// S-AE `Sx` (TS-0001 table 7.2-1), so a CSE by that name would be two originators. Either
/// case, because the label is also a DNS label, where case carries nothing.
fn names_an_s_ae(label: &str) -> bool {
    label.starts_with(['S', 's'])
}

fn dns_label(label: &str, underscore: bool) -> bool {
    !label.is_empty()
        && label.len() <= 63
        && !label.starts_with('-')
        && !label.ends_with('-')
        && label
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || (underscore && c == '_'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> LocalNames {
        LocalNames::new("//secure-cse.example", "/id-in")
    }

    #[test]
    fn ae_ids_in_every_form_become_absolute() {
        let n = names();
        for (given, absolute) in [
            ("Cae1", "//secure-cse.example/id-in/Cae1"),
            ("Sae2", "//secure-cse.example/Sae2"),
            ("/id-in/Cae1", "//secure-cse.example/id-in/Cae1"),
            ("/Sae2", "//secure-cse.example/Sae2"),
            (
                "//secure-cse.example/id-in/Cae1",
                "//secure-cse.example/id-in/Cae1",
            ),
            (
                "//SECURE-CSE.example/id-mn/Cx",
                "//secure-cse.example/id-mn/Cx",
            ),
        ] {
            assert_eq!(
                n.ae(given).ok(),
                Some(Identity::Ae(absolute.into())),
                "{given}"
            );
        }
        for bad in [
            "C",
            "S",
            "",
            "ae1",
            "//other.example/id-in/Cae1",
            "//secure-cse.example",
            "/id-in/Sae",
            "Cae/x",
            "C*",
            "C a",
            "/id-in//Cae",
            "//secure-cse.example/Cae",
        ] {
            assert!(
                matches!(n.ae(bad), Err(CaError::InvalidIdentity { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn cse_ids_and_s_ae_ids_stay_apart() {
        let n = names();
        // An S-AE-ID is certified as an AE; the same name is never a CSE-ID.
        assert_eq!(
            n.ae("Sx").ok(),
            Some(Identity::Ae("//secure-cse.example/Sx".into()))
        );
        for s_shaped in ["Sx", "/Sx", "//secure-cse.example/Sx", "sx", "S"] {
            assert!(
                matches!(n.cse(s_shaped), Err(CaError::InvalidIdentity { .. })),
                "{s_shaped}"
            );
        }
        // C is fine for a CSE-ID (TS-0001 gives /CSE090112 as an example).
        assert!(n.cse("CSE090112").is_ok());
        assert!(LocalNames::new("secure-cse.example", "Sin")
            .check()
            .is_err());
        assert!(LocalNames::new("secure-cse.example", "/sin")
            .check()
            .is_err());
    }

    #[test]
    fn cse_ids_become_public_domain_names() {
        let n = names();
        let mn = n.cse("id-mn").expect("valid");
        assert_eq!(mn, Identity::Cse("/id-mn".into()));
        assert_eq!(n.cse("//secure-cse.example/id-mn").ok(), Some(mn.clone()));
        assert_eq!(
            n.san(&mn, None),
            SanName::Dns("id-mn.id-in.secure-cse.example".into())
        );
        let own = n.cse("/id-in").expect("valid");
        assert_eq!(
            n.san(&own, None),
            SanName::Dns("id-in.secure-cse.example".into())
        );
        for bad in ["", "a.b", "//other/id-mn", "-x", "id mn", "*"] {
            assert!(n.cse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn san_forms_and_what_a_csr_may_state() {
        let n = names();
        let ae = n.ae("Cae1").expect("valid");
        assert_eq!(
            n.san(&ae, Some("onem2m")),
            SanName::Uri("onem2m://secure-cse.example/id-in/Cae1".into())
        );
        assert_eq!(
            n.san(&ae, None),
            SanName::Uri("//secure-cse.example/id-in/Cae1".into())
        );
        let uri = |s: &str| SanName::Uri(s.into());
        assert!(n.states(&uri("//secure-cse.example/id-in/Cae1"), &ae));
        assert!(n.states(&uri("https://secure-cse.example/id-in/Cae1"), &ae));
        assert!(!n.states(&uri("//secure-cse.example/id-in/Cae2"), &ae));
        assert!(!n.states(&uri("1x://secure-cse.example/id-in/Cae1"), &ae));
        assert!(!n.states(&SanName::Dns("id-in.secure-cse.example".into()), &ae));
        let mn = n.cse("id-mn").expect("valid");
        assert!(n.states(&SanName::Dns("ID-MN.id-in.secure-cse.example.".into()), &mn));
        assert!(!n.states(&SanName::Dns("id-mn2.id-in.secure-cse.example".into()), &mn));
    }

    #[test]
    fn local_names_are_checked() {
        assert!(names().check().is_ok());
        assert!(LocalNames::new("", "id-in").check().is_err());
        assert!(LocalNames::new("sp..example", "id-in").check().is_err());
        assert!(LocalNames::new("sp.example", "id.in").check().is_err());
    }
}
