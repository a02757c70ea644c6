//! Network-provided keys: the CSE as the NAF of the GBA-based provisioning framework
//! (TS-0003 clause 8.3.2.3; trust scenario 1 of the security model).
//!
//! A device that bootstrapped with the network's bootstrap server function (BSF) holds a
//! B-TID and, derived locally from the network's key Ks, a NAF-specific key Ks_(ext/int)_NAF
//! for this CSE. Clause 8.3.2.3 makes that key the Kpsa and the B-TID the KpsaID, so the
//! device opens an ordinary TLS-PSK association with `psk_identity` = B-TID. The CSE has never
//! seen the key: on the first handshake of a B-TID it asks the BSF over the Zn reference point
//! ([`zn`]) for the NAF key of that B-TID and of this NAF, caches it until the key lifetime
//! the BSF gives, and hands it to OpenSSL. No second, unrelated credential exists.
//!
//! [`WithGba`] layers this over another [`CredentialStore`], in the way
//! [`WithProvisioned`](crate::provisioned::WithProvisioned) does: identities whose domain is
//! the BSF's (`...@<btid_domain>`) go to the BSF, everything else to the inner store. Wrap it
//! in a [`Withdrawable`](crate::revocation::Withdrawable) and a B-TID can be revoked like
//! any PSK (Credential-ID `12-<B-TID>`).
//!
//! Failure is closed: a BSF that does not answer, answers late or answers nonsense gives no
//! key, the handshake is refused with that reason, and nothing is cached. An unknown B-TID is
//! an unknown identity; an expired one is a known identity whose key is unavailable.
//!
//! **Edge nodes behind a gateway** (opt-in, [`GbaConfig::edge_nodes`]). A gateway that
//! bootstrapped derives a key for each node behind it from its own NAF key
//! ([`manager::kdf::gba_edge_node_key`]); the node presents `<node>.<gateway B-TID>`
//! ([`EdgeIdentity`]). The CSE gets the gateway's NAF key exactly as for the gateway itself
//! (cache or BSF, same lifetime) and derives the node's key; nothing per node is stored, so
//! the node's key ends with the gateway's. The node is bound to
//! [`GbaConfig::default_binding`] (an Enrolee-ID the BSF gives belongs to the gateway), under
//! its own Credential-ID `12-<node>.<B-TID>`. Withdrawing the gateway's `12-<B-TID>`
//! withdraws its nodes too: [`GbaNaf`] is the
//! [`DerivedCredentials`] rule that says so.
//!
//! NOTE(gba-blocking): OpenSSL's PSK callback is synchronous, so the callback waits for the
//! Zn query, in `block_in_place` on a multi-threaded runtime (the same way a key home derives
//! a PSK), while the query itself runs on the HTTP client's own thread and runtime
//! ([`zn::HttpZn`]), never on the runtime it blocks. A handshake therefore holds a worker for
//! at most `timeout`; the listener's handshake caps bound how many do so at once.

pub mod zn;

use crate::association::{CredentialBinding, PeerIdentity};
use crate::credentials::{CredentialStore, PskCredential, PskUnavailable};
use crate::enrolment::{rfc3339, unix};
use crate::revocation::{DerivedCredentials, Withdrawal};
use keystore::SecretBytes;
use manager::kdf::{
    self, BootstrapTransactionId, EdgeIdentity, Fqdn, GbaNafKeyKind, KdfError, NafId, NafKey,
    UaSecurityProtocolId,
};
use model::clock::Clock;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;
pub use zn::{HttpZn, ZnAnswer, ZnError, ZnSource};

/// The Ua security protocol identifier this CSE's NAF keys are bound to: the shared-key TLS
/// of 3GPP TS 33.222 (TS 33.220 Annex H).
///
/// NOTE(gba-ua): TS-0003 does not name the Ua protocol identifier for the oneM2M TLS-PSK
/// use; we take TS 33.222's shared-key TLS, (0x01,0x00,0x00,0x00,0x02). Device and BSF must
/// use the same value, so it is one constant here and in `scripts/bsf.py`.
pub const UA_TLS_PSK: UaSecurityProtocolId = UaSecurityProtocolId([0x01, 0, 0, 0, 0x02]);

/// Entries kept in the key cache when the configuration names no other bound.
pub const DEFAULT_MAX_CACHED: usize = 1024;

/// The NAF's configuration: which BSF, which NAF key, what a device's association is bound to.
#[derive(Debug, Clone)]
pub struct GbaConfig {
    /// The domain part of the B-TIDs this BSF issues (`<base64 RAND>@<btid_domain>`).
    pub btid_domain: Fqdn,
    /// NAF_Id: the public domain name of this CSE's CSE-ID (clause 8.3.2.3) and the Ua
    /// protocol ([`UA_TLS_PSK`]).
    pub naf: NafId,
    /// Which NAF-specific key is the Kpsa: Ks_NAF (GBA_ME), Ks_ext_NAF or Ks_int_NAF (GBA_U).
    pub key: GbaNafKeyKind,
    /// What an association is bound to when the BSF names no Enrolee-ID for the subscriber
    /// (typically `allowed_aes = ["C*"]`: the CSE assigns the AE-ID and remembers it).
    pub default_binding: CredentialBinding,
    /// The most NAF keys cached at once (the least lasting one goes first when full).
    pub max_cached: usize,
    /// Whether edge-node identities (`<node>.<B-TID>`) are served. Off by default in the
    /// configuration: it lets every bootstrapped gateway mint identities at this CSE. When
    /// off, such an identity is unknown and the BSF is not asked.
    pub edge_nodes: bool,
}

/// One fetched key, until its lifetime ends.
#[derive(Debug)]
struct Cached {
    key: SecretBytes,
    expires: u64,
    binding: CredentialBinding,
}

/// What happened at the NAF, for the audit trail (identifiers only, never a key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GbaEvent {
    /// The BSF gave the NAF key of a B-TID: the CSE now holds a Kpsa whose KpsaID is the
    /// B-TID (Credential-ID `12-<B-TID>`) for the holder named, until `expires`.
    KeyFetched {
        /// The B-TID (also the KeID the key derives from).
        btid: String,
        /// Who the association is bound to (the Enrolee-ID, or the allowed AE-IDs).
        holder: String,
        /// End of the key lifetime (seconds since the Unix epoch).
        expires: u64,
    },
    /// The CSE derived the key of an edge node behind a gateway from the gateway's NAF key:
    /// it holds a Kpsa whose KpsaID is `<node>.<gateway>` (Credential-ID
    /// `12-<node>.<gateway>`) until `expires`, the end of the gateway key's lifetime. Told
    /// once per node and gateway key lifetime, not per handshake.
    EdgeKeyDerived {
        /// The edge node's name.
        node: String,
        /// The gateway's B-TID (the key the edge key derives from).
        gateway: String,
        /// Who the association is bound to (the allowed AE-IDs of the default binding).
        holder: String,
        /// End of the gateway key's lifetime, hence of the edge key's (Unix seconds).
        expires: u64,
    },
}

impl GbaEvent {
    /// The Credential-ID of the key the event is about (`12-<KpsaID>`).
    pub fn credential(&self) -> String {
        match self {
            GbaEvent::KeyFetched { btid, .. } => format!("12-{btid}"),
            GbaEvent::EdgeKeyDerived { node, gateway, .. } => format!("12-{node}.{gateway}"),
        }
    }
}

/// Where [`GbaEvent`]s go (the CSE's audit trail).
pub type GbaEvents = Arc<dyn Fn(&GbaEvent) + Send + Sync>;

/// The NAF side of GBA: asks the BSF for NAF keys and caches them until their lifetime ends.
pub struct GbaNaf {
    config: GbaConfig,
    zn: Arc<dyn ZnSource>,
    cache: Mutex<HashMap<String, Cached>>,
    /// Edge identities already reported, with the gateway key lifetime they were reported
    /// for (identifiers only; bounded by `max_cached`).
    announced: Mutex<HashMap<String, u64>>,
    events: Option<GbaEvents>,
    /// Decides whether a cached key's lifetime has ended.
    clock: Clock,
}

impl fmt::Debug for GbaNaf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GbaNaf")
            .field("btid_domain", &self.config.btid_domain.as_str())
            .field("naf", &self.config.naf.fqdn.as_str())
            .field("key", &self.config.key)
            .field("edge_nodes", &self.config.edge_nodes)
            .field("zn", &self.zn)
            .field("cached", &self.cached())
            .finish()
    }
}

impl GbaNaf {
    /// A NAF that asks `zn` for keys.
    pub fn new(config: GbaConfig, zn: Arc<dyn ZnSource>) -> Self {
        Self {
            config,
            zn,
            cache: Mutex::default(),
            announced: Mutex::default(),
            events: None,
            clock: Clock::system(),
        }
    }

    /// The same NAF, deciding key lifetimes by `clock` (the CSE's).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Reports each fetched key to `events` (the audit trail).
    pub fn with_events(mut self, events: GbaEvents) -> Self {
        self.events = Some(events);
        self
    }

    /// Whether `identity` is in this BSF's domain (a B-TID, or an edge identity behind one),
    /// so the BSF, not the inner store, knows it.
    pub fn is_btid(&self, identity: &str) -> bool {
        identity
            .rsplit_once('@')
            .and_then(|(_, domain)| Fqdn::new(domain).ok())
            .is_some_and(|d| d == self.config.btid_domain)
    }

    /// Number of keys cached now (expired ones not yet evicted included).
    pub fn cached(&self) -> usize {
        self.cache.lock().map(|c| c.len()).unwrap_or_default()
    }

    /// The key of `identity` (a B-TID, or an edge identity when edge nodes are on) as a
    /// handshake at `now` sees it: from the cache while its lifetime lasts, else from the
    /// BSF. `Ok(None)`: an unknown identity (the BSF does not know the B-TID, or edge
    /// identities are off).
    pub fn lookup_at(
        &self,
        identity: &str,
        now: SystemTime,
    ) -> Result<Option<PskCredential>, PskUnavailable> {
        if EdgeIdentity::is_edge_shaped(identity) {
            return self.edge_lookup_at(identity, now);
        }
        Ok(self.naf_key_at(identity, now)?.map(|c| PskCredential {
            identity: identity.to_owned(),
            key: SecretBytes::new(c.key.expose().to_vec()),
            binding: c.binding,
        }))
    }

    /// The NAF key of B-TID `btid` (a copy of the cache entry), fetching it when needed.
    fn naf_key_at(&self, btid: &str, now: SystemTime) -> Result<Option<Cached>, PskUnavailable> {
        let now = unix(now);
        {
            let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            match cache.get(btid) {
                Some(c) if now < c.expires => {
                    return Ok(Some(Cached {
                        key: SecretBytes::new(c.key.expose().to_vec()),
                        expires: c.expires,
                        binding: c.binding.clone(),
                    }))
                }
                // Past its lifetime: gone; the BSF decides whether the B-TID still holds.
                Some(_) => {
                    cache.remove(btid);
                }
                None => {}
            }
        }
        let id = BootstrapTransactionId::new(btid)
            .map_err(|e| PskUnavailable::new(format!("not a usable B-TID: {e}")))?;
        let answer = match blocking(|| self.zn.naf_key(&id, &self.config.naf, self.config.key)) {
            Ok(answer) => answer,
            Err(ZnError::UnknownBtid) => return Ok(None),
            Err(e) => return Err(PskUnavailable::new(format!("the BSF gave no key: {e}"))),
        };
        if answer.expires <= now {
            return Err(PskUnavailable::new(format!(
                "the key lifetime of B-TID {btid} ended at {}",
                rfc3339(answer.expires)
            )));
        }
        let binding = match &answer.enrolee_id {
            Some(ae) => CredentialBinding {
                identity: PeerIdentity::Ae(ae.clone()),
                ..self.config.default_binding.clone()
            },
            None => self.config.default_binding.clone(),
        };
        let fetched = Cached {
            key: SecretBytes::new(answer.key.expose().to_vec()),
            expires: answer.expires,
            binding: binding.clone(),
        };
        self.insert(
            btid,
            Cached {
                key: SecretBytes::new(answer.key.expose().to_vec()),
                expires: answer.expires,
                binding: binding.clone(),
            },
            now,
        );
        tracing::info!(expires = %rfc3339(answer.expires), "GBA: NAF key fetched from the BSF");
        if let Some(events) = &self.events {
            events(&GbaEvent::KeyFetched {
                btid: btid.to_owned(),
                holder: holder(&binding),
                expires: answer.expires,
            });
        }
        Ok(Some(fetched))
    }

    /// The key of an edge identity: the gateway's NAF key (cache or BSF, as for the gateway
    /// itself), then the edge derivation. Nothing is cached per node, so an unauthenticated
    /// peer that names many nodes of a real B-TID fills no cache.
    fn edge_lookup_at(
        &self,
        identity: &str,
        now: SystemTime,
    ) -> Result<Option<PskCredential>, PskUnavailable> {
        if !self.config.edge_nodes {
            tracing::info!(
                "GBA: an edge-node identity, but [gba] edge_nodes is off: unknown PSK identity"
            );
            return Ok(None);
        }
        let edge = EdgeIdentity::parse(identity).map_err(|e| {
            PskUnavailable::new(format!("malformed edge identity: {}", edge_reason(&e)))
        })?;
        let Some(gateway) = self.naf_key_at(edge.gateway().as_str(), now)? else {
            return Ok(None);
        };
        let gateway_key = NafKey::from_slice(gateway.key.expose())
            .map_err(|e| PskUnavailable::new(format!("the gateway's NAF key: {e}")))?;
        let key = kdf::gba_edge_node_key(&gateway_key, edge.gateway(), edge.node())
            .map_err(|e| PskUnavailable::new(format!("edge key derivation: {e}")))?;
        let binding = self.config.default_binding.clone();
        self.announce(&edge, &binding, gateway.expires, unix(now));
        Ok(Some(PskCredential {
            identity: identity.to_owned(),
            key: SecretBytes::new(key.expose().to_vec()),
            binding,
        }))
    }

    /// Reports an edge key once per node and gateway key lifetime (the set is bounded by
    /// `max_cached`; when it is full an edge key may be reported again, never not at all).
    fn announce(&self, edge: &EdgeIdentity, binding: &CredentialBinding, expires: u64, now: u64) {
        let name = edge.to_string();
        {
            let mut seen = self.announced.lock().unwrap_or_else(|p| p.into_inner());
            if seen.get(&name) == Some(&expires) {
                return;
            }
            let max = self.config.max_cached.max(1);
            if seen.len() >= max && !seen.contains_key(&name) {
                seen.retain(|_, e| now < *e);
                if seen.len() >= max {
                    seen.clear();
                }
            }
            seen.insert(name, expires);
        }
        tracing::info!(expires = %rfc3339(expires), "GBA: edge-node key derived from the gateway's NAF key");
        if let Some(events) = &self.events {
            events(&GbaEvent::EdgeKeyDerived {
                node: edge.node().to_string(),
                gateway: edge.gateway().to_string(),
                holder: holder(binding),
                expires,
            });
        }
    }

    /// The binding of a cached, unexpired B-TID, or of an edge node whose gateway's key is
    /// cached and unexpired: what a resumed TLS 1.2 session needs. A resumption never asks
    /// the BSF.
    pub fn binding_at(&self, identity: &str, now: SystemTime) -> Option<CredentialBinding> {
        let (btid, edge) = match EdgeIdentity::is_edge_shaped(identity) {
            false => (identity.to_owned(), false),
            true if self.config.edge_nodes => (
                EdgeIdentity::parse(identity).ok()?.gateway().to_string(),
                true,
            ),
            true => return None,
        };
        let now = unix(now);
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        let gateway = cache.get(&btid).filter(|c| now < c.expires)?;
        Some(match edge {
            true => self.config.default_binding.clone(),
            false => gateway.binding.clone(),
        })
    }

    /// Caches a key; when full, drops expired entries, then the one that expires first.
    fn insert(&self, btid: &str, entry: Cached, now: u64) {
        let max = self.config.max_cached.max(1);
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= max && !cache.contains_key(btid) {
            cache.retain(|_, c| now < c.expires);
        }
        while cache.len() >= max && !cache.contains_key(btid) {
            let Some(first) = cache
                .iter()
                .min_by_key(|(_, c)| c.expires)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            cache.remove(&first);
        }
        cache.insert(btid.to_owned(), entry);
    }
}

/// Who an association is bound to, for the audit trail.
fn holder(binding: &CredentialBinding) -> String {
    match &binding.identity {
        PeerIdentity::Ae(id) | PeerIdentity::Cse(id) => id.clone(),
        PeerIdentity::AllowedAes(list) => list.join(" "),
    }
}

/// Why an edge identity is malformed, without repeating the identity (it is logged already).
fn edge_reason(e: &KdfError) -> String {
    match e {
        KdfError::InvalidIdentifier { what, reason, .. } => format!("{what}: {reason}"),
        other => other.to_string(),
    }
}

/// Withdrawing a gateway's `12-<B-TID>` withdraws its edge nodes' `12-<node>.<B-TID>`. The
/// rule holds for edge identities of this BSF's domain only, so a credential file identity
/// that happens to contain a `.` is never tied to another.
impl DerivedCredentials for GbaNaf {
    fn parent(&self, credential_id: &str) -> Option<String> {
        // GBA identities are KpsaIDs: Credential-ID `12-<KpsaID>`.
        let identity = credential_id.strip_prefix("12-")?;
        if !self.is_btid(identity) || !EdgeIdentity::is_edge_shaped(identity) {
            return None;
        }
        let edge = EdgeIdentity::parse(identity).ok()?;
        Some(format!("12-{}", edge.gateway()))
    }
}

/// Runs a blocking call (the Zn query) from inside the PSK callback without stalling the
/// runtime's other tasks.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

/// A credential store with the BSF's B-TIDs in front of `inner`: B-TIDs of the configured
/// BSF domain are looked up through [`GbaNaf`], every other identity, certificate binding
/// and withdrawal in `inner`.
#[derive(Debug)]
pub struct WithGba {
    inner: Arc<dyn CredentialStore>,
    naf: Arc<GbaNaf>,
}

impl WithGba {
    /// `naf` layered over `inner`.
    pub fn new(inner: Arc<dyn CredentialStore>, naf: Arc<GbaNaf>) -> Self {
        Self { inner, naf }
    }
}

impl CredentialStore for WithGba {
    fn psk(&self, identity: &str) -> Option<PskCredential> {
        self.lookup_psk(identity).ok().flatten()
    }

    fn certificate_binding(&self, credential_id: &str) -> Option<CredentialBinding> {
        self.inner.certificate_binding(credential_id)
    }

    fn withdrawn(&self, credential_id: &str) -> Option<Withdrawal> {
        self.inner.withdrawn(credential_id)
    }

    fn lookup_psk(&self, identity: &str) -> Result<Option<PskCredential>, PskUnavailable> {
        match self.naf.is_btid(identity) {
            true => self.naf.lookup_at(identity, self.naf.clock.system_time()),
            false => self.inner.lookup_psk(identity),
        }
    }

    fn psk_binding(&self, identity: &str) -> Option<CredentialBinding> {
        match self.naf.is_btid(identity) {
            true => self.naf.binding_at(identity, self.naf.clock.system_time()),
            false => self.inner.psk_binding(identity),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credentials::FileCredentials;
    use manager::kdf::NafKey;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, UNIX_EPOCH};

    /// A BSF in memory: one known B-TID, or down.
    #[derive(Debug)]
    struct FakeBsf {
        expires: u64,
        down: std::sync::atomic::AtomicBool,
        asked: AtomicUsize,
    }

    impl ZnSource for FakeBsf {
        fn naf_key(
            &self,
            btid: &BootstrapTransactionId,
            naf: &NafId,
            kind: GbaNafKeyKind,
        ) -> Result<ZnAnswer, ZnError> {
            self.asked.fetch_add(1, Ordering::SeqCst);
            assert_eq!(naf.fqdn.as_str(), "id-in.sp.example");
            assert_eq!(kind, GbaNafKeyKind::KsNaf);
            if self.down.load(Ordering::SeqCst) {
                return Err(ZnError::Unreachable("connection refused".into()));
            }
            match btid.as_str() {
                "AAEC@bsf.sp.example" => Ok(ZnAnswer {
                    key: NafKey::from_bytes([5; 32]),
                    expires: self.expires,
                    enrolee_id: None,
                }),
                "Ae@bsf.sp.example" => Ok(ZnAnswer {
                    key: NafKey::from_bytes([6; 32]),
                    expires: self.expires,
                    enrolee_id: Some("Cgba-1".into()),
                }),
                _ => Err(ZnError::UnknownBtid),
            }
        }
    }

    fn naf(expires: u64, max_cached: usize) -> (Arc<FakeBsf>, GbaNaf) {
        naf_with(expires, max_cached, false)
    }

    fn naf_with(expires: u64, max_cached: usize, edge_nodes: bool) -> (Arc<FakeBsf>, GbaNaf) {
        let bsf = Arc::new(FakeBsf {
            expires,
            down: Default::default(),
            asked: AtomicUsize::new(0),
        });
        let config = GbaConfig {
            btid_domain: Fqdn::new("bsf.sp.example").expect("fqdn"),
            naf: NafId {
                fqdn: Fqdn::new("id-in.sp.example").expect("fqdn"),
                ua_protocol: UA_TLS_PSK,
            },
            key: GbaNafKeyKind::KsNaf,
            default_binding: CredentialBinding {
                identity: PeerIdentity::AllowedAes(vec!["C*".into()]),
                admin: false,
                allowed_apps: vec![],
                level: None,
            },
            max_cached,
            edge_nodes,
        };
        let naf = GbaNaf::new(config, bsf.clone());
        (bsf, naf)
    }

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn keys_are_fetched_once_and_cached_until_their_lifetime() {
        let (bsf, naf) = naf(2_000, 8);
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = events.clone();
        let naf = naf.with_events(Arc::new(move |e: &GbaEvent| {
            sink.lock().expect("lock").push(e.clone())
        }));
        let key = naf
            .lookup_at("AAEC@bsf.sp.example", at(1_000))
            .expect("usable")
            .expect("known");
        assert_eq!(key.key.expose(), &[5; 32]);
        assert_eq!(
            key.binding.identity,
            PeerIdentity::AllowedAes(vec!["C*".into()])
        );
        // From the cache: the BSF is not asked again, even when it is down.
        bsf.down.store(true, Ordering::SeqCst);
        assert!(naf
            .lookup_at("AAEC@bsf.sp.example", at(1_999))
            .expect("cached")
            .is_some());
        assert_eq!(bsf.asked.load(Ordering::SeqCst), 1);
        assert!(naf.binding_at("AAEC@bsf.sp.example", at(1_999)).is_some());
        // At the end of the lifetime the cached key is gone, the BSF is asked (and is down).
        assert!(naf.binding_at("AAEC@bsf.sp.example", at(2_000)).is_none());
        let err = naf
            .lookup_at("AAEC@bsf.sp.example", at(2_000))
            .map(|_| ())
            .expect_err("down");
        assert!(err.to_string().contains("connection refused"), "{err}");
        assert_eq!(naf.cached(), 0, "a failed fetch caches nothing");
        assert_eq!(
            *events.lock().expect("lock"),
            vec![GbaEvent::KeyFetched {
                btid: "AAEC@bsf.sp.example".into(),
                holder: "C*".into(),
                expires: 2_000
            }]
        );
    }

    #[test]
    fn unknown_expired_and_unreachable_are_told_apart_and_never_cached() {
        let (bsf, naf) = naf(1_000, 8);
        assert!(matches!(
            naf.lookup_at("zzzz@bsf.sp.example", at(10)),
            Ok(None)
        ));
        let err = naf
            .lookup_at("AAEC@bsf.sp.example", at(1_000))
            .map(|_| ())
            .expect_err("expired");
        assert!(err.to_string().contains("key lifetime"), "{err}");
        bsf.down.store(true, Ordering::SeqCst);
        assert!(naf.lookup_at("AAEC@bsf.sp.example", at(10)).is_err());
        assert!(naf.lookup_at("no-domain", at(10)).is_err());
        assert_eq!(naf.cached(), 0);
    }

    #[test]
    fn the_bsf_names_the_enrolee_and_the_cache_is_bounded() {
        let (_bsf, naf) = naf(5_000, 1);
        let found = naf
            .lookup_at("Ae@bsf.sp.example", at(10))
            .expect("ok")
            .expect("known");
        assert_eq!(found.binding.identity, PeerIdentity::Ae("Cgba-1".into()));
        assert!(!found.binding.admin);
        naf.lookup_at("AAEC@bsf.sp.example", at(10))
            .expect("ok")
            .expect("known");
        assert_eq!(naf.cached(), 1, "bounded by max_cached");
    }

    #[test]
    fn only_the_bsf_domain_goes_to_the_bsf() {
        let (bsf, naf) = naf(u64::MAX, 8);
        let file = FileCredentials::parse(
            "[[psk]]\nidentity = \"f@sp.example\"\nkey_hex = \"00112233445566778899aabbccddeeff\"\nae = \"Cf\"\n",
        )
        .expect("file");
        let store = WithGba::new(Arc::new(file), Arc::new(naf));
        assert!(store.lookup_psk("f@sp.example").expect("ok").is_some());
        assert!(matches!(store.lookup_psk("x@BSF.sp.example"), Ok(None)));
        assert_eq!(bsf.asked.load(Ordering::SeqCst), 1);
        assert!(store.psk("AAEC@bsf.sp.example").is_some());
        assert!(store.psk_binding("AAEC@bsf.sp.example").is_some());
        assert!(store.psk_binding("f@sp.example").is_some());
    }

    fn recorded(naf: GbaNaf) -> (GbaNaf, Arc<Mutex<Vec<GbaEvent>>>) {
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = events.clone();
        let naf = naf.with_events(Arc::new(move |e: &GbaEvent| {
            sink.lock().expect("lock").push(e.clone())
        }));
        (naf, events)
    }

    const METER: &str = "meter-7.AAEC@bsf.sp.example";

    /// The key the gateway (`m2m gba extend`) derives for `node` from its own NAF key.
    fn gateway_side(gateway_key: [u8; 32], btid: &str, node: &str) -> [u8; 32] {
        *kdf::gba_edge_node_key(
            &NafKey::from_bytes(gateway_key),
            &BootstrapTransactionId::new(btid).expect("btid"),
            &kdf::EdgeNodeName::new(node).expect("name"),
        )
        .expect("derive")
        .expose()
    }

    #[test]
    fn edge_keys_derive_from_the_gateway_key_and_end_with_it() {
        let (bsf, naf) = naf_with(2_000, 8, true);
        let (naf, events) = recorded(naf);
        let found = naf.lookup_at(METER, at(1_000)).expect("ok").expect("known");
        assert_eq!(found.identity, METER);
        assert_eq!(
            found.key.expose(),
            gateway_side([5; 32], "AAEC@bsf.sp.example", "meter-7")
        );
        assert_ne!(found.key.expose(), &[5; 32], "not the gateway's key");
        assert_eq!(
            found.binding.identity,
            PeerIdentity::AllowedAes(vec!["C*".into()])
        );
        // Another node and the same node again: the gateway key is cached, no BSF query,
        // and each node is reported once.
        let other = naf
            .lookup_at("meter-8.AAEC@bsf.sp.example", at(1_001))
            .expect("ok")
            .expect("known");
        assert!(!other.key.ct_eq(&found.key));
        naf.lookup_at(METER, at(1_002)).expect("ok").expect("known");
        assert!(naf
            .lookup_at("AAEC@bsf.sp.example", at(1_003))
            .expect("ok")
            .is_some());
        assert_eq!(bsf.asked.load(Ordering::SeqCst), 1);
        assert_eq!(naf.cached(), 1, "only the gateway's key is cached");
        assert_eq!(
            naf.binding_at(METER, at(1_999)).map(|b| b.identity),
            Some(PeerIdentity::AllowedAes(vec!["C*".into()]))
        );
        // The gateway's lifetime ends: the edge key with it.
        assert!(naf.binding_at(METER, at(2_000)).is_none());
        bsf.down.store(true, Ordering::SeqCst);
        assert!(naf.lookup_at(METER, at(2_000)).is_err());
        let events = events.lock().expect("lock").clone();
        assert_eq!(
            events,
            vec![
                GbaEvent::KeyFetched {
                    btid: "AAEC@bsf.sp.example".into(),
                    holder: "C*".into(),
                    expires: 2_000
                },
                GbaEvent::EdgeKeyDerived {
                    node: "meter-7".into(),
                    gateway: "AAEC@bsf.sp.example".into(),
                    holder: "C*".into(),
                    expires: 2_000
                },
                GbaEvent::EdgeKeyDerived {
                    node: "meter-8".into(),
                    gateway: "AAEC@bsf.sp.example".into(),
                    holder: "C*".into(),
                    expires: 2_000
                },
            ]
        );
        assert_eq!(events[1].credential(), format!("12-{METER}"));
        assert!(!format!("{events:?}").contains("5, 5"), "never a key");
    }

    #[test]
    fn an_edge_node_does_not_inherit_the_gateways_enrolee_id() {
        let (_bsf, naf) = naf_with(5_000, 8, true);
        let gateway = naf
            .lookup_at("Ae@bsf.sp.example", at(10))
            .expect("ok")
            .expect("known");
        assert_eq!(gateway.binding.identity, PeerIdentity::Ae("Cgba-1".into()));
        let node = naf
            .lookup_at("n.Ae@bsf.sp.example", at(10))
            .expect("ok")
            .expect("known");
        assert_eq!(
            node.binding.identity,
            PeerIdentity::AllowedAes(vec!["C*".into()])
        );
        assert_eq!(
            node.key.expose(),
            gateway_side([6; 32], "Ae@bsf.sp.example", "n")
        );
        assert_eq!(
            naf.binding_at("n.Ae@bsf.sp.example", at(10))
                .map(|b| b.identity),
            Some(PeerIdentity::AllowedAes(vec!["C*".into()]))
        );
    }

    #[test]
    fn edge_identities_are_unknown_when_disabled_and_refused_when_malformed() {
        let (bsf, naf) = naf_with(5_000, 8, false);
        let (naf, events) = recorded(naf);
        assert!(matches!(naf.lookup_at(METER, at(10)), Ok(None)));
        assert!(matches!(
            naf.lookup_at("a.b.c@bsf.sp.example", at(10)),
            Ok(None)
        ));
        assert_eq!(bsf.asked.load(Ordering::SeqCst), 0, "the BSF is not asked");
        naf.lookup_at("AAEC@bsf.sp.example", at(10))
            .expect("ok")
            .expect("known");
        assert!(naf.binding_at(METER, at(10)).is_none());
        assert_eq!(
            events.lock().expect("lock").len(),
            1,
            "the gateway's key only"
        );

        let (bsf, naf) = naf_with(5_000, 8, true);
        for bad in [
            "a.b.AAEC@bsf.sp.example",
            ".AAEC@bsf.sp.example",
            "meter!.AAEC@bsf.sp.example",
            "meter.@bsf.sp.example",
            &format!("{}.AAEC@bsf.sp.example", "n".repeat(65)),
        ] {
            let err = naf.lookup_at(bad, at(10)).map(|_| ()).expect_err(bad);
            assert!(
                err.to_string().contains("malformed edge identity"),
                "{bad}: {err}"
            );
            assert!(naf.binding_at(bad, at(10)).is_none());
        }
        assert_eq!(
            bsf.asked.load(Ordering::SeqCst),
            0,
            "malformed: the BSF is not asked"
        );
        // A well-formed node behind a B-TID the BSF does not know: unknown.
        assert!(matches!(
            naf.lookup_at("n.zzzz@bsf.sp.example", at(10)),
            Ok(None)
        ));
        assert_eq!(naf.cached(), 0);
    }

    #[test]
    fn withdrawing_the_gateway_withdraws_its_edge_nodes_only() {
        use crate::revocation::{Revocations, Withdrawable};
        let (_bsf, naf) = naf_with(u64::MAX, 8, true);
        let naf = Arc::new(naf);
        let revocations = Arc::new(Revocations::default());
        revocations.set_derived(Some(naf.clone()));
        let file = FileCredentials::parse(
            "[[psk]]\nidentity = \"n.AAEC@sp.example\"\nkey_hex = \"00112233445566778899aabbccddeeff\"\nae = \"Cf\"\n",
        )
        .expect("file");
        let store = Withdrawable::new(
            Arc::new(WithGba::new(Arc::new(file), naf.clone())),
            revocations.clone(),
        );
        let sibling = "meter-8.AAEC@bsf.sp.example";
        let elsewhere = "meter-7.Ae@bsf.sp.example";
        for id in [METER, sibling, elsewhere, "AAEC@bsf.sp.example"] {
            assert!(store.lookup_psk(id).expect("ok").is_some(), "{id}");
        }
        // One node revoked: only that node.
        revocations
            .revoke(&format!("12-{METER}"), "lost")
            .expect("revoke");
        assert!(store.lookup_psk(METER).expect("ok").is_none());
        assert!(store.lookup_psk(sibling).expect("ok").is_some());
        assert!(store
            .lookup_psk("AAEC@bsf.sp.example")
            .expect("ok")
            .is_some());
        // The gateway revoked: it and every node behind it, not another gateway's nodes, and
        // not a file identity outside the BSF's domain that merely looks alike.
        revocations
            .revoke("12-AAEC@bsf.sp.example", "stolen")
            .expect("revoke");
        assert!(store
            .lookup_psk("AAEC@bsf.sp.example")
            .expect("ok")
            .is_none());
        assert!(store.lookup_psk(sibling).expect("ok").is_none());
        assert!(store.psk_binding(sibling).is_none(), "no resumption either");
        let w = store
            .withdrawn(&format!("12-{sibling}"))
            .expect("withdrawn");
        assert!(w.reason.contains("12-AAEC@bsf.sp.example"), "{}", w.reason);
        assert!(store.lookup_psk(elsewhere).expect("ok").is_some());
        revocations
            .revoke("12-AAEC@sp.example", "x")
            .expect("revoke");
        assert!(store.lookup_psk("n.AAEC@sp.example").expect("ok").is_some());
        assert!(revocations.covers("12-AAEC@bsf.sp.example", &format!("12-{sibling}")));
        assert!(!revocations.covers("12-AAEC@sp.example", "12-n.AAEC@sp.example"));
        assert!(!revocations.covers(&format!("12-{METER}"), "12-AAEC@bsf.sp.example"));
    }
}
