//! Durability and concurrency through the real binary: 16 concurrent writers, and SIGKILL
//! under write load followed by a restart that must find every acknowledged write.
use crate::common;

use common::*;
use model::{Operation, Request, ResourceType, Response, ResponseStatusCode as R};
use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

async fn send(
    c: &client::Client,
    op: Operation,
    fr: &str,
    to: &str,
    ty: Option<ResourceType>,
    pc: Option<serde_json::Value>,
) -> Option<Response> {
    let mut r = Request::new(op, to, Some(fr.to_owned()));
    r.ty = ty;
    r.pc = pc;
    c.send(&r).await.ok()
}

async fn setup(c: &client::Client) -> String {
    let r = send(
        c,
        Operation::Create,
        "C",
        "cse-in",
        Some(ResourceType::Ae),
        Some(json!({"m2m:ae": {"rn": "w", "api": "Nw", "rr": false, "srv": ["3"]}})),
    )
    .await
    .expect("register");
    let id =
        r.pc.as_ref()
            .and_then(|p| p["m2m:ae"]["aei"].as_str())
            .expect("aei")
            .to_owned();
    let r = send(
        c,
        Operation::Create,
        &id,
        "cse-in/w",
        Some(ResourceType::Container),
        Some(json!({"m2m:cnt": {"rn": "c"}})),
    )
    .await
    .expect("cnt");
    assert_eq!(r.rsc, R::Created);
    id
}

fn cni(r: &Response) -> u64 {
    r.pc.as_ref()
        .and_then(|p| p["m2m:cnt"]["cni"].as_u64())
        .unwrap_or(u64::MAX)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_writers_cni_equals_acknowledged_creates() {
    let dir = tempfile::tempdir().expect("tmp");
    let server = Server::start(dir.path());
    let c = server.client();
    let id = setup(&c).await;
    let mut tasks = Vec::new();
    for w in 0..16 {
        let (c, id) = (c.clone(), id.clone());
        tasks.push(tokio::spawn(async move {
            let mut acked = 0u64;
            for i in 0..40 {
                let pc = json!({"m2m:cin": {"con": format!("{w}-{i}")}});
                if let Some(r) = send(
                    &c,
                    Operation::Create,
                    &id,
                    "cse-in/w/c",
                    Some(ResourceType::ContentInstance),
                    Some(pc),
                )
                .await
                {
                    if r.rsc == R::Created {
                        acked += 1;
                    }
                }
            }
            acked
        }));
    }
    let mut acked = 0;
    for t in tasks {
        acked += t.await.expect("writer");
    }
    let cnt = send(&c, Operation::Retrieve, &id, "cse-in/w/c", None, None)
        .await
        .expect("retrieve");
    assert_eq!(acked, 640);
    assert_eq!(cni(&cnt), acked);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_write_load_loses_no_acknowledged_write() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut server = Server::start(dir.path());
    let c = server.client();
    let id = setup(&c).await;
    let acked: Arc<Mutex<Vec<String>>> = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for w in 0..8 {
        let (c, id, acked, stop) = (c.clone(), id.clone(), acked.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let pc = json!({"m2m:cin": {"rn": format!("w{w}-{i}"), "con": "payload"}});
                match send(
                    &c,
                    Operation::Create,
                    &id,
                    "cse-in/w/c",
                    Some(ResourceType::ContentInstance),
                    Some(pc),
                )
                .await
                {
                    Some(r) if r.rsc == R::Created => acked
                        .lock()
                        .expect("lock")
                        .push(r.location.unwrap_or_default()),
                    Some(_) => {}
                    None => break, // the server is gone
                }
                i += 1;
            }
        }));
    }
    // Kill once the load has surely run a while: a hundred acknowledged writes (bounded).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while acked.lock().expect("lock").len() < 100 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    server.kill9();
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    let acked = acked.lock().expect("lock").clone();
    assert!(acked.len() > 50, "load was running: {} writes", acked.len());

    let server = Server::start(dir.path());
    let c = server.client();
    for location in &acked {
        let r = send(&c, Operation::Retrieve, &id, location, None, None)
            .await
            .expect("retrieve");
        assert_eq!(r.rsc, R::Ok, "acknowledged {location} lost");
    }
    let cnt = send(&c, Operation::Retrieve, &id, "cse-in/w/c", None, None)
        .await
        .expect("cnt");
    assert!(cni(&cnt) >= acked.len() as u64);
    // The counter matches what is really there (including writes durable but not yet acked).
    // A child listing holds at most `result_limit` references: page through with `ofst`.
    let mut n = 0u64;
    loop {
        let mut list = Request::new(Operation::Retrieve, "cse-in/w/c", Some(id.clone()));
        list.rcn = Some(model::ResultContent::ChildResourceReferences);
        list.fc.ofst = Some(n);
        let refs = c.send(&list).await.expect("list");
        let page = refs
            .pc
            .as_ref()
            .and_then(|p| p["m2m:rrl"]["rrf"].as_array().map(Vec::len))
            .unwrap_or(0) as u64;
        if page == 0 {
            break;
        }
        n += page;
    }
    assert_eq!(n, cni(&cnt));
}

/// The AE-ID in a rotation answer.
fn rotated_to(r: &Response) -> Option<String> {
    r.pc.as_ref()
        .and_then(|p| p["m2m:ae"]["aei"].as_str())
        .map(str::to_owned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_ae_id_rotations_survive_sigkill() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut server = Server::start(dir.path());
    let c = server.client();
    let mut id = setup(&c).await;
    // A writer keeps the store busy while the AE rotates again and again (a trusted
    // plaintext listener: no rate limit). Its writes race the rotations: a create sent with
    // an AE-ID that was just rotated away is refused, never half applied.
    let current = Arc::new(Mutex::new(id.clone()));
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let writer = {
        let (c, current, stop) = (c.clone(), current.clone(), stop.clone());
        let written = written.clone();
        tokio::spawn(async move {
            let mut acked = Vec::new();
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let fr = current.lock().expect("lock").clone();
                // With `cr` (asked for, TS-0004 clause 7.3.3.5): the rotation rewrites it.
                let pc = json!({"m2m:cin": {"rn": format!("r{i}"), "con": "payload", "cr": null}});
                match send(
                    &c,
                    Operation::Create,
                    &fr,
                    "cse-in/w/c",
                    Some(ResourceType::ContentInstance),
                    Some(pc),
                )
                .await
                {
                    Some(r) if r.rsc == R::Created => {
                        acked.push(format!("cse-in/w/c/r{i}"));
                        written.fetch_add(1, Ordering::Relaxed);
                    }
                    Some(_) => {}
                    None => break,
                }
                i += 1;
            }
            acked
        })
    };
    // Rotations while the writer runs, until both have done some (counts, not a duration;
    // bounded).
    let mut rotations = 0;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while (rotations < 5 || written.load(Ordering::Relaxed) < 20)
        && std::time::Instant::now() < deadline
    {
        let mut r = Request::new(Operation::Create, ".privacy/rotate-ae-id", Some(id.clone()));
        r.ty = None;
        let answer = c.send(&r).await.expect("rotate");
        assert_eq!(answer.rsc, R::Ok, "{:?}", answer.pc);
        id = rotated_to(&answer).expect("a new AE-ID");
        *current.lock().expect("lock") = id.clone();
        rotations += 1;
    }
    server.kill9();
    stop.store(true, Ordering::Relaxed);
    let acked = writer.await.expect("writer");
    assert!(rotations >= 3, "{rotations} rotations");
    assert!(
        acked.len() >= 10,
        "the writer was writing: {} writes",
        acked.len()
    );

    // After the restart the last acknowledged AE-ID is the AE's, with everything it wrote.
    let server = Server::start(dir.path());
    let c = server.client();
    let ae = send(&c, Operation::Retrieve, &id, "cse-in/w", None, None)
        .await
        .expect("retrieve the AE");
    assert_eq!(ae.rsc, R::Ok, "{:?}", ae.pc);
    assert_eq!(
        ae.pc.as_ref().and_then(|p| p["m2m:ae"]["aei"].as_str()),
        Some(id.as_str())
    );
    for location in &acked {
        let r = send(&c, Operation::Retrieve, &id, location, None, None)
            .await
            .expect("retrieve");
        assert_eq!(r.rsc, R::Ok, "acknowledged {location} lost");
        let cr = r.pc.as_ref().and_then(|p| p["m2m:cin"]["cr"].as_str());
        assert_eq!(cr, Some(id.as_str()), "{location} names an old AE-ID");
    }
}

#[test]
fn bad_configuration_exits_64_before_listening() {
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = dir.path().join("bad.toml");
    std::fs::write(&cfg, "[cse]\nnot_an_option = 1\n").expect("write");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cse"))
        .arg("--config")
        .arg(&cfg)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not_an_option"));
    assert!(out.stdout.is_empty(), "no listener was started");
}
