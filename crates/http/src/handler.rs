//! The one thing the binding needs from the CSE: a function from request primitive to
//! response primitive. Keeping it a trait lets the binding be tested with a fake handler
//! that records what it received, without a store or a running CSE.

use cse::security_manager::{admin, maf};
use cse::SecurityContext;
use model::{Request, Response};
use std::future::Future;

/// Answers request primitives. The binding calls it once per HTTP request, on its own task,
/// so a client that disconnects does not cancel an operation half way.
pub trait Handler: Send + Sync + 'static {
    /// Handles one request; must always produce a response (errors are responses too).
    fn handle(&self, ctx: SecurityContext, req: Request) -> impl Future<Output = Response> + Send;

    /// A published CRL by name, DER-encoded (`GET /.well-known/crl/<name>`); none by default.
    fn crl(&self, name: &str) -> Option<Vec<u8>> {
        let _ = name;
        None
    }

    /// Handles the enrolment request of the MEF (`POST /.mef/enrol`, body as received);
    /// none by default (4004).
    fn enrol(
        &self,
        ctx: SecurityContext,
        rqi: String,
        body: bytes::Bytes,
    ) -> impl Future<Output = Response> + Send {
        let _ = (ctx, body);
        async move { Response::error(&model::Error::not_found("no enrolment function"), rqi) }
    }

    /// Handles a request to the CSE's MAF (`/.maf/...`, see `cse::security_manager::maf`);
    /// none by default (4004).
    fn maf(
        &self,
        ctx: SecurityContext,
        req: maf::KeyRequest,
    ) -> impl Future<Output = Response> + Send {
        let _ = ctx;
        async move { Response::error(&model::Error::not_found("no MAF"), req.rqi) }
    }

    /// Handles a fetchCredentials request of an Enrolment Target (`/.mef/fetch-credentials`,
    /// see `cse::security_manager::enrolment::fetch`); none by default (4004).
    fn fetch_credentials(
        &self,
        ctx: SecurityContext,
        req: maf::KeyRequest,
    ) -> impl Future<Output = Response> + Send {
        let _ = ctx;
        async move { Response::error(&model::Error::not_found("no enrolment function"), req.rqi) }
    }

    /// Gives the AE that asks a fresh AE-ID (`POST /.privacy/rotate-ae-id`, see
    /// `cse::security_manager::pseudonyms`); none by default (4004).
    fn rotate_ae_id(
        &self,
        ctx: SecurityContext,
        fr: Option<String>,
        rqi: String,
    ) -> impl Future<Output = Response> + Send {
        let _ = (ctx, fr);
        async move { Response::error(&model::Error::not_found("no pseudonym rotation"), rqi) }
    }

    /// Handles an administration request (`GET /.admin/<command>?<params>`, the parameters
    /// percent-decoded); none by default.
    fn admin(
        &self,
        ctx: SecurityContext,
        fr: Option<String>,
        rqi: String,
        command: String,
        params: Vec<(String, String)>,
        change: bool,
    ) -> impl Future<Output = Response> + Send {
        let _ = (ctx, fr, command, params, change);
        async move { Response::error(&model::Error::not_found("no administration interface"), rqi) }
    }
}

impl Handler for cse::Cse {
    fn crl(&self, name: &str) -> Option<Vec<u8>> {
        self.published_crl(name)
    }

    async fn handle(&self, ctx: SecurityContext, req: Request) -> Response {
        cse::Cse::handle(self, &ctx, req).await
    }

    async fn enrol(&self, ctx: SecurityContext, rqi: String, body: bytes::Bytes) -> Response {
        cse::Cse::enrol(self, &ctx, rqi, &body).await
    }

    async fn maf(&self, ctx: SecurityContext, req: maf::KeyRequest) -> Response {
        cse::Cse::maf(self, &ctx, req).await
    }

    async fn fetch_credentials(&self, ctx: SecurityContext, req: maf::KeyRequest) -> Response {
        cse::Cse::fetch_credentials(self, &ctx, req).await
    }

    async fn rotate_ae_id(
        &self,
        ctx: SecurityContext,
        fr: Option<String>,
        rqi: String,
    ) -> Response {
        match cse::Cse::rotate_ae_id(self, &ctx, fr).await {
            Ok(pc) => Response::new(model::ResponseStatusCode::Ok, &rqi, Some(pc)),
            Err(e) => {
                tracing::warn!(peer = %security::privacy::peer_tag(ctx.peer), rsc = e.rsc.code(), reason = %model::Untrusted(&e.message), "AE-ID rotation refused");
                Response::error(&e, rqi)
            }
        }
    }

    async fn admin(
        &self,
        ctx: SecurityContext,
        fr: Option<String>,
        rqi: String,
        command: String,
        params: Vec<(String, String)>,
        change: bool,
    ) -> Response {
        match admin::AdminCommand::with_params(&command, &params) {
            // A command that changes something comes as POST, and only then.
            Some(Ok(c)) if c.changes_state() != change => Response::error(
                &model::Error::new(
                    model::ResponseStatusCode::OperationNotAllowed,
                    format!(
                        "admin command '{command}' takes {}",
                        if c.changes_state() { "POST" } else { "GET" }
                    ),
                ),
                rqi,
            ),
            Some(Ok(c)) => cse::Cse::admin(self, &ctx, fr, &rqi, c).await,
            Some(Err(e)) => Response::error(&e, rqi),
            None => Response::error(
                &model::Error::not_found(format!("no admin command '{command}'")),
                rqi,
            ),
        }
    }
}
