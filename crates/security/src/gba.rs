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
//! NOTE(gba-blocking): OpenSSL's PSK callback is synchronous, so the Zn query runs inside it,
//! in `block_in_place` on a multi-threaded runtime (the same way a key home derives a PSK).
//! A handshake therefore holds a worker for at most `timeout`; the listener's handshake caps
//! bound how many do so at once.

pub mod zn;

use crate::association::{CredentialBinding, PeerIdentity};
use crate::credentials::{CredentialStore, PskCredential, PskUnavailable, Secret};
use crate::enrolment::{rfc3339, unix};
use crate::revocation::Withdrawal;
use manager::kdf::{BootstrapTransactionId, Fqdn, GbaNafKeyKind, NafId, UaSecurityProtocolId};
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
}

/// One fetched key, until its lifetime ends.
struct Cached {
    key: Secret,
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
}

/// Where [`GbaEvent`]s go (the CSE's audit trail).
pub type GbaEvents = Arc<dyn Fn(&GbaEvent) + Send + Sync>;

/// The NAF side of GBA: asks the BSF for NAF keys and caches them until their lifetime ends.
pub struct GbaNaf {
    config: GbaConfig,
    zn: Arc<dyn ZnSource>,
    cache: Mutex<HashMap<String, Cached>>,
    events: Option<GbaEvents>,
}

impl fmt::Debug for GbaNaf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GbaNaf")
            .field("btid_domain", &self.config.btid_domain.as_str())
            .field("naf", &self.config.naf.fqdn.as_str())
            .field("key", &self.config.key)
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
            events: None,
        }
    }

    /// Reports each fetched key to `events` (the audit trail).
    pub fn with_events(mut self, events: GbaEvents) -> Self {
        self.events = Some(events);
        self
    }

    /// Whether `identity` is a B-TID of this BSF, so the BSF, not the inner store, knows it.
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

    /// The key of `btid` as a handshake at `now` sees it: from the cache while its lifetime
    /// lasts, else from the BSF. `Ok(None)`: the BSF does not know the B-TID.
    pub fn lookup_at(
        &self,
        btid: &str,
        now: SystemTime,
    ) -> Result<Option<PskCredential>, PskUnavailable> {
        let now = unix(now);
        {
            let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            match cache.get(btid) {
                Some(c) if now < c.expires => {
                    return Ok(Some(PskCredential {
                        identity: btid.to_owned(),
                        key: Secret::new(c.key.expose().to_vec()),
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
        let credential = PskCredential {
            identity: btid.to_owned(),
            key: Secret::new(answer.key.expose().to_vec()),
            binding: binding.clone(),
        };
        let holder = match &binding.identity {
            PeerIdentity::Ae(id) | PeerIdentity::Cse(id) => id.clone(),
            PeerIdentity::AllowedAes(list) => list.join(" "),
        };
        self.insert(
            btid,
            Cached {
                key: Secret::new(answer.key.expose().to_vec()),
                expires: answer.expires,
                binding,
            },
            now,
        );
        tracing::info!(expires = %rfc3339(answer.expires), "GBA: NAF key fetched from the BSF");
        if let Some(events) = &self.events {
            events(&GbaEvent::KeyFetched {
                btid: btid.to_owned(),
                holder,
                expires: answer.expires,
            });
        }
        Ok(Some(credential))
    }

    /// The binding of a cached, unexpired B-TID: what a resumed TLS 1.2 session needs. A
    /// resumption never asks the BSF.
    pub fn binding_at(&self, btid: &str, now: SystemTime) -> Option<CredentialBinding> {
        let now = unix(now);
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .get(btid)
            .filter(|c| now < c.expires)
            .map(|c| c.binding.clone())
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
            true => self.naf.lookup_at(identity, SystemTime::now()),
            false => self.inner.lookup_psk(identity),
        }
    }

    fn psk_binding(&self, identity: &str) -> Option<CredentialBinding> {
        match self.naf.is_btid(identity) {
            true => self.naf.binding_at(identity, SystemTime::now()),
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
}
