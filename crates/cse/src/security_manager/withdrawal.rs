//! Withdrawing credentials (seed 3.1, the security manager's third task): revoke for good,
//! suspend, resume. A withdrawal is in force before anything is written: it refuses the
//! credential's new handshakes from then on, closes its live associations at once (and those
//! of the credentials derived from it, see `Revocations::covers`), and is written to the
//! revocation journal and the audit trail, with one audit entry for each credential the rules
//! list as derived from it (the keys an enrolee key enrolled, with
//! `[enrolment] withdraw_enrolled`).
//!
//! It is answered 2000 once both are on disk. When either cannot be written (a full disk),
//! the withdrawal stays in force (fail closed) and is answered 1000 ACCEPTED with
//! `"persisted": false` or `"audited": false` and a warning: accepted and in force, its
//! recording not yet complete. The CSE keeps retrying in the background ([`spawn_persistence`]
//! for the journal, one retrying task per unwritten audit entry) until space returns.

use crate::Cse;
use manager::audit::Event;
use model::{Error, ResponseStatusCode, Result};
use security::revocation::{Persistence, RevocationError, WithdrawalKind};
use serde_json::{json, Value};
use std::sync::Weak;
use std::time::Duration;

/// How often unwritten withdrawals (journal lines, audit entries) are tried again.
const RETRY_PERIOD: Duration = Duration::from_secs(1);

/// What an admin asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Withdraw {
    /// Revoke for good.
    Revoke,
    /// Suspend until resumed.
    Suspend,
    /// Lift a suspension.
    Resume,
}

fn refused(e: RevocationError) -> Error {
    match e {
        RevocationError::Io { .. } | RevocationError::Corrupt { .. } => {
            Error::internal(e.to_string())
        }
        _ => Error::bad_request(e.to_string()),
    }
}

/// What a withdrawal did, for the admin's response.
#[derive(Debug, Clone, PartialEq)]
pub struct Withdrawn {
    /// 2000 when the change is on disk and audited; 1000 ACCEPTED when it is in force but
    /// its journal line or its audit entry is still waiting to be written.
    pub rsc: ResponseStatusCode,
    /// The credential, its status, the associations closed, whether it is persisted and
    /// audited (and a warning when not).
    pub content: Value,
}

impl Cse {
    /// Revokes, suspends or resumes `credential` (a Credential-ID) on behalf of `actor`, and
    /// returns what was done (with the number of live associations closed). The change is in
    /// force when this returns, even when it could not be written yet (see the module doc).
    pub async fn withdraw(
        &self,
        actor: &str,
        what: Withdraw,
        credential: &str,
        reason: &str,
    ) -> Result<Withdrawn> {
        let revocations = self.revocations().clone();
        let (credential_owned, reason_owned) = (credential.to_owned(), reason.to_owned());
        // The journal syncs: keep it off the async workers.
        let persistence = tokio::task::spawn_blocking(move || match what {
            Withdraw::Revoke => revocations.revoke(&credential_owned, &reason_owned),
            Withdraw::Suspend => revocations.suspend(&credential_owned, &reason_owned),
            Withdraw::Resume => revocations.resume(&credential_owned),
        })
        .await
        .map_err(|e| Error::internal(format!("revocation journal: {e}")))?
        .map_err(refused)?;
        let closed = match what {
            Withdraw::Resume => 0,
            Withdraw::Revoke | Withdraw::Suspend => {
                let why = format!(
                    "{}: {reason}",
                    if what == Withdraw::Revoke {
                        WithdrawalKind::Revoked.name()
                    } else {
                        WithdrawalKind::Suspended.name()
                    }
                );
                // The credential's own associations and those of credentials derived from
                // it (a GBA gateway's edge nodes).
                let revocations = self.revocations();
                self.associations()
                    .close_credentials(|id| revocations.covers(credential, id), &why)
            }
        };
        // A revoked credential's subscriptions go for good; a suspended one's stay silent
        // until it is resumed (`Cse::may_notify`, and the guard of queued notifications).
        let subscriptions_deleted = match what {
            Withdraw::Revoke => self.drop_subscriptions_of(credential).await,
            Withdraw::Suspend | Withdraw::Resume => 0,
        };
        tracing::warn!(
            credential = %security::privacy::credential_tag(credential),
            action = ?what,
            closed,
            subscriptions_deleted,
            "credential withdrawal changed"
        );
        let derived = self.revocations().derived_from(credential);
        let audited = match self.audit() {
            None => true,
            Some(audit) => {
                let event = |credential: String, reason: String| match what {
                    Withdraw::Revoke => Event::Revoked {
                        credential,
                        actor: actor.to_owned(),
                        reason,
                    },
                    Withdraw::Suspend => Event::Suspended {
                        credential,
                        actor: actor.to_owned(),
                        reason,
                    },
                    Withdraw::Resume => Event::Resumed {
                        credential,
                        actor: actor.to_owned(),
                    },
                };
                let mut events = vec![event(credential.to_owned(), reason.to_owned())];
                for child in &derived {
                    // A derived credential is back in use only if not withdrawn on its own.
                    if what == Withdraw::Resume && self.revocations().effective(child).is_some() {
                        continue;
                    }
                    events.push(event(child.clone(), format!("with {credential}: {reason}")));
                }
                let mut all_written = true;
                for e in events {
                    all_written &= record_or_retry(audit, e).await;
                }
                all_written
            }
        };
        let status = self.revocations().status(credential);
        let mut content = json!({
            "credential": credential,
            "status": status.map_or("active", |w| w.kind.name()),
            "associationsClosed": closed,
            "persisted": persistence == Persistence::Durable,
            "audited": audited,
            "derived": derived,
        });
        let mut rsc = ResponseStatusCode::Ok;
        let mut unwritten = Vec::new();
        if let Persistence::Pending { reason } = &persistence {
            unwritten.push(format!("the revocation journal ({reason})"));
        }
        if !audited {
            unwritten.push("the audit log".to_owned());
        }
        if !unwritten.is_empty() {
            rsc = ResponseStatusCode::Accepted;
            content["warning"] = json!(format!(
                "in force (refused from now on), but not yet written to {}; the CSE retries until it is written, and a restart before then loses it",
                unwritten.join(" and ")
            ));
        }
        Ok(Withdrawn { rsc, content })
    }

    /// Every withdrawn credential, for the admin.
    pub fn withdrawn_credentials(&self) -> Value {
        Value::Array(
            self.revocations()
                .list()
                .into_iter()
                .map(|(credential, w)| {
                    json!({
                        "credential": credential,
                        "status": w.kind.name(),
                        "reason": w.reason,
                        "since": security::enrolment::rfc3339(w.at),
                    })
                })
                .collect(),
        )
    }
}

/// Writes `event` to the audit log; when it cannot be written yet (a full disk), keeps trying
/// in the background every [`RETRY_PERIOD`] and returns false.
async fn record_or_retry(audit: &crate::security_manager::audit::AuditTrail, event: Event) -> bool {
    match audit.record_durably(event.clone()).await {
        Ok(()) => true,
        Err(e) => {
            tracing::error!(error = %e.message, "a credential withdrawal is in force but its audit entry is not yet written; retrying");
            let audit = audit.clone();
            tokio::spawn(async move {
                while audit.record_durably(event.clone()).await.is_err() {
                    tokio::time::sleep(RETRY_PERIOD).await;
                }
                tracing::warn!("the audit entry of a credential withdrawal is now written");
            });
            false
        }
    }
}

/// Retries writing the withdrawals that are in force but not yet in the revocation journal
/// (a full disk), every [`RETRY_PERIOD`], so they persist by themselves once space returns.
/// Holds the CSE weakly: the task ends with it.
pub(crate) fn spawn_persistence(cse: Weak<Cse>) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(RETRY_PERIOD).await;
            let Some(cse) = cse.upgrade() else { return };
            let revocations = cse.revocations().clone();
            drop(cse);
            if revocations.pending() == 0 {
                continue;
            }
            match tokio::task::spawn_blocking(move || revocations.persist_pending()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "withdrawals still not persisted");
                }
                Err(e) => tracing::error!(error = %e, "withdrawal persistence task failed"),
            }
        }
    });
}
