//! Subscription and notification CSF: which subscriptions an event concerns, what each
//! notification says (`nct`), where it goes (`nu`), and the expiration counter (`exc`).

use crate::batch;
use crate::notification::{Endpoint, Guard, Notification, Notifier};
use crate::records::StoreRecords;
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
    /// The subscribed-to `<container>` was retrieved with its children (`rcn` 4 or 8)
    /// while it had no content instance.
    RetrievedEmpty(&'a Resource),
}

/// Resolves one `nu` entry to endpoints: a URL as is, or an AE (by AE-ID or address)
/// through its points of access, or through its polling channel when it cannot receive
/// requests (`polling::route`), each sent as the release the AE supports (`srv`). Entries
/// that resolve to nothing reachable give an empty list.
pub fn notification_urls(cse: &Cse, nu: &str) -> Result<Vec<Endpoint>> {
    resolve_target(cse, nu, false)
}

/// [`notification_urls`] for a request the CSE sends now under the reachability schedule
/// of the receiver (TS-0004 clause 7.5.1.2.2 step 3.0): an AE on a `<node>` whose
/// schedules all exclude now resolves to nothing (`resources::sch::reachable`). A polling
/// channel is not bound by it: the AE collects from it when it can.
pub(crate) fn reachable_urls(cse: &Cse, nu: &str) -> Result<Vec<Endpoint>> {
    resolve_target(cse, nu, true)
}

fn resolve_target(cse: &Cse, nu: &str, scheduled: bool) -> Result<Vec<Endpoint>> {
    if crate::polling::is_channel_address(nu) {
        return Ok(Vec::new());
    }
    if nu.contains("://") {
        return Ok(vec![Endpoint::url(nu)]);
    }
    let Some(ae) = target_ae(cse, nu)? else {
        return Ok(Vec::new());
    };
    let srv = ae.str_list("srv");
    if let Some(channel) = crate::polling::route(cse, &ae)? {
        return Ok(channel
            .into_iter()
            .map(|c| Endpoint::of_ae(c, &srv))
            .collect());
    }
    if scheduled && !crate::resources::sch::reachable(cse, &ae)? {
        tracing::debug!(ae = ae.ri(), "not sent: outside the reachability schedule");
        return Ok(Vec::new());
    }
    Ok(ae
        .str_list("poa")
        .into_iter()
        .filter(|p| cse.notifier.reaches(p) && !crate::polling::is_channel_address(p))
        .map(|p| Endpoint::of_ae(with_serialization_of(p, &ae), &srv))
        .collect())
}

/// The `<AE>` a `nu` entry that is not a URL names: by AE-ID, or by its address.
pub(crate) fn target_ae(cse: &Cse, nu: &str) -> Result<Option<Resource>> {
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
    Ok(ae.filter(|r| r.ty == ResourceType::Ae))
}

/// A point of access of `ae` marked with the serialization the AE prefers: the first of its
/// `csz` (a list in order of preference) that can be sent, as the `ct=` a notification URI
/// may carry (TS-0004 clause 7.5.1.2.2 step 2.5), which the binding reads and removes.
/// JSON, the default, needs no mark; a point of access with its own `ct=` keeps it.
fn with_serialization_of(poa: String, ae: &Resource) -> String {
    let preferred = ae
        .str_list("csz")
        .into_iter()
        .find_map(|m| model::codec::Format::from_serialization(&m));
    let marked = poa
        .split_once('?')
        .is_some_and(|(_, q)| q.split('&').any(|p| p.starts_with("ct=")));
    match preferred {
        Some(model::codec::Format::Cbor) if !marked => {
            let joint = if poa.contains('?') { '&' } else { '?' };
            format!("{poa}{joint}ct=cbor")
        }
        _ => poa,
    }
}

impl Cse {
    /// Notifies the subscriptions of `subject` about an event. Never waits for a target
    /// and never fails the request: delivery problems are logged by the notifier. It
    /// returns once what batching subscriptions gathered is durable, so that an
    /// acknowledged event is not lost from a batch by a restart.
    pub(crate) async fn fire(&self, subject: &Resource, event: Event<'_>) {
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
        let mut changes = batch::Changes::default();
        for sub in subs {
            let (code, rep) = match event {
                Event::Updated(r, modified) => {
                    if !model::resources::sub::concerns_update(&sub.attrs, modified) {
                        continue;
                    }
                    let rep = if sub.u64_attr("nct") == Some(2) {
                        json!({ r.wrapper(): modified })
                    } else {
                        r.wrapped()
                    };
                    (net::UPDATE, (r, rep))
                }
                Event::ChildCreated(c) => (net::CREATE_CHILD, (c, c.wrapped())),
                Event::ChildDeleted(c) => (net::DELETE_CHILD, (c, c.wrapped())),
                Event::RetrievedEmpty(r) => (net::RETRIEVE_EMPTY_CONTAINER, (r, r.wrapped())),
            };
            // A new subscription is not told about its own creation.
            if !wants(&sub, code, rep.0) || sub.ri() == rep.0.ri() {
                continue;
            }
            if !self.may_notify(&sub, subject) {
                continue;
            }
            if !crate::resources::sch::notification_allowed(self, &sub) {
                tracing::debug!(
                    sub = sub.ri(),
                    "notification discarded: outside its schedule"
                );
                continue;
            }
            changes.extend(self.send(&sub, code, rep.0, rep.1, false));
        }
        changes.write(self.store.as_ref()).await;
    }

    /// Notifies the subscriptions of a deleted resource (which were deleted with it, as were
    /// their schedules: `gone` is everything the deletion removed).
    pub(crate) fn fire_deleted(
        &self,
        deleted: &Resource,
        subs: &[&Resource],
        credentials: &crate::records::SubscriberCredentials,
        creators: &crate::records::Creators,
        gone: &[Resource],
    ) {
        // The deleted resource's creator record went with it: the access check sees a copy
        // that names the creator read before the deletion (the notification carries the
        // resource as it was, without it).
        let checked = match creators.get(deleted.ri()) {
            Some(creator) if !deleted.attrs.contains_key("cr") => {
                let mut copy = deleted.clone();
                copy.attrs.insert("cr".into(), creator.clone().into());
                std::borrow::Cow::Owned(copy)
            }
            _ => std::borrow::Cow::Borrowed(deleted),
        };
        for sub in subs {
            let credential = credentials.get(sub.ri()).map(String::as_str);
            let creator =
                crate::records::creator_given(creators.get(sub.ri()).map(String::as_str), sub);
            if wants(sub, net::DELETE, deleted)
                && self.may_notify_as(sub, credential, creator.as_deref(), &checked)
                && crate::resources::sch::notification_allowed_in(self, sub, gone)
            {
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
            pending.send(&self.notifier, &self.store);
        }
        for (to, body) in self.deletion_notices(sub) {
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

    /// The subscription deletion notification for each target of `su`.
    pub(crate) fn deletion_notices(&self, sub: &Resource) -> Vec<(Endpoint, Value)> {
        let body = json!({ "m2m:sgn": { "sud": true, "sur": sub.srn } });
        sub.attrs
            .get("su")
            .and_then(Value::as_str)
            .map(|su| self.targets(su, &body))
            .unwrap_or_default()
    }

    /// Sends one notification of `sub` (`last`: the subscription is being deleted with its
    /// subscribed-to resource), now or, with `bn`, as part of a batch; returns the batch
    /// records to write before the event is acknowledged.
    pub(crate) fn send(
        &self,
        sub: &Resource,
        code: u64,
        resource: &Resource,
        rep: Value,
        last: bool,
    ) -> batch::Changes {
        let sgn = notification(sub, code, resource, rep);
        let guard = self.delivery_guard(sub);
        let Some(policy) = batch::Policy::of(sub) else {
            let body = json!({ "m2m:sgn": sgn });
            let latest = policy_latest(sub).then(|| sub.ri().to_owned());
            let mut changes = batch::Changes::default();
            for nu in sub.str_list("nu") {
                match self.cross_event(sub, &nu) {
                    Some(Some(saved)) => changes.extend(batch::Changes::saving_window(saved)),
                    Some(None) => {}
                    None => self.deliver(&nu, &body, guard.clone(), latest.clone()),
                }
            }
            self.count_down(sub);
            return changes;
        };
        let per_target = sub
            .str_list("nu")
            .iter()
            .flat_map(|nu| self.targets(nu, &json!({ "m2m:sgn": sgn })))
            .map(|(to, mut body)| (to, body["m2m:sgn"].take()))
            .collect();
        let now = model::time::format(self.config.clock.now());
        let (added, changes) = self.batches.add(sub.ri(), policy, per_target, guard, &now);
        match added {
            batch::Added::Full(closed) => {
                closed.send(&self.notifier, &self.store);
                self.count_down(sub);
            }
            batch::Added::Opened(generation) if !last => self.arm(sub, generation, policy.duration),
            batch::Added::Opened(_) | batch::Added::Joined => {}
        }
        if last {
            // Sent now, and its records go with the subscription.
            if let Some(closed) = self.batches.take(sub.ri()) {
                closed.send(&self.notifier, &self.store);
            }
            return batch::Changes::default();
        }
        changes
    }

    /// Sends `sub`'s batch of `generation` after `delay`, if it is still open then.
    fn arm(&self, sub: &Resource, generation: u64, delay: std::time::Duration) {
        let batches = self.batches.clone();
        let notifier = self.notifier.clone();
        let store = self.store.clone();
        let ri = sub.ri().to_owned();
        let counting = self.counting_down(sub);
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            if let Some(closed) = batches.expire(&ri, generation) {
                closed.send(&notifier, &store);
                if let Some(counting) = counting {
                    counting.await;
                }
            }
        });
    }

    /// Rebuilds the open batches after a start from their records, each with what is left
    /// of its duration (counted from when it was opened; none left: sent now). A batch
    /// whose subscription no longer batches is sent now. Needs the runtime (it starts the
    /// batches' timers).
    pub(crate) fn resume_batches(&self) {
        let records = match self.store.batched() {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the batched notifications");
                return;
            }
        };
        let mut by_sub: Vec<(String, Vec<crate::records::Batched>)> = Vec::new();
        for record in records {
            match by_sub.last_mut() {
                Some((sub, list)) if *sub == record.sub => list.push(record),
                _ => by_sub.push((record.sub.clone(), vec![record])),
            }
        }
        let now = self.config.clock.now();
        let mut resumed = 0;
        for (ri, records) in by_sub {
            let sub = match self.store.get(&ri) {
                Ok(Some(sub)) if sub.ty == ResourceType::Subscription => sub,
                outcome => {
                    // Records go with their subscription; none should be left behind.
                    tracing::warn!(
                        sub = ri,
                        ok = outcome.is_ok(),
                        "batched notifications of a missing subscription dropped"
                    );
                    continue;
                }
            };
            let policy = batch::Policy::of(&sub).unwrap_or_else(batch::Policy::at_once);
            let opened = records
                .iter()
                .filter_map(|r| model::time::parse(&r.opened).ok())
                .min()
                .unwrap_or(now);
            let due = chrono::Duration::from_std(policy.duration)
                .ok()
                .and_then(|d| opened.checked_add_signed(d))
                .unwrap_or(now);
            let left = (due - now).to_std().unwrap_or_default();
            let guard = self.delivery_guard(&sub);
            let (restored, stale) = self.batches.restore(&ri, policy, records, guard);
            if !stale.is_empty() {
                let changes = batch::Changes::forgetting(stale);
                let store = self.store.clone();
                tokio::spawn(async move { changes.write(store.as_ref()).await });
            }
            match restored {
                Some(batch::Restored::Open(generation)) => self.arm(&sub, generation, left),
                Some(batch::Restored::Full(closed)) => {
                    closed.send(&self.notifier, &self.store);
                    self.count_down(&sub);
                }
                None => continue,
            }
            resumed += 1;
        }
        if resumed > 0 {
            tracing::info!(batches = resumed, "open notification batches resumed");
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
    pub(crate) fn targets(&self, nu: &str, body: &Value) -> Vec<(Endpoint, Value)> {
        match reachable_urls(self, nu) {
            Ok(urls) if !urls.is_empty() => urls
                .into_iter()
                .filter_map(|to| match self.as_seen_by(&to.url, body) {
                    Some(body) => Some((to, body)),
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

    /// Queues `body` for each endpoint of `nu`; `latest`: the subscription's `ri` when it
    /// has `ln` (Event Category "latest").
    fn deliver(&self, nu: &str, body: &Value, guard: Option<Guard>, latest: Option<String>) {
        for (to, body) in self.targets(nu, body) {
            self.notifier.enqueue(Notification {
                url: to.url,
                rvi: to.rvi,
                body,
                guard: guard.clone(),
                done: None,
                latest: latest.clone(),
            });
        }
    }
}

/// Whether `sub` has `ln` (latest notify): its notifications carry Event Category "latest"
/// (TS-0004 clause 7.5.1.2.2 step 2.3; TS-0001 table 10.2.10.3-1 for an UPDATE setting it).
fn policy_latest(sub: &Resource) -> bool {
    sub.attrs.get("ln").and_then(Value::as_bool) == Some(true)
}

/// The `m2m:sgn` content for one event (TS-0004 clause 7.5.1.2.2): the representation
/// `nct` asks for (`nct` 3: the resource's ID as `m2m:uri`, table 6.3.5.62-1), and the
/// subscription's creator when it has one (table 6.3.5.13-1).
pub(crate) fn notification(sub: &Resource, code: u64, resource: &Resource, rep: Value) -> Value {
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
    deletion_notices: Vec<(Endpoint, Value)>,
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
            for (to, body) in deletion_notices {
                notifier.enqueue(Notification {
                    url: to.url,
                    rvi: to.rvi,
                    body,
                    guard: None,
                    done: None,
                    latest: None,
                });
            }
            tracing::debug!(sub = sub.ri(), cse = %config.cse_id, "subscription expired by its notification counter");
        }
        Ok(None) => {}
        Err(e) => tracing::error!(error = %e, "cannot count down a subscription"),
    }
}
