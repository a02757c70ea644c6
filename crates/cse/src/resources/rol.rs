//! `<role>`: checked on CREATE. How a role counts in access decisions is
//! `access::repository`.

use crate::config::CseConfig;
use crate::records::{role_prefix, ROLE_ID};
use model::{Error, Resource, Result};
use serde_json::Value;

/// Checks the period and names (the attribute table checks the shapes), and that the
/// issuer is this CSE: it is the only Authorization Authority whose roles its decisions
/// honour (TS-0003 clause 7.4.3 step 4), so a role written for another issuer would be
/// stored and never count (4102). A period that has already ended (`tkna` not after now)
/// is refused as a past `et` is (4000, TS-0004 clause 7.2.2.2 for `expirationTime`): the
/// role could never count, and storing it would only mislead its reader.
pub(crate) fn prepare(config: &CseConfig, r: &Resource) -> Result<()> {
    model::resources::rol::validate(&r.attrs)?;
    if let Some(na) = r.attrs.get("tkna").and_then(Value::as_str) {
        if model::time::parse(na)? <= config.clock.now() {
            return Err(Error::bad_request("tkna (notAfter) is in the past"));
        }
    }
    let issuer = r.attrs.get("tkis").and_then(Value::as_str).unwrap_or("");
    if crate::access::dynamic::audience(config)
        .iter()
        .all(|ours| ours != issuer)
    {
        return Err(Error::contents_unacceptable(format!(
            "tkis '{issuer}' is not this CSE: it honours the roles it issues only"
        )));
    }
    Ok(())
}

/// Inside the creating write: indexes the role by its Role-ID.
pub(crate) fn index(t: &mut dyn store::Txn, r: &Resource) -> Result<()> {
    let rlid = r.attrs.get("rlid").and_then(Value::as_str).unwrap_or("");
    let key = format!("{}{}", role_prefix(rlid), r.ri());
    t.put_record(ROLE_ID, &key, r.ri().as_bytes(), Some(r.ri()))
}
