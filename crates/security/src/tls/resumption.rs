//! What a resumed session must still satisfy. OpenSSL resumes a session (from its cache or
//! a ticket) without looking at the client certificate again, so a certificate that expired,
//! or whose CRL has run out, since the full handshake would go on being accepted for the
//! session's whole lifetime. The Credential-ID's withdrawal is checked for every
//! association after the handshake (`TlsAcceptor::accept`); this adds the rest.

use model::clock::Clock;
use openssl::asn1::Asn1TimeRef;
use openssl::ssl::SslRef;
use openssl::x509::{CrlStatus, X509Crl, X509Ref};
use std::cmp::Ordering;
use std::time::Duration;

/// The CRLs a listener loaded (`Debug` shows how many).
#[derive(Default)]
pub(crate) struct Crls(pub(crate) Vec<X509Crl>);

impl std::fmt::Debug for Crls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} CRLs", self.0.len())
    }
}

/// The checks of one listener: its session lifetime and the CRLs it loaded, at the time of
/// its clock.
#[derive(Debug)]
pub(crate) struct ResumptionCheck {
    lifetime: Duration,
    crls: Crls,
    clock: Clock,
}

impl ResumptionCheck {
    pub(crate) fn new(lifetime: Duration, crls: Crls, clock: Clock) -> Self {
        Self {
            lifetime,
            crls,
            clock,
        }
    }

    /// Why the resumed session of `ssl` must not become an association, if it must not:
    /// older than the lifetime (OpenSSL refuses those itself; this is the backstop), or a
    /// client certificate that is no longer valid, revoked by a CRL or whose CRL expired.
    pub(crate) fn refusal(&self, ssl: &SslRef) -> Option<String> {
        let now = self.clock.unix();
        if let Some(session) = ssl.session() {
            let made = u64::try_from(session.time()).unwrap_or_default();
            if now.saturating_sub(made) > self.lifetime.as_secs() {
                return Some(format!(
                    "resumed session is older than the session lifetime ({} s)",
                    self.lifetime.as_secs()
                ));
            }
        }
        let leaf = ssl.peer_certificate()?;
        self.certificate_refusal(&leaf)
            .map(|why| format!("resumed session: {why}"))
    }

    fn certificate_refusal(&self, leaf: &X509Ref) -> Option<String> {
        let Ok(now) = super::files::asn1_now(&self.clock) else {
            return Some("the current time is unavailable".into());
        };
        if compare(leaf.not_after(), &now) == Ordering::Less {
            return Some(format!(
                "client certificate has expired ({})",
                leaf.not_after()
            ));
        }
        if compare(leaf.not_before(), &now) == Ordering::Greater {
            return Some("client certificate is not yet valid".into());
        }
        for crl in self.crls.0.iter().filter(|crl| {
            crl.issuer_name()
                .try_cmp(leaf.issuer_name())
                .is_ok_and(|o| o == Ordering::Equal)
        }) {
            if crl
                .next_update()
                .is_some_and(|next| compare(next, &now) == Ordering::Less)
            {
                return Some("client certificate's CRL has expired".into());
            }
            if let CrlStatus::Revoked(_) = crl.get_by_serial(leaf.serial_number()) {
                return Some("client certificate is revoked (CRL)".into());
            }
        }
        None
    }
}

/// Orders two times; an error (unreadable time) counts as "before", which refuses.
fn compare(a: &Asn1TimeRef, b: &Asn1TimeRef) -> Ordering {
    a.compare(b).unwrap_or(Ordering::Less)
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::asn1::Asn1Time;
    use openssl::ec::{EcGroup, EcKey};
    use openssl::hash::MessageDigest;
    use openssl::nid::Nid;
    use openssl::pkey::PKey;
    use openssl::x509::{X509Builder, X509NameBuilder, X509};
    use std::time::{SystemTime, UNIX_EPOCH};

    fn certificate(not_before_days: i64, not_after_days: i64) -> X509 {
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).expect("group");
        let key = PKey::from_ec_key(EcKey::generate(&group).expect("key")).expect("pkey");
        let mut name = X509NameBuilder::new().expect("name");
        name.append_entry_by_text("CN", "t").expect("cn");
        let name = name.build();
        let mut b = X509Builder::new().expect("builder");
        b.set_subject_name(&name).expect("subject");
        b.set_issuer_name(&name).expect("issuer");
        b.set_pubkey(&key).expect("key");
        let at = |days: i64| {
            let secs = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .expect("time")
                .as_secs() as i64
                + days * 86_400;
            Asn1Time::from_unix(secs).expect("time")
        };
        b.set_not_before(&at(not_before_days)).expect("nb");
        b.set_not_after(&at(not_after_days)).expect("na");
        b.sign(&key, MessageDigest::sha256()).expect("sign");
        b.build()
    }

    #[test]
    fn validity_is_checked_again() {
        let check =
            ResumptionCheck::new(Duration::from_secs(600), Crls::default(), Clock::system());
        assert_eq!(check.certificate_refusal(&certificate(-1, 1)), None);
        let expired = check.certificate_refusal(&certificate(-2, -1));
        assert!(expired.is_some_and(|r| r.contains("expired")));
        let early = check.certificate_refusal(&certificate(1, 2));
        assert!(early.is_some_and(|r| r.contains("not yet valid")));
    }

    #[test]
    fn validity_is_judged_at_the_clocks_time() {
        let manual = model::clock::ManualClock::new();
        let check = ResumptionCheck::new(Duration::from_secs(600), Crls::default(), manual.clock());
        let cert = certificate(-1, 1);
        assert_eq!(check.certificate_refusal(&cert), None);
        manual.advance(Duration::from_secs(2 * 86_400));
        let expired = check.certificate_refusal(&cert);
        assert!(expired.is_some_and(|r| r.contains("expired")));
    }
}
