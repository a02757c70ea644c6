//! Batched notifications (`bn`, TS-0001 clause 10.2.10.7): a subscription with `bn`
//! collects its notifications and sends them together, as one `m2m:agn` per target, when
//! `bn/num` have gathered or `bn/dur` has passed since the first, whichever comes first.
//! With `ln` (latest notify) a batch carries only its latest notification.
//!
//! An open batch is kept in memory and, durably, as records tied to its subscription
//! ([`crate::records::Batched`]), written before the event that added to it is
//! acknowledged; a batch's records are forgotten once it has been delivered (or given up).
//! After a restart the open batches are rebuilt from the records ([`Batches::restore`]),
//! and their duration keeps running from when each was opened.

use crate::notification::{Done, Endpoint, Guard, Notification, Notifier};
use crate::records::{Batched, TxnRecords};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use store::Store;

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

    /// The policy for what a subscription that no longer batches had gathered: send it now.
    pub(crate) fn at_once() -> Self {
        Self {
            number: None,
            duration: Duration::ZERO,
            latest_only: false,
        }
    }

    fn limit(&self) -> usize {
        self.number.unwrap_or(MAX_BATCH).min(MAX_BATCH)
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
    /// The number the next event gets (its records' keys sort in event order).
    next_seq: u64,
    by_sub: HashMap<String, Batch>,
}

/// One subscription's gathered notifications, per target (each already as that target may
/// see it, with the key of its record), in the order they happened.
#[derive(Debug, Default)]
struct Batch {
    /// Tells a timer whether the batch it was started for is still open.
    generation: u64,
    count: usize,
    latest_only: bool,
    /// When the batch was opened (`m2m:timestamp`).
    opened: String,
    per_target: Vec<(Endpoint, Vec<(String, Value)>)>,
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

/// The records one change of the batches asks to keep and to forget, written before the
/// event is acknowledged.
#[derive(Debug, Default)]
pub(crate) struct Changes {
    keep: Vec<Batched>,
    forget: Vec<String>,
    /// Cross-resource windows that an event changed (`crate::crs`).
    windows: Vec<crate::crs::Saved>,
}

impl Changes {
    /// Forgetting the records `keys`, and nothing else.
    pub(crate) fn forgetting(keys: Vec<String>) -> Self {
        Self {
            keep: Vec::new(),
            forget: keys,
            windows: Vec::new(),
        }
    }

    /// Keeping a cross-resource window's new state, and nothing else.
    pub(crate) fn saving_window(saved: crate::crs::Saved) -> Self {
        Self {
            windows: vec![saved],
            ..Self::default()
        }
    }

    /// Adds `other`'s records to these.
    pub(crate) fn extend(&mut self, other: Changes) {
        self.keep.extend(other.keep);
        self.forget.extend(other.forget);
        self.windows.extend(other.windows);
    }

    /// Writes the records durably; a failure is logged (the batch still holds the
    /// notifications in memory).
    pub(crate) async fn write(self, store: &dyn Store) {
        if self.keep.is_empty() && self.forget.is_empty() && self.windows.is_empty() {
            return;
        }
        let outcome = store::write(store, move |t| {
            for key in &self.forget {
                t.forget_batched(key)?;
            }
            for batched in &self.keep {
                t.keep_batched(batched)?;
            }
            for window in &self.windows {
                window.write(t)?;
            }
            Ok(())
        })
        .await;
        if let Err(e) = outcome {
            tracing::error!(error = %e, "cannot keep batched notifications durably");
        }
    }
}

/// A closed batch, ready to be sent.
#[derive(Debug)]
pub(crate) struct Closed {
    /// Each notification with the keys of the records it carries.
    notifications: Vec<(Notification, Vec<String>)>,
}

impl Closed {
    /// Queues the batch's `m2m:agn` notifications, each forgetting its records once it is
    /// delivered or given up; returns how many were queued.
    pub(crate) fn send(self, notifier: &Notifier, store: &Arc<dyn Store>) -> usize {
        let n = self.notifications.len();
        for (mut notification, keys) in self.notifications {
            if !keys.is_empty() {
                notification.done = Some(forget_when_done(store.clone(), keys));
            }
            notifier.enqueue(notification);
        }
        n
    }
}

/// Forgets the records `keys` (from a task: it is called from the delivery loop).
fn forget_when_done(store: Arc<dyn Store>, keys: Vec<String>) -> Done {
    Arc::new(move || {
        let changes = Changes::forgetting(keys.clone());
        let store = store.clone();
        tokio::spawn(async move { changes.write(store.as_ref()).await });
    })
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

/// What rebuilding a batch from its records gave.
#[derive(Debug)]
pub(crate) enum Restored {
    /// An open batch: start its timer for this generation.
    Open(u64),
    /// Already full: send it now.
    Full(Closed),
}

impl Batches {
    /// Adds one notification (the `m2m:sgn` content, per target) to `sub`'s batch, at
    /// `now` (`m2m:timestamp`); the changes are the records to write before the event is
    /// acknowledged.
    pub(crate) fn add(
        &self,
        sub: &str,
        policy: Policy,
        per_target: Vec<(Endpoint, Value)>,
        guard: Option<Guard>,
        now: &str,
    ) -> (Added, Changes) {
        let mut changes = Changes::default();
        let Ok(mut guarded) = self.open.lock() else {
            return (Added::Joined, changes);
        };
        let open = &mut *guarded;
        let seq = open.next_seq;
        open.next_seq += 1;
        let batch = open.by_sub.entry(sub.to_owned()).or_default();
        let opened = batch.count == 0;
        if opened {
            open.next_generation += 1;
            batch.generation = open.next_generation;
            batch.opened = now.to_owned();
        }
        batch.count += 1;
        batch.latest_only = policy.latest_only;
        batch.guard = guard.map(GuardSlot);
        for (target, (to, sgn)) in (0u32..).zip(per_target) {
            let record = Batched {
                sub: sub.to_owned(),
                seq,
                target,
                url: to.url.clone(),
                rvi: to.rvi.clone(),
                sgn: sgn.clone(),
                opened: batch.opened.clone(),
            };
            let entry = (record.key(), sgn);
            changes.keep.push(record);
            match batch.per_target.iter_mut().find(|(t, _)| *t == to) {
                Some((_, list)) => {
                    if policy.latest_only {
                        changes.forget.extend(list.drain(..).map(|(key, _)| key));
                    }
                    list.push(entry);
                }
                None => batch.per_target.push((to, vec![entry])),
            }
        }
        let generation = batch.generation;
        if batch.count >= policy.limit() {
            // Sent now: what it adds need not be kept, and the rest is forgotten once
            // delivered.
            changes.keep.clear();
            let added = match open.by_sub.remove(sub) {
                Some(full) => Added::Full(full.close(sub)),
                None => Added::Joined,
            };
            return (added, changes);
        }
        let added = if opened {
            Added::Opened(generation)
        } else {
            Added::Joined
        };
        (added, changes)
    }

    /// Rebuilds `sub`'s open batch from its records (oldest first) after a restart. With
    /// `ln`, the records it no longer needs are returned, to be forgotten.
    pub(crate) fn restore(
        &self,
        sub: &str,
        policy: Policy,
        records: Vec<Batched>,
        guard: Option<Guard>,
    ) -> (Option<Restored>, Vec<String>) {
        let Ok(mut guarded) = self.open.lock() else {
            return (None, Vec::new());
        };
        let open = &mut *guarded;
        let mut stale = Vec::new();
        let mut batch = Batch {
            latest_only: policy.latest_only,
            guard: guard.map(GuardSlot),
            ..Batch::default()
        };
        let mut last_seq = None;
        for record in records {
            open.next_seq = open.next_seq.max(record.seq + 1);
            if last_seq != Some(record.seq) {
                batch.count += 1;
                last_seq = Some(record.seq);
            }
            if batch.opened.is_empty() || record.opened < batch.opened {
                batch.opened = record.opened.clone();
            }
            let key = record.key();
            let to = Endpoint {
                url: record.url,
                rvi: record.rvi,
            };
            match batch.per_target.iter_mut().find(|(t, _)| *t == to) {
                Some((_, list)) => {
                    if policy.latest_only {
                        stale.extend(list.drain(..).map(|(key, _)| key));
                    }
                    list.push((key, record.sgn));
                }
                None => batch.per_target.push((to, vec![(key, record.sgn)])),
            }
        }
        if batch.count == 0 {
            return (None, stale);
        }
        if batch.count >= policy.limit() {
            return (Some(Restored::Full(batch.close(sub))), stale);
        }
        open.next_generation += 1;
        batch.generation = open.next_generation;
        let generation = batch.generation;
        open.by_sub.insert(sub.to_owned(), batch);
        (Some(Restored::Open(generation)), stale)
    }

    /// Closes `sub`'s batch if it is still the one of `generation` (its timer expired).
    pub(crate) fn expire(&self, sub: &str, generation: u64) -> Option<Closed> {
        let mut open = self.open.lock().ok()?;
        if open.by_sub.get(sub)?.generation != generation {
            return None;
        }
        open.by_sub.remove(sub).map(|b| b.close(sub))
    }

    /// Closes `sub`'s batch now, whatever its policy (the subscription is going away).
    pub(crate) fn take(&self, sub: &str) -> Option<Closed> {
        self.open
            .lock()
            .ok()?
            .by_sub
            .remove(sub)
            .map(|b| b.close(sub))
    }
}

impl Batch {
    /// The batch of subscription `sub` as notifications, one per target; with `ln` each
    /// carries Event Category "latest".
    fn close(self, sub: &str) -> Closed {
        let guard = self.guard.map(|g| g.0);
        let notifications = self
            .per_target
            .into_iter()
            .map(|(to, mut entries)| {
                let keys = entries.iter().map(|(key, _)| key.clone()).collect();
                if self.latest_only {
                    entries.drain(..entries.len().saturating_sub(1));
                }
                let sgns: Vec<Value> = entries.into_iter().map(|(_, sgn)| sgn).collect();
                let notification = Notification {
                    url: to.url,
                    rvi: to.rvi,
                    body: json!({ "m2m:agn": { "m2m:sgn": sgns } }),
                    guard: guard.clone(),
                    done: None,
                    latest: self.latest_only.then(|| sub.to_owned()),
                };
                (notification, keys)
            })
            .collect();
        Closed { notifications }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: &str = "20261207T205000,000000";

    fn policy(number: Option<usize>, latest_only: bool) -> Policy {
        Policy {
            number,
            duration: Duration::from_secs(60),
            latest_only,
        }
    }

    fn add(b: &Batches, policy: Policy, to: &str, sgn: Value) -> (Added, Changes) {
        b.add("s", policy, vec![(Endpoint::url(to), sgn)], None, NOW)
    }

    fn bodies(closed: Closed) -> Vec<(String, Value, usize)> {
        closed
            .notifications
            .into_iter()
            .map(|(n, keys)| (n.url, n.body, keys.len()))
            .collect()
    }

    #[test]
    fn a_batch_fills_at_num_in_order() {
        let b = Batches::default();
        let (added, changes) = add(&b, policy(Some(2), false), "http://a/", json!(1));
        assert!(matches!(added, Added::Opened(1)));
        assert_eq!(
            changes.keep.len(),
            1,
            "kept before the event is acknowledged"
        );
        let (Added::Full(closed), changes) = add(&b, policy(Some(2), false), "http://a/", json!(2))
        else {
            panic!("the second notification fills the batch")
        };
        assert!(
            changes.keep.is_empty(),
            "sent at once: nothing more to keep"
        );
        assert_eq!(
            bodies(closed),
            vec![(
                "http://a/".to_owned(),
                json!({ "m2m:agn": { "m2m:sgn": [1, 2] } }),
                2
            )]
        );
        assert!(b.take("s").is_none());
    }

    #[test]
    fn a_batch_without_num_is_sent_at_the_bound() {
        let b = Batches::default();
        for n in 1..MAX_BATCH {
            let (added, _) = add(&b, policy(None, false), "u", json!(n));
            assert!(!matches!(added, Added::Full(_)), "{n}");
        }
        let (Added::Full(closed), _) = add(&b, policy(Some(10_000), false), "u", json!(0)) else {
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
        let mut forgotten = 0;
        for n in 0..3 {
            forgotten += add(&b, policy(None, true), "u", json!(n)).1.forget.len();
        }
        assert_eq!(forgotten, 2, "each replaced notification's record goes");
        assert!(b.expire("s", 2).is_none(), "not this batch's timer");
        let closed = b.expire("s", 1).expect("open");
        assert_eq!(
            bodies(closed),
            vec![("u".to_owned(), json!({ "m2m:agn": { "m2m:sgn": [2] } }), 1)]
        );
        assert!(matches!(
            b.add("s", policy(None, true), vec![], None, NOW).0,
            Added::Opened(2)
        ));
    }

    #[test]
    fn a_batch_is_rebuilt_from_its_records() {
        let before = Batches::default();
        let mut kept = Vec::new();
        for n in 0..3 {
            let per_target = vec![
                (Endpoint::url("http://a/"), json!(n)),
                (Endpoint::of_ae("http://b/", &["2a".to_owned()]), json!(n)),
            ];
            let (_, changes) = before.add("s", policy(Some(5), false), per_target, None, NOW);
            kept.extend(changes.keep);
        }
        let after = Batches::default();
        let (restored, stale) = after.restore("s", policy(Some(5), false), kept.clone(), None);
        assert!(stale.is_empty());
        assert!(matches!(restored, Some(Restored::Open(_))));
        let (added, changes) = add(&after, policy(Some(5), false), "http://a/", json!(3));
        assert!(
            matches!(added, Added::Joined),
            "the rebuilt batch counts 3 events"
        );
        assert!(
            changes.keep[0].seq > kept.iter().map(|k| k.seq).max().unwrap_or(0),
            "event numbers keep increasing"
        );
        let sent = bodies(after.take("s").expect("open"));
        assert_eq!(sent[0].1["m2m:agn"]["m2m:sgn"], json!([0, 1, 2, 3]));
        assert_eq!(sent[1].0, "http://b/");
        assert_eq!(sent[1].1["m2m:agn"]["m2m:sgn"], json!([0, 1, 2]));
        let (full, _) = Batches::default().restore("s", policy(Some(3), false), kept, None);
        assert!(
            matches!(full, Some(Restored::Full(_))),
            "num reached: sent at once"
        );
    }
}
