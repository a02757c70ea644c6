//! The scenarios: the hello-world baseline, then RETRIEVE and CREATE on a real `cse` process.

use crate::client::{Conn, Connector, Request, Response};
use crate::load::{self, LoadResult, Watch, Workload};
use crate::process::Server;
use anyhow::Context;
use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE, HOST};
use http::{HeaderValue, Method, StatusCode, Uri};
use http_body_util::Full;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// What to run, resolved from the command line.
#[derive(Debug)]
pub(crate) struct Plan {
    /// This program, started again as `bench hello`.
    pub(crate) me: PathBuf,
    /// The `cse` binary.
    pub(crate) cse: PathBuf,
    /// Connection counts, each measured for every scenario.
    pub(crate) conns: Vec<usize>,
    /// Measured time of each scenario.
    pub(crate) measure: Duration,
    /// Unmeasured time before each scenario.
    pub(crate) warmup: Duration,
    /// How many times every scenario is measured, interleaved.
    pub(crate) rounds: usize,
}

/// Which workload a row measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scenario {
    /// `GET /` on the hello-world server.
    Hello,
    /// RETRIEVE of one contentInstance.
    Retrieve,
    /// CREATE of contentInstances in one container (durable).
    Create,
}

impl Scenario {
    /// Name for the table.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Scenario::Hello => "hello-world GET /",
            Scenario::Retrieve => "CSE RETRIEVE cin",
            Scenario::Create => "CSE CREATE cin",
        }
    }
}

/// One row of the table: a scenario at one connection count, measured once per round.
#[derive(Debug)]
pub(crate) struct Row {
    /// What was measured.
    pub(crate) scenario: Scenario,
    /// Concurrent connections.
    pub(crate) conns: usize,
    /// One measurement per round, in the order they ran.
    pub(crate) runs: Vec<LoadResult>,
}

impl Row {
    /// The run with the median rate (the lower median for an even count), which the table
    /// shows: it is robust against a round that another process disturbed.
    pub(crate) fn median(&self) -> Option<&LoadResult> {
        let mut by_rate: Vec<&LoadResult> = self.runs.iter().collect();
        by_rate.sort_by(|a, b| a.rate().total_cmp(&b.rate()));
        by_rate.get(by_rate.len().saturating_sub(1) / 2).copied()
    }

    /// Slowest and fastest rate over the rounds.
    pub(crate) fn spread(&self) -> (f64, f64) {
        let rates = self.runs.iter().map(LoadResult::rate);
        let lo = rates.clone().fold(f64::INFINITY, f64::min);
        let hi = rates.fold(0.0, f64::max);
        (if lo.is_finite() { lo } else { 0.0 }, hi)
    }

    /// Failed requests over all rounds.
    pub(crate) fn errors(&self) -> u64 {
        self.runs.iter().map(|r| r.errors).sum()
    }
}

/// Everything the report needs.
#[derive(Debug)]
pub(crate) struct Outcome {
    /// Measured seconds per scenario and round.
    pub(crate) measure: Duration,
    /// Rounds run.
    pub(crate) rounds: usize,
    /// All rows, in the order they first ran.
    pub(crate) rows: Vec<Row>,
    /// Peak RSS of the hello-world server, KiB.
    pub(crate) hello_rss_kib: Option<u64>,
    /// Peak RSS of the CSE, KiB.
    pub(crate) cse_rss_kib: Option<u64>,
    /// `/proc/loadavg` before and after: how busy the machine was with other work.
    pub(crate) load: (String, String),
    /// Consistency checks and other remarks.
    pub(crate) notes: Vec<String>,
}

/// Starts both servers, then runs every scenario once per round, interleaved, so that a slow
/// spell of the machine hits the baseline and the CSE alike.
pub(crate) async fn run(plan: &Plan) -> anyhow::Result<Outcome> {
    let tmp = tempfile::Builder::new()
        .prefix("cse-bench-")
        .tempdir()
        .context("cannot create a temp folder")?;
    let load_before = loadavg();
    eprintln!(
        "bench: starting the hello-world server and {}",
        plan.cse.display()
    );
    let hello = Server::start(
        &plan.me,
        &["hello", "--listen", "127.0.0.1:0"],
        tmp.path().join("hello.log"),
    )
    .await?;
    let data = tmp.path().join("data");
    let data_arg = data
        .to_str()
        .context("the temp folder's path is not UTF-8")?;
    let cse = Server::start(
        &plan.cse,
        &["--http", "127.0.0.1:0", "--data", data_arg],
        tmp.path().join("cse.log"),
    )
    .await?;
    let result = rounds(plan, &hello, &cse).await;
    let hello_rss_kib = hello.peak_rss_kib().ok();
    let cse_rss_kib = cse.peak_rss_kib().ok();
    let cse_log = crate::process::tail(&cse.log);
    hello.stop().await?;
    cse.stop().await?;
    let (rows, notes) = result.with_context(|| format!("CSE log {cse_log}"))?;
    Ok(Outcome {
        measure: plan.measure,
        rounds: plan.rounds,
        rows,
        hello_rss_kib,
        cse_rss_kib,
        load: (load_before, loadavg()),
        notes,
    })
}

/// The CSE setup, then the measured rounds, then the consistency check.
async fn rounds(
    plan: &Plan,
    hello: &Server,
    cse: &Server,
) -> anyhow::Result<(Vec<Row>, Vec<String>)> {
    let target = setup(cse.addr, &Connector::Plain, "bench").await?;
    let kinds = [
        (Scenario::Hello, hello.addr, hello_workload(hello.addr)?),
        (Scenario::Retrieve, cse.addr, retrieve_workload(&target)),
        (Scenario::Create, cse.addr, create_workload(&target)),
    ];
    let mut rows: Vec<Row> = kinds
        .iter()
        .flat_map(|(scenario, _, _)| {
            plan.conns.iter().map(|&conns| Row {
                scenario: *scenario,
                conns,
                runs: Vec::new(),
            })
        })
        .collect();
    let mut created = 1; // The instance made by the setup.
    for round in 1..=plan.rounds {
        for &conns in &plan.conns {
            for (scenario, addr, work) in &kinds {
                eprintln!(
                    "bench: round {round}/{}: {} with {conns} connection(s)",
                    plan.rounds,
                    scenario.name()
                );
                let result = load::run(
                    *addr,
                    &Connector::Plain,
                    conns,
                    plan.warmup,
                    plan.measure,
                    work,
                    Watch::none(),
                )
                .await
                .with_context(|| format!("{} with {conns} connection(s)", scenario.name()))?;
                if *scenario == Scenario::Create {
                    created += result.ok + result.warmup_ok;
                }
                if let Some(row) = rows
                    .iter_mut()
                    .find(|r| r.scenario == *scenario && r.conns == conns)
                {
                    row.runs.push(result);
                }
            }
        }
    }
    let notes = vec![check_count(&target, created).await];
    Ok((rows, notes))
}

/// The system load averages, as the kernel prints them.
pub(crate) fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".to_owned())
}

// === Requests ===

/// Fixed parts of every request to one server.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    addr: SocketAddr,
    /// Plain TCP or TLS with some credential.
    connector: Connector,
    host: HeaderValue,
    /// The AE-ID, used as `X-M2M-Origin` once the AE is registered.
    origin: HeaderValue,
    /// The container, `/cse-in/bench/data`.
    container: Uri,
    /// The contentInstance made by the setup.
    instance: Uri,
}

impl Target {
    /// The AE will be `/cse-in/{rn}`, its container `/cse-in/{rn}/data`.
    fn new(addr: SocketAddr, connector: &Connector, rn: &str) -> anyhow::Result<Self> {
        let container: Uri = format!("/cse-in/{rn}/data")
            .parse()
            .with_context(|| format!("bad resource name {rn:?}"))?;
        Ok(Target {
            addr,
            connector: connector.clone(),
            host: HeaderValue::from_str(&addr.to_string())?,
            origin: HeaderValue::from_static("C"),
            instance: container.clone(),
            container,
        })
    }

    /// The same target, with requests sent as another originator.
    pub(crate) fn with_origin(&self, origin: &str) -> anyhow::Result<Self> {
        let mut t = self.clone();
        t.origin = HeaderValue::from_str(origin).context("not a valid originator header")?;
        Ok(t)
    }

    /// The contentInstance made by the setup.
    pub(crate) fn instance(&self) -> &Uri {
        &self.instance
    }

    /// The AE-ID the CSE assigned (the originator of every request after the registration).
    pub(crate) fn origin(&self) -> &str {
        self.origin.to_str().unwrap_or("?")
    }

    /// A oneM2M request; `ty` set means CREATE of that resource type.
    fn request(&self, method: Method, uri: &Uri, ri: u64, ty: Option<u8>, body: Bytes) -> Request {
        let mut req = Request::new(Full::new(body));
        *req.method_mut() = method;
        *req.uri_mut() = uri.clone();
        let h = req.headers_mut();
        h.insert(HOST, self.host.clone());
        h.insert("x-m2m-origin", self.origin.clone());
        h.insert("x-m2m-ri", HeaderValue::from(ri));
        h.insert("x-m2m-rvi", HeaderValue::from_static("3"));
        h.insert(ACCEPT, HeaderValue::from_static("application/json"));
        if let Some(ty) = ty {
            h.insert(CONTENT_TYPE, content_type(ty));
        }
        req
    }
}

fn content_type(ty: u8) -> HeaderValue {
    match ty {
        2 => HeaderValue::from_static("application/json;ty=2"),
        3 => HeaderValue::from_static("application/json;ty=3"),
        _ => HeaderValue::from_static("application/json;ty=4"),
    }
}

const CNT_BODY: &str = r#"{"m2m:cnt":{"rn":"data"}}"#;
const CIN_BODY: &str = r#"{"m2m:cin":{"con":"21.5","cnf":"text/plain:0"}}"#;

fn hello_workload(addr: SocketAddr) -> anyhow::Result<Workload> {
    let host = HeaderValue::from_str(&addr.to_string())?;
    Ok(Workload {
        make: Arc::new(move |_ri| {
            let mut req = Request::new(Full::new(Bytes::new()));
            req.headers_mut().insert(HOST, host.clone());
            req
        }),
        status: StatusCode::OK,
        rsc: None,
    })
}

pub(crate) fn retrieve_workload(t: &Target) -> Workload {
    let t = t.clone();
    Workload {
        make: Arc::new(move |ri| t.request(Method::GET, &t.instance, ri, None, Bytes::new())),
        status: StatusCode::OK,
        rsc: Some("2000"),
    }
}

/// RETRIEVE of the container's latest contentInstance (`la`), which moves with every create.
pub(crate) fn latest_workload(t: &Target) -> anyhow::Result<Workload> {
    let t = t.clone();
    let la: Uri = format!("{}/la", t.container.path())
        .parse()
        .context("bad container path")?;
    Ok(Workload {
        make: Arc::new(move |ri| t.request(Method::GET, &la, ri, None, Bytes::new())),
        status: StatusCode::OK,
        rsc: Some("2000"),
    })
}

pub(crate) fn create_workload(t: &Target) -> Workload {
    let t = t.clone();
    Workload {
        make: Arc::new(move |ri| {
            t.request(
                Method::POST,
                &t.container,
                ri,
                Some(4),
                Bytes::from_static(CIN_BODY.as_bytes()),
            )
        }),
        status: StatusCode::CREATED,
        rsc: Some("2001"),
    }
}

// === Setup ===

/// Registers the AE `/cse-in/{rn}` (originator `C`: the CSE assigns the AE-ID, or takes it
/// from the connection's credential), creates the container `data` and one contentInstance,
/// all over one connection made by `connector`.
pub(crate) async fn setup(
    addr: SocketAddr,
    connector: &Connector,
    rn: &str,
) -> anyhow::Result<Target> {
    let mut t = Target::new(addr, connector, rn)?;
    let mut conn = Conn::open_with(addr, connector).await?;
    let base = Uri::from_static("/cse-in");
    let ae_body = format!(r#"{{"m2m:ae":{{"rn":"{rn}","api":"Nbench","rr":false,"srv":["3"]}}}}"#);
    let ae = t.request(
        Method::POST,
        &base,
        load::next_ri(),
        Some(2),
        Bytes::from(ae_body),
    );
    let ae = expect(conn.send(ae).await?, StatusCode::CREATED, "register the AE")?;
    let json: serde_json::Value =
        serde_json::from_slice(&ae.body).context("the AE answer is not JSON")?;
    let aei = json
        .pointer("/m2m:ae/aei")
        .and_then(|v| v.as_str())
        .context("the AE answer has no m2m:ae.aei")?;
    t.origin = HeaderValue::from_str(aei).context("the AE-ID is not a valid header value")?;

    let ae_uri: Uri = format!("/cse-in/{rn}").parse()?;
    let cnt = t.request(
        Method::POST,
        &ae_uri,
        load::next_ri(),
        Some(3),
        Bytes::from_static(CNT_BODY.as_bytes()),
    );
    expect(
        conn.send(cnt).await?,
        StatusCode::CREATED,
        "create the container",
    )?;

    let cin = t.request(
        Method::POST,
        &t.container,
        load::next_ri(),
        Some(4),
        Bytes::from_static(CIN_BODY.as_bytes()),
    );
    let cin = expect(
        conn.send(cin).await?,
        StatusCode::CREATED,
        "create a contentInstance",
    )?;
    let location = cin
        .header("content-location")
        .context("the contentInstance answer has no Content-Location")?;
    let path = if location.starts_with('/') {
        location.to_owned()
    } else {
        format!("/{location}")
    };
    t.instance = path
        .parse()
        .with_context(|| format!("bad Content-Location {location:?}"))?;

    let check = t.request(
        Method::GET,
        &t.instance,
        load::next_ri(),
        None,
        Bytes::new(),
    );
    expect(
        conn.send(check).await?,
        StatusCode::OK,
        "retrieve the contentInstance",
    )?;
    Ok(t)
}

/// Adds `count` contentInstances to the target's container over `conns` connections.
pub(crate) async fn fill(t: &Target, count: usize, conns: usize) -> anyhow::Result<()> {
    let conns = conns.max(1);
    let mut tasks = Vec::new();
    for i in 0..conns {
        let t = t.clone();
        let share = count / conns + usize::from(i < count % conns);
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::open_with(t.addr, &t.connector).await?;
            for _ in 0..share {
                let cin = t.request(
                    Method::POST,
                    &t.container,
                    load::next_ri(),
                    Some(4),
                    Bytes::from_static(CIN_BODY.as_bytes()),
                );
                expect(
                    conn.send(cin).await?,
                    StatusCode::CREATED,
                    "fill the container",
                )?;
            }
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await.context("a filling task panicked")??;
    }
    Ok(())
}

/// Sends one request of the target's AE over `conn` and returns the answer's body when it
/// has `status`: an UPDATE of the AE's labels (`update`), or its AE-ID rotation.
pub(crate) async fn ae_request(
    conn: &mut Conn,
    t: &Target,
    rn: &str,
    rotate: bool,
) -> anyhow::Result<Bytes> {
    let (method, uri, body, step) = if rotate {
        (
            Method::POST,
            Uri::from_static("/.privacy/rotate-ae-id"),
            Bytes::new(),
            "rotate the AE-ID",
        )
    } else {
        (
            Method::PUT,
            format!("/cse-in/{rn}").parse()?,
            Bytes::from_static(br#"{"m2m:ae":{"lbl":["updated"]}}"#),
            "update the AE",
        )
    };
    let mut req = t.request(method, &uri, load::next_ri(), None, body);
    if !rotate {
        req.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }
    Ok(expect(conn.send(req).await?, StatusCode::OK, step)?.body)
}

/// Caps the target's container at `mni` contentInstances (the CSE deletes the oldest beyond).
pub(crate) async fn limit_instances(t: &Target, mni: u64) -> anyhow::Result<()> {
    let mut conn = Conn::open_with(t.addr, &t.connector).await?;
    let body = format!(r#"{{"m2m:cnt":{{"mni":{mni}}}}}"#);
    let mut req = t.request(
        Method::PUT,
        &t.container,
        load::next_ri(),
        None,
        Bytes::from(body),
    );
    req.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    expect(
        conn.send(req).await?,
        StatusCode::OK,
        "set the container's mni",
    )?;
    Ok(())
}

/// `resp` if it has `status`, else an error naming the step and quoting the answer.
fn expect(resp: Response, status: StatusCode, step: &str) -> anyhow::Result<Response> {
    if resp.status == status {
        return Ok(resp);
    }
    anyhow::bail!(
        "cannot {step}: HTTP {} X-M2M-RSC {}: {}",
        resp.status,
        resp.header("x-m2m-rsc").unwrap_or("-"),
        String::from_utf8_lossy(&resp.body)
    )
}

/// Compares the container's `cni` with the number of acknowledged creates.
async fn check_count(t: &Target, created: u64) -> String {
    let got = async {
        let mut conn = Conn::open_with(t.addr, &t.connector).await?;
        let req = t.request(
            Method::GET,
            &t.container,
            load::next_ri(),
            None,
            Bytes::new(),
        );
        let resp = expect(
            conn.send(req).await?,
            StatusCode::OK,
            "retrieve the container",
        )?;
        let json: serde_json::Value = serde_json::from_slice(&resp.body)?;
        json.pointer("/m2m:cnt/cni")
            .and_then(serde_json::Value::as_u64)
            .context("no m2m:cnt.cni")
    }
    .await;
    match got {
        Ok(cni) if cni == created => format!("container cni = {cni} = contentInstances acknowledged with 2001 (OK)"),
        Ok(cni) => format!("container cni = {cni}, but {created} contentInstances were acknowledged with 2001 (MISMATCH)"),
        Err(e) => format!("could not read the container's cni: {e:#}"),
    }
}
