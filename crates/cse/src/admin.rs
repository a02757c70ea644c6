//! Administration requests: operations on the CSE itself rather than on resources (today:
//! listing the live security associations). Only the admin originator may use them, under
//! the same originator check as every request, so in a secure deployment only over an
//! association with an admin credential.

use crate::originator::{self, Originator};
use crate::{Cse, SecurityContext};
use model::{Error, Operation, Request, Response, ResponseStatusCode, Result};
use security::association::PeerIdentity;
use serde_json::{json, Value};
use std::time::UNIX_EPOCH;

/// What an admin can ask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AdminCommand {
    /// List the live security associations.
    ListAssociations,
}

impl AdminCommand {
    /// The command named by an admin path segment.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "associations" => Some(Self::ListAssociations),
            _ => None,
        }
    }
}

impl Cse {
    /// Runs an admin command for the originator `fr`.
    pub async fn admin(
        &self,
        ctx: &SecurityContext,
        fr: Option<String>,
        rqi: &str,
        command: AdminCommand,
    ) -> Response {
        match self.run_admin(ctx, fr, command) {
            Ok(pc) => Response::new(ResponseStatusCode::Ok, rqi, Some(pc)),
            Err(e) => {
                tracing::warn!(peer = ?ctx.peer, rsc = e.rsc.code(), reason = %e.message, "admin request refused");
                Response::error(&e, rqi)
            }
        }
    }

    fn run_admin(
        &self,
        ctx: &SecurityContext,
        fr: Option<String>,
        command: AdminCommand,
    ) -> Result<Value> {
        if let Some(sa) = ctx.security_association() {
            sa.count_request();
        }
        let probe = Request::new(Operation::Retrieve, self.config.cse_name.clone(), fr);
        if originator::check(ctx, &probe, &self.config, self.store.as_ref())? != Originator::Admin {
            return Err(Error::no_privilege(
                "admin requests need the admin originator",
            ));
        }
        Ok(match command {
            AdminCommand::ListAssociations => {
                let list: Vec<Value> = self
                    .associations
                    .list()
                    .iter()
                    .map(|sa| {
                        let e = &sa.established;
                        let (kind, identity) = match &e.binding.identity {
                            PeerIdentity::Ae(id) => ("ae", json!(id)),
                            PeerIdentity::Cse(id) => ("cse", json!(id)),
                            PeerIdentity::AllowedAes(p) => ("allowed-aes", json!(p)),
                        };
                        let opened = sa
                            .opened
                            .duration_since(UNIX_EPOCH)
                            .map(|d| d.as_secs())
                            .unwrap_or(0);
                        let opened = chrono::DateTime::from_timestamp(opened as i64, 0)
                            .map(model::time::format);
                        json!({
                            "id": sa.id,
                            "listener": sa.listener,
                            "peer": sa.peer.to_string(),
                            "boundTo": kind,
                            "identity": identity,
                            "admin": originator::is_admin_credential(sa, &self.config),
                            "credentialId": e.credential_id,
                            "framework": e.framework.name(),
                            "protocol": e.protocol,
                            "cipher": e.cipher,
                            "serverName": e.server_name,
                            "resumed": e.resumed,
                            "established": opened,
                            "requests": sa.requests(),
                        })
                    })
                    .collect();
                json!({ "associations": list })
            }
        })
    }
}
