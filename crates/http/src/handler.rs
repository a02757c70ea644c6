//! The one thing the binding needs from the CSE: a function from inbound request to answer
//! ([`cse::Cse::serve`]). Keeping it a trait lets the binding be tested with a fake handler
//! that records what it received, without a store or a running CSE.

use cse::inbound::{Answer, Inbound};
use cse::SecurityContext;
use std::future::Future;

/// Answers inbound requests. The binding calls it once per HTTP request; a request that
/// changes something runs on its own task, so a client that disconnects does not cancel an
/// operation half way.
pub trait Handler: Send + Sync + 'static {
    /// Serves one request; must always produce an answer (errors are responses too).
    fn serve(&self, ctx: SecurityContext, inbound: Inbound) -> impl Future<Output = Answer> + Send;
}

impl Handler for cse::Cse {
    async fn serve(&self, ctx: SecurityContext, inbound: Inbound) -> Answer {
        cse::Cse::serve(self, &ctx, inbound).await
    }
}
