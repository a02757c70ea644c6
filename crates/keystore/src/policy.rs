//! The minimum security level per key role, and the check that refuses keys below it.

use crate::handle::KeyHandle;
use crate::types::{HomeId, KeyId, KeyRole, Level};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;

/// Minimum [`Level`] per [`KeyRole`]. Roles not configured get the defaults of
/// [`KeyStorePolicy::default`].
///
/// In TOML (for example under `[keystore.policy]`), each role maps to 1, 2 or 3:
///
/// ```toml
/// ca-signing = 3
/// tls-server = 1
/// ```
///
/// There is no "fall back to a lower level" switch: a key below its role's minimum is refused,
/// and the fix is to move the key or, deliberately, to lower the minimum in the configuration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(from = "BTreeMap<KeyRole, Level>")]
pub struct KeyStorePolicy {
    minimum: BTreeMap<KeyRole, Level>,
}

impl Default for KeyStorePolicy {
    /// The CA key needs at least level 2 (a stolen CA key forges every identity); every other
    /// role needs at least level 1.
    fn default() -> Self {
        let mut minimum = BTreeMap::new();
        for role in KeyRole::ALL {
            minimum.insert(role, Level::Software);
        }
        minimum.insert(KeyRole::CaSigning, Level::TrustedEnvironment);
        Self { minimum }
    }
}

impl From<BTreeMap<KeyRole, Level>> for KeyStorePolicy {
    fn from(configured: BTreeMap<KeyRole, Level>) -> Self {
        let mut policy = Self::default();
        policy.minimum.extend(configured);
        policy
    }
}

impl KeyStorePolicy {
    /// Sets the minimum level of one role.
    pub fn with_minimum(mut self, role: KeyRole, level: Level) -> Self {
        self.minimum.insert(role, level);
        self
    }

    /// The minimum level of a role.
    pub fn minimum(&self, role: KeyRole) -> Level {
        self.minimum.get(&role).copied().unwrap_or(Level::Software)
    }

    /// Refuses a key of `role` kept at `level` when the policy requires more.
    pub fn check(
        &self,
        key: &KeyId,
        role: KeyRole,
        home: &HomeId,
        level: Level,
    ) -> Result<(), PolicyViolation> {
        let required = self.minimum(role);
        if level >= required {
            Ok(())
        } else {
            Err(PolicyViolation {
                key: key.clone(),
                role,
                home: home.clone(),
                configured: level,
                required,
            })
        }
    }

    /// [`KeyStorePolicy::check`] for a handle.
    pub fn check_handle(&self, handle: &KeyHandle) -> Result<(), PolicyViolation> {
        self.check(handle.id(), handle.role(), handle.home(), handle.level())
    }
}

/// A key whose home is below the minimum level of its role.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct PolicyViolation {
    /// The key.
    pub key: KeyId,
    /// Its role.
    pub role: KeyRole,
    /// Its home (where it is, or where it was to be generated or imported).
    pub home: HomeId,
    /// That home's level.
    pub configured: Level,
    /// The policy's minimum for the role.
    pub required: Level,
}

impl fmt::Display for PolicyViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "key {} (role {}): home {} is at {}, but the policy requires at least {} for {} keys: \
             move the key to a home of that level or lower the policy's minimum",
            self.key, self.role, self.home, self.configured, self.required, self.role
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> KeyId {
        KeyId::new(s).expect("valid id")
    }

    #[test]
    fn default_requires_level_2_for_the_ca() {
        let p = KeyStorePolicy::default();
        let home = HomeId::new("software", "/k");
        assert_eq!(p.minimum(KeyRole::CaSigning), Level::TrustedEnvironment);
        assert_eq!(p.minimum(KeyRole::TlsServer), Level::Software);
        let err = p
            .check(&id("ca"), KeyRole::CaSigning, &home, Level::Software)
            .expect_err("refused");
        let msg = err.to_string();
        for part in [
            "key ca",
            "role ca-signing",
            "software:/k",
            "level 1",
            "at least level 2",
        ] {
            assert!(msg.contains(part), "{msg} lacks {part}");
        }
        assert!(p
            .check(&id("ca"), KeyRole::CaSigning, &home, Level::Hsm)
            .is_ok());
        assert!(p
            .check(&id("tls"), KeyRole::TlsServer, &home, Level::Software)
            .is_ok());
    }

    #[test]
    fn parses_from_toml() {
        let p: KeyStorePolicy = toml::from_str("ca-signing = 3\npsk-master = 2\n").expect("parses");
        assert_eq!(p.minimum(KeyRole::CaSigning), Level::Hsm);
        assert_eq!(p.minimum(KeyRole::PskMaster), Level::TrustedEnvironment);
        assert_eq!(p.minimum(KeyRole::AuditLog), Level::Software);
        assert!(toml::from_str::<KeyStorePolicy>("ca-signing = 4").is_err());
        assert!(toml::from_str::<KeyStorePolicy>("no-such-role = 1").is_err());
    }
}
