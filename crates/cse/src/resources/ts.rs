//! `<timeSeries>`: counters start at zero as a `<container>`'s do (its limits are the
//! container's code: `cnt::enforce_limits`); `peid` gets the CSE's default when `pei` comes
//! without it; missing data detection starts, stops and restarts with `mdd` (the watching
//! itself is `time_series`).

use crate::records::{MISSING_DATA_WINDOW, TIME_SERIES_MONITOR};
use model::resources::ts;
use model::{Resource, Result};
use serde_json::{json, Map, Value};
use store::Txn;

/// Completes and checks a new time series, and sets its counters.
pub(crate) fn prepare(r: &mut Resource) -> Result<()> {
    ts::complete(None, &mut r.attrs);
    ts::check(&r.attrs)?;
    r.attrs.insert("cni".into(), json!(0));
    r.attrs.insert("cbs".into(), json!(0));
    r.attrs.insert("mdc".into(), json!(0));
    Ok(())
}

/// The checks of an UPDATE before it is applied (what may change with `mdd` and while it is
/// on), and the `peid` the CSE chooses for a new `pei`.
pub(crate) fn check_update(current: &Resource, changes: &mut Map<String, Value>) -> Result<()> {
    ts::check_update(&current.attrs, changes)?;
    ts::complete(Some(&current.attrs), changes);
    Ok(())
}

/// Inside an UPDATE's write: `mdd` set to true clears the list of missing data points and
/// restarts the detection from the next data point (TS-0004 clause 7.4.38.2.3); `mdd`
/// false stops it and keeps the list (the timer task sees it and ends).
pub(crate) fn restart_detection(
    t: &mut dyn Txn,
    changes: &Map<String, Value>,
    r: &mut Resource,
) -> Result<()> {
    if changes.get("mdd") != Some(&Value::Bool(true)) {
        return Ok(());
    }
    r.attrs.remove("mdlt");
    r.attrs.insert("mdc".into(), json!(0));
    t.delete_record(TIME_SERIES_MONITOR, r.ri())
}

/// Inside a `<subscription>` UPDATE's write: a new `enc` (which holds `md`) stops the
/// subscription's missing data window and its count (TS-0001 table 9.6.8-2).
pub(crate) fn forget_window(
    t: &mut dyn Txn,
    changes: &Map<String, Value>,
    sub: &Resource,
) -> Result<()> {
    if changes.contains_key("enc") {
        t.delete_record(MISSING_DATA_WINDOW, sub.ri())?;
    }
    Ok(())
}
