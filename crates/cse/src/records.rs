//! The security manager's records in the store: which AE-ID a credential registered, which
//! credential an AE-ID is bound to, the sealed identity behind an AE-ID, which credential
//! made a subscription, and who created a resource; which subscription blocks the UPDATEs of
//! a resource, the notifications a batching subscription has gathered, the requests
//! queued on polling channels, and the non-blocking requests not finished yet.
//!
//! The store knows none of this: it keeps named tables of opaque values
//! ([`store::Txn::put_record`]) in the same durable transaction as the resources, so a
//! registration, or a subscription, and its record are acknowledged together or not at
//! all. The table names and what their values mean live here, and only here.

use model::{Error, Resource, Result};
use serde_json::Value;

/// Credential (the store's key of it) -> the AE-ID the CSE assigned it at its first
/// registration (TS-0003 clause 8.2.1: the credential keeps that AE-ID).
pub const CREDENTIAL_AE: &str = "credential-ae";
/// AE-ID -> the credential whose association registered it: only that credential may act
/// as it. Outlives the AE, so its AE-ID cannot be taken over later.
pub const AE_CREDENTIAL: &str = "ae-credential";
/// AE-ID -> the real identity behind it, sealed by the pseudonym vault (several values:
/// one per identity it has stood for).
pub const SEALED_IDENTITY: &str = "sealed-identity";
/// Subscription `ri` -> the Credential-ID of the association it was created over; tied to
/// the subscription, so it goes with it.
pub const SUBSCRIPTION_CREDENTIAL: &str = "subscription-credential";

/// Resource `ri` -> the originator that created it (TS-0001 clause 9.6.1.3: the holder of
/// the default access policy of a resource without `acpi`; the party a `<dac>` speaks for;
/// the subscriber a `<subscription>`'s notifications are checked against). Kept apart from
/// the `cr` attribute, which a resource shows only when its CREATE asked for it (TS-0004
/// clause 7.3.3.5). Tied to the resource, so it goes with it.
pub const CREATOR: &str = "creator";

/// Subscribed-to resource `ri` -> the `ri` of its blocking-update subscription (`net` 7,
/// at most one per resource: TS-0004 clause 7.4.8.2.1); tied to the subscription.
pub const BLOCKING_SUBSCRIPTION: &str = "blocking-subscription";

/// `<sub ri>/<seq>/<target>` -> one notification gathered in an open batch (`bn`) for one
/// target: [`Batched`] as JSON. Tied to the subscription, so it goes with it; deleted once
/// its batch has been delivered (or given up).
pub const BATCHED_NOTIFICATION: &str = "batched-notification";

/// One gathered notification of an open batch, as kept in [`BATCHED_NOTIFICATION`].
#[derive(Debug, Clone, PartialEq)]
pub struct Batched {
    /// The batching subscription's `ri`.
    pub sub: String,
    /// The event's number, increasing over the CSE's life (one event, one number, for all
    /// its targets).
    pub seq: u64,
    /// The target's position among the event's targets.
    pub target: u32,
    /// Where it goes.
    pub url: String,
    /// The release it is sent as.
    pub rvi: Option<String>,
    /// The `m2m:sgn` content, as that target may see it.
    pub sgn: serde_json::Value,
    /// When its batch was opened (`m2m:timestamp`): the batch's duration runs from there.
    pub opened: String,
}

impl Batched {
    /// The record's key: ordered by subscription, then by event, then by target.
    pub fn key(&self) -> String {
        format!("{}/{:020}/{:04}", self.sub, self.seq, self.target)
    }

    fn value(&self) -> Vec<u8> {
        serde_json::json!({
            "url": self.url, "rvi": self.rvi, "sgn": self.sgn, "opened": self.opened
        })
        .to_string()
        .into_bytes()
    }

    /// The record `key` = `value`; none if it is not one this version wrote.
    fn read(key: &str, value: &[u8]) -> Option<Self> {
        let mut parts = key.rsplitn(3, '/');
        let target = parts.next()?.parse().ok()?;
        let seq = parts.next()?.parse().ok()?;
        let sub = parts.next()?.to_owned();
        let v: serde_json::Value = serde_json::from_slice(value).ok()?;
        Some(Self {
            sub,
            seq,
            target,
            url: v.get("url")?.as_str()?.to_owned(),
            rvi: v.get("rvi").and_then(|r| r.as_str()).map(str::to_owned),
            sgn: v.get("sgn")?.clone(),
            opened: v.get("opened")?.as_str()?.to_owned(),
        })
    }
}

/// `<request>` `ri` -> the originator of a non-blocking request accepted and not finished
/// yet; tied to the `<request>`, deleted when its result is recorded. What a restart finds
/// here was interrupted and is marked failed (`non_blocking`).
pub const PENDING_REQUEST: &str = "pending-request";

/// `<pollingChannel>` `ri` + `/` + 16 hex digits of a sequence number -> one request queued
/// for the channel's AE (the JSON of a queued item of `cse/src/polling.rs`: the request primitive
/// and until when it is of use); tied to the channel, so it goes with it. Keys sort in
/// arrival order within a channel.
pub const POLLING_QUEUE: &str = "polling-queue";
/// `<pollingChannel>` `ri` -> `"<next sequence number> <requests queued>"`; tied to the
/// channel. Read and written in the transaction that queues or removes a request, so the
/// count that bounds the queue is exact.
pub const POLLING_HEAD: &str = "polling-head";

/// `<timeSeries>` `ri` + `/` + a data generation time (`m2m:timestamp`) -> the `ri` of the
/// `<timeSeriesInstance>` that has it; tied to the instance, so it goes with it. Read in
/// the write that creates an instance: a second one with the same time is 4105 (TS-0004
/// clause 7.4.39.2.1).
pub const TIME_SERIES_DGT: &str = "time-series-dgt";
/// `<timeSeries>` `ri` -> where its missing data detection stands (JSON of
/// `time_series::Monitor`: the first data point's time, the next period to check and the
/// periods already seen); tied to the series.
pub const TIME_SERIES_MONITOR: &str = "time-series-monitor";
/// `<subscription>` `ri` -> its missing data window (JSON of `time_series::Window`: when the
/// window ends, the points counted in it, those not yet notified); tied to the subscription.
pub const MISSING_DATA_WINDOW: &str = "missing-data-window";
/// `<crossResourceSubscription>` `ri` -> where its time window stands (JSON of
/// `crs::Window`: anchor, start, the targets seen, a version); tied to the resource.
/// Written before the event that changed it is acknowledged, so a restart keeps it.
pub const CRS_WINDOW: &str = "crs-window";
/// `<rlid>` + `\n` + `ri` -> `ri` of each `<role>` under the `<CSEBase>`, so a request
/// naming a Role-ID reads the roles with that ID only, however many there are
/// ([`role_prefix`]). Tied to the resource: deleting (or the expiry of) the `<role>` removes
/// it in the same write.
pub const ROLE_ID: &str = "role-id";
/// Token-ID -> the `<token>` holding it; tied to the resource, so deleting (or the expiry
/// of) the `<token>` frees the ID and revokes the token in one write.
pub const TOKEN_ID: &str = "token-id";

/// The key prefix of the roles with Role-ID `rlid` in [`ROLE_ID`].
pub fn role_prefix(rlid: &str) -> String {
    format!("{rlid}\n")
}

/// The key of a queued request: the channel, then its sequence number in fixed-width hex.
pub fn polling_key(channel: &str, seq: u64) -> String {
    format!("{channel}/{seq:016x}")
}

/// The key prefix of a channel's queued requests.
pub fn polling_prefix(channel: &str) -> String {
    format!("{channel}/")
}

/// A polling channel's queue is at its bound: the request was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueFull;

/// The (next sequence number, requests queued) of a channel, as this transaction sees it.
fn polling_head(t: &mut (dyn store::Txn + '_), channel: &str) -> Result<(u64, u64)> {
    let Some(head) = text(t.record(POLLING_HEAD, channel)?)? else {
        return Ok((0, 0));
    };
    let mut parts = head.split(' ').map(str::parse::<u64>);
    match (parts.next(), parts.next(), parts.next()) {
        (Some(Ok(next)), Some(Ok(len)), None) => Ok((next, len)),
        _ => Err(Error::internal(
            "store: a polling channel head is malformed",
        )),
    }
}

/// A text record's value.
fn text(value: Option<Vec<u8>>) -> Result<Option<String>> {
    value
        .map(String::from_utf8)
        .transpose()
        .map_err(|_| Error::internal("store: a security record is not text"))
}

/// The security manager's records, written inside a store transaction.
pub trait TxnRecords {
    /// Remembers the AE-ID the CSE assigned to a credential at its first registration.
    fn remember_credential_ae(&mut self, credential: &str, ae_id: &str) -> Result<()>;
    /// The AE-ID remembered for a credential, as this transaction sees it (so that two
    /// first registrations over one credential cannot both pass).
    fn credential_ae(&mut self, credential: &str) -> Result<Option<String>>;
    /// Forgets a remembered AE-ID (when its key changes).
    fn forget_credential_ae(&mut self, credential: &str) -> Result<()>;
    /// Binds an AE-ID to the credential that registered it (replacing an earlier binding).
    fn bind_ae(&mut self, ae_id: &str, credential: &str) -> Result<()>;
    /// The credential an AE-ID is bound to, as this transaction sees it.
    fn ae_credential(&mut self, ae_id: &str) -> Result<Option<String>>;
    /// Keeps one more sealed identity behind an AE-ID.
    fn seal_identity(&mut self, ae_id: &str, sealed: &[u8]) -> Result<()>;
    /// Remembers the Credential-ID a subscription was made with, until it is deleted.
    fn remember_subscriber_credential(&mut self, sub: &str, credential_id: &str) -> Result<()>;
    /// The Credential-ID of every subscription at or below `ri`, by subscription `ri`
    /// (read before deleting `ri`, which deletes them).
    fn subscriber_credentials_below(&mut self, ri: &str) -> Result<SubscriberCredentials>;
    /// Records who created the resource `ri`, until it is deleted.
    fn remember_creator(&mut self, ri: &str, creator: &str) -> Result<()>;
    /// The creator records of `ri` and everything below it, by resource `ri` (read before
    /// deleting `ri`, which deletes them: a deleted subscription's subscriber is still
    /// checked before the notice of its resource's deletion).
    fn creators_below(&mut self, ri: &str) -> Result<Creators>;
    /// Makes `new` the creator of every resource `old` created (an AE-ID rotation);
    /// returns how many changed.
    fn reassign_creator(&mut self, old: &str, new: &str) -> Result<usize>;
    /// Makes `sub` the blocking-update subscription of `subject`, unless `subject` already
    /// has one that still exists and still blocks (BLOCKING_SUBSCRIPTION_ALREADY_EXISTS).
    fn claim_blocking_subscription(&mut self, subject: &str, sub: &str) -> Result<()>;
    /// Keeps one gathered notification of an open batch, tied to its subscription.
    fn keep_batched(&mut self, batched: &Batched) -> Result<()>;
    /// Forgets a gathered notification (sent, or replaced by a later one with `ln`).
    fn forget_batched(&mut self, key: &str) -> Result<()>;
    /// Queues `item` on a polling channel unless it already holds `limit` requests; returns
    /// the item's key.
    fn queue_polled(
        &mut self,
        channel: &str,
        item: &[u8],
        limit: u64,
    ) -> Result<std::result::Result<String, QueueFull>>;
    /// Removes a queued request (no effect when it is already gone); whether it was there.
    fn unqueue_polled(&mut self, channel: &str, key: &str) -> Result<bool>;
}

/// Credential-IDs by subscription `ri`.
pub type SubscriberCredentials = std::collections::HashMap<String, String>;

/// Creators by resource `ri`.
pub type Creators = std::collections::HashMap<String, String>;

/// Who created `r`, given its creator record: the record, or, for a resource an earlier
/// version stored (which kept no record and gave every resource `cr`), its `cr` attribute.
pub fn creator_given(record: Option<&str>, r: &Resource) -> Option<String> {
    record
        .or_else(|| r.attrs.get("cr").and_then(Value::as_str))
        .map(str::to_owned)
}

impl TxnRecords for dyn store::Txn + '_ {
    fn remember_credential_ae(&mut self, credential: &str, ae_id: &str) -> Result<()> {
        self.put_record(CREDENTIAL_AE, credential, ae_id.as_bytes(), None)
    }

    fn credential_ae(&mut self, credential: &str) -> Result<Option<String>> {
        text(self.record(CREDENTIAL_AE, credential)?)
    }

    fn forget_credential_ae(&mut self, credential: &str) -> Result<()> {
        self.delete_record(CREDENTIAL_AE, credential)
    }

    fn bind_ae(&mut self, ae_id: &str, credential: &str) -> Result<()> {
        self.put_record(AE_CREDENTIAL, ae_id, credential.as_bytes(), None)
    }

    fn ae_credential(&mut self, ae_id: &str) -> Result<Option<String>> {
        text(self.record(AE_CREDENTIAL, ae_id)?)
    }

    fn seal_identity(&mut self, ae_id: &str, sealed: &[u8]) -> Result<()> {
        self.add_record(SEALED_IDENTITY, ae_id, sealed)
    }

    fn remember_subscriber_credential(&mut self, sub: &str, credential_id: &str) -> Result<()> {
        self.put_record(
            SUBSCRIPTION_CREDENTIAL,
            sub,
            credential_id.as_bytes(),
            Some(sub),
        )
    }

    fn subscriber_credentials_below(&mut self, ri: &str) -> Result<SubscriberCredentials> {
        Ok(texts(self.tied_records(SUBSCRIPTION_CREDENTIAL, ri)?)?
            .into_iter()
            .collect())
    }

    fn remember_creator(&mut self, ri: &str, creator: &str) -> Result<()> {
        self.put_record(CREATOR, ri, creator.as_bytes(), Some(ri))
    }

    fn creators_below(&mut self, ri: &str) -> Result<Creators> {
        Ok(texts(self.tied_records(CREATOR, ri)?)?
            .into_iter()
            .collect())
    }

    fn reassign_creator(&mut self, old: &str, new: &str) -> Result<usize> {
        let created = self.keys_holding(CREATOR, old.as_bytes())?;
        for ri in &created {
            self.remember_creator(ri, new)?;
        }
        Ok(created.len())
    }

    fn claim_blocking_subscription(&mut self, subject: &str, sub: &str) -> Result<()> {
        if let Some(holder) = text(self.record(BLOCKING_SUBSCRIPTION, subject)?)? {
            // A record outlives a subscription UPDATEd away from net 7; it no longer counts.
            let blocks = self
                .get(&holder)?
                .is_some_and(|s| model::resources::sub::is_blocking(&s.attrs));
            if blocks {
                return Err(Error::new(
                    model::ResponseStatusCode::BlockingSubscriptionAlreadyExists,
                    "the subscribed-to resource already has a blocking-update subscription",
                ));
            }
        }
        self.put_record(BLOCKING_SUBSCRIPTION, subject, sub.as_bytes(), Some(sub))
    }

    fn keep_batched(&mut self, batched: &Batched) -> Result<()> {
        self.put_record(
            BATCHED_NOTIFICATION,
            &batched.key(),
            &batched.value(),
            Some(&batched.sub),
        )
    }

    fn forget_batched(&mut self, key: &str) -> Result<()> {
        self.delete_record(BATCHED_NOTIFICATION, key)
    }

    fn queue_polled(
        &mut self,
        channel: &str,
        item: &[u8],
        limit: u64,
    ) -> Result<std::result::Result<String, QueueFull>> {
        let (next, len) = polling_head(self, channel)?;
        if len >= limit {
            return Ok(Err(QueueFull));
        }
        let key = polling_key(channel, next);
        self.put_record(POLLING_QUEUE, &key, item, Some(channel))?;
        let head = format!("{} {}", next + 1, len + 1);
        self.put_record(POLLING_HEAD, channel, head.as_bytes(), Some(channel))?;
        Ok(Ok(key))
    }

    fn unqueue_polled(&mut self, channel: &str, key: &str) -> Result<bool> {
        if self.record(POLLING_QUEUE, key)?.is_none() {
            return Ok(false);
        }
        self.delete_record(POLLING_QUEUE, key)?;
        let (next, len) = polling_head(self, channel)?;
        let head = format!("{next} {}", len.saturating_sub(1));
        self.put_record(POLLING_HEAD, channel, head.as_bytes(), Some(channel))?;
        Ok(true)
    }
}

/// The security manager's records as committed.
pub trait StoreRecords {
    /// The AE-ID remembered for a credential, if any.
    fn credential_ae(&self, credential: &str) -> Result<Option<String>>;
    /// Every remembered (credential key, AE-ID), sorted by key.
    fn credential_bindings(&self) -> Result<Vec<(String, String)>>;
    /// The credential an AE-ID is bound to, if any.
    fn ae_credential(&self, ae_id: &str) -> Result<Option<String>>;
    /// The sealed identities kept for an AE-ID, oldest first.
    fn sealed_identities(&self, ae_id: &str) -> Result<Vec<Vec<u8>>>;
    /// The Credential-ID a subscription was made with, if it was made over an association.
    fn subscriber_credential(&self, sub: &str) -> Result<Option<String>>;
    /// Every (subscription `ri`, Credential-ID) remembered.
    fn subscriber_credentials(&self) -> Result<Vec<(String, String)>>;
    /// Who created `r`: its creator record, or, for a resource an earlier version stored
    /// (which kept no record and gave every resource `cr`), its `cr` attribute. `None`
    /// when neither is there or the record cannot be read (a check that needs the creator
    /// then refuses: fail closed).
    fn creator_of(&self, r: &Resource) -> Option<String>;
    /// The `ri` of the blocking-update subscription of `subject`, if it has had one (the
    /// caller checks that it still exists and still blocks).
    fn blocking_subscription(&self, subject: &str) -> Result<Option<String>>;
    /// Every gathered notification of the open batches, in key order (by subscription,
    /// then oldest first); records this version cannot read are skipped, and logged.
    fn batched(&self) -> Result<Vec<Batched>>;
    /// The requests queued on a polling channel, (key, item), oldest first.
    fn polled_queue(&self, channel: &str) -> Result<Vec<(String, Vec<u8>)>>;
}

impl StoreRecords for dyn store::Store {
    fn credential_ae(&self, credential: &str) -> Result<Option<String>> {
        text(self.record(CREDENTIAL_AE, credential)?)
    }

    fn credential_bindings(&self) -> Result<Vec<(String, String)>> {
        texts(self.table(CREDENTIAL_AE)?)
    }

    fn ae_credential(&self, ae_id: &str) -> Result<Option<String>> {
        text(self.record(AE_CREDENTIAL, ae_id)?)
    }

    fn sealed_identities(&self, ae_id: &str) -> Result<Vec<Vec<u8>>> {
        self.records(SEALED_IDENTITY, ae_id)
    }

    fn subscriber_credential(&self, sub: &str) -> Result<Option<String>> {
        text(self.record(SUBSCRIPTION_CREDENTIAL, sub)?)
    }

    fn subscriber_credentials(&self) -> Result<Vec<(String, String)>> {
        texts(self.table(SUBSCRIPTION_CREDENTIAL)?)
    }

    fn creator_of(&self, r: &Resource) -> Option<String> {
        match self.record(CREATOR, r.ri()).and_then(text) {
            Ok(record) => creator_given(record.as_deref(), r),
            Err(e) => {
                tracing::error!(ri = r.ri(), error = %e, "cannot read the creator of a resource");
                None
            }
        }
    }

    fn blocking_subscription(&self, subject: &str) -> Result<Option<String>> {
        text(self.record(BLOCKING_SUBSCRIPTION, subject)?)
    }

    fn batched(&self) -> Result<Vec<Batched>> {
        Ok(self
            .table(BATCHED_NOTIFICATION)?
            .into_iter()
            .filter_map(|(key, value)| {
                let read = Batched::read(&key, &value);
                if read.is_none() {
                    tracing::error!(key, "unreadable batched notification record skipped");
                }
                read
            })
            .collect())
    }

    fn polled_queue(&self, channel: &str) -> Result<Vec<(String, Vec<u8>)>> {
        self.table_prefix(POLLING_QUEUE, &polling_prefix(channel))
    }
}

/// A table of text records.
fn texts(table: Vec<(String, Vec<u8>)>) -> Result<Vec<(String, String)>> {
    table
        .into_iter()
        .map(|(k, v)| Ok((k, text(Some(v))?.unwrap_or_default())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batched_notification_reads_back_as_written() {
        let b = Batched {
            sub: "sub123".into(),
            seq: 42,
            target: 1,
            url: "http://h/n?ct=cbor".into(),
            rvi: Some("2a".into()),
            sgn: serde_json::json!({"nev": {"net": 3}}),
            opened: "20261207T205000,000000".into(),
        };
        assert_eq!(b.key(), "sub123/00000000000000000042/0001");
        assert_eq!(Batched::read(&b.key(), &b.value()), Some(b.clone()));
        let no_rvi = Batched { rvi: None, ..b };
        assert_eq!(Batched::read(&no_rvi.key(), &no_rvi.value()), Some(no_rvi));
        assert_eq!(Batched::read("x", b"{}"), None);
    }
}
