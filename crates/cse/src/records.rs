//! The security manager's records in the store: which AE-ID a credential registered, which
//! credential an AE-ID is bound to, the sealed identity behind an AE-ID, which credential
//! made a subscription, and who created a resource.
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
}

/// A table of text records.
fn texts(table: Vec<(String, Vec<u8>)>) -> Result<Vec<(String, String)>> {
    table
        .into_iter()
        .map(|(k, v)| Ok((k, text(Some(v))?.unwrap_or_default())))
        .collect()
}
