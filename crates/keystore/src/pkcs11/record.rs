//! The level-3 anchor: private `CKO_DATA` token objects (application `secure-cse anchor`,
//! label = the anchor's name), one per generation: `CKA_VALUE` is the generation (8 bytes,
//! big-endian) followed by the record. Reading or replacing one needs a session logged in with the user PIN, so a
//! party that can rewrite the CSE's files but cannot use the token cannot roll it back.
//!
//! A write creates the next generation and then destroys the older ones; a read returns the
//! newest. Tokens need not let `CKA_VALUE` change after creation (SoftHSMv2 does not), and a
//! crash between the two steps leaves two generations, of which the newer counts: never
//! none.

use super::{module, Pkcs11Home};
use crate::anchor::AnchorRecord;
use crate::error::KeyStoreError;
use crate::types::KeyId;
use cryptoki::object::{Attribute, AttributeType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use std::fmt;
use std::sync::Arc;

/// `CKA_APPLICATION` of anchor records, apart from the key metadata objects.
const APPLICATION: &[u8] = b"secure-cse anchor";

/// Largest record accepted (a signed checkpoint is about 250 bytes).
pub const RECORD_LIMIT: usize = 4096;

/// A named record on the token of a [`Pkcs11Home`].
pub struct Pkcs11Record {
    home: Arc<Pkcs11Home>,
    label: KeyId,
}

impl fmt::Debug for Pkcs11Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

impl Pkcs11Home {
    /// The anchor record labelled `label` on this token (it need not exist yet). The label
    /// follows the rules of key identifiers.
    pub fn anchor_record(self: &Arc<Self>, label: &str) -> Result<Pkcs11Record, KeyStoreError> {
        let label = KeyId::new(label).map_err(|e| KeyStoreError::AnchorUnusable {
            anchor: format!("PKCS#11 data object {label:?} on token {}", self.label),
            reason: e.to_string(),
        })?;
        Ok(Pkcs11Record {
            home: self.clone(),
            label,
        })
    }
}

/// One generation of a record.
struct Generation {
    object: ObjectHandle,
    number: u64,
    value: Vec<u8>,
}

impl Pkcs11Record {
    /// Every generation on the token, oldest first.
    fn generations(&self, session: &Session) -> Result<Vec<Generation>, KeyStoreError> {
        let objects = session
            .find_objects(&[
                Attribute::Class(ObjectClass::DATA),
                Attribute::Application(APPLICATION.to_vec()),
                Attribute::Label(self.label.as_str().as_bytes().to_vec()),
            ])
            .map_err(self.err("find the anchor record"))?;
        let mut out = Vec::with_capacity(objects.len());
        for object in objects {
            let attrs = session
                .get_attributes(object, &[AttributeType::Value])
                .map_err(self.err("read the anchor record"))?;
            let stored = attrs
                .into_iter()
                .find_map(|a| match a {
                    Attribute::Value(v) => Some(v),
                    _ => None,
                })
                .unwrap_or_default();
            if stored.len() < 8 {
                return Err(KeyStoreError::AnchorUnusable {
                    anchor: self.name(),
                    reason: "an object with its label holds no generation".into(),
                });
            }
            let (head, value) = stored.split_at(8);
            let mut generation = [0u8; 8];
            generation.copy_from_slice(head);
            let number = u64::from_be_bytes(generation);
            let value = value.to_vec();
            out.push(Generation {
                object,
                number,
                value,
            });
        }
        out.sort_by_key(|g| g.number);
        Ok(out)
    }

    fn err(
        &self,
        operation: &'static str,
    ) -> impl Fn(cryptoki::error::Error) -> KeyStoreError + '_ {
        move |e| KeyStoreError::backend(&self.home.id, operation, module::reason(&e))
    }
}

impl AnchorRecord for Pkcs11Record {
    fn name(&self) -> String {
        format!(
            "PKCS#11 data object {} on token {}",
            self.label, self.home.label
        )
    }

    fn read(&self) -> Result<Option<Vec<u8>>, KeyStoreError> {
        let state = self.home.lock()?;
        Ok(self.generations(&state.session)?.pop().map(|g| g.value))
    }

    fn write(&self, value: &[u8]) -> Result<(), KeyStoreError> {
        if value.len() > RECORD_LIMIT {
            return Err(KeyStoreError::InputTooLong {
                home: self.home.id.clone(),
                operation: "write an anchor record",
                len: value.len(),
                limit: RECORD_LIMIT,
            });
        }
        let state = self.home.lock()?;
        let older = self.generations(&state.session)?;
        let next = older
            .last()
            .map_or(Some(1), |g| g.number.checked_add(1))
            .ok_or_else(|| KeyStoreError::AnchorUnusable {
                anchor: self.name(),
                reason: "its generation number is at its largest value".into(),
            })?;
        let mut stored = next.to_be_bytes().to_vec();
        stored.extend_from_slice(value);
        state
            .session
            .create_object(&[
                Attribute::Class(ObjectClass::DATA),
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::Application(APPLICATION.to_vec()),
                Attribute::Label(self.label.as_str().as_bytes().to_vec()),
                Attribute::Value(stored),
            ])
            .map_err(self.err("create the anchor record"))?;
        // The new generation counts from here on; the older ones only take space.
        for generation in older {
            state
                .session
                .destroy_object(generation.object)
                .map_err(self.err("remove an older anchor record"))?;
        }
        Ok(())
    }
}
