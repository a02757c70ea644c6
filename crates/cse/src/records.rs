//! The security manager's records in the store: which AE-ID a credential registered, which
//! credential an AE-ID is bound to, the sealed identity behind an AE-ID, and which credential
//! made a subscription; and the requests queued on polling channels.
//!
//! The store knows none of this: it keeps named tables of opaque values
//! ([`store::Txn::put_record`]) in the same durable transaction as the resources, so a
//! registration, or a subscription, and its record are acknowledged together or not at
//! all. The table names and what their values mean live here, and only here.

use model::{Error, Result};

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

/// `<pollingChannel>` `ri` + `/` + 16 hex digits of a sequence number -> one request queued
/// for the channel's AE (the JSON of a queued item of `cse/src/polling.rs`: the request primitive
/// and until when it is of use); tied to the channel, so it goes with it. Keys sort in
/// arrival order within a channel.
pub const POLLING_QUEUE: &str = "polling-queue";
/// `<pollingChannel>` `ri` -> `"<next sequence number> <requests queued>"`; tied to the
/// channel. Read and written in the transaction that queues or removes a request, so the
/// count that bounds the queue is exact.
pub const POLLING_HEAD: &str = "polling-head";

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
