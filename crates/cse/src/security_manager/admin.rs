//! Administration requests: operations on the CSE itself rather than on resources (listing
//! the live security associations; explaining an access control decision). Only the admin
//! originator may use them, under the same originator check as every request, so in a
//! secure deployment only over an association with an admin credential.

use crate::access::{Check, RequestContext};
use crate::addressing::Target;
use crate::originator::{self, Claimed, Originator};
use crate::security_manager::withdrawal::Withdraw;
use crate::{Cse, SecurityContext};
use model::resources::acp::region::{Location, Region};
use model::time::Timestamp;
use model::{
    AccessOperation, Error, Operation, Request, ResourceType, Response, ResponseStatusCode, Result,
};
use security::association::PeerIdentity;
use serde_json::{json, Value};
use std::time::UNIX_EPOCH;

/// What an admin can ask.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum AdminCommand {
    /// List the live security associations.
    ListAssociations,
    /// Explain the access control decision for a request (given or hypothetical).
    Explain(ExplainQuery),
    /// List the withdrawn (revoked or suspended) credentials.
    ListWithdrawn,
    /// Per-credential usage since the CSE started (the supervision's record): every
    /// credential seen, or the one named.
    Usage {
        /// The Credential-ID, or `None` for all.
        credential: Option<String>,
    },
    /// Record a certificate the CA issued while the CSE holds the audit log (`m2m ca issue`
    /// runs as another process and may not append to the log itself).
    RecordIssued {
        /// The identity in the certificate.
        subject: String,
        /// Its serial number (hex).
        serial: String,
        /// End of validity.
        not_after: String,
    },
    /// Re-read the TLS listeners' certificates, keys, CRLs and credentials.
    ReloadTls,
    /// The audit log's checkpoint (its last entry on disk, signed), for the admin to keep
    /// away from the CSE: `m2m audit verify --head` with it catches a log cut off later.
    AuditHead,
    /// Resolve a pseudonym (an assigned AE-ID) to its credential, for a stated purpose.
    Resolve {
        /// The AE-ID.
        pseudonym: String,
        /// Why (kept in the audit log).
        purpose: String,
        /// For an alias a notification target was shown: that target's URL.
        target: Option<String>,
    },
    /// Revoke, suspend or resume a credential (`credential`, `reason`).
    Withdraw {
        /// What to do.
        what: Withdraw,
        /// The Credential-ID.
        credential: String,
        /// Why (for the audit trail; empty for resume).
        reason: String,
    },
}

impl AdminCommand {
    /// The command named by an admin path segment, for commands without parameters.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "associations" => Some(Self::ListAssociations),
            "withdrawn" => Some(Self::ListWithdrawn),
            "usage" => Some(Self::Usage { credential: None }),
            "audit-head" => Some(Self::AuditHead),
            _ => None,
        }
    }

    /// Whether the command changes anything (then it must come as a POST, else as a GET).
    pub fn changes_state(&self) -> bool {
        // Resolving changes the audit log: it is never a side effect of a GET.
        matches!(
            self,
            Self::Withdraw { .. }
                | Self::Resolve { .. }
                | Self::RecordIssued { .. }
                | Self::ReloadTls
        )
    }

    /// The command an admin request names by its path segment (`revoke`) and its query as
    /// received (percent-encoded): `Ok(None)` for an unknown command, a 4000 for a query that
    /// does not decode or does not fit the command. The one parser of admin requests, for
    /// every binding (and the fuzz target `admin_query`).
    pub fn from_request(command: &str, query: &str) -> Result<Option<Self>> {
        let params = query_params(query)?;
        Self::with_params(command, &params).transpose()
    }

    /// The command named by an admin path segment with its query parameters: `None` for an
    /// unknown command, a 4000 for parameters that do not fit it.
    pub fn with_params(name: &str, params: &[(String, String)]) -> Option<Result<Self>> {
        match name {
            "explain" => Some(ExplainQuery::parse(params).map(Self::Explain)),
            "revoke" => Some(withdraw(Withdraw::Revoke, params)),
            "suspend" => Some(withdraw(Withdraw::Suspend, params)),
            "resume" => Some(withdraw(Withdraw::Resume, params)),
            "resolve" => Some(resolve(params)),
            "record-issued" => Some(record_issued(params)),
            "reload-tls" if params.is_empty() => Some(Ok(Self::ReloadTls)),
            "reload-tls" => Some(Err(Error::bad_request("reload-tls takes no parameters"))),
            "usage" => Some(usage(params)),
            other => Self::from_name(other).map(Ok),
        }
    }
}

/// The query of an admin request as percent-decoded `key=value` pairs (`+` is a plus).
fn query_params(query: &str) -> Result<Vec<(String, String)>> {
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8()
            .map(|c| c.into_owned())
            .map_err(|_| Error::bad_request("admin query is not UTF-8 after percent-decoding"))
    };
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            Ok((decode(k)?, decode(v)?))
        })
        .collect()
}

/// `subject`, `serial` and `not_after`, all required, nothing else.
fn record_issued(params: &[(String, String)]) -> Result<AdminCommand> {
    let (mut subject, mut serial, mut not_after) = (None, None, None);
    for (key, value) in params {
        let slot = match key.as_str() {
            "subject" => &mut subject,
            "serial" => &mut serial,
            "not_after" => &mut not_after,
            other => {
                return Err(Error::bad_request(format!(
                    "unknown parameter '{other}' for record-issued"
                )))
            }
        };
        if value.is_empty() || value.chars().any(char::is_control) {
            return Err(Error::bad_request(format!("'{key}' must be printable")));
        }
        if slot.replace(value.clone()).is_some() {
            return Err(Error::bad_request(format!("'{key}' given twice")));
        }
    }
    match (subject, serial, not_after) {
        (Some(subject), Some(serial), Some(not_after)) => Ok(AdminCommand::RecordIssued {
            subject,
            serial,
            not_after,
        }),
        _ => Err(Error::bad_request(
            "'subject', 'serial' and 'not_after' are required",
        )),
    }
}

/// `pseudonym` and `purpose`, both required, and `target` for an alias; nothing else.
fn resolve(params: &[(String, String)]) -> Result<AdminCommand> {
    let (mut pseudonym, mut purpose, mut target) = (None, None, None);
    for (key, value) in params {
        let slot = match key.as_str() {
            "pseudonym" => &mut pseudonym,
            "purpose" => &mut purpose,
            "target" => &mut target,
            other => {
                return Err(Error::bad_request(format!(
                    "unknown parameter '{other}' for resolve"
                )))
            }
        };
        if slot.replace(value.clone()).is_some() {
            return Err(Error::bad_request(format!("'{key}' given twice")));
        }
    }
    match (pseudonym, purpose) {
        (Some(p), Some(why)) if !p.is_empty() && !why.trim().is_empty() => {
            Ok(AdminCommand::Resolve {
                pseudonym: p,
                purpose: why,
                target,
            })
        }
        _ => Err(Error::bad_request(
            "'pseudonym' (an AE-ID) and 'purpose' are required",
        )),
    }
}

/// `credential` (optional), nothing else.
fn usage(params: &[(String, String)]) -> Result<AdminCommand> {
    let mut credential = None;
    for (key, value) in params {
        if key != "credential" {
            return Err(Error::bad_request(format!(
                "unknown parameter '{key}' for this admin command"
            )));
        }
        if credential.replace(value.clone()).is_some() {
            return Err(Error::bad_request("'credential' given twice"));
        }
    }
    Ok(AdminCommand::Usage {
        credential: credential.filter(|c| !c.is_empty()),
    })
}

/// `credential` (required) and `reason` (required to revoke or suspend, so that the audit
/// trail says why), nothing else.
fn withdraw(what: Withdraw, params: &[(String, String)]) -> Result<AdminCommand> {
    let (mut credential, mut reason) = (None, None);
    for (key, value) in params {
        let slot = match key.as_str() {
            "credential" => &mut credential,
            "reason" if what != Withdraw::Resume => &mut reason,
            other => {
                return Err(Error::bad_request(format!(
                    "unknown parameter '{other}' for this admin command"
                )))
            }
        };
        if slot.replace(value.clone()).is_some() {
            return Err(Error::bad_request(format!("'{key}' given twice")));
        }
    }
    let credential = credential
        .filter(|c| !c.is_empty())
        .ok_or_else(|| Error::bad_request("'credential' (a Credential-ID) is required"))?;
    let reason = match what {
        Withdraw::Resume => String::new(),
        _ => reason
            .filter(|r| !r.trim().is_empty())
            .ok_or_else(|| Error::bad_request("'reason' is required"))?,
    };
    Ok(AdminCommand::Withdraw {
        what,
        credential,
        reason,
    })
}

/// The request to explain (`/.admin/explain?from=..&to=..&op=..`): who, what, where, and
/// the facts that contexts look at. Facts not given are the ones an unauthenticated request
/// from nowhere in particular would have, received now.
#[derive(Debug, Clone, PartialEq)]
pub struct ExplainQuery {
    /// `from`: the originator, in any form a request may use.
    pub from: String,
    /// `to`: the target address.
    pub to: String,
    /// `op`: create, retrieve, update, delete, notify or discover.
    pub op: AccessOperation,
    /// `ty`: for create, the resource type number to create.
    pub ty: Option<ResourceType>,
    /// `acpi=true`: explain an UPDATE of the target's `acpi` (checked against `pvs`).
    pub acpi: bool,
    /// `authn=true`: the request came over a security association (`rq_authn`).
    pub authenticated: bool,
    /// `ip`: the peer's address.
    pub ip: Option<std::net::IpAddr>,
    /// `level`: the credential level (1-3) of the peer's security association.
    pub level: Option<u8>,
    /// `roles`: comma-separated Role-IDs the originator holds.
    pub roles: Vec<String>,
    /// `time`: when the request is received (oneM2M timestamp); default now.
    pub time: Option<Timestamp>,
    /// `lat`, `lon` and optional `country`: where the originator is.
    pub location: Option<Location>,
}

impl ExplainQuery {
    /// Reads the query parameters; anything unknown, repeated or malformed is a 4000.
    pub fn parse(params: &[(String, String)]) -> Result<Self> {
        let bad = |why: String| Error::bad_request(format!("explain: {why}"));
        let mut seen: Vec<&str> = Vec::new();
        let mut get = std::collections::HashMap::new();
        for (k, v) in params {
            if seen.contains(&k.as_str()) {
                return Err(bad(format!("'{k}' given more than once")));
            }
            seen.push(k);
            let known = [
                "from", "to", "op", "ty", "acpi", "authn", "ip", "level", "roles", "time", "lat",
                "lon", "country",
            ];
            if !known.contains(&k.as_str()) {
                return Err(bad(format!(
                    "unknown parameter '{k}' (known: {})",
                    known.join(", ")
                )));
            }
            get.insert(k.as_str(), v.as_str());
        }
        let need = |k: &str| {
            get.get(k)
                .filter(|v| !v.is_empty())
                .map(|v| (*v).to_owned())
                .ok_or_else(|| bad(format!("'{k}' is required")))
        };
        let flag = |k: &str| match get.get(k).copied() {
            None | Some("false") => Ok(false),
            Some("true") => Ok(true),
            Some(v) => Err(bad(format!("'{k}' must be true or false, not '{v}'"))),
        };
        let op = match need("op")?.to_ascii_lowercase().as_str() {
            "create" => AccessOperation::CREATE,
            "retrieve" => AccessOperation::RETRIEVE,
            "update" => AccessOperation::UPDATE,
            "delete" => AccessOperation::DELETE,
            "notify" => AccessOperation::NOTIFY,
            "discover" | "discovery" => AccessOperation::DISCOVERY,
            other => {
                return Err(bad(format!(
                    "unknown op '{other}' (create, retrieve, update, delete, notify, discover)"
                )))
            }
        };
        let ty = get
            .get("ty")
            .map(|v| {
                v.parse::<u64>()
                    .map_err(|_| bad(format!("ty '{v}' is not a number")))
                    .and_then(ResourceType::from_code)
            })
            .transpose()?;
        if op == AccessOperation::CREATE && ty.is_none() {
            return Err(bad("op=create needs ty".to_owned()));
        }
        let acpi = flag("acpi")?;
        if acpi && op != AccessOperation::UPDATE {
            return Err(bad("acpi=true goes with op=update".to_owned()));
        }
        let ip = get
            .get("ip")
            .map(|v| {
                v.parse()
                    .map_err(|_| bad(format!("ip '{v}' is not an address")))
            })
            .transpose()?;
        let level = get
            .get("level")
            .map(|v| {
                v.parse::<u8>()
                    .ok()
                    .filter(|l| (1..=3).contains(l))
                    .ok_or_else(|| bad(format!("level '{v}' is not 1, 2 or 3")))
            })
            .transpose()?;
        let roles = get
            .get("roles")
            .map(|v| {
                v.split(',')
                    .filter(|r| !r.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        let time = get.get("time").map(|v| model::time::parse(v)).transpose()?;
        let number = |k: &str| {
            get.get(k)
                .map(|v| {
                    v.parse::<f64>()
                        .map_err(|_| bad(format!("{k} '{v}' is not a number")))
                })
                .transpose()
        };
        // A position, a country, or both: each is a fact on its own (a circle needs the
        // position, a country list the country).
        let position = match (number("lat")?, number("lon")?) {
            (Some(lat), Some(lon)) => {
                Region::circle(&[lat, lon, 0.0]).map_err(bad)?;
                Some((lat, lon))
            }
            (None, None) => None,
            _ => return Err(bad("lat and lon go together".to_owned())),
        };
        let country = get
            .get("country")
            .map(|c| match Region::countries([*c]) {
                Ok(Region::Countries(mut codes)) => Ok(codes.remove(0)),
                Ok(_) => Err(bad(format!("country '{c}'"))),
                Err(why) => Err(bad(why)),
            })
            .transpose()?;
        let location =
            (position.is_some() || country.is_some()).then_some(Location { position, country });
        Ok(Self {
            from: need("from")?,
            to: need("to")?,
            op,
            ty,
            acpi,
            authenticated: flag("authn")?,
            ip,
            level,
            roles,
            time,
            location,
        })
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
        let outcome = match command {
            AdminCommand::Withdraw {
                what,
                credential,
                reason,
            } => match self.admin_actor(ctx, fr) {
                Ok(actor) => match self.withdraw(&actor, what, &credential, &reason).await {
                    // In force but not yet on disk: 1000 ACCEPTED, with the warning.
                    Ok(done) => return Response::new(done.rsc, rqi, Some(done.content)),
                    Err(e) => Err(e),
                },
                Err(e) => Err(e),
            },
            AdminCommand::ReloadTls => match self.admin_actor(ctx, fr) {
                Ok(actor) => self.reload_tls(&actor).await,
                Err(e) => Err(e),
            },
            AdminCommand::RecordIssued {
                subject,
                serial,
                not_after,
            } => match (self.admin_actor(ctx, fr), self.audit()) {
                (Err(e), _) => Err(e),
                (Ok(_), None) => Ok(json!({ "recorded": false })),
                (Ok(_), Some(audit)) => audit
                    .record_durably(manager::audit::Event::CertificateIssued {
                        subject,
                        serial,
                        not_after,
                    })
                    .await
                    .map(|()| json!({ "recorded": true })),
            },
            AdminCommand::Resolve {
                pseudonym,
                purpose,
                target,
            } => match self.admin_actor(ctx, fr) {
                Ok(actor) => {
                    self.resolve(&actor, &pseudonym, &purpose, target.as_deref())
                        .await
                }
                Err(e) => Err(e),
            },
            other => self.run_admin(ctx, fr, other),
        };
        match outcome {
            Ok(pc) => Response::new(ResponseStatusCode::Ok, rqi, Some(pc)),
            Err(e) => {
                tracing::warn!(peer = %security::privacy::peer_tag(ctx.peer), rsc = e.rsc.code(), reason = %model::Untrusted(&e.message), "admin request refused");
                Response::error(&e, rqi)
            }
        }
    }

    /// Checks that `fr` is the admin (over an admin credential where that is required) and
    /// names them for the audit trail: the admin originator and the credential used.
    fn admin_actor(&self, ctx: &SecurityContext, fr: Option<String>) -> Result<String> {
        self.run_admin(ctx, fr, AdminCommand::ListWithdrawn)?;
        Ok(match ctx.security_association() {
            Some(sa) => format!("{} ({})", self.config.admin, sa.established.credential_id),
            None => self.config.admin.clone(),
        })
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
        ctx.admit(crate::Service::Admin)?;
        let probe = Request::new(Operation::Retrieve, self.config.cse_name.clone(), fr);
        if originator::check(ctx, &probe, &self.config, self.store.as_ref())? != Originator::Admin {
            return Err(Error::no_privilege(
                "admin requests need the admin originator",
            ));
        }
        Ok(match command {
            AdminCommand::Explain(query) => self.explain(&query)?,
            AdminCommand::ListWithdrawn => json!({ "withdrawn": self.withdrawn_credentials() }),
            AdminCommand::Usage { credential } => self.credential_usage(credential.as_deref())?,
            AdminCommand::AuditHead => {
                let checkpoint = self
                    .audit
                    .as_ref()
                    .ok_or_else(|| Error::not_found("this CSE keeps no audit log"))?
                    .log()
                    .checkpoint()
                    .ok_or_else(|| Error::not_found("the audit log has no entries yet"))?;
                serde_json::to_value(checkpoint)
                    .map_err(|e| Error::internal(format!("audit checkpoint: {e}")))?
            }
            AdminCommand::Withdraw { .. }
            | AdminCommand::Resolve { .. }
            | AdminCommand::RecordIssued { .. }
            | AdminCommand::ReloadTls => {
                return Err(Error::internal("this admin command is asynchronous"))
            }
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

impl Cse {
    /// Explains the access control decision for `query`, as JSON: the facts used, the
    /// decision, what it was based on, and every policy and rule considered.
    pub fn explain(&self, query: &ExplainQuery) -> Result<Value> {
        let mut notes: Vec<String> = Vec::new();
        let originator = if query.from == self.config.admin {
            Originator::Admin
        } else {
            match originator::normalize(&query.from, &self.config)? {
                Claimed::AeId(id) => {
                    if self.store.resource_type(&id)? != Some(ResourceType::Ae) {
                        notes.push(format!(
                            "{id} is not a registered AE: a real request is refused (4106) before access control"
                        ));
                    }
                    Originator::Ae(id)
                }
                Claimed::CseOrRemote(id) => {
                    notes.push(format!(
                        "{id} names a CSE or an entity behind one: a real request needs a security association bound to it"
                    ));
                    Originator::RemoteCse(id)
                }
            }
        };
        if query.op == AccessOperation::CREATE && query.ty == Some(ResourceType::Ae) {
            notes.push(
                "an AE registration is not subject to access control (TS-0001 10.2.2.2)".to_owned(),
            );
        }
        let (target, check) =
            match crate::addressing::resolve(&query.to, &self.config, self.store.as_ref())? {
                Target::FanOut { group, .. } => (group, Check::FanOut),
                other => {
                    let r = crate::real_target(other)?;
                    (
                        r,
                        if query.acpi {
                            Check::AcpiUpdate
                        } else {
                            Check::Operation
                        },
                    )
                }
            };
        let ctx = RequestContext {
            authenticated: query.authenticated,
            time: query.time.unwrap_or_else(|| self.config.clock.now()),
            ip: query.ip,
            location: query.location.clone(),
            credential_level: query.level,
            roles: query.roles.clone(),
        };
        let why = self
            .gate()
            .explain(&originator, &ctx, &target, query.op, query.ty, check)?;
        let mut out = why.to_json();
        if let Some(obj) = out.as_object_mut() {
            obj.insert(
                "check".into(),
                json!(match check {
                    Check::Operation => "operation",
                    Check::AcpiUpdate => "acpi-update",
                    Check::FanOut => "fan-out",
                }),
            );
            obj.insert(
                "facts".into(),
                json!({
                    "time": model::time::format(ctx.time),
                    "authenticated": ctx.authenticated,
                    "ip": ctx.ip.map(|ip| ip.to_string()),
                    "location": ctx.location.as_ref().map(ToString::to_string),
                    "credentialLevel": ctx.credential_level,
                    "roles": ctx.roles,
                    "createType": query.ty.map(ResourceType::code),
                }),
            );
            obj.insert("notes".into(), json!(notes));
        }
        Ok(json!({ "explain": out }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_params_are_percent_decoded() {
        let params = query_params("credential=a%40b&reason=key+lost&flag").expect("params");
        assert_eq!(
            params,
            vec![
                ("credential".to_owned(), "a@b".to_owned()),
                ("reason".to_owned(), "key+lost".to_owned()),
                ("flag".to_owned(), String::new()),
            ]
        );
        let bad = query_params("x=%FF").expect_err("not UTF-8");
        assert_eq!(bad.rsc, ResponseStatusCode::BadRequest);
    }
}
