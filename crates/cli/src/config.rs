//! The configuration file: a raw stage (TOML read with serde, unknown keys refused, values
//! checked without touching the system) and a resolved stage with the settings each crate
//! takes. Every option is documented in `docs/configuration.md`; a test keeps the two equal.

use crate::keyhomes::{KeyHomeError, KeyHomes, KeyRef, KeystoreSection};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The whole file. Every section and every key is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Identity and behaviour of the CSE.
    #[serde(default)]
    pub cse: CseSection,
    /// The HTTP listener.
    #[serde(default)]
    pub http: HttpSection,
    /// The store.
    #[serde(default)]
    pub store: StoreSection,
    /// Notification delivery.
    #[serde(default)]
    pub notifications: NotificationSection,
    /// Polling channels of request-unreachable AEs.
    #[serde(default)]
    pub polling: PollingSection,
    /// Non-blocking requests (`rt` 1 and 2) and their `<request>` resources.
    #[serde(default)]
    pub non_blocking: NonBlockingSection,
    /// Logging.
    #[serde(default)]
    pub log: LogSection,
    /// Credentials and the admin rule.
    #[serde(default)]
    pub security: SecuritySection,
    /// TLS listeners (security associations), any number.
    #[serde(default)]
    pub tls: Vec<TlsSection>,
    /// Key homes (levels 1-3) and the minimum level per key role.
    #[serde(default)]
    pub keystore: KeystoreSection,
    /// The audit log of security events.
    #[serde(default)]
    pub audit: AuditSection,
    /// Where the real identities behind pseudonyms are kept.
    #[serde(default)]
    pub privacy: PrivacySection,
    /// The enrolment function (MEF) and its listener.
    #[serde(default)]
    pub enrolment: EnrolmentSection,
    /// Network-provided keys: the BSF the CSE asks for GBA NAF keys (TS-0003 8.3.2.3).
    #[serde(default)]
    pub gba: GbaSection,
    /// Tokens and DAS consultation (TS-0003 clause 7.3).
    #[serde(default)]
    pub dynamic_authorization: DynamicAuthorizationSection,
    /// Token issuers the CSE trusts, any number.
    #[serde(default)]
    pub token_issuer: Vec<TokenIssuerSection>,
    /// Supervision of credential use: anomaly rules, alerts, automatic suspension.
    #[serde(default)]
    pub supervision: SupervisionSection,
    /// The key distribution function between applications (MAF).
    #[serde(default)]
    pub maf: MafSection,
}

/// `[maf]`: the CSE hosts a MAF that distributes symmetric keys between applications
/// (TS-0003 clause 8.8; docs/security.md, "Keys between applications (MAF)").
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MafSection {
    /// Whether the MAF answers (`/.maf/...`); default false.
    pub enabled: Option<bool>,
    /// Longest lifetime of a registered key, seconds (default one day).
    pub max_lifetime_secs: Option<u64>,
    /// Registrations kept in all (default 10000).
    pub max_keys: Option<usize>,
    /// Registrations kept per registering AE (default 64).
    pub max_keys_per_source: Option<usize>,
}

/// The resolved `[maf]` section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MafSettings {
    /// Longest lifetime of a registered key.
    pub max_lifetime: Duration,
    /// Memory bounds of the registrations.
    pub limits: security::maf_store::Limits,
}

/// Default longest lifetime of a MAF key: one day.
pub const DEFAULT_MAF_LIFETIME_SECS: u64 = 24 * 3600;

/// The longest `[[tls]] session_lifetime_secs`: a day (OpenSSL's default is two hours).
pub const MAX_SESSION_LIFETIME_SECS: u64 = 24 * 3600;

impl MafSection {
    fn resolve(self) -> Result<Option<MafSettings>, ConfigError> {
        let bad = |why: &str| ConfigError::Invalid(format!("[maf] {why}"));
        if !self.enabled.unwrap_or(false) {
            return Ok(None);
        }
        let secs = self.max_lifetime_secs.unwrap_or(DEFAULT_MAF_LIFETIME_SECS);
        if secs == 0 {
            return Err(bad("max_lifetime_secs must be at least 1"));
        }
        let mut limits = security::maf_store::Limits::default();
        for (name, value, target) in [
            ("max_keys", self.max_keys, &mut limits.max_keys),
            (
                "max_keys_per_source",
                self.max_keys_per_source,
                &mut limits.max_per_source,
            ),
        ] {
            match value {
                None => {}
                Some(v) if (1..=1 << 20).contains(&v) => *target = v,
                Some(_) => return Err(bad(&format!("{name} must be between 1 and 1048576"))),
            }
        }
        Ok(Some(MafSettings {
            max_lifetime: Duration::from_secs(secs),
            limits,
        }))
    }
}

/// `[supervision]` (docs/security.md, "Supervision").
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SupervisionSection {
    /// Alert when one credential is live from two peer addresses at once.
    pub concurrent_peers: Option<bool>,
    /// Refused handshakes from one address within the window that alert; 0: off.
    pub failed_handshakes: Option<u32>,
    /// The window of `failed_handshakes`, seconds.
    pub failed_handshakes_window_secs: Option<u64>,
    /// At most one alert per rule and subject in this interval, seconds.
    pub alert_interval_secs: Option<u64>,
    /// Rules whose match also suspends the credential.
    pub suspend_on: Option<Vec<String>>,
    /// Distinct peer addresses remembered per credential.
    pub usage_peers: Option<usize>,
    /// Credentials whose usage is kept.
    pub max_credentials: Option<usize>,
    /// Addresses whose failed handshakes are counted.
    pub max_addresses: Option<usize>,
}

impl SupervisionSection {
    fn resolve(self) -> Result<cse::security_manager::supervision::Settings, ConfigError> {
        use cse::security_manager::supervision::{Rule, Settings, MAX_FAILED_HANDSHAKES};
        let bad = |why: String| ConfigError::Invalid(format!("[supervision] {why}"));
        let mut s = Settings::default();
        if let Some(on) = self.concurrent_peers {
            s.concurrent_peers = on;
        }
        if let Some(n) = self.failed_handshakes {
            if n > MAX_FAILED_HANDSHAKES {
                return Err(bad(format!(
                    "failed_handshakes must be at most {MAX_FAILED_HANDSHAKES}"
                )));
            }
            s.failed_handshakes = n;
        }
        let secs = |name: &str, v: Option<u64>, default: Duration| match v {
            None => Ok(default),
            Some(0) => Err(bad(format!("{name} must be at least 1"))),
            Some(v) => Ok(Duration::from_secs(v)),
        };
        s.failed_handshakes_window = secs(
            "failed_handshakes_window_secs",
            self.failed_handshakes_window_secs,
            s.failed_handshakes_window,
        )?;
        s.alert_interval = secs(
            "alert_interval_secs",
            self.alert_interval_secs,
            s.alert_interval,
        )?;
        for name in self.suspend_on.unwrap_or_default() {
            let rule = Rule::from_name(&name).ok_or_else(|| {
                let known: Vec<&str> = Rule::ALL.iter().map(|r| r.name()).collect();
                bad(format!(
                    "suspend_on: unknown rule '{name}' ({})",
                    known.join(", ")
                ))
            })?;
            if !s.suspend_on.contains(&rule) {
                s.suspend_on.push(rule);
            }
        }
        for (name, value, target, max) in [
            ("usage_peers", self.usage_peers, &mut s.usage_peers, 64),
            (
                "max_credentials",
                self.max_credentials,
                &mut s.max_credentials,
                1 << 20,
            ),
            (
                "max_addresses",
                self.max_addresses,
                &mut s.max_addresses,
                1 << 20,
            ),
        ] {
            match value {
                None => {}
                Some(v) if (1..=max).contains(&v) => *target = v,
                Some(_) => return Err(bad(format!("{name} must be between 1 and {max}"))),
            }
        }
        Ok(s)
    }
}

/// `[dynamic_authorization]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DynamicAuthorizationSection {
    /// Timeout of one DAS consultation, milliseconds.
    pub timeout_ms: Option<u64>,
    /// Longest a DAS grant is kept, seconds.
    pub max_grant_secs: Option<u64>,
    /// The DAS URLs the CSE may consult; none by default.
    pub das_urls: Option<Vec<String>>,
    /// The remote PDP (`<authorizationDecision>`) URLs an ACP's `adri` may name; none by
    /// default.
    pub pdp_urls: Option<Vec<String>>,
    /// The remote PRP (`<authorizationPolicy>`) URLs an ACP's `apri` may name; none by
    /// default.
    pub prp_urls: Option<Vec<String>>,
    /// The remote PIP (`<authorizationInformation>`) URLs an ACP's `airi` may name; none
    /// by default.
    pub pip_urls: Option<Vec<String>>,
}

/// `[[token_issuer]]`: one trusted issuer and its key, exactly one of the two.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenIssuerSection {
    /// The issuer's name, as in the tokens' `iss`.
    pub name: String,
    /// ES256: its public key (PEM).
    pub public_key: Option<PathBuf>,
    /// HS256: a file with the shared secret (at least 32 bytes, mode 600).
    pub secret_file: Option<PathBuf>,
}

impl TokenIssuerSection {
    /// Reads the key into `issuers` (the binary does this before it listens).
    pub fn load(&self, issuers: &mut security::token::Issuers) -> Result<(), ConfigError> {
        let r = match (&self.public_key, &self.secret_file) {
            (Some(pem), None) => issuers.load_es256_file(&self.name, pem),
            (None, Some(secret)) => issuers.load_hs256_file(&self.name, secret),
            _ => {
                return Err(ConfigError::Invalid(format!(
                    "token_issuer '{}' needs exactly one of public_key and secret_file",
                    self.name
                )))
            }
        };
        r.map_err(|e| ConfigError::Invalid(e.to_string()))
    }
}

mod device;
pub use device::{DeviceEnrolmentSettings, DeviceEntry, DEFAULT_DEVICE_CERT_DAYS};

/// `[enrolment]`: the CSE hosts a MEF (TS-0003 clause 8.3.2.1, pre-provisioned enrolee keys).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrolmentSection {
    /// Listen address of the enrolment listener (TLS-PSK with the enrolee keys).
    pub listen: Option<SocketAddr>,
    /// The enrolee key file (`[[enrolee]]` entries, mode 600).
    pub enrolees: Option<PathBuf>,
    /// Lifetime of an enrolled pre-shared key, seconds (default 30 days).
    pub lifetime_secs: Option<u64>,
    /// Whether withdrawing an enrolee key withdraws the keys it enrolled (default false).
    pub withdraw_enrolled: Option<bool>,
    /// `[[enrolment.target]]`: which SUIDs each Enrolment Target may fetch.
    #[serde(default)]
    pub target: Vec<EnrolmentTargetSection>,
    /// Listen address of the device enrolment listener (mutual TLS, device certificates).
    pub device_listen: Option<SocketAddr>,
    /// The manufacturer CAs device certificates must chain to.
    #[serde(default)]
    pub device_cas: Vec<PathBuf>,
    /// The manufacturers' CRLs (PEM or DER): a device certificate they revoke is refused.
    #[serde(default)]
    pub device_crls: Vec<PathBuf>,
    /// Whether any device certificate gets a fresh random C AE-ID.
    pub device_any: Option<bool>,
    /// Validity of an enrolled certificate, days (default 90).
    pub device_days: Option<u64>,
    /// Device certificates by fingerprint and their AE-IDs.
    #[serde(default)]
    pub device: Vec<device::DeviceEntry>,
}

/// `[[enrolment.target]]`: an Enrolment Target and the SUIDs of the usage-constrained keys it
/// may fetch (`cse::security_manager::enrolment::fetch`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrolmentTargetSection {
    /// The target's AE-ID or CSE-ID.
    pub id: String,
    /// SUIDs 21-25.
    pub suids: Vec<u8>,
}

impl EnrolmentTargetSection {
    fn resolve(self) -> Result<cse::security_manager::enrolment::fetch::TargetRule, ConfigError> {
        if self.id.trim().is_empty()
            || self.suids.is_empty()
            || self.suids.iter().any(|s| !(21..=25).contains(s))
        {
            return Err(ConfigError::Invalid(format!(
                "[[enrolment.target]] {:?}: needs an id and suids among 21-25",
                self.id
            )));
        }
        Ok(cse::security_manager::enrolment::fetch::TargetRule {
            id: self.id,
            suids: self.suids,
        })
    }
}

/// The resolved `[enrolment]` section.
#[derive(Debug, Clone)]
pub struct EnrolmentSettings {
    /// Where the enrolment listener binds.
    pub listen: SocketAddr,
    /// The enrolee key file.
    pub enrolees: PathBuf,
    /// Lifetime of an enrolled key (never beyond its enrolee key's expiry).
    pub lifetime: Duration,
    /// Which SUIDs each Enrolment Target may fetch.
    pub targets: Vec<cse::security_manager::enrolment::fetch::TargetRule>,
    /// Withdrawing an enrolee key (`10-<KpmID>`) withdraws the keys it enrolled.
    pub withdraw_enrolled: bool,
}

/// Default lifetime of an enrolled key: 30 days.
pub const DEFAULT_ENROLLED_LIFETIME_SECS: u64 = 30 * 24 * 3600;

impl EnrolmentSection {
    fn resolve(self) -> Result<Option<EnrolmentSettings>, ConfigError> {
        match (self.listen, self.enrolees) {
            (None, None)
                if self.lifetime_secs.is_none()
                    && self.withdraw_enrolled.is_none()
                    && self.target.is_empty() =>
            {
                Ok(None)
            }
            (Some(listen), Some(enrolees)) => {
                let secs = self.lifetime_secs.unwrap_or(DEFAULT_ENROLLED_LIFETIME_SECS);
                if secs == 0 {
                    return Err(ConfigError::Invalid(
                        "enrolment.lifetime_secs must be at least 1".into(),
                    ));
                }
                let targets = self
                    .target
                    .into_iter()
                    .map(EnrolmentTargetSection::resolve)
                    .collect::<Result<_, _>>()?;
                Ok(Some(EnrolmentSettings {
                    listen,
                    enrolees,
                    lifetime: Duration::from_secs(secs),
                    targets,
                    withdraw_enrolled: self.withdraw_enrolled.unwrap_or(false),
                }))
            }
            _ => Err(ConfigError::Invalid(
                "[enrolment] needs both listen and enrolees".into(),
            )),
        }
    }
}

/// `[gba]`: network-provided keys (TS-0003 clause 8.3.2.3). A device presents its B-TID as
/// the PSK identity on a PSK listener; the CSE, as the NAF, asks the BSF for the key.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GbaSection {
    /// The BSF's Zn URL (`http://` to a loopback address: the answer holds a key).
    pub bsf_url: Option<String>,
    /// The domain of the B-TIDs that BSF issues (`<base64 RAND>@<btid_domain>`).
    pub btid_domain: Option<String>,
    /// How long a Zn query may take, milliseconds (default 2000); then the handshake fails.
    pub timeout_ms: Option<u64>,
    /// Which NAF key is the Kpsa: `ks_naf` (default), `ks_ext_naf` or `ks_int_naf`.
    pub key: Option<String>,
    /// What an association is bound to when the BSF names no Enrolee-ID (default `["C*"]`).
    pub allowed_aes: Option<Vec<String>>,
    /// The most NAF keys cached at once (default 1024).
    pub max_cached: Option<usize>,
    /// Serve edge nodes behind bootstrapped gateways (`<node>.<B-TID>`), default false: it
    /// lets any gateway mint identities at this CSE, so the operator opts in.
    pub edge_nodes: Option<bool>,
}

/// The resolved `[gba]` section.
#[derive(Debug, Clone)]
pub struct GbaSettings {
    /// The BSF's URL.
    pub bsf_url: String,
    /// The B-TID domain.
    pub btid_domain: String,
    /// The Zn timeout.
    pub timeout: Duration,
    /// The NAF key kind.
    pub key: manager::kdf::GbaNafKeyKind,
    /// The default binding's allowed AE-IDs.
    pub allowed_aes: Vec<String>,
    /// The cache bound.
    pub max_cached: usize,
    /// Whether edge-node identities are served.
    pub edge_nodes: bool,
}

impl GbaSection {
    fn resolve(self) -> Result<Option<GbaSettings>, ConfigError> {
        let invalid = |m: String| ConfigError::Invalid(format!("[gba] {m}"));
        let (bsf_url, btid_domain) = match (self.bsf_url, self.btid_domain) {
            (None, None) => return Ok(None),
            (Some(u), Some(d)) => (u, d),
            _ => return Err(invalid("needs both bsf_url and btid_domain".into())),
        };
        security::gba::HttpZn::new(&bsf_url, Duration::from_secs(1))
            .map_err(|m| invalid(format!("bsf_url: {m}")))?;
        manager::kdf::Fqdn::new(&btid_domain).map_err(|e| invalid(format!("btid_domain: {e}")))?;
        let timeout_ms = self.timeout_ms.unwrap_or(2000);
        if timeout_ms == 0 {
            return Err(invalid("timeout_ms must be at least 1".into()));
        }
        let key = self.key.as_deref().unwrap_or("ks_naf");
        let key = security::gba::zn::key_kind(key).ok_or_else(|| {
            invalid(format!(
                "key = {key:?}: use ks_naf, ks_ext_naf or ks_int_naf"
            ))
        })?;
        let allowed_aes = self.allowed_aes.unwrap_or_else(|| vec!["C*".into()]);
        if allowed_aes.is_empty() {
            return Err(invalid("allowed_aes must not be empty".into()));
        }
        let max_cached = self.max_cached.unwrap_or(security::gba::DEFAULT_MAX_CACHED);
        if max_cached == 0 {
            return Err(invalid("max_cached must be at least 1".into()));
        }
        Ok(Some(GbaSettings {
            bsf_url,
            btid_domain,
            timeout: Duration::from_millis(timeout_ms),
            key,
            allowed_aes,
            max_cached,
            edge_nodes: self.edge_nodes.unwrap_or(false),
        }))
    }
}

/// `[privacy]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrivacySection {
    /// An HMAC key (role `pseudonym-mapping`) in a key home; default: a level-1 home in the
    /// data folder, made at first start.
    pub mapping_key: Option<KeyRef>,
    /// Whether each notification target sees its own alias of every AE-ID.
    pub per_target_pseudonyms: Option<bool>,
    /// Shortest time between two AE-ID rotations over one credential, seconds.
    pub rotation_interval_secs: Option<u64>,
}

/// `[audit]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditSection {
    /// Whether the CSE keeps an audit log.
    pub enabled: Option<bool>,
    /// Where (default: `audit.log` in the data folder).
    pub file: Option<PathBuf>,
    /// An ECDSA key (role `audit-log`) in a key home that signs every entry.
    pub signing_key: Option<KeyRef>,
    /// Refused associations are counted per source and reason over this many seconds (in
    /// the audit log and the process log) rather than written one by one.
    pub refusal_window_secs: Option<u64>,
    /// The log is closed into a segment when it reaches this many bytes.
    pub segment_bytes: Option<u64>,
    /// Closed segments kept; the oldest beyond are removed behind the signed anchor
    /// (0: keep every segment).
    pub keep_segments: Option<usize>,
    /// Where the checkpoint (the signed last entry on disk) is kept (default: the log's
    /// path with `.head` appended).
    pub head_file: Option<PathBuf>,
    /// Where the checkpoint is anchored beyond the reach of whoever can rewrite the files:
    /// a TPM NV counter (`{ home = "tpm", id = "0x01800100" }`) or a PKCS#11 data object
    /// (`{ home = "pkcs11", id = "audit-head" }`). Needs `signing_key`.
    pub head_anchor: Option<crate::keyhomes::AnchorRef>,
    /// Shortest time between two anchorings for ordinary entries, seconds (withdrawals and
    /// administrative actions are anchored at once).
    pub anchor_interval_secs: Option<u64>,
}

/// Where the audit log goes, who signs it, and how much of it is kept.
#[derive(Debug, Clone)]
pub struct AuditSettings {
    /// The log file.
    pub file: PathBuf,
    /// The signing key, if entries are signed.
    pub signing_key: Option<KeyRef>,
    /// Segment size, retention and the checkpoint file.
    pub layout: manager::audit::Layout,
    /// Where the checkpoint is anchored, if anywhere.
    pub head_anchor: Option<crate::keyhomes::AnchorRef>,
    /// Shortest time between two anchorings for ordinary entries.
    pub anchor_interval: std::time::Duration,
}

/// `[security]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecuritySection {
    /// Credential file: PSKs and certificate bindings (mode 600).
    pub credentials: Option<PathBuf>,
    /// Honour the admin originator only over an admin credential's association.
    pub admin_requires_association: Option<bool>,
}

/// `[[tls]]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    /// Listener name (unique).
    pub name: Option<String>,
    /// Listen address.
    pub listen: Option<SocketAddr>,
    /// Frameworks accepted: "certificate", "psk".
    pub frameworks: Option<Vec<String>>,
    /// Lowest TLS version: "1.2" or "1.3".
    pub min_version: Option<String>,
    /// PEM certificate chain of the CSE, leaf first.
    pub certificate: Option<PathBuf>,
    /// PEM private key of the CSE.
    pub private_key: Option<PathBuf>,
    /// Or the CSE's private key in a key home (`{ home = "pkcs11", id = "tls" }`).
    pub key: Option<KeyRef>,
    /// PEM trust anchors for client certificates.
    pub trust_anchors: Option<Vec<PathBuf>>,
    /// Certificate revocation lists.
    pub crls: Option<Vec<PathBuf>>,
    /// Handshake timeout, milliseconds.
    pub handshake_timeout_ms: Option<u64>,
    /// Concurrent handshakes, all peers.
    pub max_handshakes: Option<usize>,
    /// Concurrent handshakes from one IP address.
    pub max_handshakes_per_ip: Option<usize>,
    /// Session resumption (tickets and cache).
    pub session_resumption: Option<bool>,
    /// How long a session may be resumed, seconds.
    pub session_lifetime_secs: Option<u64>,
    /// Restriction of the cipher suites offered (IANA names).
    pub suites: Option<Vec<String>>,
}

/// `[cse]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CseSection {
    /// CSE-ID without leading slash.
    pub cse_id: Option<String>,
    /// CSEBase resource name.
    pub name: Option<String>,
    /// M2M Service Provider ID.
    pub sp_id: Option<String>,
    /// Admin originator.
    pub admin: Option<String>,
    /// Points of access advertised in the CSEBase.
    pub poa: Option<Vec<String>>,
    /// Default lifetime of resources created without `et`, seconds.
    pub default_expiration_secs: Option<u64>,
    /// Largest content instance, bytes.
    pub max_content_size: Option<u64>,
    /// Most results of one discovery.
    pub discovery_limit: Option<u64>,
    /// Most child resources one RETRIEVE result embeds or references.
    pub result_limit: Option<u64>,
    /// Most bytes of resources one result embeds.
    pub result_max_bytes: Option<u64>,
    /// Expiry sweep period, milliseconds.
    pub expiry_check_ms: Option<u64>,
}

/// `[http]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSection {
    /// Listen address.
    pub listen: Option<SocketAddr>,
    /// Largest request body, bytes.
    pub max_body_bytes: Option<usize>,
    /// Largest request head, bytes.
    pub max_header_bytes: Option<usize>,
    /// Most header fields per request.
    pub max_headers: Option<usize>,
    /// Seconds to receive a request head.
    pub header_timeout_secs: Option<u64>,
    /// Seconds to receive a request body.
    pub body_timeout_secs: Option<u64>,
    /// Most open connections per listener.
    pub max_connections: Option<usize>,
    /// Most requests read and handled at once per listener.
    pub max_requests: Option<usize>,
    /// Whether the plaintext listener runs at all.
    pub enabled: Option<bool>,
    /// Declares a non-loopback plaintext interface trusted (trust scenario 3).
    pub trusted: Option<bool>,
}

/// `[store]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSection {
    /// Data folder.
    pub data: Option<PathBuf>,
    /// Most writes per group commit.
    pub max_batch: Option<usize>,
    /// Read connections.
    pub readers: Option<usize>,
    /// Content instances cached in memory.
    pub cached_instances: Option<usize>,
}

/// `[notifications]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotificationSection {
    /// Queue length per target.
    pub queue: Option<usize>,
    /// Delivery attempts.
    pub attempts: Option<u32>,
    /// Timeout per attempt, milliseconds.
    pub timeout_ms: Option<u64>,
    /// CAs that vouch for `https://` notification targets.
    pub trust_anchors: Option<Vec<PathBuf>>,
    /// The CSE's client certificate chain towards `https://` targets.
    pub certificate: Option<PathBuf>,
    /// Its private key.
    pub private_key: Option<PathBuf>,
}

/// `[polling]`: the polling channels of request-unreachable AEs (TS-0001 clause
/// 10.2.5.17; docs/conformance.md, "Polling channels").
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PollingSection {
    /// Wait of a long poll without a request expiration timestamp, seconds (default 30).
    pub default_wait_secs: Option<u64>,
    /// Longest wait of any long poll, seconds (default 600).
    pub max_wait_secs: Option<u64>,
    /// Most requests queued per channel (default 100).
    pub queue_limit: Option<u64>,
    /// How long a queued request is kept, seconds (default one day).
    pub lifetime_secs: Option<u64>,
    /// When a delivered, unanswered request is delivered again, seconds (default 30).
    pub redelivery_secs: Option<u64>,
}

impl PollingSection {
    /// The resolved settings; zero waits or limits are refused.
    fn resolve(&self) -> Result<cse::config::Polling, ConfigError> {
        let mut p = cse::config::Polling::default();
        let secs = |v: Option<u64>, d: Duration| v.map_or(d, Duration::from_secs);
        p.default_wait = secs(self.default_wait_secs, p.default_wait);
        p.max_wait = secs(self.max_wait_secs, p.max_wait);
        p.lifetime = secs(self.lifetime_secs, p.lifetime);
        p.redelivery = secs(self.redelivery_secs, p.redelivery);
        if let Some(n) = self.queue_limit {
            p.queue_limit = n;
        }
        if p.default_wait.is_zero()
            || p.max_wait.is_zero()
            || p.lifetime.is_zero()
            || p.redelivery.is_zero()
            || p.queue_limit == 0
        {
            return Err(ConfigError::Invalid(
                "polling: every wait, lifetime and limit must be at least 1".into(),
            ));
        }
        if p.default_wait > p.max_wait {
            return Err(ConfigError::Invalid(
                "polling.default_wait_secs must not exceed polling.max_wait_secs".into(),
            ));
        }
        Ok(p)
    }
}

/// `[non_blocking]`: non-blocking requests and their `<request>` resources (TS-0004 clause
/// 7.3.2.2; docs/conformance.md, "Non-blocking requests").
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NonBlockingSection {
    /// Most requests one originator may have accepted and not finished (default 32).
    pub max_pending_per_originator: Option<usize>,
    /// How long a result stays retrievable when the request sets no `rp`, seconds
    /// (default 600).
    pub result_persistence_secs: Option<u64>,
    /// The longest a `<request>` may live from acceptance, seconds (default one day).
    pub max_lifetime_secs: Option<u64>,
}

impl NonBlockingSection {
    /// The resolved settings; zero limits are refused, and the default persistence must
    /// fit the longest lifetime.
    fn resolve(&self) -> Result<cse::config::NonBlocking, ConfigError> {
        let mut n = cse::config::NonBlocking::default();
        if let Some(v) = self.max_pending_per_originator {
            n.max_pending_per_originator = v;
        }
        if let Some(v) = self.result_persistence_secs {
            n.result_persistence = Duration::from_secs(v);
        }
        if let Some(v) = self.max_lifetime_secs {
            n.max_lifetime = Duration::from_secs(v);
        }
        if n.max_pending_per_originator == 0 || n.result_persistence.is_zero() {
            return Err(ConfigError::Invalid(
                "non_blocking: max_pending_per_originator and result_persistence_secs must be at least 1".into(),
            ));
        }
        if n.result_persistence > n.max_lifetime {
            return Err(ConfigError::Invalid(
                "non_blocking.result_persistence_secs must not exceed non_blocking.max_lifetime_secs".into(),
            ));
        }
        Ok(n)
    }
}

impl NotificationSection {
    /// The TLS client settings for `https://` targets (the binary reads the files before
    /// it listens).
    fn tls(&self) -> Result<Option<cse::NotificationTls>, ConfigError> {
        let client_certificate = match (&self.certificate, &self.private_key) {
            (Some(c), Some(k)) => Some((c.clone(), k.clone())),
            (None, None) => None,
            _ => {
                return Err(ConfigError::Invalid(
                    "notifications.certificate and notifications.private_key go together".into(),
                ))
            }
        };
        let tls = match (&self.trust_anchors, client_certificate) {
            (None, None) => return Ok(None),
            (None, Some(_)) => {
                return Err(ConfigError::Invalid(
                    "notifications.certificate needs notifications.trust_anchors".into(),
                ))
            }
            (Some(cas), client_certificate) => cse::NotificationTls {
                trust_anchors: cas.clone(),
                client_certificate,
            },
        };
        Ok(Some(tls))
    }
}

/// `[log]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSection {
    /// `tracing` filter, e.g. `info` or `cse=debug`.
    pub level: Option<String>,
}

/// Everything the server needs, resolved from defaults, the file and the command line.
#[derive(Debug)]
pub struct Settings {
    /// The CSE's settings.
    pub cse: cse::CseConfig,
    /// Where the HTTP listener binds.
    pub listen: SocketAddr,
    /// HTTP limits.
    pub http: http_binding::HttpLimits,
    /// The data folder.
    pub data: PathBuf,
    /// Store tuning.
    pub store: store::SqliteOptions,
    /// Log filter.
    pub log: String,
    /// Whether the plaintext listener runs.
    pub http_enabled: bool,
    /// The credential file, if any.
    pub credentials: Option<PathBuf>,
    /// TLS listeners.
    pub tls: Vec<TlsListener>,
    /// Key homes and policy (opened by the binary before anything listens).
    pub keystore: KeystoreSection,
    /// The audit log; `None` when disabled.
    pub audit: Option<AuditSettings>,
    /// The pseudonym mapping key; `None`: the default vault in the data folder.
    pub mapping_key: Option<KeyRef>,
    /// The enrolment function; `None` when not configured.
    pub enrolment: Option<EnrolmentSettings>,
    /// The certificate-based enrolment of devices; `None` when not configured.
    pub device_enrolment: Option<DeviceEnrolmentSettings>,
    /// Network-provided keys (the BSF); `None` when not configured.
    pub gba: Option<GbaSettings>,
    /// Trusted token issuers (their keys are read by the binary before it listens).
    pub token_issuers: Vec<TokenIssuerSection>,
    /// The supervision's rules.
    pub supervision: cse::security_manager::supervision::Settings,
    /// The MAF; `None` when not enabled.
    pub maf: Option<MafSettings>,
}

impl Settings {
    /// The same settings on `clock`: the CSE's decisions and every TLS listener's checks
    /// read it. Production keeps the system clock; only an in-process test passes a
    /// [`ManualClock`](model::clock::ManualClock)'s, since no option of the file or the
    /// command line moves a running CSE's time.
    pub fn with_clock(mut self, clock: model::clock::Clock) -> Self {
        for t in &mut self.tls {
            t.policy.clock = clock.clone();
        }
        self.cse.clock = clock;
        self
    }
}

/// One resolved TLS listener.
#[derive(Debug)]
pub struct TlsListener {
    /// Its name.
    pub name: String,
    /// Where it binds.
    pub listen: SocketAddr,
    /// Its security policy, without the certificate framework's material: see
    /// [`TlsListener::policy`].
    pub policy: security::tls::TlsPolicy,
    /// The certificate framework's files and key, when it is enabled.
    pub certificate: Option<ListenerCertificate>,
}

/// The certificate framework of a listener, before its key is opened.
#[derive(Debug, Clone)]
pub struct ListenerCertificate {
    /// PEM chain, leaf first.
    pub chain: PathBuf,
    /// Where the private key is.
    pub key: KeySource,
    /// PEM trust anchors for client certificates.
    pub trust_anchors: Vec<PathBuf>,
    /// CRLs.
    pub crls: Vec<PathBuf>,
}

/// Where a listener's private key is.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// A PEM file (`private_key`).
    File(PathBuf),
    /// A key of role `tls-server` in a key home (`key`).
    Home(KeyRef),
}

impl TlsListener {
    /// The complete policy: a key in a home is opened from `homes` (role `tls-server`, checked
    /// against the key store's policy). Errors name the listener and the key.
    pub fn policy(
        &self,
        homes: Option<&KeyHomes>,
    ) -> Result<security::tls::TlsPolicy, KeyHomeError> {
        use security::tls::{CertificateConfig, ServerKey};
        let mut policy = self.policy.clone();
        if let Some(c) = &self.certificate {
            let what = format!("[[tls]] {}", self.name);
            let key = match &c.key {
                KeySource::File(path) => ServerKey::File(path.clone()),
                KeySource::Home(key) => {
                    let homes = homes.ok_or_else(|| KeyHomeError::NotConfigured {
                        what: what.clone(),
                        key: key.clone(),
                    })?;
                    ServerKey::Home(homes.signing_key(&what, key, keystore::KeyRole::TlsServer)?)
                }
            };
            policy.certificate = Some(CertificateConfig {
                chain: c.chain.clone(),
                key,
                trust_anchors: c.trust_anchors.clone(),
                crls: c.crls.clone(),
            });
        }
        Ok(policy)
    }
}

/// Why a configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML or has unknown or mistyped keys.
    #[error("invalid configuration {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        message: String,
    },
    /// A value is out of range.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl FileConfig {
    /// Parses TOML text.
    pub fn parse(text: &str, path: &std::path::Path) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })
    }

    /// Reads and parses a file.
    pub fn load(path: &std::path::Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Applies defaults and command-line overrides, and checks the values.
    pub fn resolve(
        mut self,
        listen: Option<SocketAddr>,
        data: Option<PathBuf>,
    ) -> Result<Settings, ConfigError> {
        let mut c = cse::CseConfig::default();
        let s = self.cse;
        let id_ok =
            |v: &str| !v.is_empty() && !v.contains('/') && !v.chars().any(char::is_whitespace);
        macro_rules! set {
            ($target:expr, $value:expr) => {
                if let Some(v) = $value {
                    $target = v;
                }
            };
        }
        set!(c.cse_id, s.cse_id);
        set!(c.cse_name, s.name);
        set!(c.sp_id, s.sp_id);
        set!(c.admin, s.admin);
        set!(c.default_expiration_secs, s.default_expiration_secs);
        set!(c.max_content_size, s.max_content_size);
        set!(c.discovery_limit, s.discovery_limit);
        set!(c.result_limit, s.result_limit);
        set!(c.result_max_bytes, s.result_max_bytes);
        set!(c.expiry_check_ms, s.expiry_check_ms);
        for (name, v) in [
            ("cse.cse_id", &c.cse_id),
            ("cse.name", &c.cse_name),
            ("cse.sp_id", &c.sp_id),
            ("cse.admin", &c.admin),
        ] {
            if !id_ok(v) {
                return Err(ConfigError::Invalid(format!(
                    "{name} must be a non-empty identifier without '/' or spaces"
                )));
            }
        }
        if c.cse_id.starts_with(['S', 's']) {
            return Err(ConfigError::Invalid(
                "cse.cse_id must not start with S: /S... is the SP-relative ID of an S-AE".into(),
            ));
        }
        if !c.admin.starts_with('C') {
            return Err(ConfigError::Invalid(
                "cse.admin must be an AE-ID starting with C".into(),
            ));
        }
        let listen = listen
            .or(self.http.listen)
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080)));
        // Without a configured poa, the binary advertises the address it really bound.
        c.poa = s.poa.unwrap_or_default();
        let n = self.notifications;
        set!(c.notification_queue, n.queue);
        set!(c.notification_attempts, n.attempts);
        set!(c.notification_timeout_ms, n.timeout_ms);
        c.notification_tls = n.tls()?;
        c.polling = self.polling.resolve()?;
        c.non_blocking = self.non_blocking.resolve()?;
        let d = self.dynamic_authorization;
        set!(c.dynamic_authorization.timeout_ms, d.timeout_ms);
        set!(c.dynamic_authorization.max_grant_secs, d.max_grant_secs);
        if let Some(urls) = d.das_urls {
            c.dynamic_authorization.das_urls = cse::config::DasUrls::from_config(urls)
                .map_err(|bad| {
                    ConfigError::Invalid(format!(
                        "dynamic_authorization.das_urls: '{bad}' is not an http:// or https:// URL with a host"
                    ))
                })?;
        }
        if let Some(urls) = d.pdp_urls {
            c.dynamic_authorization.pdp_urls = cse::config::DasUrls::from_config(urls)
                .map_err(|bad| {
                    ConfigError::Invalid(format!(
                        "dynamic_authorization.pdp_urls: '{bad}' is not an http:// or https:// URL with a host"
                    ))
                })?;
        }
        for (name, urls, slot) in [
            (
                "prp_urls",
                d.prp_urls,
                &mut c.dynamic_authorization.prp_urls,
            ),
            (
                "pip_urls",
                d.pip_urls,
                &mut c.dynamic_authorization.pip_urls,
            ),
        ] {
            if let Some(urls) = urls {
                *slot = cse::config::DasUrls::from_config(urls).map_err(|bad| {
                    ConfigError::Invalid(format!(
                        "dynamic_authorization.{name}: '{bad}' is not an http:// or https:// URL with a host"
                    ))
                })?;
            }
        }
        for i in &self.token_issuer {
            if i.name.is_empty() || i.public_key.is_some() == i.secret_file.is_some() {
                return Err(ConfigError::Invalid(format!(
                    "token_issuer '{}' needs a name and exactly one of public_key and secret_file",
                    i.name
                )));
            }
        }
        if c.discovery_limit == 0
            || c.result_limit == 0
            || c.result_max_bytes == 0
            || c.notification_queue == 0
            || c.notification_attempts == 0
        {
            return Err(ConfigError::Invalid("discovery_limit, result_limit, result_max_bytes, notifications.queue and notifications.attempts must be at least 1".into()));
        }

        let mut http = http_binding::HttpLimits::default();
        let h = self.http;
        set!(http.max_body_bytes, h.max_body_bytes);
        set!(http.max_header_bytes, h.max_header_bytes);
        set!(http.max_headers, h.max_headers);
        set!(http.max_connections, h.max_connections);
        set!(http.max_requests, h.max_requests);
        if let Some(t) = h.header_timeout_secs {
            http.header_read_timeout = Duration::from_secs(t);
        }
        if let Some(t) = h.body_timeout_secs {
            http.body_read_timeout = Duration::from_secs(t);
        }
        if http.max_body_bytes == 0 || http.max_connections == 0 || http.max_requests == 0 {
            return Err(ConfigError::Invalid(
                "http.max_body_bytes, http.max_connections and http.max_requests must be at least 1"
                    .into(),
            ));
        }

        let http_enabled = h.enabled.unwrap_or(true);
        if http_enabled && !listen.ip().is_loopback() && !h.trusted.unwrap_or(false) {
            return Err(ConfigError::Invalid(format!(
                "the plaintext HTTP listener {listen} is not on loopback: requests on it would have no \
                 security association. Use a [[tls]] listener, keep http.listen on 127.0.0.1/::1, or declare \
                 the interface trusted with http.trusted = true"
            )));
        }
        let keystore = self.keystore;
        let tls = self
            .tls
            .into_iter()
            .enumerate()
            .map(|(i, t)| t.resolve(i, &keystore))
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(key) = &keystore.ca_key {
            if !keystore.has(key.home) {
                return Err(ConfigError::Invalid(format!(
                    "keystore.ca_key: {key}, but there is no [keystore.{}] section",
                    key.home
                )));
            }
        }
        let mut names: Vec<&str> = tls.iter().map(|t| t.name.as_str()).collect();
        names.push("http");
        names.sort_unstable();
        if names.windows(2).any(|w| w[0] == w[1]) {
            return Err(ConfigError::Invalid(
                "listener names must be unique (\"http\" is the plaintext one)".into(),
            ));
        }
        c.admin_requires_association = self
            .security
            .admin_requires_association
            .unwrap_or(!tls.is_empty());
        if !http_enabled && tls.is_empty() {
            return Err(ConfigError::Invalid(
                "no listener: enable [http] or configure a [[tls]] listener".into(),
            ));
        }

        let device_enrolment = self.enrolment.resolve_devices()?;
        let enrolment = self.enrolment.resolve()?;
        let maf = self.maf.resolve()?;
        if maf.is_some() && tls.is_empty() {
            return Err(ConfigError::Invalid(
                "[maf] needs a [[tls]] listener: keys are handed out over security associations only"
                    .into(),
            ));
        }
        let gba = self.gba.resolve()?;
        if gba.is_some() && !tls.iter().any(|t| t.policy.psk) {
            return Err(ConfigError::Invalid(
                "[gba] needs a [[tls]] listener with the psk framework (B-TIDs are PSK identities)"
                    .into(),
            ));
        }
        if let Some(e) = &enrolment {
            let taken =
                tls.iter().any(|t| t.listen == e.listen) || (http_enabled && e.listen == listen);
            if e.listen.port() != 0 && taken {
                return Err(ConfigError::Invalid(
                    "enrolment.listen must differ from the other listeners".into(),
                ));
            }
        }

        let mut store = store::SqliteOptions::default();
        set!(store.max_batch, self.store.max_batch);
        set!(store.readers, self.store.readers);
        set!(store.cached_instances, self.store.cached_instances);
        let data = data
            .or(self.store.data)
            .unwrap_or_else(|| PathBuf::from("data"));
        let log = self.log.level.unwrap_or_else(|| "info".to_owned());
        c.per_target_pseudonyms = self.privacy.per_target_pseudonyms.unwrap_or(false);
        if let Some(secs) = self.audit.refusal_window_secs {
            if !(1..=86_400).contains(&secs) {
                return Err(ConfigError::Invalid(
                    "audit.refusal_window_secs must be between 1 and 86400".into(),
                ));
            }
            c.refusal_window = std::time::Duration::from_secs(secs);
        }
        if let Some(secs) = self.privacy.rotation_interval_secs {
            c.rotation_interval = std::time::Duration::from_secs(secs);
        }
        if let Some(key) = &self.privacy.mapping_key {
            if !keystore.has(key.home) {
                return Err(ConfigError::Invalid(format!(
                    "privacy.mapping_key: {key}, but there is no [keystore.{}] section",
                    key.home
                )));
            }
        }
        let audit = match self.audit.enabled.unwrap_or(true) {
            false => None,
            true => {
                if let Some(key) = &self.audit.signing_key {
                    if !keystore.has(key.home) {
                        return Err(ConfigError::Invalid(format!(
                            "audit.signing_key: {key}, but there is no [keystore.{}] section",
                            key.home
                        )));
                    }
                }
                let file = self.audit.file.unwrap_or_else(|| data.join("audit.log"));
                let mut layout = manager::audit::Layout::for_log(&file);
                if let Some(bytes) = self.audit.segment_bytes {
                    if bytes < 64 * 1024 {
                        return Err(ConfigError::Invalid(
                            "audit.segment_bytes must be at least 65536".into(),
                        ));
                    }
                    layout.segment_bytes = bytes;
                }
                if let Some(keep) = self.audit.keep_segments {
                    layout.keep_segments = keep;
                }
                if let Some(head) = self.audit.head_file {
                    layout.head_file = head;
                }
                if let Some(anchor) = &self.audit.head_anchor {
                    anchor.check(&keystore).map_err(|m| {
                        ConfigError::Invalid(format!("audit.head_anchor: {anchor}: {m}"))
                    })?;
                    if self.audit.signing_key.is_none() {
                        return Err(ConfigError::Invalid(format!(
                            "audit.head_anchor: {anchor}, but the log is not signed: an anchor \
                             needs audit.signing_key"
                        )));
                    }
                }
                let anchor_interval = match self.audit.anchor_interval_secs {
                    Some(0) => {
                        return Err(ConfigError::Invalid(
                            "audit.anchor_interval_secs must be at least 1".into(),
                        ))
                    }
                    Some(secs) => std::time::Duration::from_secs(secs),
                    None => manager::audit::DEFAULT_ANCHOR_INTERVAL,
                };
                Some(AuditSettings {
                    file,
                    signing_key: self.audit.signing_key,
                    layout,
                    head_anchor: self.audit.head_anchor,
                    anchor_interval,
                })
            }
        };
        Ok(Settings {
            cse: c,
            listen,
            http,
            data,
            store,
            log,
            http_enabled,
            credentials: self.security.credentials,
            tls,
            keystore,
            audit,
            mapping_key: self.privacy.mapping_key,
            enrolment,
            device_enrolment,
            gba,
            token_issuers: self.token_issuer,
            supervision: self.supervision.resolve()?,
            maf,
        })
    }
}

impl TlsSection {
    fn resolve(self, index: usize, keystore: &KeystoreSection) -> Result<TlsListener, ConfigError> {
        use security::tls::{TlsPolicy, TlsVersion};
        let name = self.name.unwrap_or_else(|| {
            if index == 0 {
                "https".to_owned()
            } else {
                format!("https{index}")
            }
        });
        let bad = |why: String| ConfigError::Invalid(format!("[[tls]] {name}: {why}"));
        let listen = self
            .listen
            .ok_or_else(|| bad("listen is required".into()))?;
        let frameworks = self
            .frameworks
            .unwrap_or_else(|| vec!["certificate".into(), "psk".into()]);
        if let Some(f) = frameworks
            .iter()
            .find(|f| !matches!(f.as_str(), "certificate" | "psk"))
        {
            return Err(bad(format!("unknown framework '{f}' (certificate, psk)")));
        }
        let mut policy = TlsPolicy {
            psk: frameworks.iter().any(|f| f == "psk"),
            ..TlsPolicy::default()
        };
        let mut certificate = None;
        if frameworks.iter().any(|f| f == "certificate") {
            let chain = self
                .certificate
                .ok_or_else(|| bad("the certificate framework needs certificate".into()))?;
            let key = match (self.private_key, self.key) {
                (Some(path), None) => KeySource::File(path),
                (None, Some(key)) if keystore.has(key.home) => KeySource::Home(key),
                (None, Some(key)) => {
                    return Err(bad(format!(
                        "key is {key}, but there is no [keystore.{}] section",
                        key.home
                    )))
                }
                (Some(_), Some(_)) => {
                    return Err(bad(
                        "give the private key either as private_key (a file) or as key (in a key home), not both".into(),
                    ))
                }
                (None, None) => {
                    return Err(bad(
                        "the certificate framework needs private_key or key".into(),
                    ))
                }
            };
            let trust_anchors = self.trust_anchors.unwrap_or_default();
            if trust_anchors.is_empty() {
                return Err(bad(
                    "the certificate framework needs trust_anchors to verify clients".into(),
                ));
            }
            certificate = Some(ListenerCertificate {
                chain,
                key,
                trust_anchors,
                crls: self.crls.unwrap_or_default(),
            });
        }
        if !policy.psk && certificate.is_none() {
            return Err(bad("no framework enabled".into()));
        }
        policy.min_version = match self.min_version.as_deref() {
            None | Some("1.2") => TlsVersion::Tls12,
            Some("1.3") => TlsVersion::Tls13,
            Some(v) => {
                return Err(bad(format!(
                    "min_version '{v}' is not 1.2 or 1.3 (older versions are never accepted)"
                )))
            }
        };
        if let Some(ms) = self.handshake_timeout_ms {
            policy.handshake_timeout = Duration::from_millis(ms.max(1));
        }
        if let Some(n) = self.max_handshakes {
            policy.max_handshakes = n.max(1);
        }
        if let Some(n) = self.max_handshakes_per_ip {
            policy.max_handshakes_per_ip = n.max(1);
        }
        if let Some(r) = self.session_resumption {
            policy.session_resumption = r;
        }
        match self.session_lifetime_secs {
            Some(0) => return Err(bad("session_lifetime_secs must be at least 1".into())),
            Some(secs) if secs > MAX_SESSION_LIFETIME_SECS => {
                return Err(bad(format!(
                    "session_lifetime_secs is at most {MAX_SESSION_LIFETIME_SECS} (one day)"
                )))
            }
            Some(secs) => policy.session_lifetime = Duration::from_secs(secs),
            None => {}
        }
        policy.suites = self.suites;
        Ok(TlsListener {
            name,
            listen,
            policy,
            certificate,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn empty_file_gives_documented_defaults() {
        let s = FileConfig::parse("", Path::new("x")).and_then(|f| f.resolve(None, None));
        let s = s.expect("defaults");
        assert_eq!(s.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(s.cse.cse_id, "id-in");
        assert_eq!(s.cse.cse_name, "cse-in");
        assert_eq!(s.cse.admin, "CAdmin");
        assert_eq!(s.data, PathBuf::from("data"));
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused() {
        assert!(FileConfig::parse("[cse]\ncse_idd = \"x\"", Path::new("x")).is_err());
        assert!(FileConfig::parse("[http]\nlisten = 5", Path::new("x")).is_err());
        let bad = FileConfig::parse("[cse]\ncse_id = \"a/b\"", Path::new("x"))
            .and_then(|f| f.resolve(None, None));
        assert!(matches!(bad, Err(ConfigError::Invalid(_))));
        let bad = FileConfig::parse("[cse]\nadmin = \"root\"", Path::new("x"))
            .and_then(|f| f.resolve(None, None));
        assert!(matches!(bad, Err(ConfigError::Invalid(_))));
    }

    fn resolve(text: &str) -> Result<Settings, ConfigError> {
        FileConfig::parse(text, Path::new("x")).and_then(|f| f.resolve(None, None))
    }

    #[test]
    fn a_cse_id_is_never_an_s_ae_id_and_das_urls_are_urls() {
        for id in ["Sin", "sin"] {
            assert!(
                matches!(resolve(&format!("[cse]\ncse_id = \"{id}\"")), Err(ConfigError::Invalid(m)) if m.contains("must not start with S")),
                "{id}"
            );
        }
        assert!(resolve("[cse]\ncse_id = \"CSE090112\"").is_ok());
        let s = resolve("[dynamic_authorization]\ndas_urls = [\"https://das.example/das\"]")
            .expect("valid");
        assert!(s
            .cse
            .dynamic_authorization
            .das_urls
            .lists("https://das.example/das"));
        assert!(resolve("")
            .expect("defaults")
            .cse
            .dynamic_authorization
            .das_urls
            .is_empty());
        assert!(matches!(
            resolve("[dynamic_authorization]\ndas_urls = [\"das.example\"]"),
            Err(ConfigError::Invalid(_))
        ));
    }

    #[test]
    fn pdp_urls_are_urls_and_none_by_default() {
        let s = resolve("[dynamic_authorization]\npdp_urls = [\"https://pdp.example/cse-in/pdp\"]")
            .expect("valid");
        let d = &s.cse.dynamic_authorization;
        assert!(d.pdp_urls.lists("https://pdp.example/cse-in/pdp"));
        assert!(d.das_urls.is_empty());
        let defaults = resolve("").expect("defaults");
        assert!(defaults.cse.dynamic_authorization.pdp_urls.is_empty());
        assert!(matches!(
            resolve("[dynamic_authorization]\npdp_urls = [\"pdp.example\"]"),
            Err(ConfigError::Invalid(m)) if m.contains("pdp_urls")
        ));
    }

    #[test]
    fn prp_and_pip_urls_are_urls_and_none_by_default() {
        let s = resolve(
            "[dynamic_authorization]\nprp_urls = [\"https://prp.example/cse-in/prp\"]\npip_urls = [\"https://pip.example/cse-in/pip\"]",
        )
        .expect("valid");
        let d = &s.cse.dynamic_authorization;
        assert!(d.prp_urls.lists("https://prp.example/cse-in/prp"));
        assert!(d.pip_urls.lists("https://pip.example/cse-in/pip"));
        assert!(!d.prp_urls.lists("https://pip.example/cse-in/pip"));
        let defaults = resolve("").expect("defaults");
        assert!(defaults.cse.dynamic_authorization.prp_urls.is_empty());
        assert!(defaults.cse.dynamic_authorization.pip_urls.is_empty());
        for name in ["prp_urls", "pip_urls"] {
            assert!(matches!(
                resolve(&format!("[dynamic_authorization]\n{name} = [\"x.example\"]")),
                Err(ConfigError::Invalid(m)) if m.contains(name)
            ));
        }
    }

    #[test]
    fn non_blocking_settings_are_read_and_checked() {
        let s = resolve(
            "[non_blocking]\nmax_pending_per_originator = 4\nresult_persistence_secs = 60\nmax_lifetime_secs = 120",
        )
        .expect("valid");
        assert_eq!(
            s.cse.non_blocking,
            cse::config::NonBlocking {
                max_pending_per_originator: 4,
                result_persistence: Duration::from_secs(60),
                max_lifetime: Duration::from_secs(120),
            }
        );
        assert_eq!(
            resolve("").expect("defaults").cse.non_blocking,
            cse::config::NonBlocking::default()
        );
        for bad in [
            "[non_blocking]\nmax_pending_per_originator = 0",
            "[non_blocking]\nresult_persistence_secs = 0",
            "[non_blocking]\nresult_persistence_secs = 60\nmax_lifetime_secs = 30",
            "[non_blocking]\nmax_pending = 3",
        ] {
            assert!(resolve(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn audit_layout_and_refusal_window() {
        let s = resolve(
            "[audit]\nfile = \"/d/a.log\"\nrefusal_window_secs = 5\nsegment_bytes = 65536\nkeep_segments = 3",
        )
        .expect("valid");
        let audit = s.audit.expect("on");
        assert_eq!(s.cse.refusal_window, Duration::from_secs(5));
        assert_eq!(audit.layout.segment_bytes, 65536);
        assert_eq!(audit.layout.keep_segments, 3);
        assert_eq!(audit.layout.head_file, Path::new("/d/a.log.head"));
        for bad in [
            "[audit]\nrefusal_window_secs = 0",
            "[audit]\nsegment_bytes = 100",
        ] {
            assert!(
                matches!(resolve(bad), Err(ConfigError::Invalid(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_head_anchor_needs_a_signed_log_and_a_home_that_can_hold_it() {
        let pkcs11 =
            "[keystore.pkcs11]\nmodule = \"/m.so\"\ntoken-label = \"t\"\npin = { env = \"PIN\" }\n";
        let signed = "signing_key = { home = \"pkcs11\", id = \"audit\" }\n";
        let anchor = "head_anchor = { home = \"pkcs11\", id = \"audit-head\" }\n";
        let s = resolve(&format!("[audit]\n{signed}{anchor}{pkcs11}")).expect("valid");
        let audit = s.audit.expect("on");
        assert_eq!(
            audit.head_anchor.as_ref().map(|a| (a.home, a.id.as_str())),
            Some((crate::keyhomes::HomeKind::Pkcs11, "audit-head"))
        );
        assert_eq!(
            audit.anchor_interval,
            manager::audit::DEFAULT_ANCHOR_INTERVAL
        );
        let s = resolve(&format!(
            "[audit]\n{signed}{anchor}anchor_interval_secs = 5\n{pkcs11}"
        ))
        .expect("valid");
        assert_eq!(s.audit.expect("on").anchor_interval, Duration::from_secs(5));
        for (bad, why) in [
            (format!("[audit]\n{anchor}{pkcs11}"), "not signed"),
            (format!("[audit]\n{signed}{anchor}"), "no [keystore.pkcs11] section"),
            (
                format!("[audit]\n{signed}head_anchor = {{ home = \"software\", id = \"x\" }}\n{pkcs11}"),
                "level-1 home",
            ),
            (
                format!("[audit]\n{signed}head_anchor = {{ home = \"pkcs11\", id = \"a b\" }}\n{pkcs11}"),
                "only A-Z",
            ),
            (
                format!("[audit]\n{signed}{anchor}anchor_interval_secs = 0\n{pkcs11}"),
                "at least 1",
            ),
        ] {
            match resolve(&bad) {
                Err(ConfigError::Invalid(m)) => assert!(m.contains(why), "{bad}: {m}"),
                other => panic!("{bad}: {other:?}"),
            }
        }
    }

    #[test]
    fn plaintext_off_loopback_needs_to_be_declared_trusted() {
        let open = resolve("[http]\nlisten = \"0.0.0.0:8080\"");
        assert!(matches!(open, Err(ConfigError::Invalid(m)) if m.contains("not on loopback")));
        assert!(resolve("[http]\nlisten = \"0.0.0.0:8080\"\ntrusted = true").is_ok());
        assert!(resolve("[http]\nlisten = \"[::1]:8080\"").is_ok());
        assert!(
            matches!(resolve("[http]\nenabled = false"), Err(ConfigError::Invalid(m)) if m.contains("no listener"))
        );
    }

    #[test]
    fn tls_listeners_are_checked_and_make_the_admin_need_an_association() {
        let ok = resolve("[[tls]]\nlisten = \"127.0.0.1:8443\"\nframeworks = [\"psk\"]")
            .expect("psk only");
        assert!(ok.cse.admin_requires_association);
        assert_eq!(ok.tls[0].name, "https");
        assert!(ok.tls[0].policy.psk && ok.tls[0].policy.certificate.is_none());
        assert!(!resolve("").expect("plain").cse.admin_requires_association);
        assert_eq!(
            ok.tls[0].policy.session_lifetime,
            security::tls::DEFAULT_SESSION_LIFETIME
        );
        let short = resolve(
            "[[tls]]\nlisten = \"127.0.0.1:1\"\nframeworks = [\"psk\"]\nsession_lifetime_secs = 60",
        )
        .expect("lifetime");
        assert_eq!(
            short.tls[0].policy.session_lifetime,
            Duration::from_secs(60)
        );
        for bad in [
            "[[tls]]\nlisten = \"127.0.0.1:1\"\nframeworks = [\"psk\"]\nsession_lifetime_secs = 0",
            "[[tls]]\nlisten = \"127.0.0.1:1\"\nframeworks = [\"psk\"]\nsession_lifetime_secs = 86401",
            "[[tls]]\nframeworks = [\"psk\"]",
            "[[tls]]\nlisten = \"127.0.0.1:1\"\nframeworks = [\"kerberos\"]",
            "[[tls]]\nlisten = \"127.0.0.1:1\"\nframeworks = []",
            "[[tls]]\nlisten = \"127.0.0.1:1\"\nframeworks = [\"certificate\"]",
            "[[tls]]\nlisten = \"127.0.0.1:1\"\nframeworks = [\"psk\"]\nmin_version = \"1.1\"",
            "[[tls]]\nname = \"http\"\nlisten = \"127.0.0.1:1\"\nframeworks = [\"psk\"]",
        ] {
            assert!(
                matches!(resolve(bad), Err(ConfigError::Invalid(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn command_line_wins_over_file() {
        let f = FileConfig::parse(
            "[http]\nlisten = \"127.0.0.1:9\"\n[store]\ndata = \"/a\"",
            Path::new("x"),
        )
        .expect("parse");
        let s = f
            .resolve(
                Some("127.0.0.1:7".parse().expect("addr")),
                Some("/b".into()),
            )
            .expect("resolve");
        assert_eq!(s.listen.port(), 7);
        assert_eq!(s.data, PathBuf::from("/b"));
    }

    #[test]
    fn gba_needs_a_psk_listener_a_loopback_bsf_and_a_known_key() {
        let psk = "[[tls]]\nlisten = \"127.0.0.1:0\"\nframeworks = [\"psk\"]\n";
        let gba = "[gba]\nbsf_url = \"http://127.0.0.1:8099\"\nbtid_domain = \"bsf.sp.example\"\n";
        let ok = resolve(&format!("{psk}{gba}")).expect("valid");
        let g = ok.gba.expect("configured");
        assert_eq!(g.key, manager::kdf::GbaNafKeyKind::KsNaf);
        assert_eq!(g.allowed_aes, vec!["C*".to_owned()]);
        assert!(!g.edge_nodes, "edge nodes are opt-in");
        let on = resolve(&format!("{psk}{gba}edge_nodes = true\n")).expect("valid");
        assert!(on.gba.expect("configured").edge_nodes);
        for (bad, needle) in [
            (gba.to_owned(), "psk framework"),
            (
                format!("{psk}[gba]\nbsf_url = \"http://127.0.0.1:1\"\n"),
                "both bsf_url and btid_domain",
            ),
            (
                format!("{psk}{}", gba.replace("127.0.0.1", "bsf.example")),
                "loopback",
            ),
            (format!("{psk}{gba}key = \"ks\"\n"), "ks_ext_naf"),
            (format!("{psk}{gba}timeout_ms = 0\n"), "timeout_ms"),
        ] {
            let r = resolve(&bad);
            assert!(
                matches!(&r, Err(ConfigError::Invalid(m)) if m.contains(needle)),
                "{bad}: {r:?}"
            );
        }
    }

    #[test]
    fn supervision_rules_are_checked() {
        use cse::security_manager::supervision::Rule;
        let s = resolve("").expect("defaults").supervision;
        assert_eq!(s, cse::security_manager::supervision::Settings::default());
        assert!(
            s.suspend_on.is_empty(),
            "no automatic suspension by default"
        );
        let s = resolve(
            "[supervision]\nsuspend_on = [\"concurrent-peers\"]\nfailed_handshakes = 0\nalert_interval_secs = 5",
        )
        .expect("valid")
        .supervision;
        assert_eq!(s.suspend_on, vec![Rule::ConcurrentPeers]);
        assert_eq!((s.failed_handshakes, s.alert_interval.as_secs()), (0, 5));
        for (bad, needle) in [
            ("suspend_on = [\"two-peers\"]", "unknown rule 'two-peers'"),
            ("failed_handshakes = 1001", "at most 1000"),
            ("failed_handshakes_window_secs = 0", "at least 1"),
            ("alert_interval_secs = 0", "at least 1"),
            ("usage_peers = 0", "between 1 and 64"),
            ("max_addresses = 0", "between 1 and"),
        ] {
            let r = resolve(&format!("[supervision]\n{bad}"));
            assert!(
                matches!(&r, Err(ConfigError::Invalid(m)) if m.contains(needle)),
                "{bad}: {r:?}"
            );
        }
    }

    /// Every key of the file format appears in docs/configuration.md, and the doc names no
    /// key the format lacks.
    #[test]
    fn documentation_matches_the_options() {
        let doc = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../docs/configuration.md"
        ))
        .expect("docs");
        let sample = doc
            .split("```toml")
            .nth(1)
            .and_then(|s| s.split("```").next())
            .expect("a toml block in the doc");
        let parsed = FileConfig::parse(sample, Path::new("docs/configuration.md"))
            .expect("the documented sample parses");
        assert!(parsed.resolve(None, None).is_ok());
        let table: toml::Table = toml::from_str(sample).expect("toml");
        let mut documented = 0;
        for (_, section) in table {
            documented += match section {
                toml::Value::Table(t) => t.len(),
                toml::Value::Array(a) => a
                    .iter()
                    .filter_map(toml::Value::as_table)
                    .map(toml::Table::len)
                    .sum(),
                _ => 0,
            };
        }
        assert_eq!(documented, 119, "every option is in the documented sample");
        // The key homes' own keys, one level further down.
        let keystore = table_of(sample, "keystore");
        let len = |name: &str| {
            keystore
                .get(name)
                .and_then(toml::Value::as_table)
                .map_or(0, toml::Table::len)
        };
        assert_eq!(len("policy"), keystore::KeyRole::ALL.len(), "every role");
        assert_eq!((len("software"), len("tpm"), len("pkcs11")), (2, 2, 3));
    }

    fn table_of(text: &str, name: &str) -> toml::Table {
        let table: toml::Table = toml::from_str(text).expect("toml");
        table
            .get(name)
            .and_then(toml::Value::as_table)
            .cloned()
            .unwrap_or_default()
    }

    const HOMES: &str = "[keystore.software]\ndir = \"k\"\nkek = { key-file = \"kek\" }\n\
        [keystore.pkcs11]\nmodule = \"/m.so\"\ntoken-label = \"t\"\npin = { env = \"P\" }\n";

    #[test]
    fn keystore_section_and_keys_in_homes() {
        use crate::keyhomes::HomeKind;
        let tls = |key: &str| {
            format!(
                "{HOMES}[[tls]]\nlisten = \"127.0.0.1:1\"\nframeworks = [\"certificate\"]\ncertificate = \"c.pem\"\ntrust_anchors = [\"ca.pem\"]\n{key}\n"
            )
        };
        let ok = resolve(&tls("key = { home = \"pkcs11\", id = \"tls\" }")).expect("home key");
        match &ok.tls[0].certificate.as_ref().expect("certificate").key {
            KeySource::Home(k) => assert_eq!((k.home, k.id.as_str()), (HomeKind::Pkcs11, "tls")),
            other => panic!("{other:?}"),
        }
        assert!(ok.keystore.has(HomeKind::Software) && !ok.keystore.has(HomeKind::Tpm));
        for (bad, needle) in [
            (
                tls("key = { home = \"tpm\", id = \"tls\" }"),
                "no [keystore.tpm] section",
            ),
            (
                tls("key = { home = \"pkcs11\", id = \"tls\" }\nprivate_key = \"k.pem\""),
                "not both",
            ),
            (tls(""), "needs private_key or key"),
            (
                format!("{HOMES}[keystore]\nca_key = {{ home = \"tpm\", id = \"ca\" }}\n"),
                "no [keystore.tpm] section",
            ),
        ] {
            assert!(
                matches!(resolve(&bad), Err(ConfigError::Invalid(m)) if m.contains(needle)),
                "{bad}"
            );
        }
        for bad in [
            tls("key = { home = \"hsm\", id = \"tls\" }"),
            tls("key = { home = \"pkcs11\", id = \"../x\" }"),
            "[keystore.pkcs11]\nmodule = \"/m.so\"\ntoken-label = \"t\"\npin = \"1234\"\n"
                .to_owned(),
            "[keystore.policy]\ntls-server = 4\n".to_owned(),
            "[keystore.policy]\nroot = 1\n".to_owned(),
            "[keystore.software]\ndir = \"k\"\n".to_owned(),
        ] {
            assert!(
                matches!(resolve(&bad), Err(ConfigError::Parse { .. })),
                "{bad}"
            );
        }
    }
}
