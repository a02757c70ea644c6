//! Cross-resource notification (TS-0004 clause 7.5.1.2.18): the notifications the
//! subscriptions of a `<crossResourceSubscription>`'s targets send it are gathered in its
//! time window; when every target has notified within one window, the resource's own
//! notification goes to its `nu`. Windows are computed from the CSE's clock when an event
//! arrives, so no timer runs; what a window has gathered is kept in memory only (a restart
//! starts a new window, as if it had expired).

use crate::notification::Notification;
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

#[derive(Debug, Default)]
struct Window {
    /// Periodic windows count from here (creation, or the last change of the window).
    anchor: Option<time::Timestamp>,
    /// The periodic window the targets below were seen in.
    index: i64,
    /// The start of the sliding window, once an event opened it.
    start: Option<time::Timestamp>,
    /// The targets (subscription resource IDs) that notified in the current window.
    seen: BTreeSet<String>,
}

impl Windows {
    /// Starts the window again from `now` (TS-0004 clause 7.4.58.2.3: `twt` or `tws` changed).
    pub(crate) fn restart(&self, ri: &str, now: time::Timestamp) {
        if let Ok(mut open) = self.open.lock() {
            open.insert(
                ri.to_owned(),
                Window {
                    anchor: Some(now),
                    ..Window::default()
                },
            );
        }
    }

    /// Forgets a deleted resource's window.
    pub(crate) fn forget(&self, ri: &str) {
        if let Ok(mut open) = self.open.lock() {
            open.remove(ri);
        }
    }

    /// Records that target subscription `sub` notified `crs` at `now`; true when every
    /// target has now notified within the window (which then starts anew).
    fn record(&self, crs: &Resource, sub: &str, now: time::Timestamp) -> bool {
        let Ok(size) = crs::window_size(&crs.attrs) else {
            return false;
        };
        let size = chrono::Duration::from_std(size).unwrap_or(chrono::Duration::MAX);
        let targets: BTreeSet<String> = crs
            .str_list("rrats")
            .into_iter()
            .chain(crs.str_list("srat"))
            .collect();
        let Ok(mut open) = self.open.lock() else {
            return false;
        };
        let w = open.entry(crs.ri().to_owned()).or_default();
        if crs.u64_attr("twt") == Some(crs::SLIDING) {
            if w.start.is_some_and(|s| now - s > size) {
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
                    .unwrap_or(now)
            });
            let elapsed = (now - anchor).num_milliseconds().max(0);
            let index = elapsed / size.num_milliseconds().max(1);
            if index != w.index {
                w.index = index;
                w.seen.clear();
            }
        }
        w.seen.insert(sub.to_owned());
        if !targets.is_empty() && targets.iter().all(|t| w.seen.contains(t)) {
            w.seen.clear();
            w.start = None;
            return true;
        }
        false
    }
}

impl Cse {
    /// Takes a notification of target subscription `sub` to `nu` when `nu` is one of the
    /// cross-resource subscriptions it serves (`acrs`); false: `nu` is an ordinary target.
    pub(crate) fn cross_event(&self, sub: &Resource, nu: &str) -> bool {
        if !sub.str_list("acrs").iter().any(|a| a == nu) {
            return false;
        }
        let crs = match self.store.get(nu) {
            Ok(Some(r)) if r.ty == ResourceType::CrossResourceSubscription => r,
            _ => return true,
        };
        if self
            .crs_windows
            .record(&crs, sub.ri(), self.config.clock.now())
        {
            self.cross_notify(&crs);
        }
        true
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
