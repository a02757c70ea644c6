//! The closed-loop load generator: N keep-alive connections, each sending its next request as
//! soon as the previous answer is read.
//!
//! It is deliberately small (hyper's connection-level client, no pool, no retries) because it
//! shares the CPU with the server under test.

use crate::client::{Conn, Connector, Request, Response};
use crate::process::Server;
use crate::stats::Latency;
use http::StatusCode;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A request that takes longer than this counts as an error (and its connection is reopened).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Source of request identifiers, unique within one run of the benchmark.
static NEXT_RI: AtomicU64 = AtomicU64::new(1);

/// A fresh number for `X-M2M-RI`.
pub(crate) fn next_ri() -> u64 {
    NEXT_RI.fetch_add(1, Ordering::Relaxed)
}

/// Builds request number `ri` of a scenario.
pub(crate) type MakeRequest = Arc<dyn Fn(u64) -> Request + Send + Sync>;

/// What one scenario sends and what counts as success.
#[derive(Clone)]
pub(crate) struct Workload {
    /// Builds each request from its request identifier.
    pub(crate) make: MakeRequest,
    /// The HTTP status of a successful answer.
    pub(crate) status: StatusCode,
    /// The `X-M2M-RSC` of a successful answer, if the server sends one.
    pub(crate) rsc: Option<&'static str>,
}

impl std::fmt::Debug for Workload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workload")
            .field("status", &self.status)
            .field("rsc", &self.rsc)
            .finish_non_exhaustive()
    }
}

impl Workload {
    /// Why `resp` is not a success, or `None` when it is one.
    fn check(&self, resp: &Response) -> Option<String> {
        let rsc = resp.header("x-m2m-rsc");
        if resp.status == self.status && (self.rsc.is_none() || rsc == self.rsc) {
            return None;
        }
        Some(format!(
            "HTTP {} X-M2M-RSC {}",
            resp.status.as_u16(),
            rsc.unwrap_or("-")
        ))
    }
}

/// The outcome of one scenario.
#[derive(Debug, Clone, Default)]
pub(crate) struct LoadResult {
    /// Successful answers within the measured window.
    pub(crate) ok: u64,
    /// Failed requests within the measured window (wrong status, transport error, timeout).
    pub(crate) errors: u64,
    /// Successful answers during the warm-up (not in any figure; creates still count).
    pub(crate) warmup_ok: u64,
    /// From the end of the warm-up to the last answer.
    pub(crate) elapsed: Duration,
    /// Latency of the successful requests.
    pub(crate) latency: Latency,
    /// Failures by kind, with how often each occurred.
    pub(crate) error_kinds: BTreeMap<String, u64>,
    /// The body of the first failed answer, for a post-mortem.
    pub(crate) first_error_body: Option<String>,
    /// CPU time used from the end of the warm-up until every connection finished, when it
    /// was asked for (see [`Watch`]).
    pub(crate) cpu: Option<CpuUse>,
}

/// CPU time of the server and of the load generator over a measured window.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct CpuUse {
    /// The server process.
    pub(crate) server: Duration,
    /// This process (the load generator).
    pub(crate) client: Duration,
}

impl CpuUse {
    /// Server CPU time per unit of work.
    pub(crate) fn server_per(&self, n: u64) -> Option<Duration> {
        (n > 0).then(|| self.server / u32::try_from(n).unwrap_or(u32::MAX))
    }

    /// Client CPU time per unit of work.
    pub(crate) fn client_per(&self, n: u64) -> Option<Duration> {
        (n > 0).then(|| self.client / u32::try_from(n).unwrap_or(u32::MAX))
    }
}

/// Reads the CPU time of a server and of this process at the start and the end of a window.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Watch<'a> {
    server: Option<&'a Server>,
    /// Another process whose CPU counts as the server's (swtpm, which signs for the CSE).
    helper: Option<u32>,
}

impl<'a> Watch<'a> {
    /// Measures nothing.
    pub(crate) fn none() -> Self {
        Watch {
            server: None,
            helper: None,
        }
    }

    /// Measures `server` and this process.
    pub(crate) fn server(server: &'a Server) -> Self {
        Watch {
            server: Some(server),
            helper: None,
        }
    }

    /// Measures `server` plus the process `helper` (its CPU is added to the server's), and
    /// this process.
    pub(crate) fn server_with(server: &'a Server, helper: Option<u32>) -> Self {
        Watch {
            server: Some(server),
            helper,
        }
    }

    /// The current readings (server, client), if watching.
    pub(crate) fn read(&self) -> Option<(Duration, Duration)> {
        let server = self.server?;
        let helper = match self.helper {
            Some(pid) => crate::process::cpu_time_of(pid)?,
            None => Duration::ZERO,
        };
        Some((server.cpu_time()? + helper, crate::process::own_cpu_time()?))
    }

    /// The CPU used since `before`.
    pub(crate) fn since(&self, before: Option<(Duration, Duration)>) -> Option<CpuUse> {
        let (s0, c0) = before?;
        let (s1, c1) = self.read()?;
        Some(CpuUse {
            server: s1.saturating_sub(s0),
            client: c1.saturating_sub(c0),
        })
    }
}

/// `count` per second over `elapsed` (0 for an empty window).
pub(crate) fn per_second(count: u64, elapsed: std::time::Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs > 0.0 {
        count as f64 / secs
    } else {
        0.0
    }
}

impl LoadResult {
    /// Successful requests per second.
    pub(crate) fn rate(&self) -> f64 {
        per_second(self.ok, self.elapsed)
    }
}

/// What one connection saw.
#[derive(Debug, Default)]
struct ConnResult {
    ok: u64,
    errors: u64,
    warmup_ok: u64,
    samples: Vec<u64>,
    error_kinds: BTreeMap<String, u64>,
    first_error_body: Option<String>,
    last_end: Option<Instant>,
}

impl ConnResult {
    fn fail(&mut self, kind: String, body: Option<String>) {
        self.errors += 1;
        *self.error_kinds.entry(kind).or_default() += 1;
        if self.first_error_body.is_none() {
            self.first_error_body = body;
        }
    }
}

/// Runs `workload` over `conns` connections: `warmup` unmeasured, then `measure` measured.
/// Requests started before the end of the window are awaited and counted.
pub(crate) async fn run(
    addr: SocketAddr,
    connector: &Connector,
    conns: usize,
    warmup: Duration,
    measure: Duration,
    workload: &Workload,
    watch: Watch<'_>,
) -> anyhow::Result<LoadResult> {
    let mut opened = Vec::with_capacity(conns);
    for _ in 0..conns {
        opened.push(Conn::open_with(addr, connector).await?);
    }
    let start = Instant::now() + warmup;
    let deadline = start + measure;
    let tasks: Vec<_> = opened
        .into_iter()
        .map(|conn| {
            tokio::spawn(drive(
                addr,
                connector.clone(),
                conn,
                workload.clone(),
                start,
                deadline,
            ))
        })
        .collect();
    tokio::time::sleep_until(start.into()).await;
    let cpu_before = watch.read();
    let mut total = LoadResult::default();
    let mut samples = Vec::new();
    let mut last_end = start;
    for task in tasks {
        let r = task.await?;
        total.ok += r.ok;
        total.errors += r.errors;
        total.warmup_ok += r.warmup_ok;
        samples.extend_from_slice(&r.samples);
        for (kind, n) in r.error_kinds {
            *total.error_kinds.entry(kind).or_default() += n;
        }
        if total.first_error_body.is_none() {
            total.first_error_body = r.first_error_body;
        }
        last_end = last_end.max(r.last_end.unwrap_or(start));
    }
    total.cpu = watch.since(cpu_before);
    total.elapsed = last_end.saturating_duration_since(start);
    total.latency = Latency::from_nanos(&mut samples);
    Ok(total)
}

/// One connection's closed loop.
async fn drive(
    addr: SocketAddr,
    connector: Connector,
    conn: Conn,
    work: Workload,
    start: Instant,
    deadline: Instant,
) -> ConnResult {
    let mut out = ConnResult {
        samples: Vec::with_capacity(1 << 16),
        ..ConnResult::default()
    };
    let mut conn = Some(conn);
    loop {
        let sent = Instant::now();
        if sent >= deadline {
            break;
        }
        let counted = sent >= start;
        let Some(c) = conn.as_mut() else {
            match Conn::open_with(addr, &connector).await {
                Ok(c) => conn = Some(c),
                Err(e) => {
                    if counted {
                        out.fail(format!("reconnect: {e:#}"), None);
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
            continue;
        };
        let outcome = tokio::time::timeout(REQUEST_TIMEOUT, c.send((work.make)(next_ri()))).await;
        let done = Instant::now();
        if !counted {
            match outcome {
                Ok(Ok(resp)) if work.check(&resp).is_none() => out.warmup_ok += 1,
                Ok(Ok(_)) => {}
                _ => conn = None,
            }
            continue;
        }
        out.last_end = Some(done);
        match outcome {
            Ok(Ok(resp)) => match work.check(&resp) {
                None => {
                    out.ok += 1;
                    out.samples
                        .push(u64::try_from((done - sent).as_nanos()).unwrap_or(u64::MAX));
                }
                Some(kind) => {
                    out.fail(kind, Some(String::from_utf8_lossy(&resp.body).into_owned()))
                }
            },
            Ok(Err(e)) => {
                out.fail(format!("transport: {e:#}"), None);
                conn = None;
            }
            Err(_) => {
                out.fail(format!("no answer within {REQUEST_TIMEOUT:?}"), None);
                conn = None;
            }
        }
    }
    out
}
