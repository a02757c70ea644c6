//! The door in: the one typed entry every binding (HTTP today; CoAP, MQTT and the in-memory
//! test binding next) calls. A binding converts what it received into an [`Inbound`], hands
//! it to [`Cse::serve`] with the [`SecurityContext`] of its connection, and converts the
//! [`Answer`] answer back into bytes. Which target paths name the security manager's
//! operations, which method each takes and what each answers is decided here, once, so
//! every binding gets the same behaviour and the same status codes.

use crate::security_manager::enrolment::{certificate, fetch, mef};
use crate::security_manager::{admin, maf, pseudonyms};
use crate::waiting::Waiting;
use crate::{Cse, Reply, SecurityContext};
use model::{Error, Request, Response, ResponseStatusCode};

/// Path prefix of published CRLs (the CRL distribution points of the CSE's certificates).
/// CRLs are public signed documents, so they are served to anyone without a request ID.
pub const CRL_PREFIX: &str = "/.well-known/crl/";

/// Path prefix of the administration interface (`/.admin/associations`). It cannot collide
/// with a resource: no resource name starts with a dot followed by `admin/` under the root,
/// and every request to it is held to the admin originator.
pub const ADMIN_PREFIX: &str = "/.admin/";

/// Media type of a published CRL.
const CRL_MEDIA_TYPE: &str = "application/pkix-crl";

/// What a binding hands to the CSE: a oneM2M request primitive, or a request to one of the
/// security manager's operations, which are not resources and are addressed by path.
#[derive(Debug)]
// The primitive is the common case and is moved only a few times: boxing it would add an
// allocation to every request.
#[allow(clippy::large_enum_variant)]
pub enum Inbound {
    /// A request primitive, for the oneM2M pipeline ([`Cse::handle`]).
    Primitive(Request),
    /// A request to a security-manager operation ([`Door`]).
    Manager(ManagerRequest),
}

impl Inbound {
    /// The request ID to answer a binding-level failure (a panic) with.
    pub fn rqi(&self) -> &str {
        match self {
            Self::Primitive(req) => &req.rqi,
            Self::Manager(req) => &req.rqi,
        }
    }

    /// Whether the request only reads. A binding may run a read on the connection's own
    /// task; anything else must run to completion even when the client disconnects, so
    /// that it never stops between two of its steps (an audit record and a stored key, a
    /// write and its notifications).
    pub fn only_reads(&self) -> bool {
        match self {
            Self::Primitive(req) => req.op == model::Operation::Retrieve,
            Self::Manager(req) => Door::addressed(&req.path) == Some(Door::Crl),
        }
    }
}

/// The kind of method a binding received, as far as the security manager's operations
/// care (HTTP: GET, POST, DELETE; CoAP: GET, POST, DELETE).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    /// Reads (GET).
    Retrieve,
    /// Changes something or submits a request (POST).
    Change,
    /// Deletes (DELETE).
    Delete,
    /// Anything else: refused with 4005.
    Other,
}

/// A request to one of the security manager's operations, as the binding received it.
#[derive(Debug)]
pub struct ManagerRequest {
    /// The method.
    pub verb: Verb,
    /// The target path as received, percent-encoded (`/.admin/reload-tls`).
    pub path: String,
    /// The query as received, percent-encoded `key=value` pairs joined by `&` (empty when
    /// there is none); only the administration commands take parameters.
    pub query: String,
    /// The originator (`X-M2M-Origin`), if given.
    pub fr: Option<String>,
    /// The request ID (`X-M2M-RI`); empty when none was given (a CRL needs none).
    pub rqi: String,
    /// The content as received (bounded by the binding's limit).
    pub body: Vec<u8>,
}

/// The security manager's operations, each named by the target path it is reached at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Door {
    /// A published CRL (`GET /.well-known/crl/<name>`).
    Crl,
    /// The MEF's enrolment request (`POST /.mef/enrol`, `POST /.mef/certificate`).
    Enrolment,
    /// A request to the MAF (`/.maf/...`).
    Maf,
    /// An Enrolment Target's fetchCredentials request (`/.mef/fetch-credentials`).
    FetchCredentials,
    /// An AE's request for a fresh AE-ID (`POST /.privacy/rotate-ae-id`).
    AeIdRotation,
    /// An administration command (`GET` or `POST /.admin/<command>`).
    Admin,
}

impl Door {
    /// The operation `path` (as received, percent-encoded) names, if it names one; any
    /// other path addresses a resource.
    pub fn addressed(path: &str) -> Option<Self> {
        if path.starts_with(CRL_PREFIX) {
            Some(Self::Crl)
        } else if path == mef::ENROL_PATH || path == certificate::CERTIFICATE_PATH {
            Some(Self::Enrolment)
        } else if path == fetch::FETCH_PATH {
            Some(Self::FetchCredentials)
        } else if path.starts_with(maf::MAF_PREFIX) {
            Some(Self::Maf)
        } else if path == pseudonyms::ROTATE_PATH {
            Some(Self::AeIdRotation)
        } else if path.starts_with(ADMIN_PREFIX) {
            Some(Self::Admin)
        } else {
            None
        }
    }

    /// Whether a request to this operation must carry a request ID; only a CRL, a public
    /// document, is served without one.
    pub fn needs_request_id(self) -> bool {
        self != Self::Crl
    }
}

/// What the CSE answers a binding.
#[derive(Debug)]
pub enum Answer {
    /// A response primitive.
    Response(Response),
    /// A document that is not a primitive (a published CRL), with its media type.
    Document {
        /// The media type (`application/pkix-crl`).
        media_type: &'static str,
        /// The document.
        bytes: Vec<u8>,
    },
    /// A request that passed every check and now waits for its answer (a long poll): the
    /// binding gives back the request's place among those in progress, keeps nothing of
    /// the request but what it needs to answer, and awaits [`Waiting::answer`].
    Waiting(Waiting),
}

impl Answer {
    /// The response primitive, for callers that expect one (a document becomes `None`);
    /// a waiting request is waited for.
    pub async fn into_response(self) -> Option<Response> {
        match self {
            Self::Response(resp) => Some(resp),
            Self::Document { .. } => None,
            Self::Waiting(waiting) => Some(waiting.answer().await),
        }
    }
}

impl Cse {
    /// Serves one inbound request: the door every binding comes in by. Always answers
    /// (errors are responses too).
    pub async fn serve(&self, ctx: &SecurityContext, inbound: Inbound) -> Answer {
        match inbound {
            Inbound::Primitive(req) => {
                if let Some(sa) = ctx.security_association() {
                    sa.count_request();
                }
                match self.reply(ctx, req).await {
                    Reply::Now(resp) => Answer::Response(resp),
                    Reply::Waiting(waiting) => Answer::Waiting(waiting),
                }
            }
            // Allocated on its own: the security manager's operations (enrolment, key
            // derivation) are large futures that a resource request should not carry.
            Inbound::Manager(req) => Box::pin(self.manage(ctx, req)).await,
        }
    }

    /// Routes a request to the security manager's operation its path names.
    async fn manage(&self, ctx: &SecurityContext, req: ManagerRequest) -> Answer {
        let answer = match Door::addressed(&req.path) {
            Some(Door::Crl) => return self.crl(req),
            Some(Door::Enrolment) if req.verb != Verb::Change => Err(Error::operation_not_allowed(
                "the enrolment request is a POST",
            )),
            Some(Door::Enrolment) => Ok(self.enrol(ctx, req.rqi.clone(), &req.body).await),
            Some(door @ (Door::Maf | Door::FetchCredentials)) => {
                self.key_function(ctx, door, &req).await
            }
            Some(Door::AeIdRotation) => self.rotation(ctx, &req).await,
            Some(Door::Admin) => self.admin_request(ctx, &req).await,
            None => Err(Error::not_found("no such security-manager operation")),
        };
        Answer::Response(answer.unwrap_or_else(|e| Response::error(&e, req.rqi)))
    }

    /// A published CRL by name; an unknown name is 4004, like an unknown resource.
    fn crl(&self, req: ManagerRequest) -> Answer {
        let name = req.path.strip_prefix(CRL_PREFIX).unwrap_or_default();
        let error = if req.verb != Verb::Retrieve {
            Error::operation_not_allowed("a CRL is retrieved")
        } else if let Some(bytes) = self.published_crl(name) {
            return Answer::Document {
                media_type: CRL_MEDIA_TYPE,
                bytes,
            };
        } else {
            Error::not_found("no CRL published under that name")
        };
        Answer::Response(Response::error(&error, req.rqi))
    }

    /// A request to the MAF, or a fetchCredentials request to the MEF: the path after the
    /// prefix percent-decoded.
    async fn key_function(
        &self,
        ctx: &SecurityContext,
        door: Door,
        req: &ManagerRequest,
    ) -> model::Result<Response> {
        let rest = if door == Door::FetchCredentials {
            ""
        } else {
            req.path.strip_prefix(maf::MAF_PREFIX).unwrap_or_default()
        };
        let path = percent_encoding::percent_decode_str(rest)
            .decode_utf8()
            .map_err(|_| Error::bad_request("MAF path is not UTF-8 after percent-decoding"))?
            .into_owned();
        let key_request = maf::KeyRequest {
            method: match req.verb {
                Verb::Retrieve => maf::KeyMethod::Get,
                Verb::Change => maf::KeyMethod::Post,
                Verb::Delete => maf::KeyMethod::Delete,
                Verb::Other => maf::KeyMethod::Other,
            },
            path,
            fr: req.fr.clone(),
            rqi: req.rqi.clone(),
            body: req.body.clone(),
        };
        Ok(if door == Door::FetchCredentials {
            self.fetch_credentials(ctx, key_request).await
        } else {
            self.maf(ctx, key_request).await
        })
    }

    /// An AE's request for a fresh AE-ID: POST, without content.
    async fn rotation(
        &self,
        ctx: &SecurityContext,
        req: &ManagerRequest,
    ) -> model::Result<Response> {
        if req.verb != Verb::Change {
            return Err(Error::operation_not_allowed(
                "the rotation request is a POST",
            ));
        }
        if !req.body.is_empty() {
            return Err(Error::bad_request("the rotation request has no content"));
        }
        match self.rotate_ae_id(ctx, req.fr.clone()).await {
            Ok(pc) => Ok(Response::new(ResponseStatusCode::Ok, &req.rqi, Some(pc))),
            Err(e) => {
                tracing::warn!(peer = %security::privacy::peer_tag(ctx.peer), rsc = e.rsc.code(), reason = %model::Untrusted(&e.message), "AE-ID rotation refused");
                Err(e)
            }
        }
    }

    /// An administration command: one that changes something comes as a change (POST), and
    /// only then; one that reads comes as a retrieve (GET).
    async fn admin_request(
        &self,
        ctx: &SecurityContext,
        req: &ManagerRequest,
    ) -> model::Result<Response> {
        let command = req.path.strip_prefix(ADMIN_PREFIX).unwrap_or_default();
        let change = match req.verb {
            Verb::Retrieve => false,
            Verb::Change => true,
            Verb::Delete | Verb::Other => {
                return Err(Error::operation_not_allowed(
                    "admin commands take GET or POST",
                ))
            }
        };
        match admin::AdminCommand::from_request(command, &req.query)? {
            Some(c) if c.changes_state() != change => Err(Error::new(
                ResponseStatusCode::OperationNotAllowed,
                format!(
                    "admin command '{command}' takes {}",
                    if c.changes_state() { "POST" } else { "GET" }
                ),
            )),
            Some(c) => Ok(self.admin(ctx, req.fr.clone(), &req.rqi, c).await),
            None => Err(Error::not_found(format!("no admin command '{command}'"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_their_operations() {
        assert_eq!(Door::addressed("/.well-known/crl/ca.crl"), Some(Door::Crl));
        assert_eq!(Door::addressed("/.mef/enrol"), Some(Door::Enrolment));
        assert_eq!(Door::addressed("/.mef/certificate"), Some(Door::Enrolment));
        assert_eq!(
            Door::addressed("/.mef/fetch-credentials"),
            Some(Door::FetchCredentials)
        );
        assert_eq!(Door::addressed("/.maf/keys"), Some(Door::Maf));
        assert_eq!(
            Door::addressed("/.privacy/rotate-ae-id"),
            Some(Door::AeIdRotation)
        );
        assert_eq!(Door::addressed("/.admin/reload-tls"), Some(Door::Admin));
        assert_eq!(Door::addressed("/cse-in/.admin/x"), None);
        assert_eq!(Door::addressed("/.mef/enrol/x"), None);
        assert!(!Door::Crl.needs_request_id());
        assert!(Door::Admin.needs_request_id());
    }
}
