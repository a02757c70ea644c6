//! The common service functions of secure-cse and the request pipeline that ties them
//! together.
//!
//! One request goes one way through [`Cse::handle`]: static checks of the primitive, the
//! originator check ([`originator`]), addressing ([`addressing`]), access control
//! ([`access`]), the operation's handler (create, retrieve, update, delete, notify,
//! discovery, group fan-out), the durable store, then subscriptions fire ([`subscription`])
//! and notifications leave asynchronously ([`notification`]) through the door out
//! ([`outbound`]), which the bindings implement. Every error ends as one response status
//! code.
#![forbid(unsafe_code)]

pub mod access;
pub mod addressing;
mod batch;
mod blocking;
pub mod config;
mod content;
mod create;
mod crs;
mod delete;
mod discovery;
pub mod expiry;
mod group;
pub mod inbound;
mod lifetime;
mod non_blocking;
pub mod notification;
mod notify;
pub mod originator;
pub mod outbound;
mod page;
mod polling;
pub mod records;
mod relatives;
mod resources;
mod retrieve;
pub mod security_context;
pub mod security_manager;
pub mod service_subscription;
mod subscribers;
pub mod subscription;
mod target_removal;
#[cfg(feature = "testing")]
pub mod testing;
pub mod time_series;
mod update;
pub mod waiting;

pub use config::{CseConfig, NotificationTls};
pub use inbound::{Answer, Inbound};
pub use security_context::{Association, ListenerRole, NoAssociation, SecurityContext, Service};

use addressing::Target;
use model::{Error, Operation, Request, Resource, ResourceType, Response, Result};
use notification::Notifier;
use originator::Originator;
use records::StoreRecords;
use security_manager::enrolment::{certificate, mef};
use security_manager::{audit, maf, pseudonyms, reload, supervision, withdrawal};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use store::Store;

/// The CSE: one instance serves every binding.
#[derive(Debug)]
pub struct Cse {
    config: CseConfig,
    store: Arc<dyn Store>,
    notifier: Notifier,
    associations: Arc<security::association::Registry>,
    policies: access::PolicyCache,
    consultant: access::Consultant,
    audit: Option<audit::AuditTrail>,
    revocations: Arc<security::revocation::Revocations>,
    mef: Option<Arc<mef::Mef>>,
    device_mef: Option<Arc<certificate::DeviceMef>>,
    maf: Option<Arc<maf::Maf>>,
    supervisor: Arc<supervision::Supervisor>,
    tls_reload: Option<Arc<dyn reload::TlsReload>>,
    /// The CRLs published at `/.well-known/crl/<name>`, replaced when the TLS material is
    /// re-read.
    published_crls: std::sync::RwLock<Vec<(String, Vec<u8>)>>,
    /// When each credential last rotated its AE-ID; held across a rotation, so rotations
    /// run one at a time.
    rotations: pseudonyms::Rotations,
    /// The notifications of subscriptions with `bn` waiting to be sent together.
    batches: batch::Batches,
    /// The resources whose UPDATEs and DELETEs wait for a blocked UPDATE (`net` 7).
    blocking: blocking::Holds,
    /// The polling channels' queues, waiting polls and awaited answers.
    polling: polling::Channels,
    /// The non-blocking requests accepted and not finished.
    requests: non_blocking::Pending,
    /// This CSE, for the tasks it starts (a non-blocking request's execution); weak, so a
    /// task never keeps a stopped CSE alive.
    me: std::sync::Weak<Cse>,
    /// The timer tasks of the time series whose missing data is watched.
    monitors: time_series::Monitors,
    /// The time windows of the cross-resource subscriptions.
    crs_windows: crs::Windows,
}

/// The security manager's services the CSE works with.
#[derive(Debug, Default)]
pub struct Services {
    /// Where security events are recorded; none: not recorded.
    pub audit: Option<audit::AuditTrail>,
    /// The withdrawn credentials (shared with the TLS listeners' credential stores).
    pub revocations: Arc<security::revocation::Revocations>,
    /// The enrolment function, when the CSE hosts one (`[enrolment]`).
    pub mef: Option<Arc<mef::Mef>>,
    /// The certificate-based enrolment of devices, when configured (`[enrolment]
    /// device_listen`).
    pub device_mef: Option<Arc<certificate::DeviceMef>>,
    /// The authentication function that distributes keys between applications, when the
    /// CSE hosts one (`[maf]`).
    pub maf: Option<Arc<maf::Maf>>,
    /// Where the real identity behind each assigned AE-ID is kept, sealed; none: the
    /// store keeps Credential-IDs in clear (in-process tests).
    pub pseudonyms: Option<Arc<security::privacy::PseudonymVault>>,
    /// The supervision's rules (`[supervision]`); usage is kept whatever they say.
    pub supervision: supervision::Settings,
    /// Re-reads the TLS listeners' certificates, keys, CRLs and credentials (`reload-tls`);
    /// none: they are read at start-up only.
    pub tls_reload: Option<Arc<dyn reload::TlsReload>>,
    /// The door out: the bindings' senders, by scheme, for notifications and DAS
    /// consultations; none registered: nothing can be sent.
    pub outbound: outbound::Senders,
}

/// What one handler needs to know about the request beyond the primitive.
#[derive(Debug)]
pub(crate) struct Caller<'a> {
    pub(crate) ctx: &'a SecurityContext,
    pub(crate) originator: Originator,
    /// The request's tokens, verified for this originator.
    pub(crate) tokens: Vec<security::token::VerifiedToken>,
    /// The Role-IDs the request asked for (`rids`).
    pub(crate) rids: Vec<String>,
    /// Those of them that a `<role>` of this CSE assigns to the originator now.
    pub(crate) roles: Vec<String>,
}

type BoxedReply<'a> = Pin<Box<dyn Future<Output = Result<Reply>> + Send + 'a>>;

/// What the pipeline made of a request: its response, or a long poll that passed every
/// check and now only waits ([`waiting`]).
#[derive(Debug)]
pub(crate) enum Reply {
    /// The response.
    Now(Response),
    /// The wait for the response, holding nothing of the pipeline.
    Waiting(waiting::Waiting),
}

impl Reply {
    /// The response, waited for if need be (callers that answer within the pipeline: a
    /// group's fan-out, a non-blocking request's operation).
    pub(crate) async fn settle(self) -> Response {
        match self {
            Self::Now(resp) => resp,
            Self::Waiting(waiting) => waiting.answer().await,
        }
    }
}

/// Logs the refusal counts of each ended window even when no further refusal comes to push
/// them out; the task ends with the registry.
fn flush_refusal_counts(registry: &Arc<security::association::Registry>) {
    let weak = Arc::downgrade(registry);
    let period = registry.refusal_window();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match weak.upgrade() {
                Some(registry) => registry.flush_refusals(),
                None => return,
            }
        }
    });
}

impl Cse {
    /// Opens the CSE over a store, creating the `<CSEBase>` on first start. It has no
    /// door out ([`Services::outbound`]): nothing it would send can leave.
    pub async fn open(config: CseConfig, store: Arc<dyn Store>) -> Result<Arc<Self>> {
        Self::open_with(config, store, Services::default()).await
    }

    /// Opens the CSE with the security manager's services: the audit trail (every security
    /// association opened, refused and closed, every administrative security action) and
    /// the list of withdrawn credentials.
    pub async fn open_with(
        config: CseConfig,
        store: Arc<dyn Store>,
        services: Services,
    ) -> Result<Arc<Self>> {
        let Services {
            audit,
            revocations,
            mef,
            device_mef,
            maf,
            pseudonyms,
            supervision,
            tls_reload,
            outbound,
        } = services;
        // Requests for a request-unreachable AE leave through its polling channel.
        let polling = polling::Channels::new(&config, store.clone());
        let outbound = outbound.with(polling::SCHEME, Arc::new(polling.sender()));
        let notifier = Notifier::new(&config, outbound.clone());
        let policies = access::PolicyCache::new(access::Domain::of(&config));
        let consultant = access::Consultant::new(&config, outbound);
        let config_crls = config.published_crls.clone();
        // Every association event goes to the audit trail first, then to the supervision.
        let (suspend, suspensions) = supervision::suspension_queue();
        let supervisor = Arc::new(supervision::Supervisor::with_clock(
            supervision,
            audit.clone(),
            Some(suspend),
            config.clock.clone(),
        ));
        let mut listeners: Vec<Arc<dyn security::association::AssociationEvents>> = Vec::new();
        if let Some(trail) = &audit {
            listeners.push(Arc::new(trail.clone()));
        }
        listeners.push(supervisor.clone());
        let mut registry = security::association::Registry::with_events(Arc::new(
            security::association::EventFanout(listeners),
        ))
        .with_clock(config.clock.clone())
        .with_refusal_window(config.refusal_window);
        if let Some(vault) = pseudonyms {
            registry = registry.with_pseudonyms(vault);
        }
        let associations = Arc::new(registry);
        flush_refusal_counts(&associations);
        let cse = Arc::new_cyclic(|me| Self {
            policies,
            consultant,
            config,
            store,
            notifier,
            associations,
            audit,
            revocations,
            mef,
            device_mef,
            maf,
            supervisor,
            tls_reload,
            published_crls: std::sync::RwLock::new(config_crls),
            rotations: pseudonyms::Rotations::default(),
            batches: batch::Batches::default(),
            blocking: blocking::Holds::default(),
            polling,
            requests: non_blocking::Pending::default(),
            me: me.clone(),
            monitors: time_series::Monitors::default(),
            crs_windows: crs::Windows::default(),
        });
        cse.monitors.bind(Arc::downgrade(&cse));
        supervision::spawn_suspensions(Arc::downgrade(&cse), suspensions);
        withdrawal::spawn_persistence(Arc::downgrade(&cse));
        resources::cb::ensure(&cse).await?;
        service_subscription::seed(&cse).await?;
        pseudonyms::rekey_clear_bindings(&cse).await?;
        cse.resume_batches();
        cse.fail_interrupted_requests().await;
        cse.resume_monitoring();
        Ok(cse)
    }

    /// The CSE's configuration.
    pub fn config(&self) -> &CseConfig {
        &self.config
    }

    /// The withdrawn credentials.
    pub fn revocations(&self) -> &Arc<security::revocation::Revocations> {
        &self.revocations
    }

    /// The audit trail, when the CSE keeps one.
    pub fn audit(&self) -> Option<&audit::AuditTrail> {
        self.audit.as_ref()
    }

    /// The live security associations; TLS listeners register theirs here.
    pub fn associations(&self) -> &Arc<security::association::Registry> {
        &self.associations
    }

    /// A published CRL by file name (public, signed data: no access control).
    pub fn published_crl(&self, name: &str) -> Option<Vec<u8>> {
        let crls = match self.published_crls.read() {
            Ok(c) => c,
            Err(poisoned) => poisoned.into_inner(),
        };
        crls.iter()
            .find(|(n, _)| n == name)
            .map(|(_, der)| der.clone())
    }

    /// The store (for administration and tests).
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Answers the enrolment request (`POST /.mef/enrol`, see [`mef`]) that arrived with
    /// `body` over `ctx`: 2001 with KpsaID, KeID and expiry, or the refusal.
    pub async fn enrol(&self, ctx: &SecurityContext, rqi: String, body: &[u8]) -> Response {
        // Over a device enrolment association, or when there is no other MEF to answer (4107).
        let device = self.device_mef.as_ref().filter(|_| {
            ctx.role == ListenerRole::DeviceEnrolment
                || (self.mef.is_none() && ctx.role == ListenerRole::Mca)
        });
        if let Some(device_mef) = device {
            return self.enrol_device(device_mef, ctx, rqi, body).await;
        }
        if ctx.role == ListenerRole::DeviceEnrolment {
            let e = Error::operation_not_allowed("this listener serves certificate enrolment only");
            tracing::info!(rqi, peer = %security::privacy::peer_tag(ctx.peer), rsc = e.rsc.code(), reason = %e.message, "enrolment refused");
            return Response::error(&e, rqi);
        }
        let Some(mef) = &self.mef else {
            return Response::error(&Error::not_found("this CSE hosts no MEF"), rqi);
        };
        if let Some(sa) = ctx.security_association() {
            sa.count_request();
        }
        match mef
            .enrol(ctx, self.audit.as_ref(), body, &self.config.clock)
            .await
        {
            Ok(content) => Response::new(model::ResponseStatusCode::Created, rqi, Some(content)),
            Err(e) => {
                tracing::info!(rqi, peer = %security::privacy::peer_tag(ctx.peer), rsc = e.rsc.code(), reason = %model::Untrusted(&e.message), "enrolment refused");
                Response::error(&e, rqi)
            }
        }
    }

    /// Answers a certificate enrolment request (see [`certificate`]).
    async fn enrol_device(
        &self,
        device_mef: &certificate::DeviceMef,
        ctx: &SecurityContext,
        rqi: String,
        body: &[u8],
    ) -> Response {
        if let Some(sa) = ctx.security_association() {
            sa.count_request();
        }
        match device_mef.enrol(ctx, self.audit.as_ref(), body).await {
            Ok(content) => Response::new(model::ResponseStatusCode::Created, rqi, Some(content)),
            Err(e) => {
                tracing::info!(rqi, peer = %security::privacy::peer_tag(ctx.peer), rsc = e.rsc.code(), reason = %model::Untrusted(&e.message), "certificate enrolment refused");
                Response::error(&e, rqi)
            }
        }
    }

    /// Handles one request primitive and always answers with a response primitive.
    pub async fn handle(&self, ctx: &SecurityContext, req: Request) -> Response {
        if let Some(sa) = ctx.security_association() {
            sa.count_request();
        }
        self.handle_uncounted(ctx, req).await
    }

    /// [`Cse::handle`] without counting the request on its association: for a non-blocking
    /// request's operation, counted once already when it was accepted.
    pub(crate) async fn handle_uncounted(&self, ctx: &SecurityContext, req: Request) -> Response {
        self.reply(ctx, req).await.settle().await
    }

    /// Runs a request through the pipeline (not counted on its association): its response,
    /// or, for a long poll with nothing to answer yet, its wait.
    pub(crate) async fn reply(&self, ctx: &SecurityContext, req: Request) -> Reply {
        let rqi = req.rqi.clone();
        let op = req.op;
        let to = req.to.clone();
        match self.process(ctx, req).await {
            Ok(Reply::Now(mut resp)) => {
                resp.rqi = rqi;
                Reply::Now(resp)
            }
            Ok(waiting @ Reply::Waiting(_)) => waiting,
            Err(e) => {
                if e.rsc == model::ResponseStatusCode::InternalServerError {
                    tracing::error!(rqi, ?op, to, peer = %security::privacy::peer_tag(ctx.peer), error = %model::Untrusted(&e), "request failed");
                } else {
                    tracing::info!(rqi, ?op, to, peer = %security::privacy::peer_tag(ctx.peer), rsc = e.rsc.code(), reason = %model::Untrusted(&e.message), "request refused");
                }
                Reply::Now(Response::error(&e, rqi))
            }
        }
    }

    fn process<'a>(&'a self, ctx: &'a SecurityContext, req: Request) -> BoxedReply<'a> {
        Box::pin(async move {
            // An enrolee (authenticated by its Kpm or a manufacturer's certificate) is not an
            // AE of this CSE: its listener serves the enrolment request and nothing else.
            ctx.admit(Service::Resources)?;
            req.validate()?;
            req.check_times(self.config.clock.now())?;
            let originator = originator::check(ctx, &req, &self.config, self.store.as_ref())?;
            let mut tokens = access::dynamic::verify_tokens(&self.config, &originator, &req)?;
            let store = self.store.as_ref();
            tokens.extend(access::repository::named_tokens(
                store,
                &self.config,
                &originator,
                &req.tids,
            )?);
            let roles = access::repository::held_roles(
                store,
                &self.config,
                &originator,
                &req.rids,
                self.config.clock.now(),
            )?;
            let caller = Caller {
                ctx,
                originator,
                tokens,
                rids: req.rids.clone(),
                roles,
            };
            if req.is_non_blocking() {
                return self.accept_non_blocking(&caller, req).await.map(Reply::Now);
            }
            let target = addressing::resolve(&req.to, &self.config, self.store.as_ref())?;
            // Each operation's future is allocated on its own (`Box::pin`), so that a request
            // holds the memory of its own operation only, not that of the largest one: a
            // long poll waits for minutes, thousands at a time (issue 13).
            if let Target::FanOut { group, suffix } = target {
                return Box::pin(self.fan_out(&caller, &req, group, &suffix))
                    .await
                    .map(Reply::Now);
            }
            if let Target::PollingChannelUri(channel) = target {
                return Box::pin(self.polling_channel_uri(&caller, &req, channel)).await;
            }
            if let Target::NotificationTargetSelfReference(sub) = target {
                return Box::pin(self.notification_target_self_reference(&caller, &req, sub))
                    .await
                    .map(Reply::Now);
            }
            if let Target::Resource(r) = &target {
                polling::check_owner(&caller, r)?;
            }
            let resp = match req.op {
                Operation::Create => Box::pin(self.create(&caller, &req, target)).await,
                Operation::Retrieve if req.is_discovery() => self.discover(&caller, &req, target),
                Operation::Retrieve => Box::pin(self.retrieve(&caller, &req, target)).await,
                Operation::Update => Box::pin(self.update(&caller, &req, target)).await,
                Operation::Delete => Box::pin(self.delete(&caller, &req, target)).await,
                Operation::Notify => Box::pin(self.notify(&caller, &req, target)).await,
            };
            resp.map(Reply::Now)
        })
    }

    /// Whether a request's originator is treated as authenticated (`rq_authn`).
    pub(crate) fn authenticated(&self, caller: &Caller<'_>) -> bool {
        // The originator check has already held `From` to the association's identity.
        matches!(
            caller.ctx.association,
            Association::Established(_) | Association::Internal
        )
    }

    /// Access check for `op` on `target`, with the request's tokens.
    pub(crate) fn authorize(
        &self,
        caller: &Caller<'_>,
        target: &Resource,
        op: model::AccessOperation,
        create_ty: Option<ResourceType>,
    ) -> Result<()> {
        self.gate()
            .with_tokens(&caller.tokens, &caller.rids)
            .authorize(
                &caller.originator,
                &self.request_context(caller),
                target,
                op,
                create_ty,
                access::Check::Operation,
            )
    }

    /// Access check for `op` on `target`, with the request's tokens and, when the policies
    /// refuse, a consultation of the DAS that the target's `daci` names (TS-0003 7.3.2.2).
    /// A DAS that grants nothing, or cannot be asked, leaves the refusal as it was.
    pub(crate) async fn authorize_dynamic(
        &self,
        caller: &Caller<'_>,
        target: &Resource,
        op: model::AccessOperation,
        create_ty: Option<ResourceType>,
    ) -> Result<()> {
        let gate = self.gate().with_tokens(&caller.tokens, &caller.rids);
        let ctx = self.request_context(caller);
        let check = access::Check::Operation;
        let refusal =
            match gate.check(&caller.originator, &ctx, target, op, create_ty, check, None)? {
                Ok(()) => return Ok(()),
                Err(refusal) => refusal,
            };
        let owner = gate.owner(target)?;
        if self
            .retrieved_permits(caller, &ctx, target, &owner, op, create_ty)
            .await?
        {
            return Ok(());
        }
        let pdps = access::pdp::named_pdps(self.store.as_ref(), &owner);
        let remote_pdp_permits = || async {
            let q = access::pdp::Question {
                originator: &caller.originator,
                target,
                op,
                create_ty,
                rids: &caller.rids,
                ctx: &ctx,
            };
            !pdps.is_empty()
                && access::pdp::permits(&self.config, self.consultant.outbound(), &pdps, &q).await
        };
        let dac = if owner.str_list("daci").is_empty() {
            None
        } else {
            access::dynamic::enabled_dacs(self.store.as_ref(), &owner)
                .into_iter()
                .find(|dac| self.dac_trusted(dac, &owner))
        };
        let Some(dac) = dac else {
            if remote_pdp_permits().await {
                return Ok(());
            }
            return Err(refusal.into_error());
        };
        let holders = access::dynamic::holder_forms(&caller.originator, &self.config);
        let facts = access::dynamic::Facts {
            originator: holders.last().cloned().unwrap_or_default(),
            holders: &holders,
            op,
            ip: ctx.ip,
            roles: &caller.rids,
        };
        let grant = self
            .consultant
            .consult(&self.config, target, &dac, &facts)
            .await;
        if let Some(grant) = grant {
            if gate
                .check(
                    &caller.originator,
                    &ctx,
                    target,
                    op,
                    create_ty,
                    check,
                    Some(&grant),
                )?
                .is_ok()
            {
                return Ok(());
            }
        }
        if remote_pdp_permits().await {
            return Ok(());
        }
        Err(refusal.into_error())
    }

    /// Whether the policies of the PRPs and the roles and tokens of the PIPs that `owner`'s
    /// policies name (`apri`, `airi`; TS-0003 clauses 7.5.3 and 7.5.4) grant a request its
    /// rules refused. False when they name none, or nothing usable comes back.
    async fn retrieved_permits(
        &self,
        caller: &Caller<'_>,
        ctx: &access::RequestContext,
        target: &Resource,
        owner: &Resource,
        op: model::AccessOperation,
        create_ty: Option<ResourceType>,
    ) -> Result<bool> {
        let store = self.store.as_ref();
        let (prps, pips) = access::distributed::named_points(store, owner);
        if prps.is_empty() && pips.is_empty() {
            return Ok(false);
        }
        let asked = access::distributed::Question {
            originator: &caller.originator,
            target,
            rids: &caller.rids,
            time: ctx.time,
        };
        let outbound = self.consultant.outbound();
        let retrieved =
            access::distributed::retrieve(&self.config, store, outbound, &prps, &pips, &asked)
                .await;
        if retrieved.is_empty() {
            return Ok(false);
        }
        let mut tokens = caller.tokens.clone();
        tokens.extend(retrieved.tokens);
        let check = access::Check::Operation;
        let decided = self.gate().with_tokens(&tokens, &caller.rids).check(
            &caller.originator,
            ctx,
            target,
            op,
            create_ty,
            check,
            Some(&retrieved.grant),
        )?;
        Ok(decided.is_ok())
    }

    /// Whether `owner`'s policies trust `dac` (TS-0003 clause 7.3: a DAS is an authorised
    /// party): its creator must hold the self-privileges that changing `owner`'s `acpi` or
    /// `daci` needs, checked now. A `<dac>` anyone may create under their own AE therefore
    /// grants nothing on resources whose policies do not already trust its creator.
    fn dac_trusted(&self, dac: &Resource, owner: &Resource) -> bool {
        let recorded = self.store.creator_of(dac);
        let creator = recorded.as_deref().and_then(|cr| {
            access::standing::originator_of_record(cr, &self.config, self.store.as_ref())
        });
        let trusted = creator.is_some_and(|originator| {
            matches!(
                self.gate().check(
                    &originator,
                    &access::RequestContext::standing(self.config.clock.now()),
                    owner,
                    model::AccessOperation::UPDATE,
                    None,
                    access::Check::AcpiUpdate,
                    None,
                ),
                Ok(Ok(()))
            )
        });
        if !trusted {
            tracing::warn!(
                dac = dac.ri(),
                creator = recorded.as_deref().unwrap_or("none"),
                owner = owner.ri(),
                "dynamic authorization: <dac> not trusted by the resource's policies; not consulted"
            );
        }
        trusted
    }

    /// The DAS consultant (for tests and the admin: what it keeps).
    pub fn consultant(&self) -> &access::Consultant {
        &self.consultant
    }

    /// What access checks read: the store, the configuration, the compiled policies.
    pub(crate) fn gate(&self) -> access::Gate<'_> {
        access::Gate {
            store: self.store.as_ref(),
            config: &self.config,
            cache: &self.policies,
            tokens: &[],
            asked_roles: &[],
        }
    }

    /// The facts about a request that access rules look at, besides originator and target.
    pub(crate) fn request_context(&self, caller: &Caller<'_>) -> access::RequestContext {
        let mut ctx = access::RequestContext::of(
            caller.ctx,
            self.authenticated(caller),
            self.config.clock.now(),
        );
        ctx.roles.clone_from(&caller.roles);
        ctx
    }
}

/// The resource a non-virtual operation works on; `la`/`ol` stand for their instance.
pub(crate) fn real_target(target: Target) -> Result<Resource> {
    match target {
        Target::Resource(r) => Ok(r),
        Target::Edge {
            instance: Some(r), ..
        } => Ok(r),
        Target::Edge {
            container,
            instance: None,
        } => Err(Error::not_found(format!(
            "the {} has no instance",
            container.ty.short_name()
        ))),
        Target::FanOut { .. } => Err(Error::operation_not_allowed(
            "fopt is only valid for fan-out",
        )),
        Target::PollingChannelUri(_) => Err(polling::not_allowed()),
        Target::NotificationTargetSelfReference(_) => Err(Error::operation_not_allowed(
            "a <notificationTargetSelfReference> is only deleted",
        )),
    }
}
