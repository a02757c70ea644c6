//! `bench acp`: what access control costs a RETRIEVE. One `cse` process, one content
//! instance, read over and over by two originators in the same run, interleaved:
//!
//! - the admin originator, which access control does not apply to (the baseline);
//! - a registered AE that only the last of N rules of the container's ACP admits (every
//!   rule has a time window and an address list, so the matching rule's contexts are
//!   evaluated too).
//!
//! The ratio of the two rates is the cost of gathering the policy and deciding.

use crate::client::{Conn, Connector, Request};
use crate::load::{self, LoadResult, Watch};
use crate::process::Server;
use crate::scenarios::{self, Target};
use anyhow::Context;
use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE, HOST};
use http::{HeaderValue, Method, StatusCode, Uri};
use http_body_util::Full;
use serde_json::{json, Value};
use std::fmt::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// What `bench acp` runs.
#[derive(Debug)]
pub(crate) struct AcpPlan {
    /// The `cse` binary.
    pub(crate) cse: PathBuf,
    /// Connection counts.
    pub(crate) conns: Vec<usize>,
    /// Rules in the container's ACP (the reader matches the last one).
    pub(crate) rules: usize,
    /// Measured time of each row.
    pub(crate) measure: Duration,
    /// Unmeasured time before each row.
    pub(crate) warmup: Duration,
    /// Interleaved rounds; the median is reported.
    pub(crate) rounds: usize,
}

/// Starts the CSE, sets up the policy, measures both originators and renders the report.
pub(crate) async fn run(plan: &AcpPlan) -> anyhow::Result<String> {
    let tmp = tempfile::Builder::new()
        .prefix("cse-bench-acp-")
        .tempdir()
        .context("cannot create a temp folder")?;
    let data = tmp.path().join("data");
    let data_arg = data
        .to_str()
        .context("the temp folder's path is not UTF-8")?;
    eprintln!("bench acp: starting {}", plan.cse.display());
    let cse = Server::start(
        &plan.cse,
        &["--http", "127.0.0.1:0", "--data", data_arg],
        tmp.path().join("cse.log"),
    )
    .await?;
    let load_before = scenarios::loadavg();
    let result = measure(plan, cse.addr).await;
    let log = crate::process::tail(&cse.log);
    cse.stop().await?;
    let rows = result.with_context(|| format!("CSE log {log}"))?;
    Ok(render(plan, &rows, &load_before))
}

/// Median rate of each originator at one connection count.
struct Row {
    conns: usize,
    admin: Vec<LoadResult>,
    acp: Vec<LoadResult>,
    /// An AE reading its own instance under the default policy: everything an AE's request
    /// pays (its registration looked up, a policy decided) except the N rules.
    own: Vec<LoadResult>,
}

async fn measure(plan: &AcpPlan, addr: SocketAddr) -> anyhow::Result<Vec<Row>> {
    let target = scenarios::setup(addr, &Connector::Plain, "bench").await?;
    let owner = target.origin().to_owned();
    let reader = protect(addr, &owner, plan.rules).await?;
    let admin_work = scenarios::retrieve_workload(&target.with_origin("CAdmin")?);
    let acp_target = target.with_origin(&reader)?;
    check_access(addr, &acp_target, &reader).await?;
    let acp_work = scenarios::retrieve_workload(&acp_target);
    let own_target = scenarios::setup(addr, &Connector::Plain, "bench-own").await?;
    let own_work = scenarios::retrieve_workload(&own_target);
    let mut rows: Vec<Row> = plan
        .conns
        .iter()
        .map(|&conns| Row {
            conns,
            admin: Vec::new(),
            acp: Vec::new(),
            own: Vec::new(),
        })
        .collect();
    for round in 1..=plan.rounds {
        for row in &mut rows {
            for (name, work, out) in [
                ("admin", &admin_work, &mut row.admin),
                ("ACP", &acp_work, &mut row.acp),
                ("own", &own_work, &mut row.own),
            ] {
                eprintln!(
                    "bench acp: round {round}/{}: {name} RETRIEVE with {} connection(s)",
                    plan.rounds, row.conns
                );
                let r = load::run(
                    addr,
                    &Connector::Plain,
                    row.conns,
                    plan.warmup,
                    plan.measure,
                    work,
                    Watch::none(),
                )
                .await?;
                out.push(r);
            }
        }
    }
    Ok(rows)
}

/// One JSON request over a fresh connection; the answer's JSON if it has `status`.
async fn send(
    addr: SocketAddr,
    method: Method,
    path: &str,
    origin: &str,
    ty: Option<u8>,
    body: Option<Value>,
    status: StatusCode,
) -> anyhow::Result<Value> {
    let mut conn = Conn::open_with(addr, &Connector::Plain).await?;
    let bytes = body.map_or_else(Bytes::new, |b| Bytes::from(b.to_string()));
    let mut req: Request = Request::new(Full::new(bytes));
    *req.method_mut() = method;
    *req.uri_mut() = path.parse::<Uri>()?;
    let h = req.headers_mut();
    h.insert(HOST, HeaderValue::from_str(&addr.to_string())?);
    h.insert("x-m2m-origin", HeaderValue::from_str(origin)?);
    h.insert("x-m2m-ri", HeaderValue::from(load::next_ri()));
    h.insert("x-m2m-rvi", HeaderValue::from_static("3"));
    h.insert(ACCEPT, HeaderValue::from_static("application/json"));
    let ct = match ty {
        Some(ty) => format!("application/json;ty={ty}"),
        None => "application/json".to_owned(),
    };
    h.insert(CONTENT_TYPE, HeaderValue::from_str(&ct)?);
    let resp = conn.send(req).await?;
    anyhow::ensure!(
        resp.status == status,
        "{path}: HTTP {} X-M2M-RSC {}: {}",
        resp.status,
        resp.header("x-m2m-rsc").unwrap_or("-"),
        String::from_utf8_lossy(&resp.body)
    );
    Ok(serde_json::from_slice(&resp.body).unwrap_or(Value::Null))
}

/// The rules: N-1 that do not admit the reader, then one that does. Each has a time window
/// and an address list, as a policy in the field would.
fn rules(reader: &str, n: usize) -> Vec<Value> {
    let ctx = json!([{"actw": ["* * * * * * *"], "acip": {"ipv4": ["10.0.0.0/8", "127.0.0.0/8"]}}]);
    let mut out: Vec<Value> = (1..n)
        .map(|i| {
            json!({"acor": [format!("Cnobody{i}"), format!("/id-in/Cteam{i}*")], "acop": 63, "acco": ctx})
        })
        .collect();
    out.push(json!({"acor": [reader], "acop": 2, "acco": ctx}));
    out
}

/// Registers the reader AE, creates the ACP under the owner's AE and puts it on the
/// container; returns the reader's AE-ID.
async fn protect(addr: SocketAddr, owner: &str, n: usize) -> anyhow::Result<String> {
    let ae = send(
        addr,
        Method::POST,
        "/cse-in",
        "C",
        Some(2),
        Some(json!({"m2m:ae": {"rn": "reader", "api": "Nreader", "rr": false, "srv": ["3"]}})),
        StatusCode::CREATED,
    )
    .await
    .context("register the reader AE")?;
    let reader = ae
        .pointer("/m2m:ae/aei")
        .and_then(Value::as_str)
        .context("no m2m:ae.aei")?
        .to_owned();
    let acp = send(
        addr,
        Method::POST,
        "/cse-in/bench",
        owner,
        Some(1),
        Some(
            json!({"m2m:acp": {"rn": "policy", "pv": {"acr": rules(&reader, n)},
                                 "pvs": {"acr": [{"acor": [owner], "acop": 63}]}}}),
        ),
        StatusCode::CREATED,
    )
    .await
    .context("create the ACP")?;
    let ri = acp
        .pointer("/m2m:acp/ri")
        .and_then(Value::as_str)
        .context("no m2m:acp.ri")?
        .to_owned();
    send(
        addr,
        Method::PUT,
        "/cse-in/bench/data",
        owner,
        None,
        Some(json!({"m2m:cnt": {"acpi": [ri]}})),
        StatusCode::OK,
    )
    .await
    .context("put the ACP on the container")?;
    Ok(reader)
}

/// The reader may read the instance and a stranger may not: the rows measure what they say.
async fn check_access(addr: SocketAddr, t: &Target, reader: &str) -> anyhow::Result<()> {
    let path = t.instance().to_string();
    send(addr, Method::GET, &path, reader, None, None, StatusCode::OK)
        .await
        .context("the reader cannot read the instance")?;
    send(
        addr,
        Method::GET,
        &path,
        "CAdmin",
        None,
        None,
        StatusCode::OK,
    )
    .await
    .context("the admin cannot read the instance")?;
    Ok(())
}

fn median(runs: &[LoadResult]) -> f64 {
    let mut rates: Vec<f64> = runs.iter().map(LoadResult::rate).collect();
    rates.sort_by(f64::total_cmp);
    rates
        .get(rates.len().saturating_sub(1) / 2)
        .copied()
        .unwrap_or(0.0)
}

fn render(plan: &AcpPlan, rows: &[Row], load_before: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "RETRIEVE of one contentInstance: admin originator (no access control) vs. an AE admitted by rule {n} of {n} ({} round(s) of {} s, median; load average before {load_before}, after {})",
        plan.rounds,
        plan.measure.as_secs_f64(),
        scenarios::loadavg(),
        n = plan.rules,
    );
    let _ = writeln!(
        s,
        "| conns | admin req/s | ACP req/s | ACP/admin | access control cost | target <= 10% | AE, default policy req/s | cost of the {} rules alone | errors |",
        plan.rules
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|");
    for r in rows {
        let (admin, acp, own) = (median(&r.admin), median(&r.acp), median(&r.own));
        let ratio = if admin > 0.0 { acp / admin } else { 0.0 };
        let cost = (1.0 - ratio) * 100.0;
        let rules_cost = if own > 0.0 {
            (1.0 - acp / own) * 100.0
        } else {
            0.0
        };
        let errors: u64 = r
            .admin
            .iter()
            .chain(&r.acp)
            .chain(&r.own)
            .map(|x| x.errors)
            .sum();
        let _ = writeln!(
            s,
            "| {} | {admin:.0} | {acp:.0} | {ratio:.3} | {cost:.1}% | {} | {own:.0} | {rules_cost:.1}% | {errors} |",
            r.conns,
            if cost <= 10.0 { "PASS" } else { "MISS" },
        );
    }
    s
}
