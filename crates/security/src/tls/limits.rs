//! Handshake admission: a cap on handshakes in progress per listener and per client address,
//! checked without waiting, so a flood is refused at once and never queues other clients.

use super::error::{HandshakeCap, HandshakeError};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

/// Addresses are counted per IPv4 address and per IPv6 /64 (one host usually owns a whole
/// /64, so counting single IPv6 addresses would cap nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Client {
    V4([u8; 4]),
    V6Prefix([u8; 8]),
}

impl From<IpAddr> for Client {
    fn from(ip: IpAddr) -> Self {
        match ip.to_canonical() {
            IpAddr::V4(v4) => Self::V4(v4.octets()),
            IpAddr::V6(v6) => {
                let o = v6.octets();
                Self::V6Prefix([o[0], o[1], o[2], o[3], o[4], o[5], o[6], o[7]])
            }
        }
    }
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    per_client: HashMap<Client, usize>,
}

/// The caps of one listener.
#[derive(Debug)]
pub(crate) struct Limits {
    max_total: usize,
    max_per_client: usize,
    counts: Mutex<Counts>,
}

/// One admitted handshake; frees its place when dropped.
#[derive(Debug)]
pub(crate) struct Admission<'a> {
    limits: &'a Limits,
    client: Client,
}

impl Limits {
    pub(crate) fn new(max_total: usize, max_per_client: usize) -> Self {
        Self {
            max_total,
            max_per_client,
            counts: Mutex::new(Counts::default()),
        }
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, Counts> {
        // Counting never panics while holding the lock; recover rather than wedge the listener.
        self.counts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Admits one handshake from `ip`, or refuses at once when a cap is reached.
    pub(crate) fn admit(&self, ip: IpAddr) -> Result<Admission<'_>, HandshakeError> {
        let client = Client::from(ip);
        let mut counts = self.counts();
        if counts.total >= self.max_total {
            return Err(HandshakeError::TooManyHandshakes {
                cap: HandshakeCap::Listener,
            });
        }
        let mine = counts.per_client.entry(client).or_insert(0);
        if *mine >= self.max_per_client {
            return Err(HandshakeError::TooManyHandshakes {
                cap: HandshakeCap::Address,
            });
        }
        *mine += 1;
        counts.total += 1;
        Ok(Admission {
            limits: self,
            client,
        })
    }

    /// Handshakes in progress.
    pub(crate) fn in_progress(&self) -> usize {
        self.counts().total
    }
}

impl Drop for Admission<'_> {
    fn drop(&mut self) {
        let mut counts = self.limits.counts();
        counts.total = counts.total.saturating_sub(1);
        if let Some(n) = counts.per_client.get_mut(&self.client) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.per_client.remove(&self.client);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("address")
    }

    #[test]
    fn caps_per_listener_and_per_client() {
        let limits = Limits::new(3, 2);
        let a1 = limits.admit(ip("192.0.2.1")).expect("first");
        let _a2 = limits
            .admit(ip("::ffff:192.0.2.1"))
            .expect("same client, mapped");
        assert!(matches!(
            limits.admit(ip("192.0.2.1")),
            Err(HandshakeError::TooManyHandshakes {
                cap: HandshakeCap::Address
            })
        ));
        let _b = limits.admit(ip("2001:db8::1")).expect("other client");
        assert!(matches!(
            limits.admit(ip("192.0.2.9")),
            Err(HandshakeError::TooManyHandshakes {
                cap: HandshakeCap::Listener
            })
        ));
        assert_eq!(limits.in_progress(), 3);
        drop(a1);
        assert_eq!(limits.in_progress(), 2);
        let _a3 = limits.admit(ip("192.0.2.1")).expect("a place was freed");
    }

    #[test]
    fn ipv6_counts_per_64() {
        let limits = Limits::new(10, 1);
        let _a = limits.admit(ip("2001:db8:1:2::1")).expect("first");
        assert!(limits.admit(ip("2001:db8:1:2:ffff::9")).is_err());
        let _b = limits.admit(ip("2001:db8:1:3::1")).expect("other /64");
        drop(_a);
        assert_eq!(
            limits.counts().per_client.len(),
            1,
            "empty entries are removed"
        );
    }
}
