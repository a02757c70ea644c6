//! `<dynamicAuthorizationConsultation>`: checked on CREATE and UPDATE; the consultation
//! itself is `access::dynamic`.

use crate::config::CseConfig;
use model::{Error, Resource, Result};

/// Checks the points of access and the lifetime (the attribute table checks the rest), and
/// that every `dap` entry is a DAS the configuration lists (4000 otherwise: the CSE would
/// never contact it, so accepting it would only hide the mistake).
pub(crate) fn prepare(config: &CseConfig, r: &Resource) -> Result<()> {
    model::resources::dac::validate(&r.attrs)?;
    let allowed = &config.dynamic_authorization.das_urls;
    match r.str_list("dap").into_iter().find(|u| !allowed.lists(u)) {
        Some(url) => {
            tracing::info!(das = %url, "<dac> refused: dap is not a configured DAS");
            Err(Error::bad_request(format!(
                "dap entry '{url}' is not a DAS this CSE may consult (dynamic_authorization.das_urls)"
            )))
        }
        None => Ok(()),
    }
}
