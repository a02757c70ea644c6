//! The certificate authority of the security manager (TS-0003 clauses 8.1.2, 8.3.6, 10.1):
//! issues the AE-ID and CSE-ID certificates of the certificate-based security association
//! framework, keeps a durable record of each, revokes and suspends them, and signs CRLs.
//!
//! * **The key stays in the key store.** The CA holds a [`keystore::KeyHandle`] with role
//!   `ca-signing`; rcgen builds each to-be-signed structure and [`keystore::KeyStore::sign`]
//!   signs it inside the key's home (level 1 file, level 2 TPM, level 3 HSM), checking the
//!   policy's minimum level on every signature. ECDSA P-256 with SHA-256 only.
//! * **The CA decides the identity.** A CSR contributes its public key and nothing else; the
//!   caller authorises one AE-ID or CSE-ID ([`Grant`]), written into the subjectAltName in
//!   the form the TLS layer binds associations to ([`identity`](LocalNames)). A CSR asking
//!   for another name is refused ([`CaError::IdentityMismatch`]). The subject is empty unless
//!   asked otherwise ([`SubjectName`]).
//! * **Name constraints.** The CA certificate permits the SP's domain for dNSNames and URI
//!   hosts (configurable), so even this CA cannot certify another SP's entities.
//! * **Records and CRLs.** Every certificate is recorded in `records.sqlite` (committed with
//!   fsync before the call returns); revocation, suspension (`certificateHold`) and resumption
//!   change the record; [`CertificateAuthority::crl`] signs a CRL with an increasing number.
//!
//! ```no_run
//! # use manager::ca::*;
//! # use std::{sync::Arc, time::Duration};
//! # fn demo(store: Arc<keystore::KeyStore>, key: keystore::KeyHandle, csr_pem: &[u8])
//! #     -> Result<(), CaError> {
//! let config = CaConfig::new("secure-cse.example", "id-in");
//! let ca = CertificateAuthority::open_or_create("/var/lib/cse/ca".as_ref(), config, store, key)?;
//! let ae = ca.names().ae("Cae1")?; // the AE-ID the registration assigned
//! let issued = ca.issue(csr_pem, &Grant::new(ae, Validity::For(Duration::from_secs(90 * 86400))))?;
//! ca.revoke(&issued.serial, RevocationReason::KeyCompromise)?;
//! ca.crl()?.write_der("/var/lib/cse/ca/ca.crl".as_ref())?;
//! # Ok(()) }
//! ```

mod authority;
mod config;
mod crl;
mod csr;
mod der;
mod error;
mod files;
mod identity;
mod records;
mod serials;
mod signer;

pub use authority::{
    AfterRenewal, CertificateAuthority, Grant, IssuedCertificate, SubjectName, Validity,
    CA_CERTIFICATE_FILE, RECORDS_FILE,
};
pub use config::CaConfig;
pub use crl::Crl;
pub use error::CaError;
pub use identity::{Identity, LocalNames};
pub use records::{CertificateRecord, RevocationReason, Status};
pub use serials::Serial;

/// Reads a CSR and checks it exactly as [`CertificateAuthority::issue`] does before issuing
/// (size, encoding, self-signature, P-256 key, requested names), without a CA: the fuzz
/// targets reach the CSR parser through it.
pub fn check_csr(input: &[u8]) -> Result<(), CaError> {
    csr::read(input).map(|_| ())
}

#[cfg(test)]
mod check_csr_tests {
    use super::*;

    #[test]
    fn garbage_and_oversized_input_are_invalid_csrs() {
        for input in [&b""[..], b"not a csr", &[0x30; 70 * 1024]] {
            assert!(matches!(check_csr(input), Err(CaError::InvalidCsr(_))));
        }
    }
}
