//! The originator check of TS-0004 clause 7.3.2.1, in one place: who the `From` of a request
//! is, and whether the request's security context lets it claim that.
//!
//! The security-association work extends [`check`] with the rules for authenticated peers;
//! nothing else in the CSE decides whether an originator is believed.

use crate::config::CseConfig;
use crate::security_context::{Association, SecurityContext};
use model::{Error, Operation, Request, ResourceType, Result};
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
    /// An AE registering: the `From` it asked for (`None`, `C`, `S` or a stem).
    Registering(Option<String>),
}

impl Originator {
    /// The identifier used for ACP matching and for `cr`.
    pub fn id<'a>(&'a self, config: &'a CseConfig) -> &'a str {
        match self {
            Self::Ae(id) => id,
            Self::Admin => &config.admin,
            Self::Cse => &config.cse_id,
            Self::Registering(id) => id.as_deref().unwrap_or(""),
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

/// Applies the originator rules to a request that arrived without a security association,
/// or internally. Failing rules give 4000 (missing or malformed `From`), 4107 (a CSE-ID
/// outside an association) or 4106 (an AE-ID that is not registered here).
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
    let fr = match req.fr.as_deref() {
        None | Some("") if registering => return Ok(Originator::Registering(None)),
        None | Some("") => return Err(Error::bad_request("missing originator (X-M2M-Origin)")),
        Some(fr) => fr,
    };
    if fr == config.admin {
        return Ok(Originator::Admin);
    }
    if registering && (fr == "C" || fr == "S") {
        return Ok(Originator::Registering(Some(fr.to_owned())));
    }
    match normalize(fr, config)? {
        Claimed::CseOrRemote(id) => Err(Error::security_association_required(format!(
            "originator '{id}' names a CSE or a remote entity; that needs a security association"
        ))),
        Claimed::AeId(id) if registering => Ok(Originator::Registering(Some(id))),
        Claimed::AeId(id) => match store.get(&id)? {
            Some(r) if r.ty == ResourceType::Ae => Ok(Originator::Ae(id)),
            _ => Err(Error::not_authenticated(format!(
                "originator '{id}' is not a registered AE"
            ))),
        },
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
