//! `<timeSeriesInstance>`: created as a content instance is (`cin::prepare` and
//! `cin::insert`, with the `<timeSeries>` as the container), plus its data generation
//! time: made absolute, unique within its series, and shown to missing data detection.

use crate::records::TIME_SERIES_DGT;
use crate::Cse;
use model::resources::tsi;
use model::{Error, Resource, Result};
use serde_json::json;
use store::Txn;

/// Makes `dgt` absolute, then applies the content instance's rules (`cs`, `mbs`, `mia`).
pub(crate) fn prepare(cse: &Cse, parent: &Resource, r: &mut Resource) -> Result<()> {
    let dgt = tsi::generation_time(&r.attrs, cse.config.clock.now())?;
    r.attrs
        .insert("dgt".into(), json!(tsi::format_generation_time(dgt)));
    super::cin::prepare(cse, parent, r)
}

/// Inside the write that inserts `instance` into `series`: a data point with the same
/// generation time is 4105 CONFLICT (TS-0004 clause 7.4.39.2.1); otherwise the time is
/// recorded (it goes with the instance) and shown to the series' missing data detection.
pub(crate) fn admit(t: &mut dyn Txn, series: &Resource, instance: &Resource) -> Result<()> {
    let dgt = instance
        .attrs
        .get("dgt")
        .and_then(|v| v.as_str())
        .ok_or_else(|| Error::internal("a time series instance without dgt"))?;
    let key = format!("{}/{dgt}", series.ri());
    if t.record(TIME_SERIES_DGT, &key)?.is_some() {
        return Err(Error::conflict(format!(
            "the time series already has a data point generated at {dgt}"
        )));
    }
    t.put_record(
        TIME_SERIES_DGT,
        &key,
        instance.ri().as_bytes(),
        Some(instance.ri()),
    )?;
    crate::time_series::observe(t, series, dgt)
}
