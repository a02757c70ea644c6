//! The one thing the binding needs from the CSE: a function from request primitive to
//! response primitive. Keeping it a trait lets the binding be tested with a fake handler
//! that records what it received, without a store or a running CSE.

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

    /// Handles an administration request (`GET /.admin/<command>`); none by default.
    fn admin(
        &self,
        ctx: SecurityContext,
        fr: Option<String>,
        rqi: String,
        command: String,
    ) -> impl Future<Output = Response> + Send {
        let _ = (ctx, fr, command);
        async move { Response::error(&model::Error::not_found("no administration interface"), rqi) }
    }
}

impl Handler for cse::Cse {
    fn crl(&self, name: &str) -> Option<Vec<u8>> {
        self.published_crl(name).map(<[u8]>::to_vec)
    }

    async fn handle(&self, ctx: SecurityContext, req: Request) -> Response {
        cse::Cse::handle(self, &ctx, req).await
    }

    async fn admin(
        &self,
        ctx: SecurityContext,
        fr: Option<String>,
        rqi: String,
        command: String,
    ) -> Response {
        match cse::admin::AdminCommand::from_name(&command) {
            Some(c) => cse::Cse::admin(self, &ctx, fr, &rqi, c).await,
            None => Response::error(
                &model::Error::not_found(format!("no admin command '{command}'")),
                rqi,
            ),
        }
    }
}
