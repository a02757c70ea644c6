//! Whether a subscriber may still be notified (TS-0001 clauses 10.2.10, 10.2.11; TS-0004: the
//! subscriber must keep RETRIEVE privilege on the subscribed-to resource): checked for each
//! notification when it is due, and, for queued notifications, again right before each
//! delivery attempt against the credential the subscription was made with.
//!
//! A subscription whose subscriber fails the check is not notified, and the reason is
//! logged; the subscription itself stays (its subscriber may be granted access again). When
//! the credential it was made with is revoked, the subscription is deleted for good, with
//! no deletion notice to a party that is being cut off; while it is suspended, the
//! subscription is only silent.

use crate::access::standing::originator_of_record;
use crate::access::RequestContext;
use crate::notification::Guard;
use crate::Cse;
use model::{AccessOperation, Resource, ResourceType};
use security::revocation::Revocations;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Subscriptions remembered with their credential before the oldest records are checked
/// for subscriptions that are gone (a bound on memory, not a tuning knob).
const CAPACITY: usize = 1 << 20;

/// The Credential-ID each subscription was created with (over a security association), by
/// subscription resource ID. Kept in memory: after a restart the check falls back to the
/// subscriber's privileges alone.
#[derive(Debug, Default)]
pub(crate) struct SubscriberCredentials {
    by_sub: Mutex<HashMap<String, String>>,
}

impl SubscriberCredentials {
    /// Remembers that subscription `sub` was made with `credential_id`.
    pub(crate) fn record(&self, sub: &str, credential_id: &str, store: &dyn store::Store) {
        let Ok(mut map) = self.by_sub.lock() else {
            return;
        };
        if map.len() >= CAPACITY {
            map.retain(|ri, _| {
                matches!(
                    store.resource_type(ri),
                    Ok(Some(ResourceType::Subscription))
                )
            });
        }
        map.insert(sub.to_owned(), credential_id.to_owned());
    }

    /// The credential subscription `sub` was made with, if known.
    pub(crate) fn credential_of(&self, sub: &str) -> Option<String> {
        self.by_sub.lock().ok()?.get(sub).cloned()
    }

    /// The subscriptions made with a credential that withdrawing `withdrawn` withdraws.
    pub(crate) fn made_with(&self, revocations: &Revocations, withdrawn: &str) -> Vec<String> {
        self.by_sub.lock().map_or_else(
            |_| Vec::new(),
            |map| {
                map.iter()
                    .filter(|(_, c)| revocations.covers(withdrawn, c))
                    .map(|(s, _)| s.clone())
                    .collect()
            },
        )
    }

    /// Forgets subscription `sub`.
    pub(crate) fn forget(&self, sub: &str) {
        if let Ok(mut map) = self.by_sub.lock() {
            map.remove(sub);
        }
    }
}

/// A queued notification's check before each attempt: the subscription's credential is not
/// withdrawn (revoked or suspended) by then.
pub(crate) fn credential_guard(revocations: Arc<Revocations>, credential_id: String) -> Guard {
    Arc::new(move || revocations.effective(&credential_id).is_none())
}

impl Cse {
    /// Whether `sub`'s subscriber may be notified about `subject` now: the credential it
    /// subscribed with is not withdrawn, its creator (`cr`) still stands for a registered
    /// AE (or the admin, a CSE), and that originator may RETRIEVE `subject` under the
    /// policies as they are now. A refusal is logged.
    pub(crate) fn may_notify(&self, sub: &Resource, subject: &Resource) -> bool {
        if let Some(credential) = self.subscribers.credential_of(sub.ri()) {
            if let Some(w) = self.revocations().effective(&credential) {
                tracing::warn!(
                    sub = sub.ri(),
                    credential = %security::privacy::credential_tag(&credential),
                    status = w.kind.name(),
                    "notification suppressed: the subscriber's credential is withdrawn"
                );
                return false;
            }
        }
        let Some(cr) = sub.creator() else {
            tracing::warn!(
                sub = sub.ri(),
                "notification suppressed: no subscriber recorded"
            );
            return false;
        };
        let Some(subscriber) = originator_of_record(cr, &self.config, self.store.as_ref()) else {
            tracing::warn!(
                sub = sub.ri(),
                subscriber = cr,
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
                subscriber = cr,
                target = subject.ri(),
                "notification suppressed: the subscriber has lost RETRIEVE privilege"
            );
        }
        allowed
    }

    /// The check queued notifications of `sub` carry to their delivery attempts.
    pub(crate) fn delivery_guard(&self, sub: &Resource) -> Option<Guard> {
        self.subscribers
            .credential_of(sub.ri())
            .map(|c| credential_guard(self.revocations().clone(), c))
    }

    /// After `withdrawn` was revoked: deletes every subscription made with a credential it
    /// covers (durably, no deletion notice). Returns how many were deleted.
    pub(crate) async fn drop_subscriptions_of(&self, withdrawn: &str) -> usize {
        let mut dropped = 0;
        for ri in self.subscribers.made_with(self.revocations(), withdrawn) {
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
                    continue;
                }
            }
            self.subscribers.forget(&ri);
        }
        dropped
    }
}
