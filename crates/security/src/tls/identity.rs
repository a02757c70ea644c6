//! Who a client certificate names (TS-0003 clauses 8.1.2.5, 8.2.1, 10.1.1, 10.4).
//!
//! * A URI subjectAltName holding the full URI form of an AE-ID (`//sp/cse/Cxyz`,
//!   `//sp/Sxyz`, with or without a `scheme:` prefix) makes an AE-ID certificate:
//!   Credential-ID `33-<digest>`, bound to that AE-ID in its absolute form.
//! * A dNSName holding the public domain name of a CSE-ID (`<mn-id>.<cse-id>.<sp-id>` below
//!   this CSE, or `<cse-id>.<sp-id>`) makes a CSE-ID certificate: `32-<digest>`, bound to
//!   `/<mn-id>` (or `/<cse-id>`).
//! * Otherwise (a device certificate, say) the certificate's Credential-ID `31-<digest>` is
//!   looked up in the credential store, and an unknown certificate is refused.
//!
//! `<digest>` is the SHA-256 of the TBSCertificate ([`super::certificate_id`]), so every
//! encoding of one certificate has one Credential-ID. A withdrawal or a credential entry
//! recorded under the earlier form (SHA-256 of the whole DER) still applies to the encoding
//! it was made for: a certificate whose earlier-form ID is withdrawn is refused here.
//!
//! A certificate with a wildcard name, with two different identities, whose keyUsage lacks
//! digitalSignature, or whose extendedKeyUsage excludes clientAuth, is refused.

use super::certificate_id::{certificate_digest, legacy_digest};
use super::policy::LocalIdentity;
use crate::association::{CredentialBinding, Framework, PeerIdentity};
use crate::credentials::CredentialStore;
use openssl::x509::{X509ExtendedKeyUsage, X509KeyUsage, X509Ref};

/// What a verified credential authenticated: the framework, the Credential-ID and the binding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Authenticated {
    pub(crate) framework: Framework,
    pub(crate) credential_id: String,
    pub(crate) binding: CredentialBinding,
}

/// The identity a subjectAltName entry states.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Named {
    Ae(String),
    Cse(String),
}

/// Everything the association needs from a verified client leaf certificate, or why it is
/// refused. Called from the verify callback (full handshakes) and on resumption.
pub(crate) fn identify_certificate(
    leaf: &X509Ref,
    local: &LocalIdentity,
    credentials: &dyn CredentialStore,
) -> Result<Authenticated, String> {
    check_usage(leaf.key_usage(), leaf.extended_key_usage())?;
    let mut dns = Vec::new();
    let mut uris = Vec::new();
    if let Some(names) = leaf.subject_alt_names() {
        for name in &names {
            if let Some(d) = name.dnsname() {
                dns.push(d.to_owned());
            } else if let Some(u) = name.uri() {
                uris.push(u.to_owned());
            }
        }
    }
    let named = identity_from_names(&dns, &uris, local)?;
    let der = leaf
        .to_der()
        .map_err(|e| format!("cannot encode the client certificate: {e}"))?;
    let digest = certificate_digest(&der).map_err(|e| format!("client certificate: {e}"))?;
    let legacy = legacy_digest(&der);
    let prefix = match &named {
        Some(Named::Ae(_)) => "33",
        Some(Named::Cse(_)) => "32",
        None => "31",
    };
    let credential_id = format!("{prefix}-{digest}");
    let legacy_id = format!("{prefix}-{legacy}");
    if let Some(w) = credentials.withdrawn(&legacy_id) {
        return Err(format!(
            "credential {} under its earlier Credential-ID {}: {}",
            w.kind.name(),
            crate::privacy::credential_tag(&legacy_id),
            w.reason
        ));
    }
    let certified = |identity| Authenticated {
        framework: Framework::Certificate,
        credential_id: credential_id.clone(),
        binding: CredentialBinding {
            identity,
            admin: false,
            allowed_apps: Vec::new(),
            // The certificate states who, not where its key lives.
            level: None,
        },
    };
    Ok(match named {
        Some(Named::Ae(ae)) => {
            // Naming the admin AE-ID makes no admin: only a certificate the credential store
            // lists as an admin credential for the same AE-ID is one.
            let admin = credentials
                .certificate_binding(&credential_id)
                .is_some_and(|b| b.admin && names_same_ae(&b.identity, &ae));
            let mut authenticated = certified(PeerIdentity::Ae(ae));
            authenticated.binding.admin = admin;
            authenticated
        }
        Some(Named::Cse(cse)) => certified(PeerIdentity::Cse(cse)),
        None => {
            // An entry recorded under the earlier form binds the encoding it names.
            let binding = credentials
                .certificate_binding(&credential_id)
                .or_else(|| credentials.certificate_binding(&legacy_id))
                .ok_or_else(|| format!("certificate names no AE-ID or CSE-ID and {credential_id} is not bound to one"))?;
            Authenticated {
                framework: Framework::Certificate,
                credential_id,
                binding,
            }
        }
    })
}

/// Whether a credential entry's identity is the AE-ID `ae` (absolute) names: the same
/// AE-ID stem, the entry given in any form.
fn names_same_ae(entry: &PeerIdentity, ae: &str) -> bool {
    let stem = |id: &str| id.rsplit('/').next().unwrap_or(id).to_owned();
    matches!(entry, PeerIdentity::Ae(id) if stem(id) == stem(ae))
}

/// TS-0003 clause 10.1.1.1: keyUsage present with digitalSignature; RFC 5280: an
/// extendedKeyUsage, when present, must allow clientAuth (or anyExtendedKeyUsage).
fn check_usage(ku: Option<X509KeyUsage>, eku: Option<X509ExtendedKeyUsage>) -> Result<(), String> {
    match ku {
        None => return Err("client certificate has no keyUsage extension (TS-0003 10.1.1.1 requires digitalSignature)".into()),
        Some(ku) if !ku.contains(X509KeyUsage::DIGITAL_SIGNATURE) => {
            return Err("client certificate keyUsage lacks digitalSignature".into())
        }
        Some(_) => {}
    }
    match eku {
        Some(eku)
            if !eku.intersects(X509ExtendedKeyUsage::SSL_CLIENT | X509ExtendedKeyUsage::ANYEKU) =>
        {
            Err("client certificate extendedKeyUsage does not allow clientAuth".into())
        }
        _ => Ok(()),
    }
}

/// The one identity the names state, if any.
fn identity_from_names(
    dns: &[String],
    uris: &[String],
    local: &LocalIdentity,
) -> Result<Option<Named>, String> {
    if dns.iter().chain(uris).any(|n| n.contains('*')) {
        return Err(
            "client certificate has a wildcard name (TS-0003 10.1.1 forbids wildcards)".into(),
        );
    }
    let mut found: Option<Named> = None;
    let stated = uris
        .iter()
        .filter_map(|u| ae_id_from_uri(u).map(Named::Ae))
        .chain(
            dns.iter()
                .filter_map(|d| cse_id_from_dns(d, local).map(Named::Cse)),
        );
    for named in stated {
        if let Named::Cse(cse) = &named {
            // `/Sx` is the S-AE `Sx` (TS-0001 table 7.2-1); a CSE never takes that name, in
            // either case (it is written as a DNS label here).
            if cse.starts_with("/S") || cse.starts_with("/s") {
                return Err(format!(
                    "client certificate names CSE-ID '{cse}', which is an S-AE-ID, not a CSE-ID"
                ));
            }
        }
        match &found {
            Some(first) if *first != named => {
                return Err("client certificate names more than one AE-ID or CSE-ID".into());
            }
            _ => found = Some(named),
        }
    }
    Ok(found)
}

/// The absolute AE-ID (`//sp/cse/Cxyz` or `//sp/Sxyz`) in the full URI form of an AE-ID,
/// with any `scheme:` removed; `None` when the URI is not one.
fn ae_id_from_uri(uri: &str) -> Option<String> {
    let absolute = if uri.starts_with("//") {
        uri
    } else {
        let (scheme, rest) = uri.split_once(':')?;
        let mut chars = scheme.chars();
        let scheme_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
            && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
        if !scheme_ok || !rest.starts_with("//") {
            return None;
        }
        rest
    };
    let segments: Vec<&str> = absolute[2..].split('/').collect();
    let unreserved = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~'))
    };
    if !segments.iter().all(|s| unreserved(s)) {
        return None;
    }
    match segments.as_slice() {
        [_sp, _cse, ae] if ae.starts_with('C') => Some(absolute.to_owned()),
        [_sp, ae] if ae.starts_with('S') => Some(absolute.to_owned()),
        _ => None,
    }
}

/// The SP-relative CSE-ID (`/id-mn`) in a public domain name of a CSE: `<x>.<cse-id>.<sp-id>`
/// gives `/<x>`, `<cse-id>.<sp-id>` gives `/<cse-id>`. DNS comparison ignores case and a
/// trailing dot.
fn cse_id_from_dns(dns: &str, local: &LocalIdentity) -> Option<String> {
    let name = dns.strip_suffix('.').unwrap_or(dns);
    let ours = local.public_domain_name();
    if name.eq_ignore_ascii_case(&ours) {
        return Some(format!("/{}", local.cse()));
    }
    let split = name.len().checked_sub(ours.len() + 1)?;
    let (label, suffix) = (name.get(..split)?, name.get(split..)?);
    let below_us = suffix
        .strip_prefix('.')
        .is_some_and(|s| s.eq_ignore_ascii_case(&ours));
    let one_label = !label.is_empty()
        && label
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'));
    (below_us && one_label).then(|| format!("/{label}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local() -> LocalIdentity {
        LocalIdentity {
            sp_id: "//secure-cse.example".into(),
            cse_id: "/id-in".into(),
        }
    }

    #[test]
    fn ae_ids_in_uris() {
        let ok = [
            (
                "//secure-cse.example/id-in/Cae1",
                "//secure-cse.example/id-in/Cae1",
            ),
            ("//secure-cse.example/Sae2", "//secure-cse.example/Sae2"),
            (
                "onem2m://secure-cse.example/id-in/Cae1",
                "//secure-cse.example/id-in/Cae1",
            ),
            ("https://sp.example/Sx", "//sp.example/Sx"),
        ];
        for (uri, ae) in ok {
            assert_eq!(ae_id_from_uri(uri).as_deref(), Some(ae), "{uri}");
        }
        for uri in [
            "urn:dev:mac:0024befffe804ff1",
            "https://example.com/",
            "https://example.com/path/to/thing",
            "//sp/cse/Sae",
            "//sp/Cae",
            "//sp/cse/Cae/extra",
            "//sp//Cae",
            "//sp/cse/Cae?x=1",
            "//sp/cse/C%41",
            "1a://sp/Sx",
            "/id-in/Cae1",
            "Cae1",
        ] {
            assert_eq!(ae_id_from_uri(uri), None, "{uri}");
        }
    }

    #[test]
    fn cse_ids_in_dns_names() {
        let l = local();
        assert_eq!(
            cse_id_from_dns("id-mn.id-in.secure-cse.example", &l).as_deref(),
            Some("/id-mn")
        );
        assert_eq!(
            cse_id_from_dns("ID-MN.ID-IN.Secure-CSE.example.", &l).as_deref(),
            Some("/ID-MN")
        );
        assert_eq!(
            cse_id_from_dns("id-in.secure-cse.example", &l).as_deref(),
            Some("/id-in")
        );
        for name in [
            "localhost",
            "secure-cse.example",
            "a.b.id-in.secure-cse.example",
            "id-mn.other.secure-cse.example",
            "id-mnid-in.secure-cse.example",
            ".id-in.secure-cse.example",
            "id-mn.id-in.secure-cse.example.evil",
        ] {
            assert_eq!(cse_id_from_dns(name, &l), None, "{name}");
        }
    }

    #[test]
    fn one_identity_and_no_wildcards() {
        let l = local();
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            identity_from_names(
                &s(&["localhost"]),
                &s(&["//secure-cse.example/id-in/Cae1"]),
                &l
            ),
            Ok(Some(Named::Ae("//secure-cse.example/id-in/Cae1".into())))
        );
        assert_eq!(
            identity_from_names(&s(&["id-mn.id-in.secure-cse.example"]), &[], &l),
            Ok(Some(Named::Cse("/id-mn".into())))
        );
        assert_eq!(
            identity_from_names(&s(&["other.example"]), &s(&["urn:x:y"]), &l),
            Ok(None)
        );
        assert!(identity_from_names(&s(&["*.id-in.secure-cse.example"]), &[], &l).is_err());
        assert!(identity_from_names(&[], &s(&["//secure-cse.example/id-in/C*"]), &l).is_err());
        assert!(identity_from_names(
            &s(&["id-mn.id-in.secure-cse.example"]),
            &s(&["//secure-cse.example/Sx"]),
            &l
        )
        .is_err());
        assert!(identity_from_names(&[], &s(&["//sp/Sx", "//sp/Sy"]), &l).is_err());
        // CSE-IDs and S-AE-IDs are separate: a dNSName below us starting with S is refused.
        for s_shaped in ["Sx.id-in.secure-cse.example", "sx.id-in.secure-cse.example"] {
            assert!(
                identity_from_names(&s(&[s_shaped]), &[], &l).is_err(),
                "{s_shaped}"
            );
        }
        assert_eq!(
            identity_from_names(&[], &s(&["//secure-cse.example/Sx"]), &l),
            Ok(Some(Named::Ae("//secure-cse.example/Sx".into())))
        );
        assert!(identity_from_names(&[], &s(&["//sp/Sx", "onem2m://sp/Sx"]), &l).is_ok());
    }

    #[test]
    fn usage_rules() {
        let ds = Some(X509KeyUsage::DIGITAL_SIGNATURE);
        assert!(check_usage(ds, None).is_ok());
        assert!(check_usage(
            ds,
            Some(X509ExtendedKeyUsage::SSL_CLIENT | X509ExtendedKeyUsage::SSL_SERVER)
        )
        .is_ok());
        assert!(check_usage(ds, Some(X509ExtendedKeyUsage::ANYEKU)).is_ok());
        assert!(check_usage(ds, Some(X509ExtendedKeyUsage::SSL_SERVER)).is_err());
        assert!(check_usage(ds, Some(X509ExtendedKeyUsage::empty())).is_err());
        assert!(check_usage(Some(X509KeyUsage::KEY_AGREEMENT), None).is_err());
        assert!(check_usage(None, None).is_err());
    }
}
