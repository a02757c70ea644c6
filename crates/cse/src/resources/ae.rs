//! `<AE>`: registration (TS-0001 clause 10.2.2.2). The AE-ID is the `ri`; a CSE-assigned
//! AE-ID is random, so it says nothing about the device behind it.

use crate::originator::Originator;
use crate::records::TxnRecords;
use crate::service_subscription::RegistrationCheck;
use crate::{Caller, Cse};
use model::{Error, Resource, ResponseStatusCode, Result};
use serde_json::{json, Value};

/// Picks the AE-ID for a registration from what the originator asked for.
pub(crate) fn assign_id(cse: &Cse, originator: &Originator) -> Result<String> {
    let asked = match originator {
        Originator::Registering(r) => r.asked.as_deref(),
        _ => return Err(Error::bad_request("not a registration")),
    };
    let id = match asked {
        None | Some("C") => model::id::new_ae_id(),
        Some("S") => format!("S{}", model::id::random_token(20)),
        Some(stem) => stem.to_owned(),
    };
    if id == cse.config.admin {
        return Err(Error::new(
            ResponseStatusCode::OriginatorHasAlreadyRegistered,
            "that AE-ID is reserved",
        ));
    }
    if cse.store.get(&id)?.is_some() {
        return Err(Error::new(
            ResponseStatusCode::OriginatorHasAlreadyRegistered,
            format!("AE-ID '{id}' is already registered"),
        ));
    }
    Ok(id)
}

/// Inside the registration's write, so that checking and writing are one step: the AE-ID
/// is free (4117 when another registration took it first), a first registration over a
/// `C*` credential (`remember_for`) is the first (4117 when a concurrent one already gave
/// the credential its AE-ID, which would otherwise be orphaned), an AE-ID bound to a
/// credential is not registered without one (4107); then binds the AE-ID to the credential
/// the AE registers over (`bind_to`).
pub(crate) fn claim(
    t: &mut dyn store::Txn,
    ae_id: &str,
    bind_to: Option<&str>,
    remember_for: Option<&str>,
) -> Result<()> {
    if t.resource_type(ae_id)?.is_some() {
        return Err(Error::new(
            ResponseStatusCode::OriginatorHasAlreadyRegistered,
            format!("AE-ID '{ae_id}' is already registered"),
        ));
    }
    if let Some(key) = remember_for {
        if t.credential_ae(key)?.is_some() {
            return Err(Error::new(
                ResponseStatusCode::OriginatorHasAlreadyRegistered,
                "this credential has already registered its AE",
            ));
        }
    }
    match bind_to {
        Some(credential) => t.bind_ae(ae_id, credential),
        None if t.ae_credential(ae_id)?.is_some() => Err(Error::security_association_required(
            format!("AE-ID '{ae_id}' is bound to a credential: it registers only over a security association of that credential"),
        )),
        None => Ok(()),
    }
}

/// Checks the App-ID against the release the request declares (`rvi`), fills in `aei`,
/// and, for a registration, returns its service subscription check
/// (`service_subscription::RegistrationCheck`: the rules that apply to the registering
/// credential, else the credential's own `allowed_apps`), which the registration's write
/// decides with the rules as that transaction sees them.
pub(crate) fn prepare(
    cse: &Cse,
    caller: &Caller<'_>,
    rvi: Option<&str>,
    r: &mut Resource,
) -> Result<Option<RegistrationCheck>> {
    let api = r.attrs.get("api").and_then(Value::as_str).unwrap_or("");
    model::resources::ae::validate_app_id(api, rvi)?;
    let check = match &caller.originator {
        Originator::Registering(reg) => {
            Some(RegistrationCheck::new(cse, caller, r, &reg.allowed_apps))
        }
        _ => None,
    };
    let id = r.ri().to_owned();
    r.attrs.insert("aei".into(), json!(id));
    if !r.attrs.contains_key("srv") {
        r.attrs.insert("srv".into(), json!(["3"]));
    }
    Ok(check)
}

/// Inside a write: the AE `creator` (when the originator is one) is still registered under
/// that AE-ID. An AE that rotated its AE-ID (or deregistered) while its request was on the
/// way is refused (4106), so no resource is written naming an AE-ID that is gone.
pub(crate) fn still_registered(t: &mut dyn store::Txn, creator: Option<&str>) -> Result<()> {
    match creator {
        Some(id) if t.resource_type(id)? != Some(model::ResourceType::Ae) => Err(
            Error::not_authenticated(format!("originator '{id}' is no longer a registered AE")),
        ),
        _ => Ok(()),
    }
}
