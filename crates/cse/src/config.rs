//! The CSE's identity and limits, resolved from the configuration file and command line.
//!
//! This module depends on no other module of the crate: the pipeline's modules (access,
//! addressing, originator, ...) read the configuration, never the reverse.

pub mod das_urls;

pub use das_urls::DasUrls;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Settings the request pipeline needs. Defaults are the documented defaults of
/// `docs/configuration.md`.
#[derive(Debug, Clone)]
pub struct CseConfig {
    /// The CSE-ID without leading slash (`id-in`); also the CSEBase `ri`.
    pub cse_id: String,
    /// The CSEBase resource name (`cse-in`).
    pub cse_name: String,
    /// The M2M Service Provider ID (`//<sp_id>` in absolute addresses).
    pub sp_id: String,
    /// The admin originator, which has full access in the default profile.
    pub admin: String,
    /// Whether the admin originator is honoured only over a security association whose
    /// credential is an admin credential (true in a secure deployment).
    pub admin_requires_association: bool,
    /// Documents served to anyone at `/.well-known/crl/<name>`: the CRLs of the TLS
    /// listeners, by file name, DER-encoded (their certificates' CRL distribution points).
    pub published_crls: Vec<(String, Vec<u8>)>,
    /// Point of access advertised in the CSEBase (`poa`).
    pub poa: Vec<String>,
    /// Lifetime given to resources created without `et`, in seconds.
    pub default_expiration_secs: u64,
    /// Largest accepted content size of one content instance, in bytes.
    pub max_content_size: u64,
    /// Maximum number of results one discovery returns when the request sets no `lim`.
    pub discovery_limit: u64,
    /// Most resources one RETRIEVE response embeds or references as child resources
    /// (`rcn` 4, 5, 6, 8); beyond it the result is partial (`cnst`, `cnot`).
    pub result_limit: u64,
    /// Most bytes of resources (their JSON) one response embeds, for child results and
    /// discovery alike; beyond it the result is partial. A response holds at least one
    /// resource, so a result always makes progress.
    pub result_max_bytes: u64,
    /// How often expired resources are looked for, in milliseconds.
    pub expiry_check_ms: u64,
    /// Notification delivery: queue size per target.
    pub notification_queue: usize,
    /// Notification delivery: attempts before a notification is dropped.
    pub notification_attempts: u32,
    /// Notification delivery: timeout of one attempt, in milliseconds.
    pub notification_timeout_ms: u64,
    /// How `https://` notification targets are authenticated (and the CSE to them); without
    /// it, only `http://` targets can be reached.
    pub notification_tls: Option<NotificationTls>,
    /// Whether each notification target sees its own alias of every AE-ID in what it is
    /// sent (per-peer pseudonyms), rather than the AE-ID itself.
    pub per_target_pseudonyms: bool,
    /// Shortest time between two AE-ID rotations over one credential: each rotation rewrites
    /// references across the whole tree, so an AE must not be able to keep the store busy.
    pub rotation_interval: std::time::Duration,
    /// Tokens and DAS consultation (TS-0003 clause 7.3).
    pub dynamic_authorization: DynamicAuthorization,
    /// Refused associations are counted per source and reason over this window, in the
    /// audit trail and in the log, so a flood of refused handshakes writes a bounded number
    /// of lines (`security::refusals`).
    pub refusal_window: std::time::Duration,
    /// Polling channels: how long a long poll waits, how much a channel may hold.
    pub polling: Polling,
    /// Non-blocking requests: how many may wait per originator, how long results are kept.
    pub non_blocking: NonBlocking,
    /// The credential file's `allowed_apps`, which seed the `<serviceSubscribedAppRule>`s at
    /// start (`service_subscription::seed`); empty: nothing is seeded.
    pub app_rule_seeds: Vec<AppRuleSeed>,
    /// The clock every decision based on time asks (expiry, tokens, grants, key lifetimes,
    /// windows); the system clock unless a test moves it.
    pub clock: model::clock::Clock,
}

/// Settings of the polling channels (`<pollingChannel>`, TS-0001 clause 10.2.5.17).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Polling {
    /// How long a long poll without a Request Expiration Timestamp waits for a request
    /// before it is answered 4008.
    pub default_wait: Duration,
    /// The longest a long poll waits, whatever its Request Expiration Timestamp says: a
    /// waiting poll holds a connection.
    pub max_wait: Duration,
    /// Most requests one channel holds; a request that finds it full is not queued (the
    /// sender sees the channel as unreachable), so one AE that stops polling cannot fill the
    /// disk.
    pub queue_limit: u64,
    /// How long a request stays queued for an AE that does not poll before it is dropped.
    pub lifetime: Duration,
    /// A request delivered to a poll but not answered (NOTIFY with its `m2m:rsp`) within
    /// this time is delivered again to the next poll: delivery is at least once.
    pub redelivery: Duration,
}

impl Default for Polling {
    fn default() -> Self {
        Self {
            default_wait: Duration::from_secs(30),
            max_wait: Duration::from_secs(600),
            queue_limit: 100,
            lifetime: Duration::from_secs(24 * 3600),
            redelivery: Duration::from_secs(30),
        }
    }
}

/// Settings of non-blocking requests (`rt` 1 and 2, `<request>` resources; TS-0004 clause
/// 7.3.2.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NonBlocking {
    /// Most requests one originator may have accepted and not finished; one more is 5207,
    /// so a client cannot park an unbounded number of tasks and `<request>`s.
    pub max_pending_per_originator: usize,
    /// How long a result stays retrievable after it is due, when the request sets no
    /// Result Persistence (`rp`).
    pub result_persistence: Duration,
    /// The longest a `<request>` may live from its acceptance, whatever `oet`, `rset` and
    /// `rp` ask; a request that asks more is refused (TS-0004 table 7.3.2.2-1).
    pub max_lifetime: Duration,
}

impl Default for NonBlocking {
    fn default() -> Self {
        Self {
            max_pending_per_originator: 32,
            result_persistence: Duration::from_secs(600),
            max_lifetime: Duration::from_secs(24 * 3600),
        }
    }
}

/// Settings of dynamic authorization: whose tokens are trusted, and how long the CSE waits
/// for and keeps what a DAS grants.
#[derive(Debug, Clone)]
pub struct DynamicAuthorization {
    /// Trusted token issuers with their keys; empty: every token is refused.
    pub issuers: Arc<security::token::Issuers>,
    /// Timeout of one consultation of a DAS, in milliseconds. Short, because the request
    /// waits for it.
    pub timeout_ms: u64,
    /// Longest time a DAS grant is kept, in seconds, whatever the DAS and `dal` say.
    pub max_grant_secs: u64,
    /// The DAS URLs the CSE may consult; empty (the default): none, so no `<dac>` can make
    /// the CSE contact anything.
    pub das_urls: DasUrls,
    /// The `<authorizationDecision>` URLs of other CSEs (remote PDPs) that an ACP's `adri`
    /// may name; empty (the default): none, so no ACP can make the CSE contact anything.
    pub pdp_urls: DasUrls,
    /// The `<authorizationPolicy>` URLs of other CSEs (remote PRPs) that an ACP's `apri`
    /// may name; empty (the default): none.
    pub prp_urls: DasUrls,
    /// The `<authorizationInformation>` URLs of other CSEs (remote PIPs) that an ACP's
    /// `airi` may name; empty (the default): none.
    pub pip_urls: DasUrls,
}

impl Default for DynamicAuthorization {
    fn default() -> Self {
        Self {
            issuers: Arc::default(),
            timeout_ms: 1000,
            max_grant_secs: 3600,
            das_urls: DasUrls::default(),
            pdp_urls: DasUrls::default(),
            prp_urls: DasUrls::default(),
            pip_urls: DasUrls::default(),
        }
    }
}

/// The TLS client side of notification delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationTls {
    /// CA certificates (PEM files) that vouch for notification targets.
    pub trust_anchors: Vec<PathBuf>,
    /// The CSE's own certificate chain and private key (PEM files), for targets that ask
    /// for mutual authentication.
    pub client_certificate: Option<(PathBuf, PathBuf)>,
}

impl Default for CseConfig {
    fn default() -> Self {
        Self {
            cse_id: "id-in".to_owned(),
            cse_name: "cse-in".to_owned(),
            sp_id: "secure-cse.example".to_owned(),
            admin: "CAdmin".to_owned(),
            admin_requires_association: false,
            published_crls: Vec::new(),
            poa: vec!["http://127.0.0.1:8080".to_owned()],
            default_expiration_secs: 5 * 365 * 24 * 3600,
            max_content_size: 1024 * 1024,
            discovery_limit: 1000,
            result_limit: 1000,
            result_max_bytes: 8 * 1024 * 1024,
            expiry_check_ms: 1000,
            notification_queue: 1024,
            notification_attempts: 5,
            notification_timeout_ms: 2000,
            notification_tls: None,
            per_target_pseudonyms: false,
            rotation_interval: std::time::Duration::from_secs(3600),
            dynamic_authorization: DynamicAuthorization::default(),
            refusal_window: security::refusals::DEFAULT_WINDOW,
            polling: Polling::default(),
            non_blocking: NonBlocking::default(),
            app_rule_seeds: Vec::new(),
            clock: model::clock::Clock::system(),
        }
    }
}

/// One credential entry's `allowed_apps`, which the CSE turns into a rule at start
/// (`crate::service_subscription`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppRuleSeed {
    /// The Credential-ID the rule applies to (`12-<KpsaID>`, a certificate's `3x-...`).
    pub credential_id: String,
    /// The App-ID patterns the credential may register with (never empty: an entry without
    /// `allowed_apps` seeds nothing).
    pub allowed_apps: Vec<String>,
}
