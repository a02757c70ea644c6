//! Whether a subscriber may still be notified (TS-0001 clauses 10.2.10, 10.2.11; TS-0004: the
//! subscriber must keep RETRIEVE privilege on the subscribed-to resource): checked for each
//! notification when it is due, and, for queued notifications, again right before each
//! delivery attempt against the credential the subscription was made with.
//!
//! That credential is a record the subscription's CREATE wrote in the same transaction
//! ([`crate::records::SUBSCRIPTION_CREDENTIAL`]), deleted with the subscription: it
//! survives a restart, so a withdrawal after one still reaches the subscription.
//!
//! A subscription whose subscriber fails the check is not notified, and the reason is
//! logged; the subscription itself stays (its subscriber may be granted access again). When
//! the credential it was made with is revoked, the subscription is deleted for good, with
//! no deletion notice to a party that is being cut off; while it is suspended, the
//! subscription is only silent.

use crate::access::standing::originator_of_record;
use crate::access::RequestContext;
use crate::notification::Guard;
use crate::records::StoreRecords;
use crate::Cse;
use model::{AccessOperation, Resource, ResourceType};
use security::revocation::Revocations;
use std::sync::Arc;

/// A queued notification's check before each attempt: the subscription's credential is not
/// withdrawn (revoked or suspended) by then.
pub(crate) fn credential_guard(revocations: Arc<Revocations>, credential_id: String) -> Guard {
    Arc::new(move || revocations.effective(&credential_id).is_none())
}

impl Cse {
    /// The Credential-ID `sub` was made with, if it was made over an association. A record
    /// that cannot be read counts as a withdrawn credential (fail closed).
    fn subscriber_credential(&self, sub: &str) -> Result<Option<String>, ()> {
        self.store.subscriber_credential(sub).map_err(|e| {
            tracing::error!(sub, error = %e, "cannot read the credential a subscription was made with");
        })
    }

    /// Whether `sub`'s subscriber may be notified about `subject` now: the credential it
    /// subscribed with is not withdrawn, its creator (the record, not `cr`) still stands for a registered
    /// AE (or the admin, a CSE), and that originator may RETRIEVE `subject` under the
    /// policies as they are now. A refusal is logged.
    pub(crate) fn may_notify(&self, sub: &Resource, subject: &Resource) -> bool {
        let Ok(credential) = self.subscriber_credential(sub.ri()) else {
            return false;
        };
        let creator = self.store.creator_of(sub);
        self.may_notify_as(sub, credential.as_deref(), creator.as_deref(), subject)
    }

    /// [`Cse::may_notify`] for a subscription made with `credential` by `creator` (both
    /// read before it was deleted, for the notice of its own parent's deletion).
    pub(crate) fn may_notify_as(
        &self,
        sub: &Resource,
        credential: Option<&str>,
        creator: Option<&str>,
        subject: &Resource,
    ) -> bool {
        if let Some(credential) = credential {
            if let Some(w) = self.revocations().effective(credential) {
                tracing::warn!(
                    sub = sub.ri(),
                    credential = %security::privacy::credential_tag(credential),
                    status = w.kind.name(),
                    "notification suppressed: the subscriber's credential is withdrawn"
                );
                return false;
            }
        }
        let Some(cr) = creator else {
            tracing::warn!(
                sub = sub.ri(),
                "notification suppressed: no subscriber recorded"
            );
            return false;
        };
        let Some(subscriber) = originator_of_record(cr, &self.config, self.store.as_ref()) else {
            tracing::warn!(
                sub = sub.ri(),
                subscriber = %cr,
                "notification suppressed: the subscriber is no longer registered"
            );
            return false;
        };
        let allowed = self.gate().permits(
            &subscriber,
            &RequestContext::standing(self.config.clock.now()),
            subject,
            AccessOperation::RETRIEVE,
        );
        if !allowed {
            tracing::warn!(
                sub = sub.ri(),
                subscriber = %cr,
                target = subject.ri(),
                "notification suppressed: the subscriber has lost RETRIEVE privilege"
            );
        }
        allowed
    }

    /// The check queued notifications of `sub` carry to their delivery attempts.
    pub(crate) fn delivery_guard(&self, sub: &Resource) -> Option<Guard> {
        match self.subscriber_credential(sub.ri()) {
            Ok(credential) => credential.map(|c| credential_guard(self.revocations().clone(), c)),
            Err(()) => Some(Arc::new(|| false)),
        }
    }

    /// The subscriptions made with a credential that withdrawing `withdrawn` withdraws.
    fn made_with(&self, withdrawn: &str) -> Vec<String> {
        let all = self.store.subscriber_credentials().unwrap_or_else(|e| {
            tracing::error!(error = %e, "cannot read the credentials subscriptions were made with");
            Vec::new()
        });
        let revocations = self.revocations();
        all.into_iter()
            .filter(|(_, c)| revocations.covers(withdrawn, c))
            .map(|(s, _)| s)
            .collect()
    }

    /// After `withdrawn` was revoked: deletes every subscription made with a credential it
    /// covers (durably, no deletion notice). Returns how many were deleted.
    pub(crate) async fn drop_subscriptions_of(&self, withdrawn: &str) -> usize {
        let mut dropped = 0;
        for ri in self.made_with(withdrawn) {
            match self.store.get(&ri) {
                Ok(Some(sub)) if sub.ty == ResourceType::Subscription => {
                    match self.remove(&sub).await {
                        Ok(_) => {
                            dropped += 1;
                            tracing::warn!(
                                sub = %ri,
                                credential = %security::privacy::credential_tag(withdrawn),
                                "subscription deleted: the credential it was made with is revoked"
                            );
                        }
                        Err(e) => {
                            tracing::error!(sub = %ri, error = %e, "cannot delete the subscription of a revoked credential");
                            continue;
                        }
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(sub = %ri, error = %e, "cannot read the subscription of a revoked credential");
                }
            }
        }
        dropped
    }
}
