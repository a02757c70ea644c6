use super::*;
use crate::{write, Entry, Flow, Peek, Scan, Scope, Visitor};
use model::ResponseStatusCode;
use serde_json::json;
use std::sync::Arc;

fn res(ty: ResourceType, ri: &str, pi: &str, srn: &str, extra: Value) -> Resource {
    let mut attrs = Map::new();
    attrs.insert("ri".into(), json!(ri));
    attrs.insert("pi".into(), json!(pi));
    attrs.insert("rn".into(), json!(srn.rsplit('/').next().unwrap_or(srn)));
    attrs.insert("ty".into(), json!(ty.code()));
    if let Value::Object(m) = extra {
        attrs.extend(m);
    }
    Resource {
        ty,
        srn: srn.into(),
        attrs,
    }
}

fn open(dir: &Path) -> Arc<SqliteStore> {
    Arc::new(SqliteStore::open(dir, SqliteOptions::default()).expect("open"))
}

async fn seed(store: &SqliteStore) {
    write(store, |t| {
        t.insert(&res(
            ResourceType::CseBase,
            "id-in",
            "",
            "cse-in",
            json!({}),
        ))?;
        t.insert(&res(
            ResourceType::Ae,
            "Cae",
            "id-in",
            "cse-in/ae",
            json!({}),
        ))?;
        t.insert(&res(
            ResourceType::Container,
            "cnt1",
            "Cae",
            "cse-in/ae/cnt",
            json!({"cni": 0}),
        ))?;
        t.insert(&res(
            ResourceType::Container,
            "cnt2",
            "Cae",
            "cse-in/ae-x",
            json!({}),
        ))
    })
    .await
    .expect("seed");
}

#[tokio::test]
async fn insert_read_children_and_subtree() {
    let dir = tempfile::tempdir().expect("tmp");
    let store = open(dir.path());
    seed(&store).await;
    assert_eq!(
        store.get("cnt1").ok().flatten().map(|r| r.srn),
        Some("cse-in/ae/cnt".into())
    );
    assert_eq!(
        store.get_by_srn("cse-in/ae").ok().flatten().map(|r| r.ty),
        Some(ResourceType::Ae)
    );
    assert_eq!(store.children("Cae", None).map(|v| v.len()).ok(), Some(2));
    assert_eq!(
        store
            .children("Cae", Some(ResourceType::Ae))
            .map(|v| v.len())
            .ok(),
        Some(0)
    );
    // `cse-in/ae-x` shares a prefix with `cse-in/ae` but is not below it.
    let below: Vec<String> = store
        .descendants("cse-in/ae", None)
        .unwrap_or_default()
        .into_iter()
        .map(|r| r.srn)
        .collect();
    assert_eq!(below, vec!["cse-in/ae/cnt".to_string()]);
    assert_eq!(
        store.descendants("cse-in", Some(1)).map(|v| v.len()).ok(),
        Some(2)
    );
}

#[tokio::test]
async fn conflicts_and_failed_jobs_change_nothing() {
    let dir = tempfile::tempdir().expect("tmp");
    let store = open(dir.path());
    seed(&store).await;
    let dup = write(&*store, |t| {
        t.insert(&res(
            ResourceType::Container,
            "cnt9",
            "Cae",
            "cse-in/ae/cnt",
            json!({}),
        ))
    })
    .await;
    assert_eq!(dup.map_err(|e| e.rsc), Err(ResponseStatusCode::Conflict));
    // A job that writes then fails leaves no trace, and does not disturb a job in the same batch.
    let s1 = store.clone();
    let failing = tokio::spawn(async move {
        write(&*s1, |t| {
            t.insert(&res(
                ResourceType::Container,
                "tmp",
                "Cae",
                "cse-in/ae/tmp",
                json!({}),
            ))?;
            Err::<(), _>(model::Error::bad_request("no"))
        })
        .await
    });
    let ok = write(&*store, |t| {
        t.insert(&res(
            ResourceType::Container,
            "ok",
            "Cae",
            "cse-in/ae/ok",
            json!({}),
        ))
    })
    .await;
    assert!(failing.await.map(|r| r.is_err()).unwrap_or(false));
    assert!(ok.is_ok());
    assert!(store.get("tmp").ok().flatten().is_none());
    assert!(store.get("ok").ok().flatten().is_some());
}

#[tokio::test]
async fn delete_subtree_removes_descendants_only() {
    let dir = tempfile::tempdir().expect("tmp");
    let store = open(dir.path());
    seed(&store).await;
    let gone = write(&*store, |t| t.delete_subtree("Cae"))
        .await
        .unwrap_or_default();
    let names: Vec<_> = gone.iter().map(|r| r.srn.as_str()).collect();
    assert_eq!(names.first().copied(), Some("cse-in/ae"));
    assert_eq!(gone.len(), 2);
    assert!(store.get("cnt1").ok().flatten().is_none());
    assert!(store.get("cnt2").ok().flatten().is_some());
}

#[tokio::test]
async fn concurrent_read_modify_write_is_serialized_and_durable() {
    let dir = tempfile::tempdir().expect("tmp");
    {
        let store = open(dir.path());
        seed(&store).await;
        let mut tasks = Vec::new();
        for i in 0..200 {
            let s = store.clone();
            tasks.push(tokio::spawn(async move {
                write(&*s, move |t| {
                    let mut cnt = t
                        .get("cnt1")?
                        .ok_or_else(|| model::Error::not_found("cnt1"))?;
                    let n = cnt.u64_attr("cni").unwrap_or(0) + 1;
                    cnt.attrs.insert("cni".into(), json!(n));
                    t.update(&cnt)?;
                    t.insert(&res(
                        ResourceType::ContentInstance,
                        &format!("cin{i}"),
                        "cnt1",
                        &format!("cse-in/ae/cnt/c{i}"),
                        json!({}),
                    ))
                })
                .await
            }));
        }
        for t in tasks {
            assert!(t.await.map(|r| r.is_ok()).unwrap_or(false));
        }
    }
    // Reopen: everything acknowledged is there.
    let store = open(dir.path());
    assert_eq!(
        store
            .get("cnt1")
            .ok()
            .flatten()
            .and_then(|r| r.u64_attr("cni")),
        Some(200)
    );
    assert_eq!(
        store
            .children("cnt1", Some(ResourceType::ContentInstance))
            .map(|v| v.len())
            .ok(),
        Some(200)
    );
    let oldest = store
        .oldest_child("cnt1", ResourceType::ContentInstance)
        .ok()
        .flatten();
    assert_eq!(oldest.map(|r| r.ri().to_owned()), Some("cin0".to_owned()));
}

#[tokio::test]
async fn expiry_index_and_schema_version() {
    let dir = tempfile::tempdir().expect("tmp");
    {
        let store = open(dir.path());
        write(&*store, |t| {
            t.insert(&res(
                ResourceType::Container,
                "old",
                "x",
                "cse-in/old",
                json!({"et": "20200101T000000,000000"}),
            ))?;
            t.insert(&res(
                ResourceType::Container,
                "new",
                "x",
                "cse-in/new",
                json!({"et": "20991231T000000,000000"}),
            ))
        })
        .await
        .expect("write");
        assert_eq!(
            store.expired("20261127T000000,000000", 10).ok(),
            Some(vec!["old".to_string()])
        );
    }
    let conn = Connection::open(dir.path().join("cse.db")).expect("raw");
    conn.execute(
        "UPDATE meta SET value = '999' WHERE key = 'schema_version'",
        [],
    )
    .expect("tamper");
    drop(conn);
    let err = SqliteStore::open(dir.path(), SqliteOptions::default())
        .map(|_| ())
        .map_err(|e| e.message);
    assert!(err.is_err_and(|m| m.contains("schema version 999")));
}

#[tokio::test]
async fn records_survive_restart_and_tied_ones_go_with_their_resource() {
    let dir = tempfile::tempdir().expect("tmp");
    {
        let store = open(dir.path());
        seed(&store).await;
        assert_eq!(store.record("t", "12-a@b").ok(), Some(None));
        write(&*store, |t| {
            t.put_record("t", "12-a@b", b"Cfirst", None)?;
            t.put_record("t", "12-a@b", b"Csecond", None)?;
            t.put_record("t", "0-gone", b"x", None)?;
            t.delete_record("t", "0-gone")?;
            t.add_record("sealed", "Cfirst", b"one")?;
            t.add_record("sealed", "Cfirst", b"two")?;
            t.put_record("subs", "sub-in-ae", b"cred", Some("cnt1"))?;
            t.put_record("subs", "sub-beside", b"cred", Some("cnt2"))?;
            // Seen by the transaction that wrote it.
            assert_eq!(t.record("t", "12-a@b")?, Some(b"Csecond".to_vec()));
            Ok(())
        })
        .await
        .expect("write");
        // A failed job leaves no record behind, neither on disk nor in memory.
        let failed = write(&*store, |t| {
            t.put_record("t", "12-a@b", b"Cthird", None)?;
            Err::<(), _>(Error::conflict("no"))
        })
        .await;
        assert!(failed.is_err());
        assert_eq!(
            store.record("t", "12-a@b").ok(),
            Some(Some(b"Csecond".to_vec()))
        );
    }
    let store = open(dir.path());
    assert_eq!(
        store.table("t").ok(),
        Some(vec![("12-a@b".to_owned(), b"Csecond".to_vec())])
    );
    assert_eq!(
        store.records("sealed", "Cfirst").ok(),
        Some(vec![b"one".to_vec(), b"two".to_vec()])
    );
    // Deleting a subtree deletes the records tied to anything in it, and no other; the
    // transaction that deletes it can read them first.
    let tied = write(&*store, |t| {
        let tied = t.tied_records("subs", "Cae")?;
        t.delete_subtree("Cae")?;
        Ok(tied)
    })
    .await
    .expect("delete");
    assert_eq!(tied, vec![("sub-in-ae".to_owned(), b"cred".to_vec())]);
    assert_eq!(store.record("subs", "sub-in-ae").ok(), Some(None));
    assert_eq!(
        store.record("subs", "sub-beside").ok(),
        Some(Some(b"cred".to_vec()))
    );
    drop(store);
    let store = open(dir.path());
    assert_eq!(store.record("subs", "sub-in-ae").ok(), Some(None));
    assert_eq!(store.table("subs").ok().map(|t| t.len()), Some(1));
}

#[tokio::test]
async fn keys_holding_a_value_are_found_by_their_first_value() {
    let dir = tempfile::tempdir().expect("tmp");
    let store = open(dir.path());
    let keys = write(&*store, |t| {
        t.put_record("creator", "cnt1", b"Cold", Some("cnt1"))?;
        t.put_record("creator", "cnt2", b"Cother", None)?;
        t.put_record("creator", "cnt3", b"Cold", None)?;
        t.put_record("elsewhere", "x", b"Cold", None)?;
        t.add_record("several", "k", b"first")?;
        t.add_record("several", "k", b"Cold")?;
        let mut keys = t.keys_holding("creator", b"Cold")?;
        keys.extend(t.keys_holding("several", b"Cold")?);
        Ok(keys)
    })
    .await
    .expect("write");
    // Only the first value of a key counts (the one `record` reads), in its own table.
    assert_eq!(keys, vec!["cnt1".to_owned(), "cnt3".to_owned()]);
}

/// The schema of version 1, as the previous build created it.
const SCHEMA_1: &str = "
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE resources (
    seq  INTEGER PRIMARY KEY AUTOINCREMENT,
    ri   TEXT NOT NULL UNIQUE,
    pi   TEXT NOT NULL,
    ty   INTEGER NOT NULL,
    srn  TEXT NOT NULL UNIQUE,
    et   TEXT,
    body TEXT NOT NULL
);
CREATE INDEX resources_parent ON resources(pi, ty, seq);
CREATE INDEX resources_expiry ON resources(et) WHERE et IS NOT NULL;
CREATE TABLE credential_aes (credential_id TEXT PRIMARY KEY, ae_id TEXT NOT NULL);
CREATE TABLE ae_credentials (ae_id TEXT PRIMARY KEY, credential TEXT NOT NULL);
CREATE TABLE sealed_identities (ae_id TEXT NOT NULL, sealed BLOB NOT NULL);
CREATE INDEX sealed_identities_ae ON sealed_identities(ae_id);
INSERT INTO meta (key, value) VALUES ('schema_version', '1');
INSERT INTO resources (ri, pi, ty, srn, body)
    VALUES ('Cfirst', 'cb', 2, 'cse-in/app', '{\"ri\":\"Cfirst\",\"pi\":\"cb\",\"rn\":\"app\"}');
INSERT INTO credential_aes VALUES ('lookup-1', 'Cfirst');
INSERT INTO ae_credentials VALUES ('Cfirst', 'lookup-1');
INSERT INTO sealed_identities VALUES ('Cfirst', x'0102');
INSERT INTO sealed_identities VALUES ('Cfirst', x'0304');
";

#[tokio::test]
async fn a_version_1_database_opens_with_its_bindings() {
    let dir = tempfile::tempdir().expect("tmp");
    let conn = Connection::open(dir.path().join("cse.db")).expect("raw");
    conn.execute_batch(SCHEMA_1).expect("version 1");
    drop(conn);
    for _ in 0..2 {
        let store = open(dir.path());
        assert!(store.get("Cfirst").is_ok_and(|r| r.is_some()));
        assert_eq!(
            store.record("credential-ae", "lookup-1").ok(),
            Some(Some(b"Cfirst".to_vec()))
        );
        assert_eq!(
            store.record("ae-credential", "Cfirst").ok(),
            Some(Some(b"lookup-1".to_vec()))
        );
        assert_eq!(
            store.records("sealed-identity", "Cfirst").ok(),
            Some(vec![vec![1, 2], vec![3, 4]])
        );
    }
    let conn = Connection::open(dir.path().join("cse.db")).expect("raw");
    let version: String = conn
        .query_row(
            "SELECT value FROM meta WHERE key = 'schema_version'",
            [],
            |r| r.get(0),
        )
        .expect("version");
    assert_eq!(version, SCHEMA_VERSION.to_string());
}

#[tokio::test]
async fn updating_et_moves_the_resource_in_the_expiry_index() {
    let dir = tempfile::tempdir().expect("tmp");
    let store = open(dir.path());
    write(&*store, |t| {
        t.insert(&res(
            ResourceType::Container,
            "c",
            "x",
            "cse-in/c",
            json!({"et": "20991231T000000,000000"}),
        ))
    })
    .await
    .expect("insert");
    assert_eq!(
        store.expired("20500101T000000,000000", 10).ok(),
        Some(vec![])
    );
    write(&*store, |t| {
        let mut c = t.get("c")?.ok_or_else(|| model::Error::not_found("c"))?;
        c.attrs.insert("et".into(), json!("20300101T000000,000000"));
        t.update(&c)
    })
    .await
    .expect("update");
    assert_eq!(
        store.expired("20500101T000000,000000", 10).ok(),
        Some(vec!["c".to_string()])
    );
    // And a body-only update keeps it there.
    write(&*store, |t| {
        let mut c = t.get("c")?.ok_or_else(|| model::Error::not_found("c"))?;
        c.attrs.insert("lbl".into(), json!(["x"]));
        t.update(&c)
    })
    .await
    .expect("update");
    assert_eq!(
        store.expired("20500101T000000,000000", 10).ok(),
        Some(vec!["c".to_string()])
    );
}

#[tokio::test]
async fn updates_written_at_the_end_of_the_group_keep_only_successful_jobs() {
    let dir = tempfile::tempdir().expect("tmp");
    {
        let store = open(dir.path());
        seed(&store).await;
        let set = |n: u64, fail: bool| {
            let s = store.clone();
            tokio::spawn(async move {
                write(&*s, move |t| {
                    let mut c = t
                        .get("cnt1")?
                        .ok_or_else(|| model::Error::not_found("cnt1"))?;
                    c.attrs.insert("cni".into(), json!(n));
                    t.update(&c)?;
                    if fail {
                        return Err(model::Error::bad_request("rolled back"));
                    }
                    Ok(())
                })
                .await
            })
        };
        let (a, b, c) = (set(1, false), set(2, false), set(99, true));
        assert!(a.await.map(|r| r.is_ok()).unwrap_or(false));
        assert!(b.await.map(|r| r.is_ok()).unwrap_or(false));
        assert!(c.await.map(|r| r.is_err()).unwrap_or(false));
        assert_eq!(
            store
                .get("cnt1")
                .ok()
                .flatten()
                .and_then(|r| r.u64_attr("cni")),
            Some(2)
        );
        // Deleted in the same group as an update: nothing is resurrected.
        write(&*store, |t| {
            let c = t
                .get("cnt2")?
                .ok_or_else(|| model::Error::not_found("cnt2"))?;
            t.update(&c)?;
            t.delete_subtree("cnt2").map(|_| ())
        })
        .await
        .expect("update then delete");
    }
    let store = open(dir.path());
    assert_eq!(
        store
            .get("cnt1")
            .ok()
            .flatten()
            .and_then(|r| r.u64_attr("cni")),
        Some(2)
    );
    assert!(store.get("cnt2").ok().flatten().is_none());
}

/// An AE with a container, an instance and a subscription below it, and an ACP elsewhere
/// that names it.
async fn seed_ae(store: &SqliteStore, ae: &str, rn: &str) {
    let ae = ae.to_owned();
    let rn = rn.to_owned();
    write(store, move |t| {
        t.insert(&res(
            ResourceType::CseBase,
            "id-in",
            "",
            "cse-in",
            json!({}),
        ))?;
        t.insert(&res(
            ResourceType::Ae,
            "Cfirst",
            "id-in",
            "cse-in/first",
            json!({}),
        ))?;
        t.insert(&res(
            ResourceType::Ae,
            &ae,
            "id-in",
            &format!("cse-in/{rn}"),
            json!({"aei": ae}),
        ))?;
        t.insert(&res(
            ResourceType::Ae,
            "Clast",
            "id-in",
            "cse-in/last",
            json!({}),
        ))?;
        t.insert(&res(
            ResourceType::Container,
            "cnt1",
            &ae,
            &format!("cse-in/{rn}/cnt"),
            json!({"cr": ae}),
        ))?;
        t.insert(&res(
            ResourceType::ContentInstance,
            "cin1",
            "cnt1",
            &format!("cse-in/{rn}/cnt/cin"),
            json!({"cr": ae, "con": "hello"}),
        ))?;
        t.insert(&res(
            ResourceType::Subscription,
            "sub1",
            "cnt1",
            &format!("cse-in/{rn}/cnt/sub"),
            json!({"nu": [ae]}),
        ))?;
        t.insert(&res(
            ResourceType::AccessControlPolicy,
            "acp1",
            "id-in",
            "cse-in/acp",
            json!({"pv": {"acr": [{"acor": [ae], "acop": 63}]}}),
        ))
    })
    .await
    .expect("seed");
}

fn renamed(store: &SqliteStore, old: &str, new: &str, rn: &str) -> Resource {
    let mut r = store.get(old).ok().flatten().expect("ae");
    r.attrs.insert("ri".into(), json!(new));
    r.attrs.insert("aei".into(), json!(new));
    r.attrs.insert("rn".into(), json!(rn));
    r.srn = format!("cse-in/{rn}");
    r
}

#[tokio::test]
async fn renaming_moves_children_names_and_place_and_survives_restart() {
    let dir = tempfile::tempdir().expect("tmp");
    let store = open(dir.path());
    seed_ae(&store, "Cold", "Cold").await;
    // The instance is read once, so it sits in the recent instances under its old name.
    assert!(store
        .get_by_srn("cse-in/Cold/cnt/cin")
        .ok()
        .flatten()
        .is_some());
    let new_ae = renamed(&store, "Cold", "Cnew", "Cnew");
    let (mentions, reassigned) = write(store.as_ref(), move |t| {
        // An instance written in the same transaction, before the rename.
        t.insert(&res(
            ResourceType::ContentInstance,
            "cin2",
            "cnt1",
            "cse-in/Cold/cnt/cin2",
            json!({"cr": "Cold", "con": "again"}),
        ))?;
        t.rename("Cold", &new_ae)?;
        let reassigned = t.reassign_instance_creator("Cold", "Cnew")?;
        let mentions: Vec<String> = t
            .mentioning("Cold")?
            .into_iter()
            .map(|r| r.ri().to_owned())
            .collect();
        Ok((mentions, reassigned))
    })
    .await
    .expect("rename");
    // The container's `cr`, the subscription's `nu` and the ACP still name the old AE-ID
    // (the caller rewrites them); the instances have their new creator already.
    let mut mentions = mentions;
    mentions.sort();
    assert_eq!(mentions, ["acp1", "cnt1", "sub1"]);
    assert_eq!(reassigned, 2);
    let check = |store: &SqliteStore| {
        assert!(store.get("Cold").ok().flatten().is_none());
        assert!(store.get_by_srn("cse-in/Cold").ok().flatten().is_none());
        assert!(store
            .get_by_srn("cse-in/Cold/cnt/cin")
            .ok()
            .flatten()
            .is_none());
        let ae = store
            .get_by_srn("cse-in/Cnew")
            .ok()
            .flatten()
            .expect("renamed AE");
        assert_eq!(ae.ri(), "Cnew");
        let cnt = store.get("cnt1").ok().flatten().expect("container");
        assert_eq!((cnt.pi(), cnt.srn.as_str()), ("Cnew", "cse-in/Cnew/cnt"));
        let sub = store.get_by_srn("cse-in/Cnew/cnt/sub").ok().flatten();
        assert_eq!(sub.map(|s| s.ri().to_owned()), Some("sub1".to_owned()));
        let cin = store.get_by_srn("cse-in/Cnew/cnt/cin").ok().flatten();
        assert_eq!(
            cin.map(|c| (c.attrs["con"].clone(), c.attrs["cr"].clone())),
            Some((json!("hello"), json!("Cnew")))
        );
        let cin2 = store.get("cin2").ok().flatten().expect("cin2");
        assert_eq!(
            (cin2.srn.as_str(), &cin2.attrs["cr"]),
            ("cse-in/Cnew/cnt/cin2", &json!("Cnew"))
        );
        let kids: Vec<String> = store
            .children("Cnew", Some(ResourceType::Container))
            .unwrap_or_default()
            .iter()
            .map(|r| r.ri().to_owned())
            .collect();
        assert_eq!(kids, ["cnt1"]);
        assert!(store.children("Cold", None).unwrap_or_default().is_empty());
        // Same place among its siblings.
        let aes: Vec<String> = store
            .children("id-in", Some(ResourceType::Ae))
            .unwrap_or_default()
            .iter()
            .map(|r| r.ri().to_owned())
            .collect();
        assert_eq!(aes, ["Cfirst", "Cnew", "Clast"]);
        assert_eq!(
            store.descendants("cse-in/Cnew", None).map(|v| v.len()).ok(),
            Some(4)
        );
    };
    check(&store);
    drop(store);
    check(&open(dir.path()));
}

#[tokio::test]
async fn a_rename_onto_a_taken_id_or_name_changes_nothing() {
    let dir = tempfile::tempdir().expect("tmp");
    let store = open(dir.path());
    seed_ae(&store, "Cold", "meter").await;
    let onto_id = renamed(&store, "Cold", "Clast", "meter");
    let refused = write(store.as_ref(), move |t| t.rename("Cold", &onto_id)).await;
    assert_eq!(
        refused.map_err(|e| e.rsc),
        Err(ResponseStatusCode::Conflict)
    );
    let onto_name = renamed(&store, "Cold", "Cnew", "last");
    let refused = write(store.as_ref(), move |t| t.rename("Cold", &onto_name)).await;
    assert_eq!(
        refused.map_err(|e| e.rsc),
        Err(ResponseStatusCode::Conflict)
    );
    assert!(store.get("Cold").ok().flatten().is_some());
    assert!(store.get("Cnew").ok().flatten().is_none());
    assert_eq!(
        store.get("cnt1").ok().flatten().map(|c| c.pi().to_owned()),
        Some("Cold".to_owned())
    );
    // A kept resource name: only the `ri` changes, the structured names stay.
    let same_name = renamed(&store, "Cold", "Cnew", "meter");
    write(store.as_ref(), move |t| t.rename("Cold", &same_name))
        .await
        .expect("rename");
    let cnt = store
        .get_by_srn("cse-in/meter/cnt")
        .ok()
        .flatten()
        .expect("cnt");
    assert_eq!(cnt.pi(), "Cnew");
    assert!(store
        .get_by_srn("cse-in/meter/cnt/cin")
        .ok()
        .flatten()
        .is_some());
}

#[tokio::test]
async fn the_folder_and_the_database_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o777;
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("data");
    let store = open(&dir);
    seed(&store).await;
    assert_eq!(mode(&dir), 0o700);
    for name in ["cse.db", "cse.db-wal", "cse.db-shm"] {
        assert_eq!(mode(&dir.join(name)), 0o600, "{name}");
    }
    drop(store);
    // What an older version left readable is made private.
    for name in ["cse.db", "cse.db-wal"] {
        std::fs::set_permissions(dir.join(name), std::fs::Permissions::from_mode(0o644))
            .expect("chmod");
    }
    let store = open(&dir);
    assert!(store.get("Cae").expect("read").is_some());
    for name in ["cse.db", "cse.db-wal", "cse.db-shm"] {
        assert_eq!(mode(&dir.join(name)), 0o600, "{name}");
    }
}
/// A container `cnt1` (seeded) with `n` content instances of `size` bytes of content each,
/// then a sub-container after them.
async fn seed_instances(store: &SqliteStore, n: usize, size: usize) {
    write(store, move |t| {
        let con = "x".repeat(size);
        for i in 0..n {
            t.insert(&res(
                ResourceType::ContentInstance,
                &format!("cin{i}"),
                "cnt1",
                &format!("cse-in/ae/cnt/i{i}"),
                json!({ "con": con }),
            ))?;
        }
        t.insert(&res(
            ResourceType::Container,
            "sub",
            "cnt1",
            "cse-in/ae/cnt/sub",
            json!({}),
        ))
    })
    .await
    .expect("instances");
}

/// Keeps the names of what it reads, up to `keep`; reads only entries `wanted` accepts.
struct Names<F: FnMut(&Entry<'_>) -> bool> {
    keep: usize,
    wanted: F,
    seen: Vec<String>,
}

impl<F: FnMut(&Entry<'_>) -> bool> Visitor for Names<F> {
    fn peek(&mut self, entry: &Entry<'_>) -> Result<Peek> {
        Ok(if (self.wanted)(entry) {
            Peek::Read
        } else {
            Peek::Pass
        })
    }

    fn visit(&mut self, r: Resource) -> Result<Flow> {
        self.seen.push(r.srn);
        Ok(if self.seen.len() == self.keep {
            Flow::Stop
        } else {
            Flow::Continue
        })
    }
}

fn scan_names(store: &SqliteStore, scan: &Scan<'_>, keep: usize) -> Vec<String> {
    let mut names = Names {
        keep,
        wanted: |_: &Entry<'_>| true,
        seen: Vec::new(),
    };
    store.scan(scan, &mut names).expect("scan");
    names.seen
}

#[tokio::test]
async fn a_scan_reads_only_what_its_visitor_takes() {
    let dir = tempfile::tempdir().expect("tmp");
    let store = open(dir.path());
    seed(&store).await;
    seed_instances(&store, 200, 64 * 1024).await;
    let instances = [ResourceType::ContentInstance];
    let before = store.scanned();
    let first = scan_names(
        &store,
        &Scan {
            scope: Scope::Children("cnt1"),
            types: &instances,
            names: &[],
        },
        1,
    );
    assert_eq!(first, vec!["cse-in/ae/cnt/i0".to_string()]);
    assert_eq!(store.scanned() - before, 1, "one instance read, not 200");

    // A type the index excludes costs nothing: 200 instances passed over, one container read.
    let containers = [ResourceType::Container];
    let before = store.scanned();
    let subs = scan_names(
        &store,
        &Scan {
            scope: Scope::Children("cnt1"),
            types: &containers,
            names: &[],
        },
        usize::MAX,
    );
    assert_eq!(subs, vec!["cse-in/ae/cnt/sub".to_string()]);
    assert_eq!(store.scanned() - before, 1);

    // Descendants: depth and names are applied before any content is read.
    let before = store.scanned();
    let named = scan_names(
        &store,
        &Scan {
            scope: Scope::Descendants {
                srn: "cse-in/ae",
                max_depth: Some(2),
            },
            types: &[],
            names: &["i150".to_owned(), "cnt".to_owned()],
        },
        usize::MAX,
    );
    assert_eq!(named, vec!["cse-in/ae/cnt", "cse-in/ae/cnt/i150"]);
    assert_eq!(store.scanned() - before, 2);
    let shallow = scan_names(
        &store,
        &Scan {
            scope: Scope::Descendants {
                srn: "cse-in",
                max_depth: Some(1),
            },
            types: &[],
            names: &[],
        },
        usize::MAX,
    );
    assert_eq!(shallow, vec!["cse-in/ae", "cse-in/ae-x"]);
    // Descendants stream in name order: the first instance found ends the scan.
    let before = store.scanned();
    let first = scan_names(
        &store,
        &Scan {
            scope: Scope::Descendants {
                srn: "cse-in",
                max_depth: None,
            },
            types: &instances,
            names: &[],
        },
        1,
    );
    assert_eq!(first, vec!["cse-in/ae/cnt/i0".to_string()]);
    assert_eq!(store.scanned() - before, 1);

    // What the visitor passes over by its index entry is never read.
    let before = store.scanned();
    let mut one = Names {
        keep: usize::MAX,
        wanted: |e: &Entry<'_>| e.pi == "cnt1" && e.srn.ends_with("/i199"),
        seen: Vec::new(),
    };
    store
        .scan(
            &Scan {
                scope: Scope::Children("cnt1"),
                types: &[],
                names: &[],
            },
            &mut one,
        )
        .expect("scan");
    assert_eq!(one.seen, vec!["cse-in/ae/cnt/i199"]);
    assert_eq!(store.scanned() - before, 1);
}

#[tokio::test]
async fn children_of_every_type_come_in_creation_order_once() {
    let dir = tempfile::tempdir().expect("tmp");
    let store = open(dir.path());
    seed(&store).await;
    seed_instances(&store, 3, 10).await;
    write(&*store, |t| {
        t.insert(&res(
            ResourceType::ContentInstance,
            "late",
            "cnt1",
            "cse-in/ae/cnt/late",
            json!({}),
        ))
    })
    .await
    .expect("late");
    let every = scan_names(
        &store,
        &Scan {
            scope: Scope::Children("cnt1"),
            types: &[],
            names: &[],
        },
        usize::MAX,
    );
    let expected = ["i0", "i1", "i2", "sub", "late"].map(|n| format!("cse-in/ae/cnt/{n}"));
    assert_eq!(every, expected);
    let twice = [
        ResourceType::ContentInstance,
        ResourceType::Container,
        ResourceType::ContentInstance,
    ];
    let named = scan_names(
        &store,
        &Scan {
            scope: Scope::Children("cnt1"),
            types: &twice,
            names: &[],
        },
        usize::MAX,
    );
    assert_eq!(named, expected);
}

/// Issue 10: creates into a container that keeps its newest instances (the CSE deletes the
/// oldest in the same write) leave the store's memory where it was, however many there are.
#[tokio::test]
async fn creates_trimmed_to_mni_keep_the_instance_cache_bounded() {
    let dir = tempfile::tempdir().expect("tmp");
    let store = open(dir.path());
    seed(&store).await;
    let mni = 20;
    for n in 0..1_000u32 {
        write(&*store, move |t| {
            t.insert(&res(
                ResourceType::ContentInstance,
                &format!("cin{n}"),
                "cnt1",
                &format!("cse-in/ae/cnt/cin{n}"),
                json!({}),
            ))?;
            if n >= mni {
                t.delete_subtree(&format!("cin{}", n - mni))?;
            }
            Ok(())
        })
        .await
        .expect("create and trim");
    }
    let instances = store.instances.lock().expect("instances");
    assert_eq!(instances.len(), mni as usize);
    assert!(
        instances.queued() <= 2 * mni as usize + 64,
        "{} names queued for {} cached instances",
        instances.queued(),
        instances.len()
    );
    drop(instances);
    assert!(store.get("cin0").ok().flatten().is_none());
    assert!(store.get("cin999").ok().flatten().is_some());
}

#[tokio::test]
async fn a_table_prefix_reads_one_owners_records_in_key_order() {
    let dir = tempfile::tempdir().expect("tmp");
    let store = open(dir.path());
    write(&*store, |t| {
        t.put_record("q", "a/2", b"a2", None)?;
        t.put_record("q", "a/1", b"a1", None)?;
        t.put_record("q", "ab/1", b"ab1", None)?;
        t.put_record("q", "b/1", b"b1", None)?;
        t.put_record("r", "a/0", b"other table", None)?;
        Ok(())
    })
    .await
    .expect("write");
    assert_eq!(
        store.table_prefix("q", "a/").ok(),
        Some(vec![
            ("a/1".to_owned(), b"a1".to_vec()),
            ("a/2".to_owned(), b"a2".to_vec())
        ])
    );
    assert_eq!(store.table_prefix("q", "c/").ok(), Some(Vec::new()));
}

/// A write job sees its own group's changes through `Txn::children` and `Txn::get_by_srn`:
/// an insert and a deletion at once, and the new state of an update of a cached resource
/// that SQLite gets only when the group ends (a decision made on several resources inside
/// a write, such as the registration's service subscription check, reads one state).
#[tokio::test]
async fn a_write_reads_children_and_names_as_its_transaction_sees_them() {
    let dir = tempfile::tempdir().expect("tmp");
    let store = open(dir.path());
    seed(&store).await;
    let seen = write(&*store, |t| {
        let mut cnt = t.get("cnt1")?.expect("cnt1");
        cnt.attrs.insert("lbl".into(), json!(["changed"]));
        t.update(&cnt)?;
        t.delete_subtree("cnt2")?;
        t.insert(&res(
            ResourceType::Container,
            "cnt3",
            "Cae",
            "cse-in/ae/new",
            json!({}),
        ))?;
        let children: Vec<(String, Option<Value>)> = t
            .children("Cae", ResourceType::Container)?
            .into_iter()
            .map(|r| (r.ri().to_owned(), r.attrs.get("lbl").cloned()))
            .collect();
        let by_name = t
            .get_by_srn("cse-in/ae/cnt")?
            .and_then(|r| r.attrs.get("lbl").cloned());
        let gone = t.get_by_srn("cse-in/ae-x")?.is_none();
        let new = t.get_by_srn("cse-in/ae/new")?.map(|r| r.ri().to_owned());
        Ok((children, by_name, gone, new))
    })
    .await
    .expect("write");
    assert_eq!(
        seen,
        (
            vec![
                ("cnt1".to_owned(), Some(json!(["changed"]))),
                ("cnt3".to_owned(), None)
            ],
            Some(json!(["changed"])),
            true,
            Some("cnt3".to_owned())
        )
    );
}
