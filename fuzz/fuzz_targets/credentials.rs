//! What peers present to authenticate, and the audit trail that records it: PSK identities
//! (the bytes of a TLS ClientHello's identity, KpsaIDs, edge identities, KDF identifiers),
//! JWTs in `Authorization` and in a `<token>`'s `tkob`, certificates and CSRs (PEM or DER),
//! and audit-log lines as `m2m audit verify` and `tail` read them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use manager::kdf::{EdgeIdentity, EnroleeId, EnrolmentTargetId, Fqdn, Impi, MafId};
use security::credentials::valid_kpsa_id;
use security::tls::certificate_id::{certificate_digest, certificate_digest_of_file};
use security::token::{Expectations, Issuers};
use std::io::Write;
use std::sync::OnceLock;

fn issuers() -> &'static Issuers {
    static ISSUERS: OnceLock<Issuers> = OnceLock::new();
    ISSUERS.get_or_init(|| {
        let mut issuers = Issuers::new();
        issuers
            .add_hs256_secret("issuer", zeroize::Zeroizing::new(vec![7u8; 32]))
            .expect("fuzz issuer");
        issuers
    })
}

fn scratch() -> &'static tempfile::TempDir {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("scratch directory"))
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, bytes)) = data.split_first() else {
        return;
    };
    let text = std::str::from_utf8(bytes).ok();
    match selector % 5 {
        0 => {
            let Some(id) = text else { return };
            let _ = valid_kpsa_id(id);
            let _ = EdgeIdentity::is_edge_shaped(id);
            let _ = EdgeIdentity::parse(id);
            let _ = MafId::new(id);
            let _ = EnroleeId::new(id);
            let _ = EnrolmentTargetId::new(id);
            let _ = Impi::new(id);
            let _ = Fqdn::new(id);
        }
        1 => {
            let Some(token) = text else { return };
            let audience = ["id-in".to_owned(), "/id-in".to_owned()];
            let holder = ["Cfuzz".to_owned()];
            let expect = Expectations {
                audience: &audience,
                holder: &holder,
                now: 1_750_000_000,
            };
            if let Err(e) = issuers().verify(token, &expect) {
                let _ = e.rsc();
            }
            // The same token as a `<token>` resource's `tkob` (stored, not presented).
            let _ = issuers().inspect(token, 1_750_000_000);
        }
        2 => {
            let _ = certificate_digest(bytes);
            let _ = certificate_digest_of_file(bytes);
        }
        3 => {
            let _ = manager::ca::check_csr(bytes);
        }
        _ => {
            for line in bytes.split(|b| *b == b'\n') {
                if let Ok(entry) = serde_json::from_slice::<manager::audit::Entry>(line) {
                    let _ = entry.compute_hash();
                    let _ = entry.head();
                }
            }
            let log = scratch().path().join("audit.log");
            let written = std::fs::File::create(&log).and_then(|mut f| f.write_all(bytes));
            if written.is_ok() {
                let _ = manager::audit::verify(&log, None);
                let _ = manager::audit::read_entries(&log);
            }
        }
    }
});
