//! Missing data detection of `<timeSeries>` resources (TS-0001 clause 10.2.4.29; TS-0004
//! clause 7.4.38.2.1) and the notifications it raises (`net` 8 with `enc/md`, TS-0004
//! clause 6.3.5.69).
//!
//! * **What is missing.** Once a watched series (`mdd` true, `pei` set) receives its first
//!   data point, the data points after it are expected every `pei` milliseconds from that
//!   point's generation time (`dgt`). A data point counts for the expected one when its
//!   `dgt` is within `peid` of it; when none has come `mdt` after the expected time, the
//!   expected time goes to the front of `mdlt` (newest first, as TS-0001 table 9.6.36-2
//!   orders it), `mdc` counts it, and the oldest entry is dropped past `mdn`.
//! * **State in the store.** Where the detection stands ([`Monitor`]: the first data
//!   point's time, the next period to check, the periods already seen) and each
//!   subscription's window ([`Window`]) are records, written in the same write as the data
//!   point or the detection that changes them: a restart resumes where the last
//!   acknowledged write left off, and periods that fell due while the CSE was down are
//!   detected at once.
//! * **One timer task per watched series** ([`Monitors`]): it sleeps until the next
//!   detection time by the CSE's clock, or until the series changes (a data point, an
//!   UPDATE, its deletion), and ends when the series is deleted or no longer watched. A
//!   test that moves a manual clock calls [`detect`] instead of waiting for the task.
//! * **Notifications.** A subscription with `net` 8 counts the missing points within a
//!   window of `enc/md/dur` opened by the first one; from the `num`-th on, each detection
//!   notifies `m2m:tsn` with the points not yet notified (`mdlt`) and the window's count
//!   (`mdc`). When the window ends, the count starts again at the next missing point.

use crate::records::{MISSING_DATA_WINDOW, TIME_SERIES_MONITOR};
use crate::subscription::Event;
use crate::Cse;
use model::resources::sub::net;
use model::{time, Error, Resource, ResourceType, Result};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;
use store::{Store, Txn};
use tokio::sync::Notify;

/// Periods checked in one write: a series whose CSE was down for long catches up over
/// several writes rather than in one huge one.
const CATCH_UP_PER_WRITE: u64 = 10_000;
/// Periods ahead of the next check remembered as seen: data points generated further in
/// the future than this many periods are not counted (they are still stored).
const MAX_SEEN: usize = 10_000;
/// The longest `mdlt` kept, whatever `mdn` says (and when it says nothing), and the most
/// points a subscription's notification lists.
pub const MAX_MISSING_LIST: usize = 10_000;

/// The detection settings of a watched series, in microseconds.
#[derive(Debug, Clone, Copy)]
struct Settings {
    pei: i64,
    peid: i64,
    mdt: i64,
    mdn: Option<u64>,
}

impl Settings {
    /// The settings of a series whose missing data is watched; none otherwise.
    fn of(attrs: &Map<String, Value>) -> Option<Self> {
        if !model::resources::ts::monitored(attrs) {
            return None;
        }
        let us = |k: &str| {
            attrs
                .get(k)
                .and_then(Value::as_u64)
                .and_then(|ms| i64::try_from(ms).ok())
                .and_then(|ms| ms.checked_mul(1000))
        };
        Some(Self {
            pei: us("pei").filter(|p| *p > 0)?,
            peid: us("peid").unwrap_or(0),
            mdt: us("mdt").unwrap_or(0),
            mdn: attrs.get("mdn").and_then(Value::as_u64),
        })
    }
}

/// Where the detection of one series stands ([`TIME_SERIES_MONITOR`]).
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Monitor {
    /// The generation time of the first data point (µs since the epoch); none: waiting for
    /// it.
    anchor: Option<i64>,
    /// The next period to check (the first data point is period 0).
    next: u64,
    /// Periods from `next` on for which a data point has come, ascending.
    seen: Vec<u64>,
}

impl Monitor {
    fn read(t: &mut dyn Txn, ri: &str) -> Result<Self> {
        match t.record(TIME_SERIES_MONITOR, ri)? {
            Some(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| Error::internal(format!("time series monitor of {ri}: {e}"))),
            None => Ok(Self::default()),
        }
    }

    fn write(&self, t: &mut dyn Txn, ri: &str) -> Result<()> {
        let bytes = serde_json::to_vec(self).map_err(|e| Error::internal(e.to_string()))?;
        t.put_record(TIME_SERIES_MONITOR, ri, &bytes, Some(ri))
    }

    /// The expected generation time of period `k`, if representable.
    fn expected(&self, k: u64, s: &Settings) -> Option<i64> {
        i64::try_from(k)
            .ok()?
            .checked_mul(s.pei)?
            .checked_add(self.anchor?)
    }

    /// Takes a data point generated at `dgt` into account: the first one anchors the
    /// periods; a later one marks its period as seen when it is within `peid` of it.
    fn observe(&mut self, dgt: i64, s: &Settings) {
        let Some(anchor) = self.anchor else {
            *self = Self {
                anchor: Some(dgt),
                next: 1,
                seen: Vec::new(),
            };
            return;
        };
        let Some(offset) = dgt.checked_sub(anchor) else {
            return;
        };
        // The nearest period; its window is `peid` either side of it.
        let k = offset.saturating_add(s.pei / 2).div_euclid(s.pei);
        let Ok(k) = u64::try_from(k) else {
            return;
        };
        let within = self
            .expected(k, s)
            .is_some_and(|e| dgt.abs_diff(e) <= s.peid.unsigned_abs());
        if k < self.next || !within {
            return;
        }
        if let Err(at) = self.seen.binary_search(&k) {
            self.seen.insert(at, k);
            self.seen.truncate(MAX_SEEN);
        }
    }

    /// When the next period is due for checking (µs): its expected time plus `mdt`.
    fn due(&self, s: &Settings) -> Option<i64> {
        self.expected(self.next, s)?.checked_add(s.mdt)
    }

    /// Checks every period due by `now` (at most [`CATCH_UP_PER_WRITE`]) and returns the
    /// expected times of those without a data point, oldest first.
    fn advance(&mut self, now: i64, s: &Settings) -> Vec<i64> {
        let mut missing = Vec::new();
        for _ in 0..CATCH_UP_PER_WRITE {
            let (Some(expected), Some(due)) = (self.expected(self.next, s), self.due(s)) else {
                break;
            };
            if due > now {
                break;
            }
            match self.seen.binary_search(&self.next) {
                Ok(at) => {
                    self.seen.remove(at);
                }
                Err(_) => missing.push(expected),
            }
            self.next += 1;
        }
        let next = self.next;
        self.seen.retain(|k| *k >= next);
        missing
    }
}

/// A subscription's missing data window ([`MISSING_DATA_WINDOW`]).
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Window {
    /// When the window ends (µs); none: no window open.
    ends: Option<i64>,
    /// Missing points counted since the window opened.
    count: u64,
    /// The points not yet notified (`m2m:timestamp`), newest first.
    pending: Vec<String>,
}

impl Window {
    fn read(t: &mut dyn Txn, sub: &str) -> Result<Self> {
        match t.record(MISSING_DATA_WINDOW, sub)? {
            Some(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| Error::internal(format!("missing data window of {sub}: {e}"))),
            None => Ok(Self::default()),
        }
    }

    fn write(&self, t: &mut dyn Txn, sub: &str) -> Result<()> {
        let bytes = serde_json::to_vec(self).map_err(|e| Error::internal(e.to_string()))?;
        t.put_record(MISSING_DATA_WINDOW, sub, &bytes, Some(sub))
    }

    /// Counts the missing point expected at `point`, detected at `detected`; returns what
    /// to notify (the points not yet notified, the window's count) once the count reaches
    /// `num` (TS-0001 clause 10.2.4.29: at `num` and at every point after it in the window).
    fn count(
        &mut self,
        point: i64,
        detected: i64,
        num: u64,
        dur: i64,
    ) -> Option<(Vec<String>, u64)> {
        if self.ends.is_none_or(|ends| detected >= ends) {
            *self = Self {
                ends: Some(detected.saturating_add(dur)),
                count: 0,
                pending: Vec::new(),
            };
        }
        self.count += 1;
        self.pending.insert(0, stamp(point));
        self.pending.truncate(MAX_MISSING_LIST);
        (self.count >= num).then(|| (std::mem::take(&mut self.pending), self.count))
    }
}

/// A time in µs since the epoch as an `m2m:timestamp`.
fn stamp(us: i64) -> String {
    chrono::DateTime::from_timestamp_micros(us).map_or_else(String::new, time::format)
}

/// A stored `m2m:timestamp` in µs since the epoch.
fn micros(s: &str) -> Result<i64> {
    Ok(time::parse(s)?.timestamp_micros())
}

/// Inside the write that creates a data point of `series` generated at `dgt`: shows it to
/// the detection, when the series is watched.
pub(crate) fn observe(t: &mut dyn Txn, series: &Resource, dgt: &str) -> Result<()> {
    let Some(settings) = Settings::of(&series.attrs) else {
        return Ok(());
    };
    let mut monitor = Monitor::read(t, series.ri())?;
    let before = monitor.clone();
    monitor.observe(micros(dgt)?, &settings);
    if monitor != before {
        monitor.write(t, series.ri())?;
    }
    Ok(())
}

/// What one detection run leaves for the timer task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    /// The series is gone or no longer watched.
    Stop,
    /// Watched, but waiting for its first data point.
    Idle,
    /// The next period falls due at this time (µs).
    At(i64),
}

/// What a detection's write found.
#[derive(Debug)]
struct Found {
    series: Option<Resource>,
    missing: usize,
    notices: Vec<(String, Vec<String>, u64)>,
    next: Next,
}

/// Runs the detection of the series `ri` now, by the CSE's clock, and sends what it
/// notifies; returns how many missing data points it found. For tests that move a manual
/// clock; the timer tasks do the same on their own.
pub async fn detect(cse: &Cse, ri: &str) -> Result<usize> {
    Ok(cse.detect_missing(ri).await?.0)
}

impl Cse {
    /// One detection run of the series `ri`: every period due is checked in one write
    /// (the series' `mdlt`/`mdc`, the monitor and the subscriptions' windows together),
    /// then the series' subscribers are told.
    async fn detect_missing(&self, ri: &str) -> Result<(usize, Next)> {
        let now = self.config.clock.now();
        let now_us = now.timestamp_micros();
        // Read first, from committed state: most wake-ups (a new data point) find nothing
        // due, and then cost no write.
        if let Some(next) = self.nothing_due(ri, now_us)? {
            return Ok((0, next));
        }
        let subs: Vec<(String, u64, i64)> = self
            .store
            .children(ri, Some(ResourceType::Subscription))?
            .into_iter()
            .filter(|s| model::resources::sub::event_types(&s.attrs).contains(&net::MISSING_DATA))
            .filter_map(|s| {
                let (num, dur) = model::resources::sub::missing_data(&s.attrs)?;
                let dur = i64::try_from(dur.as_micros()).unwrap_or(i64::MAX);
                Some((s.ri().to_owned(), num, dur))
            })
            .collect();
        let ri_owned = ri.to_owned();
        let found = store::write(self.store.as_ref(), move |t| {
            let stop = Found {
                series: None,
                missing: 0,
                notices: Vec::new(),
                next: Next::Stop,
            };
            let Some(mut series) = t.get(&ri_owned)? else {
                return Ok(stop);
            };
            let Some(settings) = Settings::of(&series.attrs) else {
                return Ok(stop);
            };
            let mut monitor = Monitor::read(t, &ri_owned)?;
            let before = monitor.clone();
            let missing = monitor.advance(now_us, &settings);
            if monitor != before {
                monitor.write(t, &ri_owned)?;
            }
            let next = match monitor.due(&settings) {
                Some(due) => Next::At(due),
                None if monitor.anchor.is_none() => Next::Idle,
                None => Next::Stop,
            };
            let mut notices = Vec::new();
            if !missing.is_empty() {
                let limit = settings
                    .mdn
                    .and_then(|n| usize::try_from(n).ok())
                    .unwrap_or(MAX_MISSING_LIST)
                    .min(MAX_MISSING_LIST);
                let mut list = series.str_list("mdlt");
                for point in &missing {
                    list.insert(0, stamp(*point));
                }
                list.truncate(limit);
                series.attrs.insert("mdc".into(), json!(list.len()));
                series.attrs.insert("mdlt".into(), json!(list));
                series.attrs.insert("lt".into(), json!(time::format(now)));
                t.update(&series)?;
                for (sub, num, dur) in &subs {
                    if t.get(sub)?.is_none() {
                        continue;
                    }
                    let mut window = Window::read(t, sub)?;
                    for point in &missing {
                        let detected = point.saturating_add(settings.mdt);
                        if let Some((points, count)) = window.count(*point, detected, *num, *dur) {
                            notices.push((sub.clone(), points, count));
                        }
                    }
                    window.write(t, sub)?;
                }
            }
            Ok(Found {
                missing: missing.len(),
                series: (!missing.is_empty()).then_some(series),
                notices,
                next,
            })
        })
        .await?;
        if let Some(series) = &found.series {
            tracing::info!(
                series = series.ri(),
                missing = found.missing,
                "missing data points detected"
            );
            let modified: Map<String, Value> = ["mdlt", "mdc", "lt"]
                .iter()
                .filter_map(|k| series.attrs.get(*k).map(|v| ((*k).to_owned(), v.clone())))
                .collect();
            self.fire(series, Event::Updated(series, &modified)).await;
            self.notify_missing(series, found.notices).await;
        }
        Ok((found.missing, found.next))
    }

    /// What the task is to do next when, by committed state, no period of `ri` is due at
    /// `now` (µs); none when one is (or may be: the write decides).
    fn nothing_due(&self, ri: &str, now: i64) -> Result<Option<Next>> {
        let Some(series) = self.store.get(ri)? else {
            return Ok(Some(Next::Stop));
        };
        let Some(settings) = Settings::of(&series.attrs) else {
            return Ok(Some(Next::Stop));
        };
        let monitor: Monitor = match self.store.record(TIME_SERIES_MONITOR, ri)? {
            Some(bytes) => match serde_json::from_slice(&bytes) {
                Ok(m) => m,
                Err(_) => return Ok(None),
            },
            None => return Ok(Some(Next::Idle)),
        };
        Ok(match monitor.due(&settings) {
            Some(due) if due > now => Some(Next::At(due)),
            None if monitor.anchor.is_none() => Some(Next::Idle),
            _ => None,
        })
    }

    /// Sends each subscription's time series notification (`m2m:tsn`), as its other
    /// notifications go (access checked, `bn` and `exc` applied).
    async fn notify_missing(&self, series: &Resource, notices: Vec<(String, Vec<String>, u64)>) {
        let mut changes = crate::batch::Changes::default();
        for (ri, points, count) in notices {
            let sub = match self.store.get(&ri) {
                Ok(Some(sub)) => sub,
                Ok(None) => continue,
                Err(e) => {
                    tracing::error!(sub = ri, error = %e, "cannot read a subscription");
                    continue;
                }
            };
            if !self.may_notify(&sub, series) {
                continue;
            }
            let rep = json!({ "m2m:tsn": { "mdlt": points, "mdc": count } });
            changes.extend(self.send(&sub, net::MISSING_DATA, series, rep, false));
        }
        changes.write(self.store.as_ref()).await;
    }

    /// Starts the timer tasks of the series whose detection was running when the CSE
    /// stopped (needs the runtime).
    pub(crate) fn resume_monitoring(&self) {
        match self.store.table(TIME_SERIES_MONITOR) {
            Ok(rows) => {
                for (ri, _) in rows {
                    self.monitors.wake(&ri);
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot read the time series monitors"),
        }
    }
}

/// The timer tasks of the watched series, one per series, by `ri`.
#[derive(Debug, Default)]
pub(crate) struct Monitors {
    cse: OnceLock<Weak<Cse>>,
    tasks: Mutex<HashMap<String, Arc<Notify>>>,
}

impl Monitors {
    /// Gives the tasks their CSE (which they hold weakly: they end with it).
    pub(crate) fn bind(&self, cse: Weak<Cse>) {
        let _ = self.cse.set(cse);
    }

    fn tasks(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Notify>>> {
        self.tasks.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Tells the series `ri`'s task that the series changed, or starts one if the series
    /// is watched and has none.
    pub(crate) fn wake(&self, ri: &str) {
        let Some(weak) = self.cse.get() else {
            return;
        };
        let Some(cse) = weak.upgrade() else {
            return;
        };
        let mut tasks = self.tasks();
        if let Some(notify) = tasks.get(ri) {
            notify.notify_one();
            return;
        }
        if !watched(cse.store.as_ref(), ri) {
            return;
        }
        let notify = Arc::new(Notify::new());
        tasks.insert(ri.to_owned(), notify.clone());
        tokio::spawn(run(weak.clone(), ri.to_owned(), notify));
    }

    /// Whether the task of `ri` may end: the series is not watched (checked under the
    /// lock [`Monitors::wake`] takes, so a change made meanwhile is never missed).
    fn leave(&self, store: &dyn Store, ri: &str) -> bool {
        let mut tasks = self.tasks();
        if watched(store, ri) {
            return false;
        }
        tasks.remove(ri);
        true
    }
}

/// Whether `ri` is a series whose missing data is watched.
fn watched(store: &dyn Store, ri: &str) -> bool {
    matches!(store.get(ri), Ok(Some(r)) if r.ty == ResourceType::TimeSeries
        && model::resources::ts::monitored(&r.attrs))
}

/// The timer task of one series.
async fn run(cse: Weak<Cse>, ri: String, notify: Arc<Notify>) {
    loop {
        let Some(strong) = cse.upgrade() else {
            return;
        };
        // A manual clock (tests) moves without the runtime's timers knowing: look again
        // often. The system clock is slept on, re-read now and then in case it is set.
        let cap = if strong.config.clock == model::clock::Clock::system() {
            Duration::from_secs(60)
        } else {
            Duration::from_millis(strong.config.expiry_check_ms.max(10))
        };
        let wait = match strong.detect_missing(&ri).await {
            Ok((_, Next::Stop)) => {
                if strong.monitors.leave(strong.store.as_ref(), &ri) {
                    tracing::debug!(series = ri, "missing data detection stopped");
                    return;
                }
                Some(Duration::ZERO)
            }
            Ok((_, Next::Idle)) => None,
            Ok((_, Next::At(due))) => {
                let left = due.saturating_sub(strong.config.clock.now().timestamp_micros());
                Some(Duration::from_micros(left.max(0).unsigned_abs()).min(cap))
            }
            Err(e) => {
                tracing::error!(series = ri, error = %model::Untrusted(&e), "missing data detection failed");
                Some(cap)
            }
        };
        drop(strong);
        match wait {
            Some(d) if d.is_zero() => tokio::task::yield_now().await,
            Some(d) => {
                tokio::select! {
                    () = tokio::time::sleep(d) => {}
                    () = notify.notified() => {}
                }
            }
            None => notify.notified().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: i64 = 1000;

    fn settings() -> Settings {
        Settings {
            pei: 1000 * MS,
            peid: 100 * MS,
            mdt: 500 * MS,
            mdn: None,
        }
    }

    #[test]
    fn periods_without_a_data_point_in_their_window_are_missing() {
        let s = settings();
        let mut m = Monitor::default();
        m.observe(0, &s);
        assert_eq!(m.due(&s), Some(1500 * MS));
        m.observe(1090 * MS, &s); // period 1, within peid
        m.observe(2200 * MS, &s); // outside period 2's window
        m.observe(3950 * MS, &s); // period 4, early but within peid
        assert!(m.advance(1499 * MS, &s).is_empty());
        assert_eq!(m.advance(4500 * MS, &s), vec![2000 * MS, 3000 * MS]);
        assert_eq!(m.next, 5);
        assert!(m.seen.is_empty());
        // A data point for a period already checked changes nothing.
        m.observe(2000 * MS, &s);
        assert!(m.seen.is_empty());
    }

    #[test]
    fn catching_up_is_bounded_per_write() {
        let s = settings();
        let mut m = Monitor::default();
        m.observe(0, &s);
        let far = 1000 * MS * (CATCH_UP_PER_WRITE as i64 * 2);
        assert_eq!(m.advance(far, &s).len() as u64, CATCH_UP_PER_WRITE);
        assert!(m.due(&s).is_some_and(|d| d <= far));
    }

    #[test]
    fn a_window_notifies_from_its_num_th_point_until_it_ends() {
        let mut w = Window::default();
        let dur = 10_000 * MS;
        assert_eq!(w.count(0, 500 * MS, 2, dur), None);
        let (points, count) = w.count(1000 * MS, 1500 * MS, 2, dur).expect("second point");
        assert_eq!(count, 2);
        assert_eq!(points, vec![stamp(1000 * MS), stamp(0)]);
        let (points, count) = w.count(2000 * MS, 2500 * MS, 2, dur).expect("third point");
        assert_eq!((points.len(), count), (1, 3));
        // The window has ended: counting starts again.
        assert_eq!(w.count(20_000 * MS, 20_500 * MS, 2, dur), None);
        assert_eq!(w.count, 1);
    }

    #[test]
    fn monitor_state_reads_back() {
        let m = Monitor {
            anchor: Some(5),
            next: 7,
            seen: vec![8, 9],
        };
        let bytes = serde_json::to_vec(&m).expect("json");
        assert_eq!(serde_json::from_slice::<Monitor>(&bytes).ok(), Some(m));
    }
}
