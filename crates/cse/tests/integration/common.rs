//! An in-process CSE over a temporary store, reached through the in-memory binding (the door
//! in, [`MemoryBinding`]), and an in-memory network for what it sends: the CSE's door out
//! ([`cse::outbound`]) is the [`Loopback`] sender, which hands each request to the target
//! registered at its URL ([`listen`]), as if over HTTP.
#![allow(dead_code, unreachable_pub, missing_docs)]

use cse::outbound::{Delivery, DeliveryError, Limits, Outbound, Senders};
use cse::testing::MemoryBinding;
use cse::{Cse, CseConfig, SecurityContext};
use model::{Operation, Request, ResourceType, Response, ResponseStatusCode};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

pub struct TestCse {
    pub cse: Arc<Cse>,
    pub dir: tempfile::TempDir,
}

pub const ADMIN: &str = "CAdmin";

impl TestCse {
    pub async fn new() -> Self {
        Self::with_config(CseConfig::default()).await
    }

    pub async fn with_config(config: CseConfig) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let store =
            store::SqliteStore::open(dir.path(), store::SqliteOptions::default()).expect("store");
        let cse = open_cse(config, Arc::new(store)).await;
        Self { cse, dir }
    }

    /// The in-memory binding of a plaintext client; every scenario goes through it, as
    /// through a real binding, with no sockets.
    pub fn plaintext(&self) -> MemoryBinding {
        MemoryBinding::plaintext(
            &self.cse,
            "test",
            Some("127.0.0.1:40000".parse().expect("addr")),
        )
    }

    pub async fn send(&self, req: Request) -> Response {
        self.plaintext().send(req).await
    }

    pub async fn send_ctx(&self, ctx: &SecurityContext, req: Request) -> Response {
        MemoryBinding::with_context(&self.cse, ctx.clone())
            .send(req)
            .await
    }

    pub async fn op(
        &self,
        op: Operation,
        fr: &str,
        to: &str,
        ty: Option<ResourceType>,
        pc: Option<Value>,
    ) -> Response {
        let mut req = Request::new(op, to, Some(fr.to_owned()).filter(|f| !f.is_empty()));
        req.ty = ty;
        req.pc = pc;
        self.send(req).await
    }

    pub async fn create(&self, fr: &str, to: &str, ty: ResourceType, pc: Value) -> Response {
        self.op(Operation::Create, fr, to, Some(ty), Some(pc)).await
    }

    pub async fn retrieve(&self, fr: &str, to: &str) -> Response {
        self.op(Operation::Retrieve, fr, to, None, None).await
    }

    pub async fn update(&self, fr: &str, to: &str, pc: Value) -> Response {
        self.op(Operation::Update, fr, to, None, Some(pc)).await
    }

    pub async fn delete(&self, fr: &str, to: &str) -> Response {
        self.op(Operation::Delete, fr, to, None, None).await
    }

    /// Registers an AE named `rn` with `From: C` and returns its AE-ID.
    pub async fn register(&self, rn: &str) -> String {
        self.register_with(rn, json!({})).await
    }

    pub async fn register_with(&self, rn: &str, extra: Value) -> String {
        let mut ae = json!({"rn": rn, "api": "Ntest", "rr": true, "srv": ["3"]});
        if let (Some(a), Some(e)) = (ae.as_object_mut(), extra.as_object()) {
            a.extend(e.clone());
        }
        let r = self
            .create("C", "cse-in", ResourceType::Ae, json!({ "m2m:ae": ae }))
            .await;
        assert_eq!(r.rsc, ResponseStatusCode::Created, "{:?}", r.pc);
        attr(&r, "aei").as_str().expect("aei").to_owned()
    }
}

/// An attribute of the single resource in a response.
/// A CSE with `config`, two registered AEs (`owner`, `other`: their AE-IDs) and the
/// owner's container `cse-in/owner/data`: the starting point of the access tests.
pub async fn owner_and_other(config: CseConfig) -> (TestCse, String, String) {
    let t = TestCse::with_config(config).await;
    let owner = t.register("owner").await;
    let other = t.register("other").await;
    let data = json!({"m2m:cnt": {"rn": "data"}});
    let r = t
        .create(&owner, "cse-in/owner", ResourceType::Container, data)
        .await;
    assert_eq!(r.rsc, ResponseStatusCode::Created);
    (t, owner, other)
}

pub fn attr(r: &Response, name: &str) -> Value {
    r.pc.as_ref()
        .and_then(|pc| pc.as_object())
        .and_then(|m| m.values().next())
        .and_then(|res| res.get(name))
        .cloned()
        .unwrap_or(Value::Null)
}

/// Opens a CSE over `store` whose door out is the in-memory network.
pub async fn open_cse(config: CseConfig, store: Arc<dyn store::Store>) -> Arc<Cse> {
    let services = cse::Services {
        outbound: senders(),
        ..cse::Services::default()
    };
    Cse::open_with(config, store, services).await.expect("cse")
}

/// The door out of test CSEs: `http` and `https` targets reach the in-memory network.
pub fn senders() -> Senders {
    Senders::new()
        .with("http", Arc::new(Loopback))
        .with("https", Arc::new(Loopback))
}

/// What an in-memory target does with a request sent to it.
pub type Target = Arc<dyn Fn(Request) -> Delivery<'static> + Send + Sync>;

fn targets() -> &'static Mutex<HashMap<String, Target>> {
    static TARGETS: OnceLock<Mutex<HashMap<String, Target>>> = OnceLock::new();
    TARGETS.get_or_init(Mutex::default)
}

/// Registers `target` at a new URL `http://127.0.0.1:<port>/<path>` (a port no other target
/// of this process has) and returns the URL.
pub fn listen(path: &str, target: Target) -> String {
    static NEXT_PORT: AtomicU16 = AtomicU16::new(20000);
    let port = NEXT_PORT.fetch_add(1, Ordering::Relaxed);
    let url = format!("http://127.0.0.1:{port}/{path}");
    targets().lock().expect("lock").insert(url.clone(), target);
    url
}

/// Delivers to the target registered at the URL; nothing there: unreachable, as a closed
/// port would be.
#[derive(Debug)]
pub struct Loopback;

impl Outbound for Loopback {
    fn send<'a>(&'a self, target: &'a str, req: &'a Request, _: Limits) -> Delivery<'a> {
        let found = targets().lock().expect("lock").get(target).cloned();
        match found {
            Some(t) => t(req.clone()),
            None => Box::pin(std::future::ready(Err(DeliveryError::Unreachable(
                format!("nothing listens at {target}"),
            )))),
        }
    }
}

/// Boxes a target's answer.
pub fn answer(
    f: impl Future<Output = Result<Response, DeliveryError>> + Send + 'static,
) -> Delivery<'static> {
    Box::pin(f)
}

/// An in-memory notification target that records every notification and answers with `rsc`.
pub struct Receiver {
    pub url: String,
    pub got: Arc<Mutex<Vec<Value>>>,
}

impl Receiver {
    pub async fn start(rsc: u16) -> Self {
        let rsc = ResponseStatusCode::from_code(rsc).expect("a known status code");
        let got = Arc::new(Mutex::new(Vec::new()));
        let sink = got.clone();
        let url = listen(
            "notify",
            Arc::new(move |req: Request| {
                if let Some(pc) = &req.pc {
                    sink.lock().expect("lock").push(pc.clone());
                }
                answer(async move { Ok(Response::new(rsc, &req.rqi, None)) })
            }),
        );
        Self { url, got }
    }

    /// Waits until at least `n` notifications (verification requests included) arrived.
    pub async fn wait_for(&self, n: usize) -> Vec<Value> {
        for _ in 0..200 {
            let got = self.got.lock().expect("lock").clone();
            if got.len() >= n {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.got.lock().expect("lock").clone()
    }

    pub fn count(&self) -> usize {
        self.got.lock().expect("lock").len()
    }
}

/// What a TLS 1.3 handshake proved: `framework`, `credential` (a Credential-ID) bound to
/// `identity`; no admin mark, no App-ID restriction, no key level, no bootstrap exporter.
pub fn established(
    framework: security::association::Framework,
    credential: &str,
    identity: security::association::PeerIdentity,
) -> security::association::Established {
    security::association::Established {
        framework,
        credential_id: credential.to_owned(),
        binding: security::association::CredentialBinding {
            identity,
            admin: false,
            allowed_apps: Vec::new(),
            level: None,
        },
        protocol: "TLSv1.3".into(),
        cipher: "TLS_AES_128_GCM_SHA256".into(),
        server_name: None,
        resumed: false,
        bootstrap: None,
    }
}

/// The security context of a request over a new association in `registry`, on a listener
/// of `role`, after a handshake that proved `established`.
pub fn over(
    registry: &Arc<security::association::Registry>,
    role: cse::ListenerRole,
    established: security::association::Established,
) -> SecurityContext {
    SecurityContext::established(
        role,
        Arc::new(registry.open(
            "https",
            "127.0.0.1:5000".parse().expect("addr"),
            established,
        )),
    )
}

impl TestCse {
    /// `owner`'s container `<parent>/data` under a new `<acp>` `<parent>/<acp_rn>` whose `pv`
    /// holds `rules` and whose `pvs` names the owner alone; returns the `<acp>`'s ID.
    pub async fn guarded_container(
        &self,
        owner: &str,
        parent: &str,
        acp_rn: &str,
        rules: Value,
    ) -> String {
        let r = self
            .create(
                owner,
                parent,
                ResourceType::AccessControlPolicy,
                json!({"m2m:acp": {"rn": acp_rn, "pv": {"acr": rules},
                    "pvs": {"acr": [{"acor": [owner], "acop": 63}]}}}),
            )
            .await;
        assert_eq!(r.rsc, ResponseStatusCode::Created, "{:?}", r.pc);
        let acp = attr(&r, "ri");
        let r = self
            .create(
                owner,
                parent,
                ResourceType::Container,
                json!({"m2m:cnt": {"rn": "data", "acpi": [acp]}}),
            )
            .await;
        assert_eq!(r.rsc, ResponseStatusCode::Created, "{:?}", r.pc);
        acp.as_str().expect("ri").to_owned()
    }
}

/// A configuration whose CSE decides by `clock` (a test's, which it advances).
pub fn clocked(clock: &model::clock::ManualClock) -> CseConfig {
    CseConfig {
        clock: clock.clock(),
        ..Default::default()
    }
}

/// `base` (an object) with the attributes of `extra` added or replaced; a `null` in `extra`
/// removes the attribute.
pub fn merged(mut base: Value, extra: Value) -> Value {
    if let (Some(b), Some(e)) = (base.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            if v.is_null() {
                b.remove(k);
            } else {
                b.insert(k.clone(), v.clone());
            }
        }
    }
    base
}

/// A discovery request (`fu=1`) below `to` with the given filter criteria.
pub fn discovery(fr: &str, to: &str, criteria: &[(&str, &str)]) -> Request {
    let mut req = Request::new(Operation::Retrieve, to, Some(fr.to_owned()));
    req.fc.add("fu", "1").expect("fu");
    for (k, v) in criteria {
        req.fc.add(k, v).expect("criterion");
    }
    req
}

/// The addresses of a discovery answer's `m2m:uril`, sorted; the answer must be 2000.
pub fn uril(r: &Response) -> Vec<String> {
    assert_eq!(r.rsc, ResponseStatusCode::Ok, "{:?}", r.pc);
    let mut found: Vec<String> =
        r.pc.as_ref()
            .and_then(|pc| pc["m2m:uril"].as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect();
    found.sort();
    found
}

/// The security administration recorded in the audit log at `path`, as (action, target).
pub fn admin_actions(path: &std::path::Path) -> Vec<(String, String)> {
    manager::audit::read_entries(path)
        .expect("audit entries")
        .into_iter()
        .filter_map(Result::ok)
        .filter_map(|e| match e.event {
            manager::audit::Event::AdminAction { action, target, .. } => {
                Some((action, target.unwrap_or_default()))
            }
            _ => None,
        })
        .collect()
}

impl TestCse {
    /// A CREATE that must succeed (2001); its answer.
    pub async fn created(&self, fr: &str, to: &str, ty: ResourceType, pc: Value) -> Response {
        let r = self.create(fr, to, ty, pc).await;
        assert_eq!(r.rsc, ResponseStatusCode::Created, "{to}: {:?}", r.pc);
        r
    }

    /// What a discovery below `to` finds ([`discovery`], [`uril`]).
    pub async fn discover(&self, fr: &str, to: &str, criteria: &[(&str, &str)]) -> Vec<String> {
        uril(&self.send(discovery(fr, to, criteria)).await)
    }

    /// A CSE with `config` whose security administration is audited into `log` (opened by
    /// the caller in `dir`, which also holds the store), refused associations counted over
    /// a minute of the configuration's clock.
    pub async fn with_audit_log(
        config: CseConfig,
        dir: tempfile::TempDir,
        log: manager::audit::AuditLog,
    ) -> Self {
        let trail = cse::security_manager::audit::AuditTrail::start(
            log,
            Duration::from_secs(60),
            config.clock.clone(),
        )
        .expect("audit trail");
        let store =
            store::SqliteStore::open(dir.path(), store::SqliteOptions::default()).expect("store");
        let services = cse::Services {
            audit: Some(trail),
            outbound: senders(),
            ..cse::Services::default()
        };
        let cse = Cse::open_with(config, Arc::new(store), services)
            .await
            .expect("cse");
        Self { cse, dir }
    }

    /// A CSE with `config` and its audit log `audit.log` in its data folder; with the log's
    /// path.
    pub async fn with_audit(config: CseConfig) -> (Self, std::path::PathBuf) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("audit.log");
        let log = manager::audit::AuditLog::open(&path, None).expect("audit log");
        (Self::with_audit_log(config, dir, log).await, path)
    }
}
