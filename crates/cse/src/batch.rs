//! Batched notifications (`bn`, TS-0001 clause 10.2.10.7): a subscription with `bn`
//! collects its notifications and sends them together, as one `m2m:agn` per target, when
//! `bn/num` have gathered or `bn/dur` has passed since the first, whichever comes first.
//! With `ln` (latest notify) a batch carries only its latest notification.

use crate::notification::{Guard, Notification, Notifier};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The duration a batch waits when `bn` gives none: the service provider's default that
/// TS-0004 clause 7.4.8.2.1 asks the hosting CSE to store in `bn/dur`.
pub(crate) const DEFAULT_DURATION: &str = "PT1M";

/// The most notifications one batch holds: a batch that reaches it is sent early, so that
/// a long `bn/dur` without `bn/num` cannot gather without bound.
pub(crate) const MAX_BATCH: usize = 256;

/// How one subscription batches, read from its `bn` and `ln`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Policy {
    /// Send when this many notifications have gathered (`bn/num`); none: by time only.
    pub number: Option<usize>,
    /// Send this long after the first notification of a batch (`bn/dur`).
    pub duration: Duration,
    /// Send only the latest notification of each batch (`ln`).
    pub latest_only: bool,
}

impl Policy {
    /// The policy of a subscription's attributes; none when it has no `bn`.
    pub(crate) fn of(sub: &model::Resource) -> Option<Self> {
        let bn = sub.attrs.get("bn").filter(|v| v.is_object())?;
        let dur = bn
            .get("dur")
            .and_then(Value::as_str)
            .unwrap_or(DEFAULT_DURATION);
        Some(Self {
            number: bn
                .get("num")
                .and_then(Value::as_u64)
                .and_then(|n| usize::try_from(n).ok()),
            // Validated on CREATE and UPDATE; a stored value that no longer parses
            // falls back to the default rather than never sending.
            duration: model::time::parse_duration(dur)
                .or_else(|_| model::time::parse_duration(DEFAULT_DURATION))
                .unwrap_or(Duration::from_secs(60)),
            latest_only: sub.attrs.get("ln").and_then(Value::as_bool) == Some(true),
        })
    }
}

/// The batches being gathered, by subscription resource ID.
#[derive(Debug, Clone, Default)]
pub(crate) struct Batches {
    open: Arc<Mutex<Open>>,
}

#[derive(Debug, Default)]
struct Open {
    /// The generation the next batch gets; never reused, so a late timer finds nothing.
    next_generation: u64,
    by_sub: HashMap<String, Batch>,
}

/// One subscription's gathered notifications, per target URL (each already as that target
/// may see it), in the order they happened.
#[derive(Debug, Default)]
struct Batch {
    /// Tells a timer whether the batch it was started for is still open.
    generation: u64,
    count: usize,
    latest_only: bool,
    per_target: Vec<(String, Vec<Value>)>,
    guard: Option<GuardSlot>,
}

/// A [`Guard`] kept in a batch (closures have no `Debug`).
#[derive(Clone)]
struct GuardSlot(Guard);

impl std::fmt::Debug for GuardSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Guard")
    }
}

/// A closed batch, ready to be sent.
#[derive(Debug)]
pub(crate) struct Closed {
    notifications: Vec<Notification>,
}

impl Closed {
    /// Queues the batch's `m2m:agn` notifications; returns how many were queued.
    pub(crate) fn send(self, notifier: &Notifier) -> usize {
        let n = self.notifications.len();
        for notification in self.notifications {
            notifier.enqueue(notification);
        }
        n
    }
}

/// What adding a notification to a batch did.
#[derive(Debug)]
pub(crate) enum Added {
    /// It opened a new batch: start its timer for this generation.
    Opened(u64),
    /// It joined an open batch.
    Joined,
    /// It filled the batch (`bn/num` reached): send it now.
    Full(Closed),
}

impl Batches {
    /// Adds one notification (the `m2m:sgn` content, per target) to `sub`'s batch.
    pub(crate) fn add(
        &self,
        sub: &str,
        policy: Policy,
        per_target: Vec<(String, Value)>,
        guard: Option<Guard>,
    ) -> Added {
        let Ok(mut guarded) = self.open.lock() else {
            return Added::Joined;
        };
        let open = &mut *guarded;
        let batch = open.by_sub.entry(sub.to_owned()).or_default();
        let opened = batch.count == 0;
        if opened {
            open.next_generation += 1;
            batch.generation = open.next_generation;
        }
        batch.count += 1;
        batch.latest_only = policy.latest_only;
        batch.guard = guard.map(GuardSlot);
        for (url, sgn) in per_target {
            match batch.per_target.iter_mut().find(|(u, _)| *u == url) {
                Some((_, list)) => {
                    if policy.latest_only {
                        list.clear();
                    }
                    list.push(sgn);
                }
                None => batch.per_target.push((url, vec![sgn])),
            }
        }
        let generation = batch.generation;
        let limit = policy.number.unwrap_or(MAX_BATCH).min(MAX_BATCH);
        if batch.count >= limit {
            return match open.by_sub.remove(sub) {
                Some(full) => Added::Full(full.close()),
                None => Added::Joined,
            };
        }
        if opened {
            Added::Opened(generation)
        } else {
            Added::Joined
        }
    }

    /// Closes `sub`'s batch if it is still the one of `generation` (its timer expired).
    pub(crate) fn expire(&self, sub: &str, generation: u64) -> Option<Closed> {
        let mut open = self.open.lock().ok()?;
        if open.by_sub.get(sub)?.generation != generation {
            return None;
        }
        open.by_sub.remove(sub).map(Batch::close)
    }

    /// Closes `sub`'s batch now, whatever its policy (the subscription is going away).
    pub(crate) fn take(&self, sub: &str) -> Option<Closed> {
        self.open.lock().ok()?.by_sub.remove(sub).map(Batch::close)
    }
}

impl Batch {
    fn close(self) -> Closed {
        let guard = self.guard.map(|g| g.0);
        let notifications = self
            .per_target
            .into_iter()
            .map(|(url, mut sgns)| {
                if self.latest_only {
                    sgns.drain(..sgns.len().saturating_sub(1));
                }
                Notification {
                    url,
                    body: json!({ "m2m:agn": { "m2m:sgn": sgns } }),
                    guard: guard.clone(),
                }
            })
            .collect();
        Closed { notifications }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(number: Option<usize>, latest_only: bool) -> Policy {
        Policy {
            number,
            duration: Duration::from_secs(60),
            latest_only,
        }
    }

    fn bodies(closed: Closed) -> Vec<(String, Value)> {
        closed
            .notifications
            .into_iter()
            .map(|n| (n.url, n.body))
            .collect()
    }

    #[test]
    fn a_batch_fills_at_num_in_order() {
        let b = Batches::default();
        let one = vec![("http://a/".to_owned(), json!(1))];
        assert!(matches!(
            b.add("s", policy(Some(2), false), one, None),
            Added::Opened(1)
        ));
        let two = vec![("http://a/".to_owned(), json!(2))];
        let Added::Full(closed) = b.add("s", policy(Some(2), false), two, None) else {
            panic!("the second notification fills the batch")
        };
        assert_eq!(
            bodies(closed),
            vec![(
                "http://a/".to_owned(),
                json!({ "m2m:agn": { "m2m:sgn": [1, 2] } })
            )]
        );
        assert!(b.take("s").is_none());
    }

    #[test]
    fn a_batch_without_num_is_sent_at_the_bound() {
        let b = Batches::default();
        for n in 1..MAX_BATCH {
            let added = b.add(
                "s",
                policy(None, false),
                vec![("u".to_owned(), json!(n))],
                None,
            );
            assert!(!matches!(added, Added::Full(_)), "{n}");
        }
        let last = b.add(
            "s",
            policy(Some(10_000), false),
            vec![("u".to_owned(), json!(0))],
            None,
        );
        let Added::Full(closed) = last else {
            panic!("the bound closes the batch")
        };
        let sent = bodies(closed);
        assert_eq!(
            sent[0].1["m2m:agn"]["m2m:sgn"].as_array().map(Vec::len),
            Some(MAX_BATCH)
        );
    }

    #[test]
    fn latest_only_keeps_the_last_and_stale_timers_do_nothing() {
        let b = Batches::default();
        for n in 0..3 {
            b.add(
                "s",
                policy(None, true),
                vec![("u".to_owned(), json!(n))],
                None,
            );
        }
        assert!(b.expire("s", 2).is_none(), "not this batch's timer");
        let closed = b.expire("s", 1).expect("open");
        assert_eq!(
            bodies(closed),
            vec![("u".to_owned(), json!({ "m2m:agn": { "m2m:sgn": [2] } }))]
        );
        assert!(matches!(
            b.add("s", policy(None, true), vec![], None),
            Added::Opened(2)
        ));
    }
}
