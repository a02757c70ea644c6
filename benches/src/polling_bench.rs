//! `bench polling`: what request-unreachable AEs waiting on their polling channels cost the
//! CSE, and how soon a notification reaches its waiting poller (issue 13, "Speed and
//! scale": 10,000 waiting AEs within 100 MiB of extra memory, a notification at its poller
//! within 50 ms on loopback).
//!
//! One CSE; `aes` AEs registered with `rr` false, each with its `<pollingChannel>`. The
//! baseline is the same process in the same run: its resident set with every AE and channel
//! in place and no poll waiting, and the time the CSE takes to answer a NOTIFY. Then every
//! AE opens its own connection and retrieves its `<AE>` on it, and the resident set is read
//! with those connections idle (kept alive): what the connections cost. Then every AE
//! long-polls its `pcu` on that same connection; once the CSE has logged every poll as
//! waiting, the resident set is read again: the difference is what the polls cost. Then, for
//! `samples` AEs one at a time, a NOTIFY to the `<AE>` is sent and the time until that AE's
//! poll is answered with it is measured.

use crate::client::{Conn, Connector, Request, Response};
use anyhow::Context;
use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE, HOST};
use http::{HeaderValue, Method, StatusCode, Uri};
use http_body_util::Full;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// What to run.
#[derive(Debug)]
pub(crate) struct PollingPlan {
    /// The `cse` binary.
    pub(crate) cse: PathBuf,
    /// AEs, each with a channel and a waiting poll.
    pub(crate) aes: usize,
    /// Notifications whose latency is measured (one AE each).
    pub(crate) samples: usize,
    /// Connections that register the AEs.
    pub(crate) setup_conns: usize,
}

/// Everything the report needs.
#[derive(Debug)]
pub(crate) struct PollingOutcome {
    /// RSS with the AEs and channels in place, no poll waiting (KiB).
    pub(crate) baseline_rss_kib: u64,
    /// RSS with one idle kept-alive connection per AE, no poll waiting (KiB).
    pub(crate) idle_rss_kib: u64,
    /// RSS with every poll waiting (KiB).
    pub(crate) waiting_rss_kib: u64,
    /// Time from sending a NOTIFY to the AE to its poller getting it.
    pub(crate) latencies: Vec<Duration>,
    /// Time the CSE took to answer each of those NOTIFYs (queued on disk).
    pub(crate) notify_answers: Vec<Duration>,
    /// Time to register the AEs and create their channels.
    pub(crate) setup: Duration,
}

/// A oneM2M request to the CSE.
fn request(
    addr: SocketAddr,
    method: Method,
    path: &str,
    origin: &str,
    body: Option<(&str, String)>,
) -> anyhow::Result<Request> {
    let (ct, body) = match body {
        Some((ct, b)) => (Some(ct), Bytes::from(b)),
        None => (None, Bytes::new()),
    };
    let mut req = Request::new(Full::new(body));
    *req.method_mut() = method;
    *req.uri_mut() = path.parse::<Uri>().context("bad path")?;
    let h = req.headers_mut();
    h.insert(HOST, HeaderValue::from_str(&addr.to_string())?);
    h.insert("x-m2m-origin", HeaderValue::from_str(origin)?);
    h.insert("x-m2m-ri", HeaderValue::from(crate::load::next_ri()));
    h.insert("x-m2m-rvi", HeaderValue::from_static("3"));
    h.insert(ACCEPT, HeaderValue::from_static("application/json"));
    if let Some(ct) = ct {
        h.insert(CONTENT_TYPE, HeaderValue::from_str(ct)?);
    }
    Ok(req)
}

fn rsc(resp: &Response) -> &str {
    resp.header("x-m2m-rsc").unwrap_or("-")
}

/// Registers AE `i` (`rr` false) and its channel over `conn`; returns its AE-ID.
async fn register(conn: &mut Conn, addr: SocketAddr, i: usize) -> anyhow::Result<String> {
    let ae = format!(r#"{{"m2m:ae":{{"rn":"p{i}","api":"Npoll","rr":false,"srv":["3"]}}}}"#);
    let resp = conn
        .send(request(
            addr,
            Method::POST,
            "/cse-in",
            "C",
            Some(("application/json;ty=2", ae)),
        )?)
        .await?;
    anyhow::ensure!(
        resp.status == StatusCode::CREATED,
        "register p{i}: {}",
        rsc(&resp)
    );
    let json: serde_json::Value = serde_json::from_slice(&resp.body)?;
    let aei = json
        .pointer("/m2m:ae/aei")
        .and_then(|v| v.as_str())
        .context("no aei")?
        .to_owned();
    let pch = r#"{"m2m:pch":{"rn":"pch"}}"#.to_owned();
    let resp = conn
        .send(request(
            addr,
            Method::POST,
            &format!("/cse-in/p{i}"),
            &aei,
            Some(("application/json;ty=15", pch)),
        )?)
        .await?;
    anyhow::ensure!(
        resp.status == StatusCode::CREATED,
        "channel of p{i}: {}",
        rsc(&resp)
    );
    Ok(aei)
}

/// Runs the benchmark against one CSE.
pub(crate) async fn run(plan: &PollingPlan) -> anyhow::Result<PollingOutcome> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let config = dir.path().join("cse.toml");
    // Room for every poll's connection, idle for as long as the run takes; polls wait at most
    // 10 minutes; the CSE says when each poll waits.
    std::fs::write(
        &config,
        format!(
            "[http]\nmax_connections = {}\nheader_timeout_secs = 600\n[polling]\ndefault_wait_secs = 600\nmax_wait_secs = 600\n[log]\nlevel = \"warn,cse::polling=debug\"\n",
            plan.aes + 512
        ),
    )?;
    let log = dir.path().join("cse.log");
    let server = crate::process::Server::start(
        &plan.cse,
        &[
            "--http",
            "127.0.0.1:0",
            "--data",
            data.to_str().context("path")?,
            "--config",
            config.to_str().context("path")?,
        ],
        log.clone(),
    )
    .await?;
    let addr = server.addr;

    let started = Instant::now();
    let mut tasks = Vec::new();
    let conns = plan.setup_conns.max(1);
    for c in 0..conns {
        let aes = plan.aes;
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::open_with(addr, &Connector::Plain).await?;
            let mut ids = Vec::new();
            for i in (c..aes).step_by(conns) {
                ids.push((i, register(&mut conn, addr, i).await?));
            }
            anyhow::Ok(ids)
        }));
    }
    let mut ids = vec![String::new(); plan.aes];
    for t in tasks {
        for (i, id) in t.await.context("setup task")?? {
            ids[i] = id;
        }
    }
    let setup = started.elapsed();
    eprintln!(
        "bench: {} AEs with channels in {:.1} s",
        plan.aes,
        setup.as_secs_f64()
    );
    let baseline_rss_kib = server.rss_kib()?;

    // Every AE opens its connection and retrieves its <AE> on it, then waits for the word to
    // poll on the same connection; each poll reports when its answer arrived.
    let (go_tx, go_rx) = tokio::sync::watch::channel(false);
    let mut ready = Vec::new();
    let mut arrivals = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let (ready_tx, ready_rx) = oneshot::channel::<anyhow::Result<()>>();
        let (tx, rx) = oneshot::channel::<anyhow::Result<(Instant, Response)>>();
        ready.push(ready_rx);
        arrivals.push(rx);
        let id = id.clone();
        let mut go = go_rx.clone();
        tokio::spawn(async move {
            let opened = async {
                let mut conn = Conn::open_with(addr, &Connector::Plain).await?;
                let req = request(addr, Method::GET, &format!("/cse-in/p{i}"), &id, None)?;
                let resp = conn.send(req).await?;
                anyhow::ensure!(
                    resp.status == StatusCode::OK,
                    "retrieve p{i}: {}",
                    rsc(&resp)
                );
                anyhow::Ok(conn)
            }
            .await;
            let mut conn = match opened {
                Ok(conn) => {
                    let _ = ready_tx.send(Ok(()));
                    conn
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            let outcome = async {
                go.wait_for(|go| *go).await?;
                let path = format!("/cse-in/p{i}/pch/pcu");
                let req = request(addr, Method::GET, &path, &id, None)?;
                let resp = conn.send(req).await?;
                anyhow::Ok((Instant::now(), resp))
            }
            .await;
            let _ = tx.send(outcome);
        });
    }
    for r in ready {
        r.await.context("connection task")??;
    }
    let idle_rss_kib = server.rss_kib()?;
    eprintln!("bench: {} idle connections", plan.aes);
    go_tx.send(true).context("no poller left")?;
    // Wait (bounded) until the CSE has logged every poll as waiting.
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let waiting = text.matches("long poll waiting").count();
        if waiting >= plan.aes {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "only {waiting} of {} polls waiting after 10 minutes",
            plan.aes
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let waiting_rss_kib = server.rss_kib()?;
    eprintln!("bench: {} polls waiting", plan.aes);

    let mut latencies = Vec::new();
    let mut notify_answers = Vec::new();
    let mut conn = Conn::open_with(addr, &Connector::Plain).await?;
    let step = (plan.aes / plan.samples.max(1)).max(1);
    for (n, rx) in arrivals.into_iter().enumerate() {
        if n % step != 0 || latencies.len() >= plan.samples {
            continue;
        }
        let body =
            format!(r#"{{"m2m:sgn":{{"sur":"bench","nev":{{"net":3,"rep":{{"n":{n}}}}}}}}}"#);
        let req = request(
            addr,
            Method::POST,
            &format!("/cse-in/p{n}"),
            "CAdmin",
            Some(("application/json", body)),
        )?;
        let sent = Instant::now();
        let resp = conn.send(req).await?;
        notify_answers.push(sent.elapsed());
        anyhow::ensure!(
            resp.status == StatusCode::OK,
            "NOTIFY to p{n}: {}",
            rsc(&resp)
        );
        let (arrived, poll) = tokio::time::timeout(Duration::from_secs(30), rx)
            .await
            .context("the poller got nothing within 30 s")?
            .context("poll task")??;
        anyhow::ensure!(
            poll.status == StatusCode::OK,
            "poll of p{n}: {}",
            rsc(&poll)
        );
        latencies.push(arrived.saturating_duration_since(sent));
    }
    server.stop().await?;
    Ok(PollingOutcome {
        baseline_rss_kib,
        idle_rss_kib,
        waiting_rss_kib,
        latencies,
        notify_answers,
        setup,
    })
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// The report.
pub(crate) fn render(plan: &PollingPlan, o: &PollingOutcome) -> String {
    let mib = |kib: u64| kib as f64 / 1024.0;
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let mut s = String::new();
    let extra = o.waiting_rss_kib.saturating_sub(o.baseline_rss_kib);
    let connections = o.idle_rss_kib.saturating_sub(o.baseline_rss_kib);
    let polls = o.waiting_rss_kib.saturating_sub(o.idle_rss_kib);
    let per = |kib: u64| kib as f64 / plan.aes.max(1) as f64;
    let _ = writeln!(
        s,
        "Polling: {} AEs (rr false) with a channel each, set up in {:.1} s; {} notifications measured",
        plan.aes,
        o.setup.as_secs_f64(),
        o.latencies.len()
    );
    let _ = writeln!(s);
    let _ = writeln!(s, "| memory | RSS |");
    let _ = writeln!(s, "|---|---:|");
    let _ = writeln!(
        s,
        "| baseline: AEs and channels, no poll waiting | {:.1} MiB |",
        mib(o.baseline_rss_kib)
    );
    let _ = writeln!(
        s,
        "| {} idle kept-alive connections (one RETRIEVE each), no poll | {:.1} MiB |",
        plan.aes,
        mib(o.idle_rss_kib)
    );
    let _ = writeln!(
        s,
        "| {} polls waiting, on those connections | {:.1} MiB |",
        plan.aes,
        mib(o.waiting_rss_kib)
    );
    let _ = writeln!(
        s,
        "| extra for the idle connections | {:.1} MiB ({:.1} KiB per connection) |",
        mib(connections),
        per(connections)
    );
    let _ = writeln!(
        s,
        "| extra for the polls on them | {:.1} MiB ({:.1} KiB per poll) |",
        mib(polls),
        per(polls)
    );
    let _ = writeln!(
        s,
        "| extra for the waiting polls, connections included | {:.1} MiB ({:.1} KiB per poll; target 100 MiB for 10,000) |",
        mib(extra),
        per(extra)
    );
    let _ = writeln!(s);
    let mut lat = o.latencies.clone();
    lat.sort();
    let mut ans = o.notify_answers.clone();
    ans.sort();
    let _ = writeln!(s, "| time | p50 ms | p99 ms | max ms |");
    let _ = writeln!(s, "|---|---:|---:|---:|");
    let _ = writeln!(
        s,
        "| baseline: NOTIFY to the AE answered (request queued on disk) | {:.2} | {:.2} | {:.2} |",
        ms(percentile(&ans, 0.5)),
        ms(percentile(&ans, 0.99)),
        ms(ans.last().copied().unwrap_or_default())
    );
    let _ = writeln!(
        s,
        "| NOTIFY sent to its poller's answer (target 50 ms) | {:.2} | {:.2} | {:.2} |",
        ms(percentile(&lat, 0.5)),
        ms(percentile(&lat, 0.99)),
        ms(lat.last().copied().unwrap_or_default())
    );
    s
}
