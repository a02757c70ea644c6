//! Handles and metadata: what callers hold instead of key bytes.

use crate::types::{Algorithm, HomeId, KeyId, KeyRole, Level};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A reference to a key inside its home. Holds no secret: it names the key, its role and
/// algorithm, and the home and level that issued it. Only homes build handles (the fields are
/// private), so a handle's level is the level of the home that holds the key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyHandle {
    id: KeyId,
    role: KeyRole,
    algorithm: Algorithm,
    home: HomeId,
    level: Level,
}

impl KeyHandle {
    pub(crate) fn new(
        id: KeyId,
        role: KeyRole,
        algorithm: Algorithm,
        home: HomeId,
        level: Level,
    ) -> Self {
        Self {
            id,
            role,
            algorithm,
            home,
            level,
        }
    }

    /// The key's identifier.
    pub fn id(&self) -> &KeyId {
        &self.id
    }

    /// What the key is for.
    pub fn role(&self) -> KeyRole {
        self.role
    }

    /// The key's algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The home that holds the key.
    pub fn home(&self) -> &HomeId {
        &self.home
    }

    /// The security level of that home. Credentials record it; access decisions may require it.
    pub fn level(&self) -> Level {
        self.level
    }
}

/// Where a key's material came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyOrigin {
    /// Generated inside its home.
    Generated,
    /// Imported from outside (its history before import is not covered by the home's level).
    Imported,
}

/// What `list` shows about a key: never its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyMetadata {
    /// The key.
    pub handle: KeyHandle,
    /// Generated inside the home or imported.
    pub origin: KeyOrigin,
    /// When the key was generated or imported (second precision).
    pub created: SystemTime,
    /// When this process last used it, if it did. Kept in memory only: persisting it would put
    /// a disk (or token) write on every signature.
    pub last_used: Option<SystemTime>,
}

/// Per-home record of the last use of each key (in memory).
#[derive(Debug, Default)]
pub(crate) struct UsageLog(Mutex<HashMap<KeyId, SystemTime>>);

impl UsageLog {
    pub(crate) fn touch(&self, id: &KeyId) {
        if let Ok(mut map) = self.0.lock() {
            let now = SystemTime::now();
            match map.get_mut(id) {
                Some(last) => *last = now,
                None => {
                    map.insert(id.clone(), now);
                }
            }
        }
    }

    pub(crate) fn last_used(&self, id: &KeyId) -> Option<SystemTime> {
        self.0.lock().ok().and_then(|map| map.get(id).copied())
    }

    pub(crate) fn forget(&self, id: &KeyId) {
        if let Ok(mut map) = self.0.lock() {
            map.remove(id);
        }
    }
}

/// Seconds since the Unix epoch (for storage).
pub(crate) fn to_unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The inverse of [`to_unix`].
pub(crate) fn from_unix(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}
