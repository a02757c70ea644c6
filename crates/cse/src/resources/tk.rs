//! `<token>`: the token is verified on CREATE and its claims shown in plaintext; each
//! Token-ID names one `<token>` of this CSE. How a token named in `tids` counts is
//! `access::repository`.

use crate::config::CseConfig;
use crate::records::TOKEN_ID;
use model::{time, Error, Resource, Result};
use security::token::{InspectedToken, TokenError};
use serde_json::{json, Map, Value};

/// Verifies `tkob` against the trusted issuers (signature, algorithm, period; it must name
/// a holder and an audience, which are compared with requests when it is used), checks
/// that `tkid` is its Token-ID, and fills the plaintext claims. A claim the creator sent
/// must say what the token says (4000); a token that cannot be read is 4000; one that does
/// not verify (unknown issuer, bad signature, expired...) is 4102.
pub(crate) fn prepare(config: &CseConfig, r: &mut Resource) -> Result<()> {
    let object = r.attrs.get("tkob").and_then(Value::as_str).unwrap_or("");
    let inspected = config
        .dynamic_authorization
        .issuers
        .inspect(object, config.clock.now().timestamp())
        .map_err(|e| match e {
            TokenError::Malformed(_) => Error::bad_request(format!("tkob: {e}")),
            _ => Error::contents_unacceptable(format!("tkob: {e}")),
        })?;
    let tkid = r.attrs.get("tkid").and_then(Value::as_str).unwrap_or("");
    if inspected.token.id.is_empty() || inspected.token.id != tkid {
        return Err(Error::bad_request(
            "tkid must be the Token-ID (jti/tkid) of the token in tkob",
        ));
    }
    for (name, value) in plaintext(&inspected) {
        match r.attrs.get(&name) {
            None => {
                r.attrs.insert(name, value);
            }
            Some(sent) if same(&name, sent, &value) => {
                r.attrs.insert(name, value);
            }
            Some(_) => {
                return Err(Error::bad_request(format!(
                    "{name} does not match the token in tkob"
                )))
            }
        }
    }
    if let Some(name) = model::resources::tk::PLAINTEXT
        .iter()
        .find(|n| r.attrs.contains_key(**n) && !plaintext(&inspected).contains_key(**n))
    {
        return Err(Error::bad_request(format!(
            "{name} is not a claim of the token in tkob"
        )));
    }
    Ok(())
}

/// Inside the creating write: a Token-ID names one `<token>` of this CSE (4105 otherwise),
/// recorded with it.
pub(crate) fn claim_id(t: &mut dyn store::Txn, r: &Resource) -> Result<()> {
    let tkid = r.attrs.get("tkid").and_then(Value::as_str).unwrap_or("");
    if t.record(TOKEN_ID, tkid)?.is_some() {
        return Err(Error::conflict(format!(
            "a token with tkid '{tkid}' exists"
        )));
    }
    t.put_record(TOKEN_ID, tkid, r.ri().as_bytes(), Some(r.ri()))
}

/// The plaintext attributes of a verified token (TS-0001 table 9.6.39-2).
fn plaintext(t: &InspectedToken) -> Map<String, Value> {
    let when = |secs: i64| chrono::DateTime::from_timestamp(secs, 0).map(time::format);
    let mut m = Map::new();
    m.insert("tkis".into(), json!(t.token.issuer));
    m.insert("tkhd".into(), json!(t.token.holder));
    m.insert("tkau".into(), json!(t.audience));
    if let Some(na) = when(t.token.not_after) {
        m.insert("tkna".into(), json!(na));
    }
    if let Some(nb) = t.not_before.and_then(when) {
        m.insert("tknb".into(), json!(nb));
    }
    if let Some(v) = &t.version {
        m.insert("vr".into(), json!(v));
    }
    if let Some(n) = &t.name {
        m.insert("tknm".into(), json!(n));
    }
    if let Some(x) = &t.extension {
        m.insert("tkex".into(), json!(x));
    }
    match &t.permissions {
        Some(Value::Array(pm)) => {
            m.insert("tkps".into(), json!({ "pm": pm }));
        }
        Some(p) => {
            m.insert("tkps".into(), p.clone());
        }
        None => {}
    }
    m
}

/// Whether a claim the creator sent says what the token says: times compare as instants
/// (a oneM2M timestamp may be written with or without fractions), the rest as JSON.
fn same(name: &str, sent: &Value, token: &Value) -> bool {
    match name {
        "tknb" | "tkna" => match (sent.as_str(), token.as_str()) {
            (Some(a), Some(b)) => {
                matches!((time::parse(a), time::parse(b)), (Ok(a), Ok(b)) if a == b)
            }
            _ => false,
        },
        _ => sent == token,
    }
}
