//! The scenarios: the hello-world baseline, then RETRIEVE and CREATE on a real `cse` process.

use crate::client::{Conn, Request, Response};
use crate::load::{self, LoadResult, Workload};
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
            Scenario::Retrieve => "CSE RETRIEVE <cin>",
            Scenario::Create => "CSE CREATE <cin>",
        }
    }
}

/// One measured row.
#[derive(Debug)]
pub(crate) struct Row {
    /// What was measured.
    pub(crate) scenario: Scenario,
    /// Concurrent connections.
    pub(crate) conns: usize,
    /// The measurement.
    pub(crate) result: LoadResult,
}

/// Everything the report needs.
#[derive(Debug)]
pub(crate) struct Outcome {
    /// Measured seconds per scenario.
    pub(crate) measure: Duration,
    /// All rows, in the order they ran.
    pub(crate) rows: Vec<Row>,
    /// Peak RSS of the hello-world server, KiB.
    pub(crate) hello_rss_kib: Option<u64>,
    /// Peak RSS of the CSE, KiB.
    pub(crate) cse_rss_kib: Option<u64>,
    /// Consistency checks and other remarks.
    pub(crate) notes: Vec<String>,
}

/// Runs every scenario in turn.
pub(crate) async fn run(plan: &Plan) -> anyhow::Result<Outcome> {
    let tmp = tempfile::Builder::new()
        .prefix("cse-bench-")
        .tempdir()
        .context("cannot create a temp folder")?;
    let mut out = Outcome {
        measure: plan.measure,
        rows: Vec::new(),
        hello_rss_kib: None,
        cse_rss_kib: None,
        notes: Vec::new(),
    };

    eprintln!("bench: starting the hello-world server");
    let hello = Server::start(
        &plan.me,
        &["hello", "--listen", "127.0.0.1:0"],
        tmp.path().join("hello.log"),
    )
    .await?;
    let get = hello_workload(hello.addr)?;
    for &n in &plan.conns {
        out.rows
            .push(measure(plan, hello.addr, Scenario::Hello, n, &get).await?);
    }
    out.hello_rss_kib = hello.peak_rss_kib().ok();
    hello.stop().await?;

    eprintln!("bench: starting {}", plan.cse.display());
    let data = tmp.path().join("data");
    let data_arg = data
        .to_str()
        .context("the temp folder's path is not UTF-8")?;
    let log = tmp.path().join("cse.log");
    let cse = Server::start(
        &plan.cse,
        &["--http", "127.0.0.1:0", "--data", data_arg],
        log,
    )
    .await?;
    let result = cse_scenarios(plan, &cse, &mut out).await;
    out.cse_rss_kib = cse.peak_rss_kib().ok();
    if let Err(e) = result {
        let log = crate::process::tail(&cse.log);
        cse.stop().await?;
        return Err(e.context(format!("CSE log {log}")));
    }
    cse.stop().await?;
    Ok(out)
}

/// Setup, RETRIEVE and CREATE against a running CSE.
async fn cse_scenarios(plan: &Plan, cse: &Server, out: &mut Outcome) -> anyhow::Result<()> {
    let target = setup(cse.addr).await?;
    let retrieve = retrieve_workload(&target)?;
    for &n in &plan.conns {
        out.rows
            .push(measure(plan, cse.addr, Scenario::Retrieve, n, &retrieve).await?);
    }
    let create = create_workload(&target)?;
    let mut created = 1; // The instance made by the setup.
    for &n in &plan.conns {
        let row = measure(plan, cse.addr, Scenario::Create, n, &create).await?;
        created += row.result.ok + row.result.warmup_ok;
        out.rows.push(row);
    }
    out.notes.push(check_count(&target, created).await);
    Ok(())
}

/// Runs one row, with progress on stderr.
async fn measure(
    plan: &Plan,
    addr: SocketAddr,
    scenario: Scenario,
    conns: usize,
    work: &Workload,
) -> anyhow::Result<Row> {
    eprintln!("bench: {} with {conns} connection(s)", scenario.name());
    let result = load::run(addr, conns, plan.warmup, plan.measure, work)
        .await
        .with_context(|| format!("{} with {conns} connection(s)", scenario.name()))?;
    Ok(Row {
        scenario,
        conns,
        result,
    })
}

// === Requests ===

/// Fixed parts of every request to one server.
#[derive(Debug, Clone)]
struct Target {
    addr: SocketAddr,
    host: HeaderValue,
    /// The AE-ID, used as `X-M2M-Origin` once the AE is registered.
    origin: HeaderValue,
    /// The container, `/cse-in/bench/data`.
    container: Uri,
    /// The contentInstance made by the setup.
    instance: Uri,
}

impl Target {
    fn new(addr: SocketAddr) -> anyhow::Result<Self> {
        Ok(Target {
            addr,
            host: HeaderValue::from_str(&addr.to_string())?,
            origin: HeaderValue::from_static("C"),
            container: Uri::from_static("/cse-in/bench/data"),
            instance: Uri::from_static("/cse-in/bench/data"),
        })
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

const AE_BODY: &str = r#"{"m2m:ae":{"rn":"bench","api":"Nbench","rr":false,"srv":["3"]}}"#;
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

fn retrieve_workload(t: &Target) -> anyhow::Result<Workload> {
    let t = t.clone();
    Ok(Workload {
        make: Arc::new(move |ri| t.request(Method::GET, &t.instance, ri, None, Bytes::new())),
        status: StatusCode::OK,
        rsc: Some("2000"),
    })
}

fn create_workload(t: &Target) -> anyhow::Result<Workload> {
    let t = t.clone();
    Ok(Workload {
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
    })
}

// === Setup ===

/// Registers the AE, creates the container and one contentInstance.
async fn setup(addr: SocketAddr) -> anyhow::Result<Target> {
    let mut t = Target::new(addr)?;
    let mut conn = Conn::open(addr).await?;
    let base = Uri::from_static("/cse-in");
    let ae = t.request(
        Method::POST,
        &base,
        load::next_ri(),
        Some(2),
        Bytes::from_static(AE_BODY.as_bytes()),
    );
    let ae = expect(conn.send(ae).await?, StatusCode::CREATED, "register the AE")?;
    let json: serde_json::Value =
        serde_json::from_slice(&ae.body).context("the AE answer is not JSON")?;
    let aei = json
        .pointer("/m2m:ae/aei")
        .and_then(|v| v.as_str())
        .context("the AE answer has no m2m:ae.aei")?;
    t.origin = HeaderValue::from_str(aei).context("the AE-ID is not a valid header value")?;

    let ae_uri = Uri::from_static("/cse-in/bench");
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
        let mut conn = Conn::open(t.addr).await?;
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
