//! Refused associations counted per source and reason within a window.
//!
//! Anyone who can reach a TLS port can make the CSE refuse a handshake, as often as the
//! network allows. Writing one audit entry and one log line per refusal would let such a
//! party fill the disk and bury the events that matter. A [`RefusalWindow`] instead lets the
//! first refusal of each (listener, source, credential, reason) through and counts the
//! rest; when the window ends, each key that was refused more than once yields one
//! [`Summary`] with the count. The source is an IPv4 address or an IPv6 /64, since one host
//! holds a whole /64.
//!
//! The table is bounded, so a flood of any size costs a bounded number of lines per window:
//! a source that shows more than [`MAX_REASONS_PER_SOURCE`] reasons has the rest counted
//! under [`OTHER_REASONS`], and once the table holds [`MAX_KEYS`] keys, sources not yet in it
//! are counted together as [`Source::Other`]. Each key yields at most two lines per window
//! (its first refusal and its summary), whatever the size of the flood.

use model::clock::Clock;
use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::time::{Duration, Instant, SystemTime};

/// Distinct (source, credential, reason) keys counted per window before further sources are
/// counted together.
pub const MAX_KEYS: usize = 1024;

/// Distinct reasons counted separately per source and listener; further reasons are counted
/// under [`OTHER_REASONS`]. Refusal reasons can carry text the peer chose (an unknown PSK
/// identity), so a peer must not be able to mint keys.
pub const MAX_REASONS_PER_SOURCE: usize = 4;

/// The reason under which overflowing refusals are counted.
pub const OTHER_REASONS: &str = "other reasons";

/// The default window: one summary per source and reason per minute.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(60);

/// Where refusals come from, at the granularity one party controls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// One IPv4 address (an IPv4-mapped IPv6 address counts as IPv4).
    V4(std::net::Ipv4Addr),
    /// One IPv6 /64 (the prefix, host bits zero).
    V6(Ipv6Addr),
    /// Every source beyond the table's capacity, counted together.
    Other,
}

impl Source {
    /// The source of a peer address.
    pub fn of(peer: IpAddr) -> Self {
        match peer {
            IpAddr::V4(v4) => Self::V4(v4),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self::V4(v4),
                None => {
                    let bits = u128::from(v6) & !((1u128 << 64) - 1);
                    Self::V6(Ipv6Addr::from(bits))
                }
            },
        }
    }
}

impl Source {
    /// The address that stands for the source (the /64 prefix for IPv6), for log tags.
    pub fn addr(&self) -> Option<IpAddr> {
        match self {
            Self::V4(a) => Some(IpAddr::V4(*a)),
            Self::V6(a) => Some(IpAddr::V6(*a)),
            Self::Other => None,
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::V4(a) => write!(f, "{a}"),
            Self::V6(a) => write!(f, "{a}/64"),
            Self::Other => f.write_str("other sources"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    listener: String,
    source: Source,
    credential: Option<String>,
    reason: String,
}

#[derive(Debug)]
struct Slot {
    count: u64,
    first: SystemTime,
    last: SystemTime,
}

/// Refusals of one key that were counted rather than written, for one summary line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// The listener that refused.
    pub listener: String,
    /// Where the refusals came from.
    pub source: Source,
    /// The known credential the peer offered, if the refusals were about one.
    pub credential: Option<String>,
    /// Why (or [`OTHER_REASONS`]).
    pub reason: String,
    /// Refusals in the window, including the first one, which was reported on its own.
    pub count: u64,
    /// The first refusal of the window.
    pub first: SystemTime,
    /// The last one.
    pub last: SystemTime,
}

/// Whether a refusal is the first of its key in the window (report it) or was counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observed {
    /// The first of its key: report it now.
    First,
    /// Counted; it appears in the window's [`Summary`].
    Counted,
}

/// The counts of one window; not thread-safe by itself (callers hold it in a mutex).
#[derive(Debug)]
pub struct RefusalWindow {
    window: Duration,
    started: Instant,
    slots: HashMap<Key, Slot>,
    reasons: HashMap<(String, Source), usize>,
    /// The wall time of each refusal (first and last of a slot) is read from it.
    clock: Clock,
}

impl Default for RefusalWindow {
    fn default() -> Self {
        Self::new(DEFAULT_WINDOW)
    }
}

impl RefusalWindow {
    /// An empty window of the given length (at least one millisecond).
    pub fn new(window: Duration) -> Self {
        Self {
            window: window.max(Duration::from_millis(1)),
            started: Instant::now(),
            slots: HashMap::new(),
            reasons: HashMap::new(),
            clock: Clock::system(),
        }
    }

    /// The same window, reading wall times from `clock` (callers pass its `instant` as `now`).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.started = clock.instant();
        self.clock = clock;
        self
    }

    /// The window's length.
    pub fn window(&self) -> Duration {
        self.window
    }

    /// Counts one refusal. Returns the summaries of the previous window if it has ended,
    /// and whether this refusal is the first of its key.
    pub fn observe(
        &mut self,
        now: Instant,
        listener: &str,
        peer: IpAddr,
        credential: Option<&str>,
        reason: &str,
    ) -> (Vec<Summary>, Observed) {
        let ended = self.expire(now);
        if self.slots.is_empty() {
            self.started = now;
        }
        let key = self.key(listener, Source::of(peer), credential, reason);
        let wall = self.clock.system_time();
        let observed = match self.slots.get_mut(&key) {
            Some(slot) => {
                slot.count += 1;
                slot.last = wall;
                Observed::Counted
            }
            None => {
                if key.reason != OTHER_REASONS && key.source != Source::Other {
                    *self
                        .reasons
                        .entry((key.listener.clone(), key.source))
                        .or_default() += 1;
                }
                self.slots.insert(
                    key,
                    Slot {
                        count: 1,
                        first: wall,
                        last: wall,
                    },
                );
                Observed::First
            }
        };
        (ended, observed)
    }

    /// The key a refusal is counted under, after the caps.
    fn key(&self, listener: &str, source: Source, credential: Option<&str>, reason: &str) -> Key {
        let exact = Key {
            listener: listener.to_owned(),
            source,
            credential: credential.map(str::to_owned),
            reason: reason.to_owned(),
        };
        if self.slots.contains_key(&exact) {
            return exact;
        }
        let known_source = self.reasons.get(&(exact.listener.clone(), source));
        if known_source.is_none() && self.slots.len() >= MAX_KEYS {
            return Key {
                source: Source::Other,
                credential: None,
                reason: OTHER_REASONS.to_owned(),
                ..exact
            };
        }
        if known_source.is_some_and(|n| *n >= MAX_REASONS_PER_SOURCE) {
            return Key {
                credential: None,
                reason: OTHER_REASONS.to_owned(),
                ..exact
            };
        }
        exact
    }

    /// When the current window ends, if anything is being counted.
    pub fn deadline(&self) -> Option<Instant> {
        (!self.slots.is_empty()).then(|| self.started + self.window)
    }

    /// Ends the window if it is over: the summaries of every key refused more than once
    /// (a key refused once was reported in full already), and an empty table.
    pub fn expire(&mut self, now: Instant) -> Vec<Summary> {
        match self.deadline() {
            Some(end) if now >= end => self.drain(),
            _ => Vec::new(),
        }
    }

    /// Ends the window now (at shutdown): every pending summary.
    pub fn drain(&mut self) -> Vec<Summary> {
        self.reasons.clear();
        let mut out: Vec<Summary> = self
            .slots
            .drain()
            .filter(|(_, slot)| slot.count > 1)
            .map(|(key, slot)| Summary {
                listener: key.listener,
                source: key.source,
                credential: key.credential,
                reason: key.reason,
                count: slot.count,
                first: slot.first,
                last: slot.last,
            })
            .collect();
        out.sort_by_key(|s| s.first);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn ipv6_sources_are_their_64_and_mapped_ipv4_is_ipv4() {
        assert_eq!(
            Source::of(ip("2001:db8:1:2:aaaa::1")),
            Source::of(ip("2001:db8:1:2:bbbb::9"))
        );
        assert_ne!(
            Source::of(ip("2001:db8:1:2::1")),
            Source::of(ip("2001:db8:1:3::1"))
        );
        assert_eq!(
            Source::of(ip("2001:db8:1:2::1")).to_string(),
            "2001:db8:1:2::/64"
        );
        assert_eq!(Source::of(ip("::ffff:192.0.2.7")).to_string(), "192.0.2.7");
    }

    #[test]
    fn a_flood_is_one_first_refusal_and_one_summary_per_key() {
        let mut w = RefusalWindow::new(Duration::from_secs(60));
        let t0 = Instant::now();
        let mut firsts = 0;
        for i in 0..10_000u32 {
            let peer = ip(&format!("127.0.0.{}", 1 + i % 4));
            let (ended, o) = w.observe(t0, "tls", peer, None, "untrusted certificate");
            assert!(ended.is_empty());
            firsts += usize::from(o == Observed::First);
        }
        assert_eq!(firsts, 4);
        assert!(
            w.expire(t0 + Duration::from_secs(59)).is_empty(),
            "not over"
        );
        let summaries = w.expire(t0 + Duration::from_secs(60));
        assert_eq!(summaries.len(), 4);
        assert_eq!(summaries.iter().map(|s| s.count).sum::<u64>(), 10_000);
        assert!(w.deadline().is_none(), "a new window starts empty");
    }

    #[test]
    fn a_key_refused_once_needs_no_summary() {
        let mut w = RefusalWindow::new(Duration::from_secs(1));
        let t0 = Instant::now();
        w.observe(t0, "tls", ip("192.0.2.1"), None, "x");
        let (ended, o) = w.observe(
            t0 + Duration::from_secs(2),
            "tls",
            ip("192.0.2.1"),
            None,
            "x",
        );
        assert!(ended.is_empty(), "{ended:?}");
        assert_eq!(o, Observed::First, "a new window reports the first again");
    }

    #[test]
    fn reasons_chosen_by_the_peer_cannot_mint_keys() {
        let mut w = RefusalWindow::new(Duration::from_secs(60));
        let t0 = Instant::now();
        let mut firsts = 0;
        for i in 0..1000 {
            let reason = format!("unknown PSK identity 'x{i}'");
            let (_, o) = w.observe(t0, "tls", ip("192.0.2.1"), None, &reason);
            firsts += usize::from(o == Observed::First);
        }
        assert_eq!(firsts, MAX_REASONS_PER_SOURCE + 1);
        let summaries = w.drain();
        let other = summaries
            .iter()
            .find(|s| s.reason == OTHER_REASONS)
            .expect("overflow counted");
        assert_eq!(other.count, 1000 - MAX_REASONS_PER_SOURCE as u64);
    }

    #[test]
    fn sources_beyond_the_table_are_counted_together() {
        let mut w = RefusalWindow::new(Duration::from_secs(60));
        let t0 = Instant::now();
        let n = MAX_KEYS as u32 + 500;
        let mut firsts = 0;
        for i in 0..n {
            let peer = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            let (_, o) = w.observe(t0, "tls", peer, None, "x");
            firsts += usize::from(o == Observed::First);
        }
        assert_eq!(firsts, MAX_KEYS + 1);
        let summaries = w.drain();
        assert_eq!(summaries.len(), 1, "only the shared key was refused twice");
        assert_eq!(summaries[0].source, Source::Other);
        assert_eq!(summaries[0].count, 500);
    }
}
