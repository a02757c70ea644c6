//! Property test of a container's bookkeeping through the real CSE in process: random
//! sequences of content instance creates and deletes (by name, `ol`, `la`), changes of
//! `mni`/`mbs`, and restarts (the CSE reopened on the same store), checked after every step
//! against a model: a queue of instances, oldest first (TS-0001 clause 9.6.7: `cni`, `cbs`
//! count the instances and their sizes; when a limit is passed the oldest go first; `st` of
//! a new instance is the container's, incremented first; `ol`/`la` are the oldest/latest).
//!
//! `st` counts what changes the container itself (a new instance, an update of it); a
//! delete of an instance does not touch `st` (the deleted resource is the instance).
#![allow(missing_docs)]
use crate::common;

use common::*;
use model::{ResourceType as T, ResponseStatusCode as R};
use proptest::prelude::*;
use serde_json::json;
use std::collections::VecDeque;
use std::sync::Arc;

const CNT: &str = "cse-in/ae/c";

#[derive(Debug, Clone)]
enum Step {
    /// A new instance with content of this many bytes.
    Create(usize),
    /// Delete the instance at this position (modulo the count), by name.
    Delete(usize),
    DeleteOldest,
    DeleteLatest,
    /// Set `mni` and/or `mbs`.
    Limits(Option<u64>, Option<u64>),
    /// Reopen the CSE on the same store.
    Restart,
}

/// The model: the instances in order of creation, and the container's state tag.
#[derive(Debug, Default)]
struct Model {
    mni: Option<u64>,
    mbs: Option<u64>,
    st: u64,
    /// (rn, con) oldest first.
    instances: VecDeque<(String, String)>,
}

impl Model {
    fn cbs(&self) -> u64 {
        self.instances.iter().map(|(_, c)| c.len() as u64).sum()
    }
    fn evict(&mut self) {
        while self.mni.is_some_and(|m| self.instances.len() as u64 > m)
            || self.mbs.is_some_and(|m| self.cbs() > m)
        {
            self.instances.pop_front();
        }
    }
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        8 => (0usize..9).prop_map(Step::Create),
        2 => any::<usize>().prop_map(Step::Delete),
        1 => Just(Step::DeleteOldest),
        1 => Just(Step::DeleteLatest),
        1 => (prop::option::of(1u64..6), prop::option::of(4u64..30))
            .prop_map(|(a, b)| Step::Limits(a, b)),
        1 => Just(Step::Restart),
    ]
}

async fn reopen(t: &mut TestCse) {
    let store =
        store::SqliteStore::open(t.dir.path(), store::SqliteOptions::default()).expect("store");
    t.cse = cse::Cse::open(cse::CseConfig::default(), Arc::new(store))
        .await
        .expect("cse");
}

/// The container and its `ol`/`la` agree with the model.
async fn check(t: &TestCse, id: &str, m: &Model, at: usize) -> Result<(), TestCaseError> {
    let c = t.retrieve(id, CNT).await;
    prop_assert_eq!(c.rsc, R::Ok, "step {}", at);
    prop_assert_eq!(
        attr(&c, "cni"),
        json!(m.instances.len()),
        "cni, step {}",
        at
    );
    prop_assert_eq!(attr(&c, "cbs"), json!(m.cbs()), "cbs, step {}", at);
    prop_assert_eq!(attr(&c, "st"), json!(m.st), "st, step {}", at);
    for (virt, want) in [("ol", m.instances.front()), ("la", m.instances.back())] {
        let r = t.retrieve(id, &format!("{CNT}/{virt}")).await;
        match want {
            None => prop_assert_eq!(r.rsc, R::NotFound, "{} empty, step {}", virt, at),
            Some((rn, con)) => {
                prop_assert_eq!(r.rsc, R::Ok, "{}, step {}", virt, at);
                prop_assert_eq!(attr(&r, "rn"), json!(rn), "{} rn, step {}", virt, at);
                prop_assert_eq!(attr(&r, "con"), json!(con), "{} con, step {}", virt, at);
            }
        }
    }
    Ok(())
}

async fn run(mni: Option<u64>, mbs: Option<u64>, steps: Vec<Step>) -> Result<(), TestCaseError> {
    let mut t = TestCse::new().await;
    let id = t.register("ae").await;
    let mut cnt = json!({"rn": "c"});
    if let Some(n) = mni {
        cnt["mni"] = json!(n);
    }
    if let Some(n) = mbs {
        cnt["mbs"] = json!(n);
    }
    let r = t
        .create(&id, "cse-in/ae", T::Container, json!({ "m2m:cnt": cnt }))
        .await;
    prop_assert_eq!(r.rsc, R::Created);
    let mut m = Model {
        mni,
        mbs,
        ..Model::default()
    };
    check(&t, &id, &m, 0).await?;
    for (i, s) in steps.into_iter().enumerate() {
        let at = i + 1;
        match s {
            Step::Create(len) => {
                // Unique content: the step number, padded to the length.
                let mut con = at.to_string();
                while con.len() < len {
                    con.push('.');
                }
                let r = t
                    .create(
                        &id,
                        CNT,
                        T::ContentInstance,
                        json!({"m2m:cin": {"con": con, "cnf": "text/plain:0"}}),
                    )
                    .await;
                if m.mbs.is_some_and(|mbs| con.len() as u64 > mbs) {
                    prop_assert_eq!(r.rsc, R::NotAcceptable, "too big, step {}", at);
                } else {
                    prop_assert_eq!(r.rsc, R::Created, "step {}", at);
                    m.st += 1;
                    prop_assert_eq!(attr(&r, "st"), json!(m.st), "instance st, step {}", at);
                    prop_assert_eq!(attr(&r, "cs"), json!(con.len()), "cs, step {}", at);
                    let rn = attr(&r, "rn").as_str().unwrap_or_default().to_owned();
                    m.instances.push_back((rn, con));
                    m.evict();
                }
            }
            Step::Delete(k) => {
                if m.instances.is_empty() {
                    continue;
                }
                let (rn, _) = m
                    .instances
                    .remove(k % m.instances.len())
                    .unwrap_or_default();
                let r = t.delete(&id, &format!("{CNT}/{rn}")).await;
                prop_assert_eq!(r.rsc, R::Deleted, "delete {}, step {}", rn, at);
            }
            Step::DeleteOldest | Step::DeleteLatest => {
                let (virt, gone) = if matches!(s, Step::DeleteOldest) {
                    ("ol", m.instances.pop_front())
                } else {
                    ("la", m.instances.pop_back())
                };
                let r = t.delete(&id, &format!("{CNT}/{virt}")).await;
                let want = if gone.is_some() {
                    R::Deleted
                } else {
                    R::NotFound
                };
                prop_assert_eq!(r.rsc, want, "delete {}, step {}", virt, at);
            }
            Step::Limits(mni, mbs) => {
                let mut pc = serde_json::Map::new();
                if let Some(n) = mni {
                    pc.insert("mni".into(), json!(n));
                    m.mni = Some(n);
                }
                if let Some(n) = mbs {
                    pc.insert("mbs".into(), json!(n));
                    m.mbs = Some(n);
                }
                if pc.is_empty() {
                    continue;
                }
                let r = t.update(&id, CNT, json!({ "m2m:cnt": pc })).await;
                prop_assert_eq!(r.rsc, R::Updated, "update, step {}", at);
                m.st += 1;
                m.evict();
                prop_assert_eq!(attr(&r, "cni"), json!(m.instances.len()), "step {}", at);
            }
            Step::Restart => reopen(&mut t).await,
        }
        check(&t, &id, &m, at).await?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn container_bookkeeping_matches_the_model(
        mni in prop::option::of(1u64..6),
        mbs in prop::option::of(4u64..30),
        steps in prop::collection::vec(step(), 1..30),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(run(mni, mbs, steps))?;
    }
}
