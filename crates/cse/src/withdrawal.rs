//! Withdrawing credentials (seed 3.1, the security manager's third task): revoke for good,
//! suspend, resume. A withdrawal is durable before it is acknowledged, refuses the
//! credential's new handshakes from then on, closes its live associations at once (and those
//! of the credentials derived from it, see `Revocations::covers`), and is written to the
//! audit trail.

use crate::Cse;
use manager::audit::Event;
use model::{Error, Result};
use security::revocation::{RevocationError, WithdrawalKind};
use serde_json::{json, Value};

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

impl Cse {
    /// Revokes, suspends or resumes `credential` (a Credential-ID) on behalf of `actor`, and
    /// returns what was done (with the number of live associations closed).
    pub async fn withdraw(
        &self,
        actor: &str,
        what: Withdraw,
        credential: &str,
        reason: &str,
    ) -> Result<Value> {
        let revocations = self.revocations().clone();
        let (credential_owned, reason_owned) = (credential.to_owned(), reason.to_owned());
        // The journal syncs: keep it off the async workers.
        tokio::task::spawn_blocking(move || match what {
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
        tracing::warn!(
            credential = %security::privacy::credential_tag(credential),
            action = ?what,
            closed,
            "credential withdrawal changed"
        );
        if let Some(audit) = self.audit() {
            let (actor, credential, reason) =
                (actor.to_owned(), credential.to_owned(), reason.to_owned());
            audit
                .record_durably(match what {
                    Withdraw::Revoke => Event::Revoked {
                        credential,
                        actor,
                        reason,
                    },
                    Withdraw::Suspend => Event::Suspended {
                        credential,
                        actor,
                        reason,
                    },
                    Withdraw::Resume => Event::Resumed { credential, actor },
                })
                .await?;
        }
        let status = self.revocations().status(credential);
        Ok(json!({
            "credential": credential,
            "status": status.map_or("active", |w| w.kind.name()),
            "associationsClosed": closed,
        }))
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
