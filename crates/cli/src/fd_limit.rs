//! The process's file-descriptor limit: every connection is a descriptor, so the CSE raises
//! its soft limit to the hard limit at start-up (distributions often leave the soft limit at
//! 1024) and keeps each listener's `max_connections` within what remains.

use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};

/// Descriptors kept back for everything that is not a connection: the store's database and
/// journal files, the audit log, key homes, notification clients, outgoing requests.
pub const RESERVED: u64 = 256;

/// Raises the soft descriptor limit to the hard limit; returns the limit now in force, and
/// the one before when it changed.
pub fn raise() -> (u64, Option<u64>) {
    let limits = getrlimit(Resource::Nofile);
    let soft = limits.current.unwrap_or(u64::MAX);
    let hard = limits.maximum;
    if hard.is_none_or(|h| h > soft) {
        let raised = Rlimit {
            current: hard,
            maximum: hard,
        };
        if setrlimit(Resource::Nofile, raised).is_ok() {
            return (hard.unwrap_or(u64::MAX), Some(soft));
        }
    }
    (soft, None)
}

/// The `max_connections` each of `listeners` listeners may use under a descriptor `limit`:
/// `configured`, or less when all listeners together would exceed the limit.
pub fn connections_per_listener(limit: u64, listeners: usize, configured: usize) -> usize {
    let listeners = u64::try_from(listeners.max(1)).unwrap_or(u64::MAX);
    let each = limit.saturating_sub(RESERVED) / listeners;
    usize::try_from(each)
        .unwrap_or(usize::MAX)
        .clamp(1, configured.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_share_what_the_limit_leaves() {
        assert_eq!(connections_per_listener(1_048_576, 2, 8192), 8192);
        assert_eq!(
            connections_per_listener(1024, 3, 8192),
            (1024 - RESERVED as usize) / 3
        );
        assert_eq!(connections_per_listener(100, 1, 8192), 1);
    }

    #[test]
    fn raising_never_lowers_the_limit() {
        let before = getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX);
        let (now, _) = raise();
        assert!(now >= before);
    }
}
