//! `<dynamicAuthorizationConsultation>`: checked on CREATE and UPDATE; the consultation
//! itself is `access::dynamic`.

use model::{Resource, Result};

/// Checks the points of access and the lifetime (the attribute table checks the rest).
pub(crate) fn prepare(r: &Resource) -> Result<()> {
    model::resources::dac::validate(&r.attrs)
}
