//! Subscription and notification CSF: which subscriptions an event concerns, what each
//! notification says (`nct`), where it goes (`nu`), and the expiration counter (`exc`).

use crate::batch;
use crate::notification::{Guard, Notification, Notifier};
use crate::Cse;
use model::resources::sub::net;
use model::{Error, Resource, ResourceType, Result};
use serde_json::{json, Map, Value};
use std::sync::Arc;
use store::Store;

/// Something that happened to a subscribed-to resource.
#[derive(Debug, Clone, Copy)]
pub enum Event<'a> {
    /// The resource was updated; the map holds the attributes that changed.
    Updated(&'a Resource, &'a Map<String, Value>),
    /// A direct child was created.
    ChildCreated(&'a Resource),
    /// A direct child was deleted.
    ChildDeleted(&'a Resource),
}

/// Resolves one `nu` entry to URLs: a URL as is, or an AE (by AE-ID or address) through its
/// points of access, or through its polling channel when it cannot receive requests
/// (`polling::route`). Entries that resolve to nothing reachable give an empty list.
pub fn notification_urls(cse: &Cse, nu: &str) -> Result<Vec<String>> {
    if crate::polling::is_channel_address(nu) {
        return Ok(Vec::new());
    }
    if nu.contains("://") {
        return Ok(vec![nu.to_owned()]);
    }
    let ae = match crate::originator::normalize(nu, &cse.config) {
        Ok(crate::originator::Claimed::AeId(id)) => cse.store.get(&id)?,
        _ => None,
    };
    let ae = match ae {
        Some(r) => Some(r),
        None => crate::addressing::resolve(nu, &cse.config, cse.store.as_ref())
            .ok()
            .and_then(|t| crate::real_target(t).ok()),
    };
    if let Some(ae) = ae.as_ref().filter(|r| r.ty == ResourceType::Ae) {
        if let Some(channel) = crate::polling::route(cse, ae)? {
            return Ok(channel);
        }
    }
    Ok(match ae {
        Some(r) if r.ty == ResourceType::Ae => r
            .str_list("poa")
            .into_iter()
            .filter(|p| cse.notifier.reaches(p) && !crate::polling::is_channel_address(p))
            .map(|p| with_serialization_of(p, &r))
            .collect(),
        _ => Vec::new(),
    })
}

/// A point of access of `ae` marked with the serialization the AE prefers: the first of its
/// `csz` (a list in order of preference) that can be sent, as the `ct=` a notification URI
/// may carry (TS-0004 clause 7.5.1.2.2 step 2.5), which the binding reads and removes.
/// JSON, the default, needs no mark; a point of access with its own `ct=` keeps it.
fn with_serialization_of(poa: String, ae: &Resource) -> String {
    let preferred = ae
        .str_list("csz")
        .into_iter()
        .find_map(|m| match m.as_str() {
            "application/json" => Some("json"),
            "application/cbor" => Some("cbor"),
            _ => None,
        });
    let marked = poa
        .split_once('?')
        .is_some_and(|(_, q)| q.split('&').any(|p| p.starts_with("ct=")));
    match preferred {
        Some("cbor") if !marked => {
            let joint = if poa.contains('?') { '&' } else { '?' };
            format!("{poa}{joint}ct=cbor")
        }
        _ => poa,
    }
}

impl Cse {
    /// Notifies the subscriptions of `subject` about an event. Never blocks and never fails
    /// the request: delivery problems are logged by the notifier.
    pub(crate) fn fire(&self, subject: &Resource, event: Event<'_>) {
        let subs = match self
            .store
            .children(subject.ri(), Some(ResourceType::Subscription))
        {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "cannot read subscriptions");
                return;
            }
        };
        for sub in subs {
            let (code, rep) = match event {
                Event::Updated(r, modified) => {
                    let atr = sub
                        .attrs
                        .get("enc")
                        .and_then(|e| e.get("atr"))
                        .and_then(Value::as_array);
                    if atr.is_some_and(|atr| {
                        !atr.iter()
                            .filter_map(Value::as_str)
                            .any(|a| modified.contains_key(a))
                    }) {
                        continue;
                    }
                    let rep = if sub.u64_attr("nct") == Some(2) {
                        json!({ r.ty.wrapper(): modified })
                    } else {
                        r.wrapped()
                    };
                    (net::UPDATE, (r, rep))
                }
                Event::ChildCreated(c) => (net::CREATE_CHILD, (c, c.wrapped())),
                Event::ChildDeleted(c) => (net::DELETE_CHILD, (c, c.wrapped())),
            };
            // A new subscription is not told about its own creation.
            if !wants(&sub, code, rep.0) || sub.ri() == rep.0.ri() {
                continue;
            }
            if !self.may_notify(&sub, subject) {
                continue;
            }
            self.send(&sub, code, rep.0, rep.1, false);
        }
    }

    /// Notifies the subscriptions of a deleted resource (which were deleted with it).
    pub(crate) fn fire_deleted(
        &self,
        deleted: &Resource,
        subs: &[&Resource],
        credentials: &crate::records::SubscriberCredentials,
    ) {
        for sub in subs {
            let credential = credentials.get(sub.ri()).map(String::as_str);
            if wants(sub, net::DELETE, deleted) && self.may_notify_as(sub, credential, deleted) {
                self.send(sub, net::DELETE, deleted, deleted.wrapped(), true);
            }
        }
    }

    /// Tells a deleted subscription's subscriber (`su`) that it is gone (TS-0004 clause
    /// 7.5.1.2.4), after sending what its batch had gathered.
    /// Not when the credential it was made with is withdrawn: that party is being cut off.
    pub(crate) fn subscription_deleted(&self, sub: &Resource, credential: Option<&String>) {
        let withdrawn = credential.is_some_and(|c| self.revocations().effective(c).is_some());
        let pending = self.batches.take(sub.ri());
        if withdrawn {
            return;
        }
        if let Some(pending) = pending {
            pending.send(&self.notifier);
        }
        for (url, body) in self.deletion_notices(sub) {
            self.notifier.enqueue(Notification {
                url,
                body,
                guard: None,
            });
        }
    }

    /// The subscription deletion notification for each target of `su`.
    fn deletion_notices(&self, sub: &Resource) -> Vec<(String, Value)> {
        let body = json!({ "m2m:sgn": { "sud": true, "sur": sub.srn } });
        sub.attrs
            .get("su")
            .and_then(Value::as_str)
            .map(|su| self.targets(su, &body))
            .unwrap_or_default()
    }

    /// Sends one notification of `sub` (`last`: the subscription is being deleted with its
    /// subscribed-to resource), now or, with `bn`, as part of a batch.
    fn send(&self, sub: &Resource, code: u64, resource: &Resource, rep: Value, last: bool) {
        let sgn = notification(sub, code, resource, rep);
        let guard = self.delivery_guard(sub);
        let Some(policy) = batch::Policy::of(sub) else {
            let body = json!({ "m2m:sgn": sgn });
            for nu in sub.str_list("nu") {
                self.deliver(&nu, &body, guard.clone());
            }
            self.count_down(sub);
            return;
        };
        let per_target = sub
            .str_list("nu")
            .iter()
            .flat_map(|nu| self.targets(nu, &json!({ "m2m:sgn": sgn })))
            .map(|(url, mut body)| (url, body["m2m:sgn"].take()))
            .collect();
        match self.batches.add(sub.ri(), policy, per_target, guard) {
            batch::Added::Full(closed) => {
                closed.send(&self.notifier);
                self.count_down(sub);
            }
            batch::Added::Opened(generation) if !last => {
                let batches = self.batches.clone();
                let notifier = self.notifier.clone();
                let ri = sub.ri().to_owned();
                let counting = self.counting_down(sub);
                tokio::spawn(async move {
                    tokio::time::sleep(policy.duration).await;
                    if let Some(closed) = batches.expire(&ri, generation) {
                        closed.send(&notifier);
                        if let Some(counting) = counting {
                            counting.await;
                        }
                    }
                });
            }
            batch::Added::Opened(_) | batch::Added::Joined => {}
        }
        if last {
            if let Some(closed) = self.batches.take(sub.ri()) {
                closed.send(&self.notifier);
            }
        }
    }

    /// Counts one sent notification against `sub`'s `exc`, if it has one.
    fn count_down(&self, sub: &Resource) {
        if let Some(counting) = self.counting_down(sub) {
            tokio::spawn(counting);
        }
    }

    /// The work of counting one notification against `sub`'s `exc`, if it has one.
    fn counting_down(&self, sub: &Resource) -> Option<impl std::future::Future<Output = ()>> {
        sub.u64_attr("exc")?;
        Some(count_down(
            self.store.clone(),
            self.notifier.clone(),
            sub.ri().to_owned(),
            self.config.clone(),
            self.deletion_notices(sub),
        ))
    }

    /// Where one `nu` entry's notifications go, each with `body` as that target may see it.
    fn targets(&self, nu: &str, body: &Value) -> Vec<(String, Value)> {
        match notification_urls(self, nu) {
            Ok(urls) if !urls.is_empty() => urls
                .into_iter()
                .filter_map(|url| match self.as_seen_by(&url, body) {
                    Some(body) => Some((url, body)),
                    None => {
                        tracing::warn!("notification not sent: no alias for an AE-ID in it");
                        None
                    }
                })
                .collect(),
            Ok(_) => {
                tracing::debug!(nu, "notification target has no reachable point of access");
                Vec::new()
            }
            Err(e) => {
                tracing::warn!(nu, error = %model::Untrusted(&e), "cannot resolve notification target");
                Vec::new()
            }
        }
    }

    fn deliver(&self, nu: &str, body: &Value, guard: Option<Guard>) {
        for (url, body) in self.targets(nu, body) {
            self.notifier.enqueue(Notification {
                url,
                body,
                guard: guard.clone(),
            });
        }
    }
}

/// The `m2m:sgn` content for one event (TS-0004 clause 7.5.1.2.2): the representation
/// `nct` asks for (`nct` 3: the resource's ID as `m2m:uri`, table 6.3.5.62-1), and the
/// subscription's creator when it has one (table 6.3.5.13-1).
fn notification(sub: &Resource, code: u64, resource: &Resource, rep: Value) -> Value {
    let rep = if sub.u64_attr("nct") == Some(3) {
        json!({ "m2m:uri": resource.ri() })
    } else {
        rep
    };
    let mut sgn = json!({ "nev": { "rep": rep, "net": code }, "sur": sub.srn });
    if let Some(cr) = sub.attrs.get("cr").filter(|c| c.is_string()) {
        sgn["cr"] = cr.clone();
    }
    sgn
}

fn wants(sub: &Resource, code: u64, resource: &Resource) -> bool {
    let enc = sub.attrs.get("enc");
    if !model::resources::sub::event_types(&sub.attrs).contains(&code) {
        return false;
    }
    if code == net::CREATE_CHILD || code == net::DELETE_CHILD {
        if let Some(chty) = enc.and_then(|e| e.get("chty")).and_then(Value::as_array) {
            return chty
                .iter()
                .any(|t| t.as_u64() == Some(u64::from(resource.ty.code())));
        }
    }
    true
}

/// Decrements a subscription's `exc`; at zero the subscription is deleted and its
/// subscriber told.
async fn count_down(
    store: Arc<dyn Store>,
    notifier: Notifier,
    ri: String,
    config: crate::CseConfig,
    deletion_notices: Vec<(String, Value)>,
) {
    let outcome = store::write(store.as_ref(), move |t| {
        let Some(mut sub) = t.get(&ri)? else {
            return Ok(None);
        };
        let left = sub.u64_attr("exc").unwrap_or(1).saturating_sub(1);
        if left == 0 {
            t.delete_subtree(&ri)?;
            return Ok(Some(sub));
        }
        sub.attrs.insert("exc".into(), json!(left));
        t.update(&sub)?;
        Ok::<_, Error>(None)
    })
    .await;
    match outcome {
        Ok(Some(sub)) => {
            for (url, body) in deletion_notices {
                notifier.enqueue(Notification {
                    url,
                    body,
                    guard: None,
                });
            }
            tracing::debug!(sub = sub.ri(), cse = %config.cse_id, "subscription expired by its notification counter");
        }
        Ok(None) => {}
        Err(e) => tracing::error!(error = %e, "cannot count down a subscription"),
    }
}
