//! An in-memory binding: carries requests to [`Cse::serve`] and the answers back without
//! sockets, with the security context a test chooses (a plaintext listener, or a security
//! association that proved a credential). It is what a new binding reduces to once its
//! bytes are converted: an [`Inbound`] and a [`SecurityContext`] in, an [`Answer`] out.
//! Compiled with the `testing` feature only.

use crate::inbound::{Answer, Inbound, ManagerRequest, Verb};
use crate::{Cse, ListenerRole, SecurityContext};
use model::{Error, Request, Response};
use security::association::Established;
use std::net::SocketAddr;
use std::sync::Arc;

/// One client's way into a CSE: every request it carries has the same security context,
/// as every request on one connection of a real binding has.
#[derive(Debug, Clone)]
pub struct MemoryBinding {
    cse: Arc<Cse>,
    ctx: SecurityContext,
}

impl MemoryBinding {
    /// Requests from `peer` on the plaintext listener `listener`.
    pub fn plaintext(cse: &Arc<Cse>, listener: &str, peer: Option<SocketAddr>) -> Self {
        Self::with_context(cse, SecurityContext::plaintext(listener, peer))
    }

    /// Requests over a new security association in the CSE's registry, on a listener of
    /// `role`, after a handshake from `peer` that proved `established`. The association
    /// stays open (and can be withdrawn) while a clone of the binding holds it.
    pub fn over(
        cse: &Arc<Cse>,
        role: ListenerRole,
        peer: SocketAddr,
        established: Established,
    ) -> Self {
        let registration = cse.associations().open("memory", peer, established);
        Self::with_context(
            cse,
            SecurityContext::established(role, Arc::new(registration)),
        )
    }

    /// Requests with the security context `ctx`.
    pub fn with_context(cse: &Arc<Cse>, ctx: SecurityContext) -> Self {
        Self {
            cse: cse.clone(),
            ctx,
        }
    }

    /// The security context every request carries.
    pub fn context(&self) -> &SecurityContext {
        &self.ctx
    }

    /// Carries any inbound request and its answer.
    pub async fn serve(&self, inbound: Inbound) -> Answer {
        self.cse.serve(&self.ctx, inbound).await
    }

    /// Carries a request primitive and its response.
    pub async fn send(&self, req: Request) -> Response {
        let rqi = req.rqi.clone();
        match self.serve(Inbound::Primitive(req)).await {
            Answer::Response(resp) => resp,
            Answer::Waiting(waiting) => waiting.answer().await,
            Answer::Document { .. } => Response::error(
                &Error::internal("a request primitive was answered with a document"),
                rqi,
            ),
        }
    }

    /// Carries a request to a security-manager operation: `path` and `query` as a binding
    /// receives them (`/.admin/withdrawn`, `credential=...`), `rqi` `"memory"`.
    pub async fn manage(
        &self,
        verb: Verb,
        path: &str,
        query: &str,
        fr: Option<&str>,
        body: &[u8],
    ) -> Answer {
        self.serve(Inbound::Manager(ManagerRequest {
            verb,
            path: path.to_owned(),
            query: query.to_owned(),
            fr: fr.map(str::to_owned),
            rqi: "memory".to_owned(),
            body: body.to_vec(),
        }))
        .await
    }
}
