//! The common service functions of secure-cse and the request pipeline that ties them
//! together.
//!
//! One request goes one way through [`Cse::handle`]: static checks of the primitive, the
//! originator check ([`originator`]), addressing ([`addressing`]), access control
//! ([`access`]), the operation's handler (create, retrieve, update, delete, notify,
//! discovery, group fan-out), the durable store, then subscriptions fire ([`subscription`])
//! and notifications leave asynchronously ([`notification`]). Every error ends as one
//! response status code.
#![forbid(unsafe_code)]

pub mod access;
pub mod addressing;
pub mod admin;
pub mod config;
mod content;
mod create;
mod delete;
mod discovery;
pub mod expiry;
mod group;
pub mod notification;
mod notify;
pub mod originator;
mod resources;
mod retrieve;
pub mod security_context;
pub mod subscription;
mod update;

pub use config::{CseConfig, NotificationTls};
pub use security_context::{Association, NoAssociation, SecurityContext};

use addressing::Target;
use model::{Error, Operation, Request, Resource, ResourceType, Response, Result};
use notification::Notifier;
use originator::Originator;
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
}

/// What one handler needs to know about the request beyond the primitive.
#[derive(Debug)]
pub(crate) struct Caller<'a> {
    pub(crate) ctx: &'a SecurityContext,
    pub(crate) originator: Originator,
}

type BoxedResponse<'a> = Pin<Box<dyn Future<Output = Result<Response>> + Send + 'a>>;

impl Cse {
    /// Opens the CSE over a store, creating the `<CSEBase>` on first start.
    pub async fn open(config: CseConfig, store: Arc<dyn Store>) -> Result<Arc<Self>> {
        let notifier = Notifier::new(&config)?;
        let cse = Arc::new(Self {
            config,
            store,
            notifier,
            associations: Arc::default(),
        });
        resources::cb::ensure(&cse).await?;
        Ok(cse)
    }

    /// The CSE's configuration.
    pub fn config(&self) -> &CseConfig {
        &self.config
    }

    /// The live security associations; TLS listeners register theirs here.
    pub fn associations(&self) -> &Arc<security::association::Registry> {
        &self.associations
    }

    /// A published CRL by file name (public, signed data: no access control).
    pub fn published_crl(&self, name: &str) -> Option<&[u8]> {
        self.config
            .published_crls
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, der)| der.as_slice())
    }

    /// The store (for administration and tests).
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Handles one request primitive and always answers with a response primitive.
    pub async fn handle(&self, ctx: &SecurityContext, req: Request) -> Response {
        if let Some(sa) = ctx.security_association() {
            sa.count_request();
        }
        let rqi = req.rqi.clone();
        let op = req.op;
        let to = req.to.clone();
        match self.process(ctx, req).await {
            Ok(mut resp) => {
                resp.rqi = rqi;
                resp
            }
            Err(e) => {
                if e.rsc == model::ResponseStatusCode::InternalServerError {
                    tracing::error!(rqi, ?op, to, peer = ?ctx.peer, error = %e, "request failed");
                } else {
                    tracing::info!(rqi, ?op, to, peer = ?ctx.peer, rsc = e.rsc.code(), reason = %e.message, "request refused");
                }
                Response::error(&e, rqi)
            }
        }
    }

    fn process<'a>(&'a self, ctx: &'a SecurityContext, req: Request) -> BoxedResponse<'a> {
        Box::pin(async move {
            req.validate()?;
            if let Some(rqet) = &req.rqet {
                if model::time::parse(rqet)? < model::time::now() {
                    return Err(Error::new(
                        model::ResponseStatusCode::RequestTimeout,
                        "request expired before it was processed",
                    ));
                }
            }
            let originator = originator::check(ctx, &req, &self.config, self.store.as_ref())?;
            let caller = Caller { ctx, originator };
            let target = addressing::resolve(&req.to, &self.config, self.store.as_ref())?;
            if let Target::FanOut { group, suffix } = target {
                return self.fan_out(&caller, &req, group, &suffix).await;
            }
            match req.op {
                Operation::Create => self.create(&caller, &req, target).await,
                Operation::Retrieve if req.is_discovery() => self.discover(&caller, &req, target),
                Operation::Retrieve => self.retrieve(&caller, &req, target),
                Operation::Update => self.update(&caller, &req, target).await,
                Operation::Delete => self.delete(&caller, &req, target).await,
                Operation::Notify => self.notify(&caller, &req, target).await,
            }
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

    /// Access check for `op` on `target`.
    pub(crate) fn authorize(
        &self,
        caller: &Caller<'_>,
        target: &Resource,
        op: model::AccessOperation,
        create_ty: Option<ResourceType>,
    ) -> Result<()> {
        access::authorize(
            self.store.as_ref(),
            &self.config,
            &caller.originator,
            self.authenticated(caller),
            target,
            op,
            create_ty,
        )
    }
}

/// The resource a non-virtual operation works on; `la`/`ol` stand for their instance.
pub(crate) fn real_target(target: Target) -> Result<Resource> {
    match target {
        Target::Resource(r) => Ok(r),
        Target::Edge {
            instance: Some(r), ..
        } => Ok(r),
        Target::Edge { instance: None, .. } => {
            Err(Error::not_found("the container has no content instance"))
        }
        Target::FanOut { .. } => Err(Error::operation_not_allowed(
            "fopt is only valid for fan-out",
        )),
    }
}
