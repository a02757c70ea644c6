//! Supervising the use of security material (seed 3.1; security model section 5): what each
//! credential was used for, and anomaly rules evaluated as associations open and handshakes
//! fail.
//!
//! The [`Supervisor`] hears every association event from the registry (next to the audit
//! trail, through [`EventFanout`](security::association::EventFanout)) and keeps, per
//! Credential-ID: first and last use, associations opened, handshakes refused for it,
//! requests served and the last few peer addresses. That record lives in memory and starts
//! empty at every start; the audit log is the durable history.
//!
//! The rules ([`Rule`]): one credential live from two peer addresses at once, and repeated
//! failed handshakes from one address. A match raises an alert: a WARN line that names peers
//! and credentials by their privacy tags only, and an `anomaly-detected` audit entry, which
//! may name them. Alerts are rate-limited per rule and subject (`alert_interval`), so a peer
//! cannot flood the audit log. A rule listed in `suspend_on` also suspends the credential
//! through the ordinary withdrawal path ([`Cse::withdraw`] with actor `supervision`), which
//! closes its live associations and is audited.
//!
//! Every map is keyed by values a peer chooses (addresses, offered identities), so each has
//! a cap and evicts its stalest entry when full.

use crate::security_manager::audit::AuditTrail;
use crate::security_manager::withdrawal::Withdraw;
use crate::Cse;
use manager::audit::Event;
use model::clock::Clock;
use model::{Error, Result};
use security::association::{AssociationEvents, SecurityAssociation};
use security::privacy;
use serde_json::{json, Value};
use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::mpsc;

/// Pending automatic suspensions before further ones are dropped (and logged).
const SUSPENSION_QUEUE: usize = 64;

/// Most addresses one `concurrent-peers` alert lists.
const LISTED_PEERS: usize = 8;

/// The highest `failed_handshakes` threshold: the failures counted per address are kept,
/// so the threshold bounds that memory.
pub const MAX_FAILED_HANDSHAKES: u32 = 1000;

/// An anomaly rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Rule {
    /// One credential with live associations from two peer addresses at the same time: a
    /// credential copied to a second device, or one device's traffic relayed.
    ConcurrentPeers,
    /// `failed_handshakes` refused handshakes from one address within the window: key
    /// guessing, a misconfigured device, or a flood.
    FailedHandshakes,
}

impl Rule {
    /// Every rule, for configuration checks and documentation.
    pub const ALL: [Rule; 2] = [Rule::ConcurrentPeers, Rule::FailedHandshakes];

    /// The name in the configuration, the audit log and the operational log.
    pub fn name(self) -> &'static str {
        match self {
            Self::ConcurrentPeers => "concurrent-peers",
            Self::FailedHandshakes => "failed-handshakes",
        }
    }

    /// The rule of a configured name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.name() == name)
    }
}

/// The `[supervision]` settings (`docs/configuration.md` gives the defaults and why).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Whether the `concurrent-peers` rule runs.
    pub concurrent_peers: bool,
    /// Refused handshakes from one address within `failed_handshakes_window` that raise a
    /// `failed-handshakes` alert; 0 turns the rule off.
    pub failed_handshakes: u32,
    /// The window of `failed_handshakes`.
    pub failed_handshakes_window: Duration,
    /// At most one alert per rule and subject (credential or address) in this interval.
    pub alert_interval: Duration,
    /// Rules whose match also suspends the credential concerned.
    pub suspend_on: Vec<Rule>,
    /// Distinct peer addresses remembered per credential (the most recent).
    pub usage_peers: usize,
    /// Credentials whose usage is kept; the least recently seen is forgotten first.
    pub max_credentials: usize,
    /// Addresses whose failed handshakes are counted; the stalest is forgotten first.
    pub max_addresses: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            concurrent_peers: true,
            failed_handshakes: 10,
            failed_handshakes_window: Duration::from_secs(60),
            alert_interval: Duration::from_secs(300),
            suspend_on: Vec::new(),
            usage_peers: 8,
            max_credentials: 4096,
            max_addresses: 4096,
        }
    }
}

/// How one credential was used since the CSE started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialUsage {
    /// The Credential-ID.
    pub credential: String,
    /// When its first association opened (`None`: only refused so far).
    pub first_use: Option<SystemTime>,
    /// When it was last used: now while an association is live, else when the last one
    /// opened or closed.
    pub last_use: Option<SystemTime>,
    /// When a handshake offering it was last refused.
    pub last_refused: Option<SystemTime>,
    /// Its live associations.
    pub live: usize,
    /// Associations opened with it.
    pub associations_opened: u64,
    /// Handshakes refused that offered it (known PSK identity, wrong key).
    pub handshakes_refused: u64,
    /// Requests served over its associations (closed and live).
    pub requests: u64,
    /// The distinct peer addresses its associations came from, oldest first (the last
    /// `usage_peers`).
    pub peers: Vec<IpAddr>,
}

/// One rule matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Which rule.
    pub rule: Rule,
    /// The credential concerned, if known.
    pub credential: Option<String>,
    /// The peer whose event matched.
    pub peer: SocketAddr,
    /// What was seen, for the audit log (names addresses).
    pub detail: String,
    /// Whether this raises an alert: false when one was raised for the same rule and subject
    /// within `alert_interval`.
    pub alert: bool,
    /// The credential to suspend, when the rule is in `suspend_on`.
    pub suspend: Option<String>,
}

/// A suspension the supervisor asks of the CSE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suspension {
    /// The Credential-ID.
    pub credential: String,
    /// Why, for the revocation journal and the audit log.
    pub reason: String,
}

#[derive(Debug)]
struct Usage {
    first_use: Option<SystemTime>,
    last_use: Option<SystemTime>,
    last_refused: Option<SystemTime>,
    /// When anything last happened to it, for eviction.
    touched: Instant,
    opened: u64,
    refused: u64,
    /// Requests of its closed associations.
    requests: u64,
    peers: VecDeque<IpAddr>,
}

impl Usage {
    fn new(now: Instant) -> Self {
        Self {
            first_use: None,
            last_use: None,
            last_refused: None,
            touched: now,
            opened: 0,
            refused: 0,
            requests: 0,
            peers: VecDeque::new(),
        }
    }
}

#[derive(Debug, Default)]
struct State {
    usage: HashMap<String, Usage>,
    /// Live associations per credential: (association id, peer address). Bounded by the
    /// live associations, which the listeners bound.
    live: HashMap<String, Vec<(u64, IpAddr)>>,
    /// Recent refused handshakes per host (at most `failed_handshakes` each).
    failures: HashMap<IpAddr, VecDeque<Instant>>,
    /// When an alert was last raised, per rule and subject.
    alerted: HashMap<(Rule, String), Instant>,
}

/// Removes the lowest-ranked entries until one more fits under `cap`.
fn make_room<K: Eq + Hash + Clone, V, R: Ord>(
    map: &mut HashMap<K, V>,
    cap: usize,
    rank: impl Fn(&K, &V) -> R,
) {
    while map.len() >= cap.max(1) {
        let Some(stalest) = map
            .iter()
            .min_by_key(|(k, v)| rank(k, v))
            .map(|(k, _)| k.clone())
        else {
            return;
        };
        map.remove(&stalest);
    }
}

/// The host behind an address: an IPv4 address, or an IPv6 /64 (one host usually owns a
/// whole /64 and may use several addresses in it, as the handshake limits count them).
fn host(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let mut o = v6.octets();
            o[8..].fill(0);
            IpAddr::V6(Ipv6Addr::from(o))
        }
        v4 => v4,
    }
}

fn host_name(host: IpAddr) -> String {
    match host {
        IpAddr::V6(_) => format!("{host}/64"),
        IpAddr::V4(_) => host.to_string(),
    }
}

/// Per-credential usage and the anomaly rules (see the module documentation).
#[derive(Debug)]
pub struct Supervisor {
    settings: Settings,
    /// Windows and intervals read its monotonic time; first and last use its wall time.
    clock: Clock,
    audit: Option<AuditTrail>,
    suspensions: Option<mpsc::Sender<Suspension>>,
    state: Mutex<State>,
}

impl Supervisor {
    /// A supervisor on the system clock that records alerts in `audit` and sends the
    /// suspensions its rules ask for to `suspensions`.
    pub fn new(
        settings: Settings,
        audit: Option<AuditTrail>,
        suspensions: Option<mpsc::Sender<Suspension>>,
    ) -> Self {
        Self::with_clock(settings, audit, suspensions, Clock::system())
    }

    /// The same on the CSE's clock ([`CseConfig::clock`](crate::CseConfig)), so its windows
    /// move with a test's [`ManualClock`](model::clock::ManualClock).
    pub fn with_clock(
        settings: Settings,
        audit: Option<AuditTrail>,
        suspensions: Option<mpsc::Sender<Suspension>>,
        clock: Clock,
    ) -> Self {
        Self {
            settings,
            clock,
            audit,
            suspensions,
            state: Mutex::default(),
        }
    }

    /// The settings in force.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding the lock; recover rather than stop supervising.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The usage of every credential seen (or of `credential` only), ordered by
    /// Credential-ID. `live` is the registry's list, for the requests of live associations.
    pub fn usage(
        &self,
        live: &[Arc<SecurityAssociation>],
        credential: Option<&str>,
    ) -> Vec<CredentialUsage> {
        let wall = self.clock.system_time();
        let state = self.state();
        let mut out: Vec<CredentialUsage> = state
            .usage
            .iter()
            .filter(|(id, _)| credential.is_none_or(|c| c == id.as_str()))
            .map(|(id, u)| {
                let live_count = state.live.get(id).map_or(0, Vec::len);
                let live_requests: u64 = live
                    .iter()
                    .filter(|sa| sa.established.credential_id == *id)
                    .map(|sa| sa.requests())
                    .sum();
                CredentialUsage {
                    credential: id.clone(),
                    first_use: u.first_use,
                    last_use: if live_count > 0 {
                        Some(wall)
                    } else {
                        u.last_use
                    },
                    last_refused: u.last_refused,
                    live: live_count,
                    associations_opened: u.opened,
                    handshakes_refused: u.refused,
                    requests: u.requests.saturating_add(live_requests),
                    peers: u.peers.iter().copied().collect(),
                }
            })
            .collect();
        out.sort_by(|a, b| a.credential.cmp(&b.credential));
        out
    }

    fn usage_entry<'a>(
        &self,
        state: &'a mut State,
        credential: &str,
        now: Instant,
    ) -> &'a mut Usage {
        if !state.usage.contains_key(credential) {
            let live = &state.live;
            // Credentials in use now are kept before any idle one.
            make_room(&mut state.usage, self.settings.max_credentials, |id, u| {
                (live.contains_key(id), u.touched)
            });
        }
        let entry = state
            .usage
            .entry(credential.to_owned())
            .or_insert_with(|| Usage::new(now));
        entry.touched = now;
        entry
    }

    /// An association opened: usage, then the `concurrent-peers` rule.
    fn observe_opened(&self, id: u64, credential: &str, peer: SocketAddr) -> Vec<Finding> {
        let (now, wall) = (self.clock.instant(), self.clock.system_time());
        let ip = peer.ip().to_canonical();
        let mut guard = self.state();
        let state = &mut *guard;
        let usage = self.usage_entry(state, credential, now);
        usage.first_use.get_or_insert(wall);
        usage.last_use = Some(wall);
        usage.opened = usage.opened.saturating_add(1);
        usage.peers.retain(|p| *p != ip);
        usage.peers.push_back(ip);
        while usage.peers.len() > self.settings.usage_peers {
            usage.peers.pop_front();
        }
        let live = state.live.entry(credential.to_owned()).or_default();
        live.push((id, ip));
        if !self.settings.concurrent_peers {
            return Vec::new();
        }
        let mut hosts: Vec<IpAddr> = Vec::new();
        let mut addresses: Vec<IpAddr> = Vec::new();
        for (_, a) in live.iter() {
            if !hosts.contains(&host(*a)) {
                hosts.push(host(*a));
                addresses.push(*a);
            }
        }
        if hosts.len() < 2 {
            return Vec::new();
        }
        let listed: Vec<String> = addresses
            .iter()
            .take(LISTED_PEERS)
            .map(ToString::to_string)
            .collect();
        let detail = format!(
            "{} live associations from {} addresses at once: {}",
            live.len(),
            hosts.len(),
            listed.join(", ")
        );
        vec![self.finding(
            state,
            Rule::ConcurrentPeers,
            credential.to_owned(),
            Some(credential.to_owned()),
            peer,
            detail,
            now,
        )]
    }

    /// An association closed: its requests join the credential's count.
    fn observe_closed(&self, id: u64, credential: &str, requests: u64) {
        let (now, wall) = (self.clock.instant(), self.clock.system_time());
        let mut guard = self.state();
        let state = &mut *guard;
        if let Some(live) = state.live.get_mut(credential) {
            live.retain(|(sa, _)| *sa != id);
            if live.is_empty() {
                state.live.remove(credential);
            }
        }
        if let Some(usage) = state.usage.get_mut(credential) {
            usage.requests = usage.requests.saturating_add(requests);
            usage.last_use = Some(wall);
            usage.touched = now;
        }
    }

    /// A handshake was refused: the credential's refusals, then the `failed-handshakes`
    /// rule for the peer's host.
    fn observe_refused(
        &self,
        peer: SocketAddr,
        credential: Option<&str>,
        reason: &str,
    ) -> Vec<Finding> {
        let (now, wall) = (self.clock.instant(), self.clock.system_time());
        let mut guard = self.state();
        let state = &mut *guard;
        if let Some(c) = credential {
            let usage = self.usage_entry(state, c, now);
            usage.refused = usage.refused.saturating_add(1);
            usage.last_refused = Some(wall);
        }
        let threshold = self.settings.failed_handshakes.min(MAX_FAILED_HANDSHAKES) as usize;
        if threshold == 0 {
            return Vec::new();
        }
        let host = host(peer.ip());
        if !state.failures.contains_key(&host) {
            make_room(&mut state.failures, self.settings.max_addresses, |_, q| {
                q.back().copied()
            });
        }
        let window = self.settings.failed_handshakes_window;
        let recent = state.failures.entry(host).or_default();
        recent.push_back(now);
        while recent
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) > window)
            || recent.len() > threshold
        {
            recent.pop_front();
        }
        if recent.len() < threshold {
            return Vec::new();
        }
        let detail = format!(
            "{} failed handshakes from {} within {} s; the last: {reason}",
            recent.len(),
            host_name(host),
            window.as_secs()
        );
        vec![self.finding(
            state,
            Rule::FailedHandshakes,
            host_name(host),
            credential.map(str::to_owned),
            peer,
            detail,
            now,
        )]
    }

    /// A match: whether it alerts (rate limit per rule and subject) and what it suspends.
    #[allow(clippy::too_many_arguments)]
    fn finding(
        &self,
        state: &mut State,
        rule: Rule,
        subject: String,
        credential: Option<String>,
        peer: SocketAddr,
        detail: String,
        now: Instant,
    ) -> Finding {
        let key = (rule, subject);
        let interval = self.settings.alert_interval;
        let alert = state
            .alerted
            .get(&key)
            .is_none_or(|t| now.saturating_duration_since(*t) >= interval);
        if alert {
            if !state.alerted.contains_key(&key) {
                let cap = self
                    .settings
                    .max_credentials
                    .saturating_add(self.settings.max_addresses);
                make_room(&mut state.alerted, cap, |_, t| *t);
            }
            state.alerted.insert(key, now);
        }
        let suspend = match self.settings.suspend_on.contains(&rule) {
            true => credential.clone(),
            false => None,
        };
        Finding {
            rule,
            credential,
            peer,
            detail,
            alert,
            suspend,
        }
    }

    /// Alerts (log and audit) and suspension requests for what the rules found.
    fn raise(&self, findings: Vec<Finding>) {
        for f in findings {
            if f.alert {
                let credential = f.credential.as_deref().map_or_else(
                    || "-".to_owned(),
                    |c| privacy::credential_tag(c).to_string(),
                );
                tracing::warn!(
                    rule = f.rule.name(),
                    credential = %credential,
                    peer = %privacy::peer_tag(Some(f.peer)),
                    suspend = f.suspend.is_some(),
                    "anomaly detected"
                );
                if let Some(audit) = &self.audit {
                    audit.record(Event::AnomalyDetected {
                        rule: f.rule.name().to_owned(),
                        credential: f.credential.clone(),
                        peer: Some(f.peer.to_string()),
                        detail: f.detail.clone(),
                    });
                }
            }
            if let (Some(credential), Some(queue)) = (f.suspend, &self.suspensions) {
                // NOTE(privacy): the reason reaches the operational log (the connections it
                // closes log it), so it names no address or identity: the detail is in the
                // audit log's anomaly-detected entry.
                let reason = format!(
                    "supervision: anomaly {} (the audit log has the detail)",
                    f.rule.name()
                );
                if queue.try_send(Suspension { credential, reason }).is_err() {
                    tracing::error!(
                        rule = f.rule.name(),
                        "supervision: suspension queue full or closed, a suspension was dropped"
                    );
                }
            }
        }
    }
}

impl AssociationEvents for Supervisor {
    fn opened(&self, sa: &SecurityAssociation) {
        let findings = self.observe_opened(sa.id, &sa.established.credential_id, sa.peer);
        self.raise(findings);
    }

    fn refused(&self, _listener: &str, peer: SocketAddr, credential: Option<&str>, reason: &str) {
        let findings = self.observe_refused(peer, credential, reason);
        self.raise(findings);
    }

    fn closed(&self, sa: &SecurityAssociation, _reason: &str) {
        self.observe_closed(sa.id, &sa.established.credential_id, sa.requests());
    }
}

/// The queue between the supervisor and the task that suspends.
pub(crate) fn suspension_queue() -> (mpsc::Sender<Suspension>, mpsc::Receiver<Suspension>) {
    mpsc::channel(SUSPENSION_QUEUE)
}

/// Runs the suspensions the supervisor asks for, through [`Cse::withdraw`] (durable,
/// closes the live associations, audited) with actor `supervision`. Holds the CSE weakly:
/// the task ends with it.
pub(crate) fn spawn_suspensions(cse: Weak<Cse>, mut queue: mpsc::Receiver<Suspension>) {
    tokio::spawn(async move {
        while let Some(s) = queue.recv().await {
            let Some(cse) = cse.upgrade() else { return };
            // Already withdrawn (an earlier match, or the admin): nothing to do.
            if cse.revocations().status(&s.credential).is_some() {
                continue;
            }
            if let Err(e) = cse
                .withdraw("supervision", Withdraw::Suspend, &s.credential, &s.reason)
                .await
            {
                tracing::error!(
                    credential = %privacy::credential_tag(&s.credential),
                    error = %e.message,
                    "supervision could not suspend a credential"
                );
            }
        }
    });
}

fn timestamp(t: Option<SystemTime>) -> Value {
    t.map_or(Value::Null, |t| {
        json!(model::time::format(chrono::DateTime::<chrono::Utc>::from(
            t
        )))
    })
}

impl Cse {
    /// The supervisor: per-credential usage and the anomaly rules.
    pub fn supervisor(&self) -> &Arc<Supervisor> {
        &self.supervisor
    }

    /// Per-credential usage for the admin (`GET /.admin/usage[?credential=ID]`): every
    /// credential seen since the CSE started, or one (4004 when it was never seen).
    pub fn credential_usage(&self, credential: Option<&str>) -> Result<Value> {
        let usage = self
            .supervisor
            .usage(&self.associations().list(), credential);
        if let (Some(c), true) = (credential, usage.is_empty()) {
            return Err(Error::not_found(format!(
                "no use of credential '{c}' since the CSE started"
            )));
        }
        let list: Vec<Value> = usage
            .iter()
            .map(|u| {
                json!({
                    "credential": u.credential,
                    "firstUse": timestamp(u.first_use),
                    "lastUse": timestamp(u.last_use),
                    "lastRefused": timestamp(u.last_refused),
                    "live": u.live,
                    "associationsOpened": u.associations_opened,
                    "handshakesRefused": u.handshakes_refused,
                    "requests": u.requests,
                    "peers": u.peers.iter().map(ToString::to_string).collect::<Vec<_>>(),
                })
            })
            .collect();
        Ok(json!({ "usage": list }))
    }
}

#[cfg(test)]
mod tests;
