//! Subscription and notification CSF: which subscriptions an event concerns, what each
//! notification says (`nct`), where it goes (`nu`), and the expiration counter (`exc`).

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
/// points of access. Entries that resolve to nothing reachable give an empty list.
pub fn notification_urls(cse: &Cse, nu: &str) -> Result<Vec<String>> {
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
    Ok(match ae {
        Some(r) if r.ty == ResourceType::Ae => r
            .str_list("poa")
            .into_iter()
            .filter(|p| cse.notifier.reaches(p))
            .collect(),
        _ => Vec::new(),
    })
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
            self.send(&sub, code, rep.0, rep.1);
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
                self.send(sub, net::DELETE, deleted, deleted.wrapped());
            }
        }
    }

    /// Tells a deleted subscription's subscriber (`su`) that it is gone.
    /// Not when the credential it was made with is withdrawn: that party is being cut off.
    pub(crate) fn subscription_deleted(&self, sub: &Resource, credential: Option<&String>) {
        let withdrawn = credential.is_some_and(|c| self.revocations().effective(c).is_some());
        if let Some(su) = sub.attrs.get("su").and_then(Value::as_str) {
            if !withdrawn {
                let body = json!({ "m2m:sgn": { "sud": true, "sur": sub.srn } });
                self.deliver(su, &body, None);
            }
        }
    }

    fn send(&self, sub: &Resource, code: u64, resource: &Resource, rep: Value) {
        let rep = if sub.u64_attr("nct") == Some(3) {
            json!(resource.ri())
        } else {
            rep
        };
        let body = json!({ "m2m:sgn": { "nev": { "rep": rep, "net": code }, "sur": sub.srn } });
        let guard = self.delivery_guard(sub);
        for nu in sub.str_list("nu") {
            self.deliver(&nu, &body, guard.clone());
        }
        if sub.u64_attr("exc").is_some() {
            tokio::spawn(count_down(
                self.store.clone(),
                self.notifier.clone(),
                sub.ri().to_owned(),
                self.config.clone(),
            ));
        }
    }

    fn deliver(&self, nu: &str, body: &Value, guard: Option<Guard>) {
        match notification_urls(self, nu) {
            Ok(urls) if !urls.is_empty() => {
                for url in urls {
                    match self.as_seen_by(&url, body) {
                        Some(body) => self.notifier.enqueue(Notification {
                            url,
                            body,
                            guard: guard.clone(),
                        }),
                        None => {
                            tracing::warn!("notification not sent: no alias for an AE-ID in it")
                        }
                    }
                }
            }
            Ok(_) => tracing::debug!(nu, "notification target has no reachable point of access"),
            Err(e) => {
                tracing::warn!(nu, error = %model::Untrusted(&e), "cannot resolve notification target")
            }
        }
    }
}

fn wants(sub: &Resource, code: u64, resource: &Resource) -> bool {
    let enc = sub.attrs.get("enc");
    let nets: Vec<u64> = enc
        .and_then(|e| e.get("net"))
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_else(|| vec![net::UPDATE]);
    if !nets.contains(&code) {
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
            if let Some(su) = sub
                .attrs
                .get("su")
                .and_then(Value::as_str)
                .filter(|s| s.contains("://"))
            {
                let body = json!({ "m2m:sgn": { "sud": true, "sur": sub.srn } });
                notifier.enqueue(Notification {
                    url: su.to_owned(),
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
