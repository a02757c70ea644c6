//! `<semanticDescriptor>`: the descriptor is checked against its format on CREATE and on
//! every UPDATE (TS-0004 clause 7.4.34.2.1 Recv-6.4, `model::resources::smd`), so what is
//! stored always parses; `vlde` is set by local policy (Recv-6.5 a).

use model::resources::smd;
use model::{Resource, Result};
use serde_json::{json, Map, Value};

/// Checks a new descriptor and applies the validation policy to `vlde`.
pub(crate) fn prepare(r: &mut Resource) -> Result<()> {
    smd::validate(&r.attrs)?;
    if r.attrs.contains_key("vlde") {
        r.attrs.insert("vlde".into(), json!(smd::VALIDATION_POLICY));
    }
    Ok(())
}

/// Checks the descriptor as the UPDATE leaves it (`preview`: the stored resource with the
/// changes applied; a new `dcrp` alone must still describe the stored `dsp`), and applies
/// the validation policy to a `vlde` in the changes.
pub(crate) fn check_update(preview: &mut Resource, changes: &mut Map<String, Value>) -> Result<()> {
    smd::validate(&preview.attrs)?;
    if changes.get("vlde").is_some_and(|v| !v.is_null()) {
        changes.insert("vlde".into(), json!(smd::VALIDATION_POLICY));
        preview
            .attrs
            .insert("vlde".into(), json!(smd::VALIDATION_POLICY));
    }
    Ok(())
}
