//! The originator check of TS-0004 clause 7.3.2.1, in one place: who the `From` of a request
//! is, and whether the request's security context lets it claim that.
//!
//! The security-association work extends [`check`] with the rules for authenticated peers;
//! nothing else in the CSE decides whether an originator is believed.

use crate::config::CseConfig;
use crate::records::StoreRecords;
use crate::security_context::{Association, SecurityContext};
use model::{Error, Operation, Request, ResourceType, Result};
use security::association::{PeerIdentity, SecurityAssociation};
use store::Store;

/// The originator of a request after the check: evidence that [`check`] ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Originator {
    /// A registered AE, by its AE-ID stem (`C...`/`S...`).
    Ae(String),
    /// The configured admin originator.
    Admin,
    /// The CSE itself (internal requests).
    Cse,
    /// A CSE peer authenticated by a security association, or an entity behind it, by the
    /// `From` it sent.
    RemoteCse(String),
    /// An AE registering.
    Registering(AeRegistration),
}

/// What an AE registration asked for and what its credential allows.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AeRegistration {
    /// The AE-ID asked for: `None` or `C` (the CSE assigns a `C` ID), `S` (an `S` ID), or a stem.
    pub asked: Option<String>,
    /// The store's key (see `SecurityAssociation::binding_key`) of the credential whose
    /// first assigned AE-ID is to be remembered.
    pub remember_for: Option<String>,
    /// App-IDs the credential allows (empty: any).
    pub allowed_apps: Vec<String>,
    /// The store's key of the credential the AE registers over: its AE-ID is bound to it
    /// (see [`crate::records::TxnRecords::bind_ae`]). `None` without a security association.
    pub bind_to: Option<String>,
}

impl Originator {
    /// The identifier used for ACP matching and for `cr`.
    pub fn id<'a>(&'a self, config: &'a CseConfig) -> &'a str {
        match self {
            Self::Ae(id) | Self::RemoteCse(id) => id,
            Self::Admin => &config.admin,
            Self::Cse => &config.cse_id,
            Self::Registering(r) => r.asked.as_deref().unwrap_or(""),
        }
    }

    /// Whether access control is bypassed (admin in the default profile, or the CSE itself).
    pub fn is_privileged(&self) -> bool {
        matches!(self, Self::Admin | Self::Cse)
    }
}

/// What a `From` value names, once our own SP and CSE prefixes are removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claimed {
    /// An AE-ID stem of this SP (`Cxyz` or `Sxyz`).
    AeId(String),
    /// A CSE (ours or another), or an entity behind another CSE or SP.
    CseOrRemote(String),
}

/// Reduces a `From` to what it names. `/id-in/Cx` and `//sp/id-in/Cx` are our AE `Cx`;
/// `/Sx` is the SP-assigned AE `Sx`; any other absolute or SP-relative form names a CSE.
pub fn normalize(fr: &str, config: &CseConfig) -> Result<Claimed> {
    if let Some(abs) = fr.strip_prefix("//") {
        let (sp, rest) = abs.split_once('/').unwrap_or((abs, ""));
        if sp != config.sp_id || rest.is_empty() {
            return Ok(Claimed::CseOrRemote(fr.to_owned()));
        }
        return normalize(&format!("/{rest}"), config);
    }
    if let Some(sp_rel) = fr.strip_prefix('/') {
        return Ok(match sp_rel.split_once('/') {
            Some((cse, stem)) if cse == config.cse_id && is_stem(stem) => {
                Claimed::AeId(stem.to_owned())
            }
            None if sp_rel.starts_with('S') && is_stem(sp_rel) => Claimed::AeId(sp_rel.to_owned()),
            _ => Claimed::CseOrRemote(fr.to_owned()),
        });
    }
    if is_stem(fr) {
        Ok(Claimed::AeId(fr.to_owned()))
    } else {
        Err(Error::bad_request(format!(
            "originator '{fr}' is not an AE-ID (must start with C or S)"
        )))
    }
}

fn is_stem(s: &str) -> bool {
    (s.starts_with('C') || s.starts_with('S'))
        && s.len() <= 255
        && !s.contains('/')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '~'))
}

/// Applies the originator rules of TS-0004 clause 7.3.2.1 and TS-0003 clause 7.2.1.
///
/// Without a security association: 4000 for a missing or malformed `From`, 4107 for a CSE-ID
/// (or anything behind another CSE or SP) and for an AE-ID bound to a credential (one that
/// registered over a security association: it acts only over an association of that
/// credential), 4106 for an AE-ID that is not registered here.
/// Over an association, `From` must be what the association is bound to (4106 otherwise),
/// and an AE registering gets, or is held to, the AE-ID its credential allows.
pub fn check(
    ctx: &SecurityContext,
    req: &Request,
    config: &CseConfig,
    store: &dyn Store,
) -> Result<Originator> {
    if matches!(ctx.association, Association::Internal) {
        return Ok(Originator::Cse);
    }
    let registering = req.op == Operation::Create && req.ty == Some(ResourceType::Ae);
    let fr = req.fr.as_deref().filter(|f| !f.is_empty());
    if fr.is_none() && !registering {
        return Err(Error::bad_request("missing originator (X-M2M-Origin)"));
    }
    match &ctx.association {
        Association::Established(reg) => {
            if let Some(reason) = reg.association.closed_because() {
                // Withdrawn while this request was on its way: its credential no longer counts.
                return Err(Error::not_authenticated(format!(
                    "security association {} was withdrawn: {reason}",
                    reg.association.id
                )));
            }
            over_association(&reg.association, fr, registering, config, store)
        }
        _ => without_association(fr, registering, config, store),
    }
}

fn without_association(
    fr: Option<&str>,
    registering: bool,
    config: &CseConfig,
    store: &dyn Store,
) -> Result<Originator> {
    let Some(fr) = fr else {
        return Ok(Originator::Registering(AeRegistration::default()));
    };
    if fr == config.admin {
        if config.admin_requires_association {
            return Err(Error::not_authenticated(
                "the admin originator needs an admin credential over a security association",
            ));
        }
        return Ok(Originator::Admin);
    }
    if registering && (fr == "C" || fr == "S") {
        return Ok(Originator::Registering(AeRegistration {
            asked: Some(fr.to_owned()),
            ..Default::default()
        }));
    }
    match normalize(fr, config)? {
        Claimed::CseOrRemote(id) => Err(Error::security_association_required(format!(
            "originator '{id}' names a CSE or a remote entity; that needs a security association"
        ))),
        Claimed::AeId(id) => {
            not_bound(&id, store)?;
            if registering && config.admin_requires_association {
                // In a secure deployment a certificate or a credential entry may fix this
                // AE-ID for a holder that has not registered yet; a client without any
                // credential cannot show it is that holder, so it gets an assigned AE-ID.
                return Err(Error::security_association_required(format!(
                    "AE-ID '{id}' can be chosen only over a security association; register with From C or S for an assigned one"
                )));
            }
            if registering {
                Ok(Originator::Registering(AeRegistration {
                    asked: Some(id),
                    ..Default::default()
                }))
            } else {
                registered(id, store)
            }
        }
    }
}

/// Refuses (4107), on a request without a security association, an AE-ID that is bound to a
/// credential: TS-0003 clause 7.2.1 holds such an originator to the association of its
/// credential, and a request without one lacks exactly that.
fn not_bound(id: &str, store: &dyn Store) -> Result<()> {
    match store.ae_credential(id)? {
        None => Ok(()),
        Some(_) => Err(Error::security_association_required(format!(
            "AE-ID '{id}' is bound to a credential: it acts only over a security association of that credential"
        ))),
    }
}

fn registered(id: String, store: &dyn Store) -> Result<Originator> {
    match store.resource_type(&id)? {
        Some(ResourceType::Ae) => Ok(Originator::Ae(id)),
        _ => Err(Error::not_authenticated(format!(
            "originator '{id}' is not a registered AE"
        ))),
    }
}

/// Whether an association's credential is an admin credential: one the credential store
/// marks `admin` (a pre-shared key, or a certificate listed by its Credential-ID) and that is
/// bound to the admin AE-ID. A certificate that merely names the admin AE-ID is not one:
/// every CA a listener trusts could issue such a certificate, and the admin is a role the
/// operator grants to one credential, not a name (see docs/security.md).
pub fn is_admin_credential(sa: &SecurityAssociation, config: &CseConfig) -> bool {
    let names_admin =
        |id: &str| matches!(normalize(id, config), Ok(Claimed::AeId(a)) if a == config.admin);
    match &sa.established.binding.identity {
        PeerIdentity::Ae(id) => names_admin(id) && sa.established.binding.admin,
        PeerIdentity::AllowedAes(_) => sa.established.binding.admin,
        PeerIdentity::Cse(_) => false,
    }
}

/// The store's key of the association's credential (see `SecurityAssociation::binding_key`).
fn credential_key(sa: &SecurityAssociation) -> Result<&str> {
    sa.binding_key()
        .ok_or_else(|| Error::internal("the credential's pseudonym lookup failed (see the log)"))
}

fn mismatch(fr: &str, sa: &SecurityAssociation) -> Error {
    Error::not_authenticated(format!(
        "originator '{fr}' does not match the identity of security association {}",
        sa.id
    ))
}

fn over_association(
    sa: &SecurityAssociation,
    fr: Option<&str>,
    registering: bool,
    config: &CseConfig,
    store: &dyn Store,
) -> Result<Originator> {
    let binding = &sa.established.binding;
    let claimed = fr
        .map(|f| {
            if f == "C" || f == "S" {
                Ok(Claimed::AeId(f.to_owned()))
            } else {
                normalize(f, config)
            }
        })
        .transpose()?;
    match &binding.identity {
        PeerIdentity::Cse(cse_id) => {
            // CSE-IDs and AE-IDs are separate names: `/Sx` is the S-AE `Sx`, so no CSE is.
            if cse_id
                .rsplit('/')
                .next()
                .is_some_and(|id| id.starts_with(['S', 's']))
            {
                return Err(Error::not_authenticated(format!(
                    "the credential's CSE-ID '{cse_id}' is an S-AE-ID, not a CSE-ID"
                )));
            }
            let fr = fr.unwrap_or("");
            if cse_id.trim_start_matches('/') == config.cse_id {
                return Err(Error::not_authenticated(
                    "a peer cannot hold this CSE's own CSE-ID",
                ));
            }
            // A CSE peer speaks for itself or for entities behind it; never as this CSE, as
            // another CSE, or with a bare C-type AE-ID (which would be one of ours).
            let own = |id: &str| id == cse_id || id.starts_with(&format!("{cse_id}/"));
            let sp_relative = match fr.strip_prefix("//") {
                Some(abs) => abs
                    .split_once('/')
                    .filter(|(sp, _)| *sp == config.sp_id)
                    .map(|(_, rest)| format!("/{rest}")),
                None => Some(fr.to_owned()),
            };
            match sp_relative {
                Some(id) if own(&id) && !registering => Ok(Originator::RemoteCse(id)),
                _ => Err(mismatch(fr, sa)),
            }
        }
        PeerIdentity::Ae(bound) => {
            let Ok(Claimed::AeId(bound)) = normalize(bound, config) else {
                return Err(Error::not_authenticated(format!(
                    "the credential's AE-ID '{bound}' is not an AE of this CSE"
                )));
            };
            let claimed_id = match &claimed {
                Some(Claimed::AeId(id)) => Some(id.as_str()),
                Some(Claimed::CseOrRemote(_)) => return Err(mismatch(fr.unwrap_or(""), sa)),
                None => None,
            };
            if bound == config.admin {
                // Only a credential marked `admin` (see `is_admin_credential`).
                return match claimed_id {
                    Some(id) if id == bound && binding.admin && !registering => {
                        Ok(Originator::Admin)
                    }
                    _ => Err(mismatch(fr.unwrap_or(""), sa)),
                };
            }
            if registering {
                return match claimed_id {
                    None | Some("C") | Some("S") => Ok(()),
                    Some(id) if id == bound => Ok(()),
                    Some(_) => Err(mismatch(fr.unwrap_or(""), sa)),
                }
                .and_then(|()| {
                    Ok(Originator::Registering(AeRegistration {
                        asked: Some(bound),
                        remember_for: None,
                        allowed_apps: binding.allowed_apps.clone(),
                        bind_to: Some(credential_key(sa)?.to_owned()),
                    }))
                });
            }
            match claimed_id {
                Some(id) if id == bound => registered(bound, store),
                _ => Err(mismatch(fr.unwrap_or(""), sa)),
            }
        }
        PeerIdentity::AllowedAes(patterns) => {
            let credential = credential_key(sa)?;
            let remembered = store.credential_ae(credential)?;
            let assigned_pattern = patterns.iter().any(|p| p == "C*");
            // A literal entry names an AE-ID the operator fixed for this credential. A
            // pattern (`S*`, `Cfleet-*`) grants only AE-IDs this credential registered itself
            // (bound to it), never one that another credential, or a client without any,
            // registered: otherwise one credential could act as every AE its pattern matches.
            let literal = |p: &str| !p.contains(['*', '?']);
            let bound_here = |id: &str| -> Result<bool> {
                Ok(store.ae_credential(id)?.as_deref() == Some(credential))
            };
            let free_or_here = |id: &str| -> Result<bool> {
                Ok(store.ae_credential(id)?.is_none_or(|c| c == credential))
            };
            let allowed = |id: &str, registering: bool| -> Result<bool> {
                if remembered.as_deref() == Some(id)
                    || patterns.iter().any(|p| p == id && literal(p))
                {
                    return Ok(true);
                }
                if !patterns
                    .iter()
                    .any(|p| p != "C*" && !literal(p) && model::id::glob(p, id))
                {
                    return Ok(false);
                }
                if registering {
                    free_or_here(id)
                } else {
                    bound_here(id)
                }
            };
            if let Some(Claimed::AeId(id)) = &claimed {
                if *id == config.admin {
                    return if binding.admin {
                        Ok(Originator::Admin)
                    } else {
                        Err(mismatch(id, sa))
                    };
                }
            }
            if registering {
                let asked = match claimed.as_ref() {
                    None => None,
                    Some(Claimed::AeId(id)) if id == "C" => None,
                    Some(Claimed::AeId(id)) if id == "S" && patterns.iter().any(|p| p == "S*") => {
                        Some("S".to_owned())
                    }
                    Some(Claimed::AeId(id)) if allowed(id, true)? => Some(id.clone()),
                    _ => return Err(mismatch(fr.unwrap_or(""), sa)),
                };
                let (asked, remember_for) = match (asked, &remembered) {
                    (Some(a), _) => (Some(a), None),
                    (None, Some(r)) => (Some(r.clone()), None),
                    (None, None) if assigned_pattern => (None, Some(credential.to_owned())),
                    (None, None) => return Err(mismatch(fr.unwrap_or("C"), sa)),
                };
                return Ok(Originator::Registering(AeRegistration {
                    asked,
                    remember_for,
                    allowed_apps: binding.allowed_apps.clone(),
                    bind_to: Some(credential.to_owned()),
                }));
            }
            match claimed {
                Some(Claimed::AeId(id)) if allowed(&id, false)? => registered(id, store),
                _ => Err(mismatch(fr.unwrap_or(""), sa)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_each_form() {
        let c = CseConfig::default();
        assert_eq!(
            normalize("Cabc", &c).ok(),
            Some(Claimed::AeId("Cabc".into()))
        );
        assert_eq!(
            normalize("/id-in/Cabc", &c).ok(),
            Some(Claimed::AeId("Cabc".into()))
        );
        assert_eq!(
            normalize("//secure-cse.example/id-in/Cabc", &c).ok(),
            Some(Claimed::AeId("Cabc".into()))
        );
        assert_eq!(
            normalize("/Sabc", &c).ok(),
            Some(Claimed::AeId("Sabc".into()))
        );
        assert!(matches!(
            normalize("/id-other", &c),
            Ok(Claimed::CseOrRemote(_))
        ));
        assert!(matches!(
            normalize("/id-in", &c),
            Ok(Claimed::CseOrRemote(_))
        ));
        assert!(matches!(
            normalize("/id-other/Cabc", &c),
            Ok(Claimed::CseOrRemote(_))
        ));
        assert!(matches!(
            normalize("//other.sp/id-in/Cabc", &c),
            Ok(Claimed::CseOrRemote(_))
        ));
        assert!(normalize("admin", &c).is_err());
        assert!(normalize("C a", &c).is_err());
    }
}
