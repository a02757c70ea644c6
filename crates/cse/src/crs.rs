//! Cross-resource notification (TS-0004 clause 7.5.1.2.18): the notifications the
//! subscriptions of a `<crossResourceSubscription>`'s targets send it are gathered in its
//! time window; when every target has notified within one window, the resource's own
//! notification goes to its `nu`. Windows are computed from the CSE's clock when an event
//! arrives, so no timer runs. Where a window stands (its anchor, its start, the targets seen
//! in it) is a record of the store tied to the resource ([`crate::records::CRS_WINDOW`]),
//! written before the event that changed it is acknowledged: a restart goes on with the
//! window as it was, so an event acknowledged before a restart still counts with one after
//! it in the same window (TS-0004 clause 7.4.58 sets no exception for a restart).

use crate::notification::Notification;
use crate::records::CRS_WINDOW;
use crate::Cse;
use model::resources::crs;
use model::{time, Resource, ResourceType};
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

/// The open time windows, by `<crossResourceSubscription>` resource ID.
#[derive(Debug, Clone, Default)]
pub(crate) struct Windows {
    open: Arc<Mutex<HashMap<String, Window>>>,
}

/// Where one resource's window stands; stored as JSON, times in milliseconds since the
/// epoch (exact, where a formatted timestamp may drop the fraction).
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
struct Window {
    /// Periodic windows count from here (creation, or the last change of the window).
    anchor: Option<i64>,
    /// The periodic window the targets below were seen in.
    index: i64,
    /// The start of the sliding window, once an event opened it.
    start: Option<i64>,
    /// The targets (subscription resource IDs) that notified in the current window.
    seen: BTreeSet<String>,
    /// Counts the changes: of two writes of the same window, the later change wins
    /// whichever commits last.
    version: u64,
}

/// A window's state to write (before the event that changed it is acknowledged).
#[derive(Debug)]
pub(crate) struct Saved {
    ri: String,
    version: u64,
    bytes: Vec<u8>,
}

impl Saved {
    fn of(ri: &str, w: &Window) -> Option<Self> {
        serde_json::to_vec(w).ok().map(|bytes| Self {
            ri: ri.to_owned(),
            version: w.version,
            bytes,
        })
    }

    /// Inside a write: stores the state unless a later one is stored already or the
    /// resource is gone (its record went with it).
    pub(crate) fn write(&self, t: &mut dyn store::Txn) -> model::Result<()> {
        if t.resource_type(&self.ri)? != Some(ResourceType::CrossResourceSubscription) {
            return Ok(());
        }
        let stored = t
            .record(CRS_WINDOW, &self.ri)?
            .and_then(|b| serde_json::from_slice::<Window>(&b).ok());
        if stored.is_some_and(|w| w.version >= self.version) {
            return Ok(());
        }
        t.put_record(CRS_WINDOW, &self.ri, &self.bytes, Some(&self.ri))
    }

    /// Writes the state durably; a failure is logged (the window goes on in memory).
    pub(crate) async fn save(self, store: &dyn store::Store) {
        if let Err(e) = store::write(store, move |t| self.write(t)).await {
            tracing::error!(error = %e, "cannot keep a cross-resource window durably");
        }
    }
}

fn millis(t: time::Timestamp) -> i64 {
    t.timestamp_millis()
}

impl Windows {
    /// Starts the window again from `now` (TS-0004 clause 7.4.58.2.3: `twt` or `tws`
    /// changed); returns the state to write.
    pub(crate) fn restart(&self, ri: &str, now: time::Timestamp) -> Option<Saved> {
        let mut open = self.open.lock().ok()?;
        let version = open.get(ri).map_or(0, |w| w.version) + 1;
        let w = Window {
            anchor: Some(millis(now)),
            version,
            ..Window::default()
        };
        let saved = Saved::of(ri, &w);
        open.insert(ri.to_owned(), w);
        saved
    }

    /// Forgets a deleted resource's window.
    pub(crate) fn forget(&self, ri: &str) {
        if let Ok(mut open) = self.open.lock() {
            open.remove(ri);
        }
    }

    /// Records that target subscription `sub` notified `crs` at `now`; true when every
    /// target has now notified within the window (which then starts anew). `stored` reads
    /// the window's stored state, for a window not in memory (after a restart). Returns the
    /// state to write.
    fn record(
        &self,
        crs: &Resource,
        sub: &str,
        now: time::Timestamp,
        stored: impl FnOnce() -> Option<Window>,
    ) -> (bool, Option<Saved>) {
        let Ok(size) = crs::window_size(&crs.attrs) else {
            return (false, None);
        };
        let size = i64::try_from(size.as_millis()).unwrap_or(i64::MAX);
        let now = millis(now);
        let targets: BTreeSet<String> = crs
            .str_list("rrats")
            .into_iter()
            .chain(crs.str_list("srat"))
            .collect();
        let Ok(mut open) = self.open.lock() else {
            return (false, None);
        };
        let w = open
            .entry(crs.ri().to_owned())
            .or_insert_with(|| stored().unwrap_or_default());
        w.version += 1;
        if crs.u64_attr("twt") == Some(crs::SLIDING) {
            if w.start.is_some_and(|s| now.saturating_sub(s) > size) {
                w.start = None;
                w.seen.clear();
            }
            w.start.get_or_insert(now);
        } else {
            let anchor = *w.anchor.get_or_insert_with(|| {
                crs.attrs
                    .get("ct")
                    .and_then(Value::as_str)
                    .and_then(|ct| time::parse(ct).ok())
                    .map_or(now, millis)
            });
            let elapsed = now.saturating_sub(anchor).max(0);
            let index = elapsed / size.max(1);
            if index != w.index {
                w.index = index;
                w.seen.clear();
            }
        }
        w.seen.insert(sub.to_owned());
        let complete = !targets.is_empty() && targets.iter().all(|t| w.seen.contains(t));
        if complete {
            w.seen.clear();
            w.start = None;
        }
        (complete, Saved::of(crs.ri(), w))
    }
}

impl Cse {
    /// Takes a notification of target subscription `sub` to `nu` when `nu` is one of the
    /// cross-resource subscriptions it serves (`acrs`): `None` when `nu` is an ordinary
    /// target, else the window's new state to write before the event is acknowledged.
    pub(crate) fn cross_event(&self, sub: &Resource, nu: &str) -> Option<Option<Saved>> {
        if !sub.str_list("acrs").iter().any(|a| a == nu) {
            return None;
        }
        let crs = match self.store.get(nu) {
            Ok(Some(r)) if r.ty == ResourceType::CrossResourceSubscription => r,
            _ => return Some(None),
        };
        let stored = || match self.store.record(CRS_WINDOW, crs.ri()) {
            Ok(bytes) => bytes.and_then(|b| serde_json::from_slice(&b).ok()),
            Err(e) => {
                tracing::error!(crs = crs.ri(), error = %e, "cannot read a cross-resource window; a new one starts");
                None
            }
        };
        let (complete, saved) =
            self.crs_windows
                .record(&crs, sub.ri(), self.config.clock.now(), stored);
        if complete {
            self.cross_notify(&crs);
        }
        Some(saved)
    }

    /// Sends the cross-resource notification of `crs` to its `nu` and counts it against
    /// its `exc`: at zero the resource is deleted as by a DELETE (TS-0004 7.5.1.2.18).
    fn cross_notify(&self, crs: &Resource) {
        let mut sgn = json!({ "sur": crs.srn });
        if let Some(cr) = crs.attrs.get("cr").filter(|c| c.is_string()) {
            sgn["cr"] = cr.clone();
        }
        let body = json!({ "m2m:sgn": sgn });
        for nu in crs.str_list("nu") {
            for (to, body) in self.targets(&nu, &body) {
                self.notifier.enqueue(Notification {
                    url: to.url,
                    rvi: to.rvi,
                    body,
                    guard: None,
                    done: None,
                    latest: None,
                });
            }
        }
        if crs.u64_attr("exc").is_none() {
            return;
        }
        let Some(cse) = self.me.upgrade() else {
            return;
        };
        let ri = crs.ri().to_owned();
        tokio::spawn(async move {
            let store = cse.store.clone();
            let id = ri.clone();
            let outcome = store::write(store.as_ref(), move |t| {
                let Some(mut r) = t.get(&id)? else {
                    return Ok(None);
                };
                let left = r.u64_attr("exc").unwrap_or(1).saturating_sub(1);
                if left == 0 {
                    return Ok(Some(r));
                }
                r.attrs.insert("exc".into(), json!(left));
                t.update(&r)?;
                Ok::<_, model::Error>(None)
            })
            .await;
            match outcome {
                Ok(Some(r)) => {
                    if let Err(e) = cse.remove(&r).await {
                        tracing::error!(error = %e, "cannot delete a spent cross-resource subscription");
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::error!(error = %e, "cannot count down a cross-resource subscription")
                }
            }
        });
    }
}
