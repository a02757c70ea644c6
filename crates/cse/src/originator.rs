//! The originator check of TS-0004 clause 7.3.2.1, in one place: who the `From` of a request
//! is, and whether the request's security context lets it claim that.
//!
//! The security-association work extends [`check`] with the rules for authenticated peers;
//! nothing else in the CSE decides whether an originator is believed.

use crate::config::CseConfig;
use crate::security_context::{Association, SecurityContext};
use model::{Error, Operation, Request, ResourceType, Result};
use security::association::{Framework, PeerIdentity, SecurityAssociation};
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
/// (or anything behind another CSE or SP), 4106 for an AE-ID that is not registered here.
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
        Claimed::AeId(id) if registering => Ok(Originator::Registering(AeRegistration {
            asked: Some(id),
            ..Default::default()
        })),
        Claimed::AeId(id) => registered(id, store),
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

/// Whether an association's credential is an admin credential: a certificate naming the
/// admin AE-ID (only the trusted CA can issue one), or a pre-shared key marked `admin` and
/// bound to the admin AE-ID.
pub fn is_admin_credential(sa: &SecurityAssociation, config: &CseConfig) -> bool {
    let names_admin =
        |id: &str| matches!(normalize(id, config), Ok(Claimed::AeId(a)) if a == config.admin);
    match &sa.established.binding.identity {
        PeerIdentity::Ae(id) => {
            names_admin(id)
                && (sa.established.binding.admin
                    || sa.established.framework == Framework::Certificate)
        }
        PeerIdentity::AllowedAes(_) => sa.established.binding.admin,
        PeerIdentity::Cse(_) => false,
    }
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
                // The admin credential: a certificate naming the admin AE-ID (only the trusted
                // CA can issue one), or a pre-shared key marked `admin`.
                let admin_credential =
                    binding.admin || sa.established.framework == Framework::Certificate;
                return match claimed_id {
                    Some(id) if id == bound && admin_credential && !registering => {
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
                .map(|()| {
                    Originator::Registering(AeRegistration {
                        asked: Some(bound),
                        remember_for: None,
                        allowed_apps: binding.allowed_apps.clone(),
                    })
                });
            }
            match claimed_id {
                Some(id) if id == bound => registered(bound, store),
                _ => Err(mismatch(fr.unwrap_or(""), sa)),
            }
        }
        PeerIdentity::AllowedAes(patterns) => {
            let credential = sa.binding_key().ok_or_else(|| {
                Error::internal("the credential's pseudonym lookup failed (see the log)")
            })?;
            let remembered = store.credential_ae(credential)?;
            let assigned_pattern = patterns.iter().any(|p| p == "C*");
            let allowed = |id: &str| {
                remembered.as_deref() == Some(id)
                    || patterns.iter().any(|p| p != "C*" && model::id::glob(p, id))
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
                    Some(Claimed::AeId(id)) if allowed(id) => Some(id.clone()),
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
                }));
            }
            match claimed {
                Some(Claimed::AeId(id)) if allowed(&id) => registered(id, store),
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
