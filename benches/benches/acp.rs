//! The access control decision alone: time per request through an ACP of 1, 10 and 100
//! rules, where only the last rule admits the originator (every rule has a time window and
//! an address list, so the matching rule's contexts are evaluated too). Also: compiling the
//! 10 rules (what an ACP change costs once) and the explainer's trace of a refusal.
//!
//! `cargo bench -p bench --bench acp`; criterion prints each figure.
// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion};
use cse::access::decision::explain;
use cse::access::{decide, AccessRequest, Domain, Policy, Principal, RuleSet};
use model::{AccessOperation, ResourceType};
use serde_json::{json, Value};
use std::sync::Arc;

fn domain() -> Domain {
    Domain::of(&cse::CseConfig::default())
}

fn rules(n: usize) -> Value {
    let ctx = json!([{"actw": ["* * * * * * *"], "acip": {"ipv4": ["10.0.0.0/8", "127.0.0.0/8"]}}]);
    let mut out: Vec<Value> = (1..n)
        .map(|i| json!({"acor": [format!("Cnobody{i}"), format!("/id-in/Cteam{i}*")], "acop": 63, "acco": ctx}))
        .collect();
    out.push(json!({"acor": ["Creader"], "acop": 2, "acco": ctx}));
    json!({ "acr": out })
}

fn policy(n: usize) -> Arc<Policy> {
    Arc::new(Policy::compile(
        "acp1",
        RuleSet::Privileges,
        Some(&rules(n)),
        &domain(),
    ))
}

fn request(originator: &str) -> AccessRequest {
    AccessRequest {
        originator: Principal::ae(originator, &domain()),
        op: AccessOperation::RETRIEVE,
        target_ty: ResourceType::ContentInstance,
        create: None,
        authenticated: false,
        time: model::time::now(),
        ip: "127.0.0.1".parse().ok(),
        location: None,
        credential_level: None,
        roles: Vec::new(),
        groups: Vec::new(),
    }
}

fn decision(c: &mut Criterion) {
    let mut group = c.benchmark_group("acp decision (granted by the last rule)");
    for n in [1, 10, 100] {
        let policies = [policy(n)];
        let req = request("Creader");
        assert!(decide(&policies, &req), "the last rule admits the reader");
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| decide(black_box(&policies), black_box(&req)))
        });
    }
    group.finish();
    let mut group = c.benchmark_group("acp decision (refused)");
    for n in [1, 10, 100] {
        let policies = [policy(n)];
        let req = request("Cstranger");
        assert!(!decide(&policies, &req));
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| decide(black_box(&policies), black_box(&req)))
        });
    }
    group.finish();
}

fn other_costs(c: &mut Criterion) {
    let acrs = rules(10);
    c.bench_function("acp compile 10 rules", |b| {
        b.iter(|| {
            Policy::compile(
                "acp1",
                RuleSet::Privileges,
                Some(black_box(&acrs)),
                &domain(),
            )
        })
    });
    let policies = [policy(10)];
    let req = request("Cstranger");
    c.bench_function("acp explain refusal, 10 rules", |b| {
        b.iter(|| explain(black_box(&policies), black_box(&req)))
    });
}

criterion_group!(benches, decision, other_costs);
criterion_main!(benches);
