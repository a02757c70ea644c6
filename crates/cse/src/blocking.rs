//! Blocking update (`net` 7; TS-0001 clause 10.2.10, table 9.6.8-2; TS-0004 clauses
//! 7.3.3.7, 7.5.1.2.19 and 7.3.2.9): an UPDATE of a resource with a blocking-update
//! subscription is held until the subscription's notification target has answered the
//! notification of what the UPDATE would change. A successful answer lets the UPDATE go on;
//! any other answer, or none, refuses it and nothing changes.
//!
//! While one UPDATE waits, every other UPDATE and DELETE of the same resource waits behind
//! it ([`Holds`]), so the target approves exactly the change that is then written.

use crate::records::StoreRecords;
use crate::subscription::notification;
use crate::Cse;
use model::resources::sub::{is_blocking, net};
use model::{Error, Resource, ResponseStatusCode, Result};
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::OwnedMutexGuard;

/// One lock per resource that has a blocking-update subscription, taken by its UPDATEs and
/// DELETEs; an entry lives only while someone holds or waits for it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Holds {
    by_ri: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
}

/// The right to change one resource, until dropped.
#[derive(Debug)]
pub(crate) struct Held {
    guard: Option<OwnedMutexGuard<()>>,
    ri: String,
    holds: Holds,
}

impl Holds {
    /// Waits until no other request holds `ri`, then holds it.
    async fn hold(&self, ri: &str) -> Held {
        let lock = {
            let mut by_ri = self.by_ri.lock().unwrap_or_else(|p| p.into_inner());
            by_ri.entry(ri.to_owned()).or_default().clone()
        };
        Held {
            guard: Some(lock.lock_owned().await),
            ri: ri.to_owned(),
            holds: self.clone(),
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        drop(self.guard.take());
        let mut by_ri = self.holds.by_ri.lock().unwrap_or_else(|p| p.into_inner());
        // Only the map's own reference left: nobody holds or waits.
        if by_ri
            .get(&self.ri)
            .is_some_and(|l| Arc::strong_count(l) == 1)
        {
            by_ri.remove(&self.ri);
        }
    }
}

impl Cse {
    /// The blocking-update subscription of `subject`, if it has one that still blocks.
    fn blocking_subscription_of(&self, subject: &Resource) -> Result<Option<Resource>> {
        let Some(ri) = self.store.blocking_subscription(subject.ri())? else {
            return Ok(None);
        };
        Ok(self
            .store
            .get(&ri)?
            .filter(|s| s.pi() == subject.ri() && is_blocking(&s.attrs)))
    }

    /// Before a DELETE of `subject`: waits for a blocked UPDATE of it to finish (TS-0001
    /// table 9.6.8-2). Nothing to wait for without a blocking-update subscription.
    pub(crate) async fn hold_for_delete(&self, subject: &Resource) -> Result<Option<Held>> {
        if self.blocking_subscription_of(subject)?.is_none() {
            return Ok(None);
        }
        Ok(Some(self.blocking.hold(subject.ri()).await))
    }

    /// Before the write of an UPDATE of `subject` with `changes` (validated and
    /// authorized): when `subject` has a blocking-update subscription whose `atr` (if any)
    /// names a changed attribute, sends the notification and waits for its answer. The
    /// returned hold keeps other UPDATEs and DELETEs of `subject` waiting until it is
    /// dropped, after the write.
    pub(crate) async fn approve_update(
        &self,
        subject: &Resource,
        changes: &Map<String, Value>,
    ) -> Result<Option<Held>> {
        if self.blocking_subscription_of(subject)?.is_none() {
            return Ok(None);
        }
        let held = self.blocking.hold(subject.ri()).await;
        // Read again under the hold: the subscription may have gone while this waited.
        let Some(sub) = self.blocking_subscription_of(subject)? else {
            return Ok(Some(held));
        };
        if !model::resources::sub::concerns_update(&sub.attrs, changes) {
            return Ok(Some(held));
        }
        if !self.may_notify(&sub, subject) {
            return Err(refused(
                ResponseStatusCode::RemoteEntityNotReachable,
                &sub,
                "its subscriber may not be notified",
            ));
        }
        // TS-0004 clause 7.5.1.2.19: the representation is what the UPDATE carries.
        let rep = json!({ subject.wrapper(): changes });
        let body = json!({ "m2m:sgn": notification(&sub, net::BLOCKING_UPDATE, subject, rep) });
        let nu = sub.str_list("nu").into_iter().next().unwrap_or_default();
        let Some((to, body)) = self.targets(&nu, &body).into_iter().next() else {
            return Err(refused(
                ResponseStatusCode::RemoteEntityNotReachable,
                &sub,
                "its notification target has no reachable point of access",
            ));
        };
        match self.notifier.send_now(&to, &body).await {
            Ok(rsc) if rsc.is_success() => Ok(Some(held)),
            // TS-0004 clause 7.3.2.9: the target's refusal, or its not being reached,
            // becomes the UPDATE's answer.
            Ok(ResponseStatusCode::TargetNotReachable) => Err(refused(
                ResponseStatusCode::RemoteEntityNotReachable,
                &sub,
                "its notification target was not reached",
            )),
            Ok(rsc) => Err(refused(
                ResponseStatusCode::OperationDeniedByRemoteEntity,
                &sub,
                &format!("its notification target answered {}", rsc.code()),
            )),
            Err(e) => Err(refused(
                ResponseStatusCode::RemoteEntityNotReachable,
                &sub,
                &e.message,
            )),
        }
    }
}

/// The refusal of a blocked UPDATE, logged with its reason.
fn refused(rsc: ResponseStatusCode, sub: &Resource, why: &str) -> Error {
    tracing::info!(
        sub = sub.ri(),
        reason = %model::Untrusted(why),
        "blocked update refused"
    );
    Error::new(
        rsc,
        format!("the blocking-update subscription refused the update: {why}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_hold_makes_the_next_wait_and_leaves_nothing_behind() {
        let holds = Holds::default();
        let first = holds.hold("r").await;
        let waiting = tokio::spawn({
            let holds = holds.clone();
            async move { holds.hold("r").await }
        });
        let other = tokio::time::timeout(Duration::from_secs(5), holds.hold("s")).await;
        assert!(other.is_ok(), "another resource is not held");
        drop(other);
        assert!(!waiting.is_finished());
        drop(first);
        let second = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("released")
            .expect("task");
        drop(second);
        assert!(holds.by_ri.lock().expect("lock").is_empty());
    }
}
