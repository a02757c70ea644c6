//! Certificate revocation lists: every suspended certificate (reason `certificateHold`) and
//! every revoked one (with its reason), signed by the CA key, with a CRL number that strictly
//! increases across restarts (kept in the records).

use super::error::CaError;
use super::files;
use super::records::{CertificateRecord, Status};
use rcgen::{RevokedCertParams, SerialNumber};
use std::path::Path;
use std::time::SystemTime;

/// A signed CRL, as published at the CRL distribution point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crl {
    /// The CRL, DER (what `/.well-known/crl/<name>` serves).
    pub der: Vec<u8>,
    /// Its CRL number.
    pub number: u64,
    /// Its thisUpdate.
    pub this_update: SystemTime,
    /// Its nextUpdate: relying parties refuse it after this, so publish the next one before.
    pub next_update: SystemTime,
    /// How many certificates it lists.
    pub entries: usize,
}

impl Crl {
    /// The CRL as PEM (`X509 CRL`).
    pub fn pem(&self) -> String {
        files::pem("X509 CRL", &self.der)
    }

    /// Writes the DER CRL to `path`, replacing the previous one atomically, so a TLS
    /// listener or a web server never reads half a CRL.
    pub fn write_der(&self, path: &Path) -> Result<(), CaError> {
        files::replace(path, &self.der)
    }

    /// [`Crl::write_der`] in PEM.
    pub fn write_pem(&self, path: &Path) -> Result<(), CaError> {
        files::replace(path, self.pem().as_bytes())
    }
}

/// The CRL entry of a suspended or revoked certificate (`None` for an active one).
pub(super) fn entry(record: &CertificateRecord) -> Option<RevokedCertParams> {
    let serial_number = SerialNumber::from_slice(record.serial.as_bytes());
    let (at, reason) = match record.status {
        Status::Active => return None,
        Status::Suspended { since } => (since, rcgen::RevocationReason::CertificateHold),
        Status::Revoked { reason, at } => (at, reason.to_rcgen()),
    };
    Some(RevokedCertParams {
        serial_number,
        revocation_time: at.into(),
        reason_code: Some(reason),
        invalidity_date: None,
    })
}
