//! The record of every certificate the CA issued, in SQLite in the CA directory
//! (`records.sqlite`). Each change is one transaction committed with `synchronous = FULL`
//! before the call returns, so a certificate handed out, a revocation or a CRL number is never
//! lost to a crash or `kill -9` after the call returned.

use super::error::CaError;
use super::identity::Identity;
use super::serials::Serial;
use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};
use std::fmt;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Why a certificate was revoked (RFC 5280 clause 5.3.1 reason codes). Suspension
/// (`certificateHold`) and its end (`removeFromCRL`) are separate operations:
/// `CertificateAuthority::suspend` and `resume`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RevocationReason {
    /// No reason given (written to the CRL without a reason code).
    Unspecified,
    /// The private key is known or suspected to be compromised.
    KeyCompromise,
    /// The subject's name or other information changed.
    AffiliationChanged,
    /// A new certificate replaced this one (renewal).
    Superseded,
    /// The subject no longer operates (an AE deregistered, a CSE was decommissioned).
    CessationOfOperation,
    /// The privileges the certificate stood for were withdrawn.
    PrivilegeWithdrawn,
}

impl RevocationReason {
    /// The name stored in the records and shown to operators.
    pub fn name(self) -> &'static str {
        match self {
            RevocationReason::Unspecified => "unspecified",
            RevocationReason::KeyCompromise => "key-compromise",
            RevocationReason::AffiliationChanged => "affiliation-changed",
            RevocationReason::Superseded => "superseded",
            RevocationReason::CessationOfOperation => "cessation-of-operation",
            RevocationReason::PrivilegeWithdrawn => "privilege-withdrawn",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        [
            RevocationReason::Unspecified,
            RevocationReason::KeyCompromise,
            RevocationReason::AffiliationChanged,
            RevocationReason::Superseded,
            RevocationReason::CessationOfOperation,
            RevocationReason::PrivilegeWithdrawn,
        ]
        .into_iter()
        .find(|r| r.name() == name)
    }

    pub(super) fn to_rcgen(self) -> rcgen::RevocationReason {
        match self {
            RevocationReason::Unspecified => rcgen::RevocationReason::Unspecified,
            RevocationReason::KeyCompromise => rcgen::RevocationReason::KeyCompromise,
            RevocationReason::AffiliationChanged => rcgen::RevocationReason::AffiliationChanged,
            RevocationReason::Superseded => rcgen::RevocationReason::Superseded,
            RevocationReason::CessationOfOperation => rcgen::RevocationReason::CessationOfOperation,
            RevocationReason::PrivilegeWithdrawn => rcgen::RevocationReason::PrivilegeWithdrawn,
        }
    }
}

impl fmt::Display for RevocationReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where a certificate stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Valid (until it expires); not on the CRL.
    Active,
    /// On hold since `since`: on the CRL with reason `certificateHold` until resumed.
    Suspended {
        /// When it was suspended.
        since: SystemTime,
    },
    /// Permanently revoked: on every later CRL.
    Revoked {
        /// Why.
        reason: RevocationReason,
        /// When the CA processed the revocation.
        at: SystemTime,
    },
}

impl Status {
    /// `active`, `suspended` or `revoked`.
    pub fn name(&self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Suspended { .. } => "suspended",
            Status::Revoked { .. } => "revoked",
        }
    }
}

/// What the CA remembers about one certificate it issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateRecord {
    /// The serial number.
    pub serial: Serial,
    /// The identity certified.
    pub identity: Identity,
    /// Start of validity.
    pub not_before: SystemTime,
    /// End of validity.
    pub not_after: SystemTime,
    /// When it was issued.
    pub issued_at: SystemTime,
    /// Active, suspended or revoked.
    pub status: Status,
    /// The certificate that renewed this one, if any.
    pub superseded_by: Option<Serial>,
    /// The certificate (DER), so it can be shown or published again.
    pub der: Vec<u8>,
}

/// The SQLite file, behind a mutex (one writer; operations are short).
pub(super) struct Records {
    conn: Mutex<Connection>,
}

impl fmt::Debug for Records {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Records")
    }
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS certificates (
    serial        TEXT PRIMARY KEY,
    kind          TEXT NOT NULL,
    identity      TEXT NOT NULL,
    not_before    INTEGER NOT NULL,
    not_after     INTEGER NOT NULL,
    issued_at     INTEGER NOT NULL,
    status        TEXT NOT NULL,
    reason        TEXT,
    changed_at    INTEGER,
    superseded_by TEXT,
    der           BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS certificates_identity ON certificates(identity);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO counters(name, value) VALUES ('crl_number', 0);
";

const COLUMNS: &str =
    "serial, kind, identity, not_before, not_after, issued_at, status, reason, changed_at, superseded_by, der";

/// Seconds since the Unix epoch.
pub(super) fn unix(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// The inverse of [`unix`] (negative values clamp to the epoch).
pub(super) fn from_unix(secs: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).unwrap_or(0))
}

impl Records {
    /// Opens (creating if needed) the records file.
    pub(super) fn open(path: &Path) -> Result<Self, CaError> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.execute_batch(SCHEMA)?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    fn lock(&self) -> Result<MutexGuard<'_, Connection>, CaError> {
        self.conn
            .lock()
            .map_err(|_| CaError::CorruptRecords("a thread panicked while writing".into()))
    }

    /// Whether a serial is already taken.
    pub(super) fn contains(&self, serial: &Serial) -> Result<bool, CaError> {
        let conn = self.lock()?;
        Ok(conn
            .query_row(
                "SELECT 1 FROM certificates WHERE serial = ?1",
                [serial.to_string()],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    /// Records a newly issued certificate; when it renews `supersedes`, marks that one as
    /// superseded (and revokes it with reason `superseded` when `revoke_old`), in the same
    /// transaction.
    pub(super) fn insert(
        &self,
        record: &CertificateRecord,
        supersedes: Option<(&Serial, bool)>,
    ) -> Result<(), CaError> {
        let mut conn = self.lock()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            &format!("INSERT INTO certificates ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'active', NULL, NULL, NULL, ?7)"),
            params![
                record.serial.to_string(),
                record.identity.kind(),
                record.identity.as_str(),
                unix(record.not_before),
                unix(record.not_after),
                unix(record.issued_at),
                record.der,
            ],
        )?;
        if let Some((old, revoke_old)) = supersedes {
            // Only an active certificate not renewed before: two concurrent renewals of the
            // same certificate cannot both succeed.
            let changed = if revoke_old {
                tx.execute(
                    "UPDATE certificates SET superseded_by = ?2, status = 'revoked', reason = 'superseded', changed_at = ?3 \
                     WHERE serial = ?1 AND status = 'active' AND superseded_by IS NULL",
                    params![old.to_string(), record.serial.to_string(), unix(record.issued_at)],
                )?
            } else {
                tx.execute(
                    "UPDATE certificates SET superseded_by = ?2 \
                     WHERE serial = ?1 AND status = 'active' AND superseded_by IS NULL",
                    params![old.to_string(), record.serial.to_string()],
                )?
            };
            if changed != 1 {
                return Err(CaError::InvalidTransition {
                    serial: old.to_string(),
                    status: "no longer active, or renewed already",
                    operation: "renew",
                });
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// One record.
    pub(super) fn get(&self, serial: &Serial) -> Result<CertificateRecord, CaError> {
        let conn = self.lock()?;
        let record = conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM certificates WHERE serial = ?1"),
                [serial.to_string()],
                read_row,
            )
            .optional()?;
        record
            .ok_or_else(|| CaError::UnknownSerial {
                serial: serial.to_string(),
            })?
            .map_err(CaError::CorruptRecords)
    }

    /// Every record, oldest first.
    pub(super) fn list(&self) -> Result<Vec<CertificateRecord>, CaError> {
        self.select("", [])
    }

    /// The records of one identity, oldest first.
    pub(super) fn for_identity(
        &self,
        identity: &Identity,
    ) -> Result<Vec<CertificateRecord>, CaError> {
        self.select(
            "WHERE kind = ?1 AND identity = ?2",
            [identity.kind(), identity.as_str()],
        )
    }

    fn select<P: rusqlite::Params>(
        &self,
        filter: &str,
        params: P,
    ) -> Result<Vec<CertificateRecord>, CaError> {
        let conn = self.lock()?;
        select_with(&conn, filter, params)
    }

    /// Changes a record's status after `check` accepted the current one.
    pub(super) fn set_status(
        &self,
        serial: &Serial,
        check: impl FnOnce(&Status) -> Result<(), CaError>,
        new: Status,
    ) -> Result<CertificateRecord, CaError> {
        let mut conn = self.lock()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let current = tx
            .query_row(
                &format!("SELECT {COLUMNS} FROM certificates WHERE serial = ?1"),
                [serial.to_string()],
                read_row,
            )
            .optional()?
            .ok_or_else(|| CaError::UnknownSerial {
                serial: serial.to_string(),
            })?
            .map_err(CaError::CorruptRecords)?;
        check(&current.status)?;
        let (status, reason, changed_at) = match new {
            Status::Active => ("active", None, None),
            Status::Suspended { since } => ("suspended", None, Some(unix(since))),
            Status::Revoked { reason, at } => ("revoked", Some(reason.name()), Some(unix(at))),
        };
        tx.execute(
            "UPDATE certificates SET status = ?2, reason = ?3, changed_at = ?4 WHERE serial = ?1",
            params![serial.to_string(), status, reason, changed_at],
        )?;
        tx.commit()?;
        Ok(CertificateRecord {
            status: new,
            ..current
        })
    }

    /// Runs `issue` with the next CRL number and keeps that number only if `issue` succeeds:
    /// CRL numbers strictly increase, and a number is never used twice.
    pub(super) fn with_next_crl_number<T>(
        &self,
        issue: impl FnOnce(u64, &[CertificateRecord]) -> Result<T, CaError>,
    ) -> Result<T, CaError> {
        let mut conn = self.lock()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // The suspended and revoked certificates, read in the same transaction as the number.
        let withdrawn = select_with(&tx, "WHERE status != 'active'", [])?;
        let last: i64 = tx.query_row(
            "SELECT value FROM counters WHERE name = 'crl_number'",
            [],
            |row| row.get(0),
        )?;
        let next = u64::try_from(last)
            .ok()
            .and_then(|n| n.checked_add(1))
            .ok_or_else(|| CaError::CorruptRecords(format!("CRL number {last}")))?;
        let stored = i64::try_from(next)
            .map_err(|_| CaError::CorruptRecords(format!("CRL number {next}")))?;
        tx.execute(
            "UPDATE counters SET value = ?1 WHERE name = 'crl_number'",
            [stored],
        )?;
        let out = issue(next, &withdrawn)?;
        tx.commit()?;
        Ok(out)
    }
}

fn select_with<P: rusqlite::Params>(
    conn: &Connection,
    filter: &str,
    params: P,
) -> Result<Vec<CertificateRecord>, CaError> {
    let mut statement = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM certificates {filter} ORDER BY issued_at, rowid"
    ))?;
    let rows = statement.query_map(params, read_row)?;
    let mut records = Vec::new();
    for row in rows {
        records.push(row?.map_err(CaError::CorruptRecords)?);
    }
    Ok(records)
}

type RowResult = Result<CertificateRecord, String>;

fn read_row(row: &Row<'_>) -> rusqlite::Result<RowResult> {
    let serial: String = row.get(0)?;
    let kind: String = row.get(1)?;
    let identity: String = row.get(2)?;
    let not_before: i64 = row.get(3)?;
    let not_after: i64 = row.get(4)?;
    let issued_at: i64 = row.get(5)?;
    let status: String = row.get(6)?;
    let reason: Option<String> = row.get(7)?;
    let changed_at: Option<i64> = row.get(8)?;
    let superseded_by: Option<String> = row.get(9)?;
    let der: Vec<u8> = row.get(10)?;
    Ok((|| {
        let bad = |what: &str| format!("certificate {serial}: {what}");
        let status = match (status.as_str(), reason.as_deref(), changed_at) {
            ("active", _, _) => Status::Active,
            ("suspended", _, Some(at)) => Status::Suspended {
                since: from_unix(at),
            },
            ("revoked", Some(reason), Some(at)) => Status::Revoked {
                reason: RevocationReason::from_name(reason)
                    .ok_or_else(|| bad(&format!("unknown reason {reason:?}")))?,
                at: from_unix(at),
            },
            (other, _, _) => return Err(bad(&format!("unreadable status {other:?}"))),
        };
        Ok(CertificateRecord {
            serial: serial.parse().map_err(|_| bad("unreadable serial"))?,
            identity: Identity::from_parts(&kind, identity)
                .ok_or_else(|| bad(&format!("unknown kind {kind:?}")))?,
            not_before: from_unix(not_before),
            not_after: from_unix(not_after),
            issued_at: from_unix(issued_at),
            status,
            superseded_by: superseded_by
                .map(|s| s.parse().map_err(|_| bad("unreadable superseded_by")))
                .transpose()?,
            der,
        })
    })())
}
