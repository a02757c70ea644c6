//! The two extensions rcgen 0.13 cannot write the way the CA needs them, encoded here with
//! yasna (rcgen's own DER writer):
//!
//! * subjectAltName, marked critical when the subject is empty (RFC 5280 clause 4.2.1.6:
//!   the identity then lives only in the SAN); rcgen always writes it non-critical;
//! * nameConstraints with URI subtrees (TS-0003 clause 10.1.1.5 constrains the host of an
//!   AE-ID's URI); rcgen's `GeneralSubtree` has no URI variant.

use super::identity::SanName;
use rcgen::CustomExtension;
use yasna::{DERWriter, Tag};

const OID_SUBJECT_ALT_NAME: &[u64] = &[2, 5, 29, 17];
const OID_NAME_CONSTRAINTS: &[u64] = &[2, 5, 29, 30];
const TAG_DNS: u64 = 2;
const TAG_URI: u64 = 6;

/// A subjectAltName extension holding `names` (URI and dNSName entries only).
pub(super) fn subject_alt_name(names: &[SanName], critical: bool) -> CustomExtension {
    let content = yasna::construct_der(|writer| {
        writer.write_sequence(|writer| {
            for name in names {
                match name {
                    SanName::Uri(uri) => general_name(writer.next(), TAG_URI, uri),
                    SanName::Dns(dns) => general_name(writer.next(), TAG_DNS, dns),
                    // Never built by the CA: only read from CSRs.
                    SanName::Other(_) => {}
                }
            }
        })
    });
    let mut ext = CustomExtension::from_oid_content(OID_SUBJECT_ALT_NAME, content);
    ext.set_criticality(critical);
    ext
}

/// A critical nameConstraints extension permitting the dNSName subtrees `dns` and the URI host
/// subtrees `uri_hosts` (RFC 5280 clause 4.2.1.10). Excluded subtrees are not used.
pub(super) fn name_constraints(dns: &[String], uri_hosts: &[String]) -> CustomExtension {
    let content = yasna::construct_der(|writer| {
        writer.write_sequence(|writer| {
            // permittedSubtrees [0] GeneralSubtrees
            writer
                .next()
                .write_tagged_implicit(Tag::context(0), |writer| {
                    writer.write_sequence(|writer| {
                        let subtrees = dns
                            .iter()
                            .map(|d| (TAG_DNS, d))
                            .chain(uri_hosts.iter().map(|u| (TAG_URI, u)));
                        for (tag, base) in subtrees {
                            // GeneralSubtree ::= SEQUENCE { base GeneralName, minimum 0 (default,
                            // omitted), no maximum }
                            writer.next().write_sequence(|writer| {
                                general_name(writer.next(), tag, base);
                            });
                        }
                    })
                });
        })
    });
    let mut ext = CustomExtension::from_oid_content(OID_NAME_CONSTRAINTS, content);
    ext.set_criticality(true);
    ext
}

fn general_name(writer: DERWriter<'_>, tag: u64, value: &str) {
    writer.write_tagged_implicit(Tag::context(tag), |writer| writer.write_ia5_string(value));
}

/// Whether `name` lies in one of the permitted subtrees of its kind (RFC 5280 clause
/// 4.2.1.10): a dNSName equals a DNS subtree or is below it; a URI's host equals a URI subtree,
/// or is below it when the subtree starts with `.`. A kind without subtrees is unconstrained.
/// A URI without `scheme://host` cannot satisfy a URI constraint (OpenSSL refuses it).
pub(super) fn permitted(name: &SanName, dns: &[String], uri_hosts: &[String]) -> bool {
    match name {
        SanName::Dns(d) => {
            dns.is_empty()
                || dns.iter().any(|base| {
                    let d = d.to_ascii_lowercase();
                    let base = base.to_ascii_lowercase();
                    match base.strip_prefix('.') {
                        Some(_) => d.ends_with(&base),
                        None => d == base || d.ends_with(&format!(".{base}")),
                    }
                })
        }
        SanName::Uri(u) => {
            if uri_hosts.is_empty() {
                return true;
            }
            let Some(host) = uri_host(u) else {
                return false;
            };
            let host = host.to_ascii_lowercase();
            uri_hosts.iter().any(|base| {
                let base = base.to_ascii_lowercase();
                if base.starts_with('.') {
                    host.ends_with(&base)
                } else {
                    host == base
                }
            })
        }
        SanName::Other(_) => false,
    }
}

/// The host of `scheme://host/...`.
fn uri_host(uri: &str) -> Option<&str> {
    let (scheme, rest) = uri.split_once("://")?;
    if scheme.is_empty() {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = authority.rsplit('@').next()?;
    let host = host.split(':').next()?;
    (!host.is_empty()).then_some(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_constraint_matching() {
        let dns = vec!["secure-cse.example".to_owned()];
        let uri = vec!["secure-cse.example".to_owned()];
        let ok = |n: SanName| permitted(&n, &dns, &uri);
        assert!(ok(SanName::Dns("id-mn.id-in.secure-cse.example".into())));
        assert!(ok(SanName::Dns("secure-cse.example".into())));
        assert!(!ok(SanName::Dns("evilsecure-cse.example".into())));
        assert!(!ok(SanName::Dns("localhost".into())));
        assert!(ok(SanName::Uri(
            "onem2m://secure-cse.example/id-in/Cae1".into()
        )));
        assert!(!ok(SanName::Uri(
            "onem2m://x.secure-cse.example/id-in/Cae1".into()
        )));
        assert!(!ok(SanName::Uri("//secure-cse.example/id-in/Cae1".into())));
        assert!(permitted(
            &SanName::Uri("//secure-cse.example/id-in/Cae1".into()),
            &dns,
            &[]
        ));
        assert!(permitted(
            &SanName::Uri("a://x.secure-cse.example/S1".into()),
            &[],
            &[".secure-cse.example".to_owned()]
        ));
    }

    #[test]
    fn encodings_parse_back() {
        let ext = subject_alt_name(
            &[
                SanName::Uri("onem2m://sp.example/id-in/Cae1".into()),
                SanName::Dns("id-in.sp.example".into()),
            ],
            true,
        );
        assert!(ext.criticality());
        // SEQUENCE { [6] "onem2m://...", [2] "id-in.sp.example" }
        let c = ext.content();
        assert_eq!(c[0], 0x30);
        assert_eq!(c[2], 0x86);
        let nc = name_constraints(&["sp.example".into()], &["sp.example".into()]);
        let c = nc.content();
        // SEQUENCE { [0] constructed { SEQUENCE { [2] }, SEQUENCE { [6] } } }
        assert_eq!((c[0], c[2], c[4], c[6]), (0x30, 0xa0, 0x30, 0x82));
    }
}
